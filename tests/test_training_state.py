"""l2l_helpers.meta.training_state: checkpoints, resume bit for bit, interrupts, skipped and rolled-back steps."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import TINY, disk_full_after, fresh_net, lively_net, same_weights, train

import l2l_helpers as l2l
from l2l_helpers.meta.checkpoints import load_optimizer, read_checkpoint, save_checkpoint
from l2l_helpers.meta.config import MetaTrainConfig, training_indices
from l2l_helpers.meta.meta_training import meta_train
from l2l_helpers.optimizees import QuadraticProblem, QuadraticTasks


def run(tmp_path, name, epochs, resume=None, **kwargs):
    """Meta-train a fresh copy of the same net for ``epochs`` epochs, checkpointing to tmp_path/name."""
    net = lively_net(seed=5, hidden=4)
    config = MetaTrainConfig(epochs=epochs, **TINY)
    path = tmp_path / name
    result = meta_train(
        net, QuadraticProblem(dim=3), config, checkpoint_path=path, resume=resume, progress=False, **kwargs
    )
    return net, result, path


def assert_same_run(a, b):
    """Two (net, result) pairs with identical weights and histories."""
    (net_a, res_a), (net_b, res_b) = a, b
    for k, v in net_a.state_dict().items():
        assert torch.equal(v, net_b.state_dict()[k]), k
        assert torch.equal(res_a.last_state[k], res_b.last_state[k]), k
        assert torch.equal(res_a.best_state[k], res_b.best_state[k]), k
    assert res_a.history == res_b.history
    assert res_a.val_history == res_b.val_history
    assert (res_a.best_epoch, res_a.best_val) == (res_b.best_epoch, res_b.best_val)


def test_checkpoint_written_with_best_weights(tmp_path):
    """checkpoint_path gets a loadable checkpoint: best weights, metadata, resumable training state."""
    _, result, path = run(tmp_path, "c.pt", 3, metadata={"note": "x"})
    assert path.is_file()
    loaded, meta = load_optimizer(path)
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, result.best_state[k])
    assert meta["epochs_done"] == 3 and meta["best_epoch"] == result.best_epoch and meta["note"] == "x"
    assert meta["problem"].startswith("quadratic")
    training = read_checkpoint(path)["training"]
    assert training["epoch"] == 3
    for k, v in training["last_state"].items():
        assert torch.equal(v, result.last_state[k])


def test_resume_reaches_same_weights(tmp_path):
    """2 epochs + resume to 4 gives exactly the weights and history of 4 epochs straight."""
    straight = run(tmp_path, "a.pt", 4)
    _, first, path = run(tmp_path, "b.pt", 2)
    assert len(first.history) == 2
    net, resumed, _ = run(tmp_path, "b.pt", 4, resume=tmp_path / "b.pt")
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert read_checkpoint(path)["training"]["epoch"] == 4
    assert_same_run(straight[:2], (net, resumed))


def test_interrupt_saves_and_resumes(tmp_path, capsys):
    """Ctrl-C after epoch 3 saves epoch 3; resuming finishes as if never interrupted."""
    straight = run(tmp_path, "a.pt", 5)

    def interrupt(record, result):
        if record["epoch"] == 3:
            raise KeyboardInterrupt

    _, stopped, path = run(tmp_path, "b.pt", 5, callback=interrupt)
    assert stopped.interrupted and len(stopped.history) == 3
    assert "interrupted after epoch 3" in capsys.readouterr().out
    assert read_checkpoint(path)["training"]["epoch"] == 3
    net, resumed, _ = run(tmp_path, "b.pt", 5, resume=path)
    assert_same_run(straight[:2], (net, resumed))


def test_resume_from_weights_only_checkpoint(tmp_path):
    """A checkpoint without training state cannot be resumed: ValueError saying so."""
    path = save_checkpoint(tmp_path / "w.pt", lively_net(seed=5, hidden=4))
    with pytest.raises(ValueError, match="weights only"):
        run(tmp_path, "out.pt", 2, resume=path)


def test_resume_into_other_architecture(tmp_path):
    """Resuming into a net of another architecture is a ValueError naming the difference."""
    _, _, path = run(tmp_path, "a.pt", 1)
    with pytest.raises(ValueError, match="hidden_size"):
        meta_train(lively_net(hidden=6), QuadraticProblem(dim=3), MetaTrainConfig(**TINY), resume=path)


class InterruptingTasks(QuadraticTasks):
    """Quadratic tasks whose loss raises KeyboardInterrupt (a kernel interrupt) on one step."""

    def __init__(self, *args, at_step: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.at_step = at_step

    def loss(self, theta, step=0):
        if step == self.at_step:
            raise KeyboardInterrupt
        return super().loss(theta, step)


class FaultyProblem(l2l.QuadraticProblem):
    """Quadratics where chosen epochs' tasks misbehave: ``kind`` is 'interrupt' or 'nan' at step 7."""

    def __init__(self, bad_first_index: set[int], kind: str) -> None:
        super().__init__()
        self.bad, self.kind = bad_first_index, kind

    def _make_tasks(self, seeds, device, split):
        if split == "train" and seeds[0] in self.bad:
            if self.kind == "interrupt":
                return InterruptingTasks(seeds, self.dim, self.init_scale, device, at_step=7)
            return NaNTasks(seeds, self.dim, self.init_scale, device)
        return super()._make_tasks(seeds, device, split)


class NaNTasks(QuadraticTasks):
    """Quadratic tasks whose loss is NaN from step 7 on."""

    def loss(self, theta, step=0):
        out = super().loss(theta, step)
        return out * math.nan if step >= 7 else out


def epoch_first_index(epoch: int) -> int:
    """The first training seed of an epoch in the TINY configuration."""
    config = l2l.MetaTrainConfig(epochs=10, **TINY)
    return training_indices(config, epoch)[0]


def test_interrupt_between_epochs_saves_and_resumes_bit_for_bit(tmp_path):
    """Ctrl-C after epoch 2 saves a checkpoint; resuming to epoch 4 equals an uninterrupted 4-epoch run."""
    _, straight = train(4)
    path = tmp_path / "run.pt"

    def interrupt(record, result):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    _, first = train(4, checkpoint_path=path, callback=interrupt)
    assert first.interrupted and [h["epoch"] for h in first.history] == [1, 2]
    assert l2l.read_checkpoint(path)["training"]["epoch"] == 2
    _, resumed = train(4, checkpoint_path=path, resume=path)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert same_weights(resumed.last_state, straight.last_state)
    assert same_weights(resumed.best_state, straight.best_state)
    assert resumed.history == straight.history


def test_interrupt_mid_epoch_rolls_back_to_the_last_finished_epoch(tmp_path):
    """An interrupt inside epoch 3 (after phi already stepped once) keeps exactly the state after epoch 2."""
    _, two = train(2)
    net = fresh_net()
    problem = FaultyProblem({epoch_first_index(2)}, "interrupt")
    path = tmp_path / "mid.pt"
    result = l2l.meta_train(net, problem, l2l.MetaTrainConfig(epochs=5, **TINY), checkpoint_path=path, progress=False)
    assert result.interrupted and len(result.history) == 2
    assert same_weights(net.state_dict(), two.last_state)
    assert same_weights(l2l.read_checkpoint(path)["training"]["last_state"], two.last_state)


def test_nan_loss_is_skipped_and_reported():
    """A problem that returns NaN at step 7 of one epoch: that meta-step is skipped, phi stays finite."""
    net = fresh_net()
    problem = FaultyProblem({epoch_first_index(1)}, "nan")
    result = l2l.meta_train(net, problem, l2l.MetaTrainConfig(epochs=3, **TINY), progress=False)
    assert result.skipped == 1
    assert result.history[1]["skipped"] == 1 and math.isnan(result.history[1]["final_loss"])
    assert "epoch 2" in result.events[0] and "non-finite meta-loss" in result.events[0]
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert math.isfinite(result.history[2]["meta_loss"])


def test_exploding_optimizer_output_never_breaks_phi():
    """An optimizer whose output explodes makes theta diverge; every bad step is skipped, phi stays finite."""
    net = fresh_net(output_scale=1e30)
    result = l2l.meta_train(net, l2l.QuadraticProblem(), l2l.MetaTrainConfig(epochs=2, **TINY), progress=False)
    assert result.skipped >= 1
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_exploding_meta_gradient_is_skipped_and_phi_kept():
    """With a tiny explosion threshold every meta-step is refused: phi stays exactly at its start."""
    net = fresh_net()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    config = l2l.MetaTrainConfig(epochs=2, skip_grad_norm=1e-12, **TINY)
    result = l2l.meta_train(net, l2l.QuadraticProblem(), config, progress=False)
    assert result.skipped == 2 and "meta-gradient norm" in result.events[0]
    assert same_weights(net.state_dict(), start)


@pytest.mark.parametrize("writes", [2, 0])
def test_full_disk_names_the_lost_epoch_and_the_kept_checkpoint(tmp_path, monkeypatch, writes):
    """A checkpoint write that fails (ENOSPC) stops the run with CheckpointWriteError: the epoch it was saving and
    the epoch of the checkpoint still on disk, which loads and is intact."""
    from l2l_helpers.meta.checkpoints import CheckpointWriteError

    path = tmp_path / "full.pt"
    config = MetaTrainConfig(epochs=4, checkpoint_every=1, **TINY)
    disk_full_after(monkeypatch, writes)
    with pytest.raises(CheckpointWriteError) as caught:
        meta_train(lively_net(seed=5, hidden=4), QuadraticProblem(dim=3), config, checkpoint_path=path, progress=False)
    monkeypatch.undo()
    error = caught.value
    assert (error.epoch, error.last_epoch) == (writes + 1, writes or None)
    lost = f"could not write checkpoint {path} (epoch {writes + 1}): [Errno 28] No space left on device; "
    if writes:
        assert str(error) == f"{lost}the last good checkpoint is {path} (epoch {writes})"
        assert read_checkpoint(path)["training"]["epoch"] == writes
        load_optimizer(path)
        assert [p.name for p in tmp_path.iterdir()] == ["full.pt"]
    else:
        assert str(error) == f"{lost}no earlier checkpoint is at {path}"
        assert list(tmp_path.iterdir()) == []
