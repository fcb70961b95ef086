"""NTM-BFGS (paper, Appendix; notebook 11): the memory against a dense matrix by hand, and oracles against the
LSTM(+GAC) controller without a memory."""

from __future__ import annotations

import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers import CoordinatewiseLSTM, OptimizerConfig, read_checkpoint
from l2l_helpers.cli.main import main
from l2l_helpers.optimizer.coordinatewise_lstm import memory_write_read


def _run(net: CoordinatewiseLSTM, grads: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
    state, updates = net.init_state(grads[0].numel()), []
    for g in grads:
        update, state = net(g, state)
        updates.append(update)
    return updates, state


def test_memory_read_is_a_dense_matrix_times_r():
    """M = I + sum_j a_j b_j^T per optimizee, built densely by hand, times r: the read result."""
    torch.manual_seed(0)
    tasks, dim, slots, k = 3, 5, 6, 2
    n = tasks * dim
    a_old, b_old = torch.randn(n, slots), torch.randn(n, slots)
    a, b, r = torch.randn(n, k), torch.randn(n, k), torch.randn(n)
    a_new, b_new, read = memory_write_read(a_old, b_old, a, b, r, optimizees=tasks)
    # the k oldest slots dropped, the k new ones appended (first in, first out)
    torch.testing.assert_close(a_new, torch.cat([a_old[:, k:], a], dim=1))
    torch.testing.assert_close(b_new, torch.cat([b_old[:, k:], b], dim=1))
    for t in range(tasks):
        rows = slice(t * dim, (t + 1) * dim)
        m = torch.eye(dim, dtype=torch.float64)
        for j in range(slots):
            m += torch.outer(a_new[rows, j].double(), b_new[rows, j].double())
        torch.testing.assert_close(read[rows].double(), m @ r[rows].double(), rtol=1e-5, atol=1e-5)


def test_empty_memory_reads_r():
    r = torch.randn(8)
    _, _, read = memory_write_read(torch.zeros(8, 4), torch.zeros(8, 4), torch.zeros(8, 2), torch.randn(8, 2), r, 2)
    torch.testing.assert_close(read, r)


def test_memory_never_mixes_optimizees():
    torch.manual_seed(1)
    args = [torch.randn(12, 4), torch.randn(12, 4), torch.randn(12, 2), torch.randn(12, 2), torch.randn(12)]
    _, _, read = memory_write_read(*args, optimizees=3)
    changed = [x.clone() for x in args]
    for x in changed:
        x[8:] += 1.0  # only the third optimizee's coordinates
    _, _, read2 = memory_write_read(*changed, optimizees=3)
    torch.testing.assert_close(read[:8], read2[:8])
    assert not torch.allclose(read[8:], read2[8:])
    with pytest.raises(ValueError, match="optimizees"):
        memory_write_read(*args, optimizees=5)


def test_without_writes_it_is_the_controller_alone():
    """Write heads that write nothing (a = 0) and a zero weight on the fed-back read: the plain LSTM+GAC."""
    torch.manual_seed(2)
    ntm = CoordinatewiseLSTM(gac_cells=4, memory_slots=6, write_heads=3)
    plain = CoordinatewiseLSTM(gac_cells=4)
    with torch.no_grad():
        ntm.cells[0].weight_ih[:, -1].zero_()  # the last input is the previous read result
        plain.cells[0].weight_ih.copy_(ntm.cells[0].weight_ih[:, :-1])
        for name in ("bias_ih", "bias_hh", "weight_hh"):
            getattr(plain.cells[0], name).copy_(getattr(ntm.cells[0], name))
        plain.cells[1].load_state_dict(ntm.cells[1].state_dict())
        plain.output.load_state_dict(ntm.output.state_dict())
    assert float(ntm.write_a.weight.detach().abs().sum()) == 0  # a new network starts with an empty memory
    grads = [torch.randn(3, 7) for _ in range(5)]
    got, state = _run(ntm, grads)
    want, _ = _run(plain, grads)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
    assert float(state[2, 0, :, :6].detach().abs().max()) == 0  # nothing written
    assert float(state[2, 1, :, :6].detach().abs().max()) > 0  # b was offered; with a = 0 it adds nothing


def test_writes_change_the_updates_and_carry_over_steps():
    torch.manual_seed(3)
    net = CoordinatewiseLSTM(memory_slots=4, write_heads=2)
    with torch.no_grad():
        net.write_a.weight.normal_(0, 0.5)
    grads = [torch.randn(2, 5) for _ in range(3)]
    _, state = _run(net, grads)
    assert state.shape == (3, 2, 10, 20)
    assert float(state[2, 0, :, :4].detach().abs().min()) > 0  # both steps' writes are in the 4 slots
    update, _ = net(torch.randn(2, 5), state)
    update.square().sum().backward()
    assert net.write_a.weight.grad is not None and float(net.write_a.weight.grad.abs().sum()) > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_wrong_state_shape_names_the_fix():
    net = CoordinatewiseLSTM(memory_slots=3, write_heads=1)
    with pytest.raises(ValueError, match="init_state"):
        net(torch.randn(4), CoordinatewiseLSTM().init_state(4))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"memory_slots": -1}, "memory_slots"),
        ({"memory_slots": 20}, "hidden_size - 1"),
        ({"memory_slots": 4, "write_heads": 5}, "write_heads"),
        ({"memory_slots": 4, "write_heads": 0}, "write_heads"),
        ({"memory_slots": 2.0}, "memory_slots"),
    ],
)
def test_bad_memory_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OptimizerConfig(**kwargs)


def test_plain_checkpoints_unchanged_and_memory_stored():
    assert "memory_slots" not in OptimizerConfig().to_dict()
    assert "write_heads" not in OptimizerConfig().to_dict()
    cfg = OptimizerConfig(gac_cells=5, memory_slots=9, write_heads=3)
    assert OptimizerConfig.from_dict(cfg.to_dict()) == cfg


def test_stacked_training_refuses_appendix_networks():
    nets = [CoordinatewiseLSTM(memory_slots=3, write_heads=1), CoordinatewiseLSTM(gac_cells=2)]
    configs = [l2l.MetaTrainConfig(epochs=1)] * 2
    with pytest.raises(ValueError, match="one at a time"):
        l2l.meta_train_stack(nets, l2l.QuadraticProblem(), configs)


def test_cli_trains_and_stores_the_memory(tmp_path, capsys):
    out = tmp_path / "ntm.pt"
    tiny = ["--steps", "10", "--unroll", "5", "--tasks-per-epoch", "2", "--val-every", "1", "--val-tasks", "2"]
    flags = ["--gac-cells", "5", "--memory-slots", "6", "--write-heads", "3"]
    assert main(["train", "--problem", "quadratic", "--epochs", "1", *tiny, *flags, "--out", str(out)]) == 0
    config = read_checkpoint(out)["config"]
    assert (config["memory_slots"], config["write_heads"], config["gac_cells"]) == (6, 3, 5)
    net, _ = l2l.load_optimizer(out)
    assert net.config.memory_slots == 6 and hasattr(net, "write_a")
    capsys.readouterr()
    assert main(["train", "--problem", "quadratic", "--memory-slots", "4", "--write-heads", "5", "--epochs", "1"]) == 2
    assert "write_heads=5" in capsys.readouterr().err


def test_learned_optimizer_runs_an_ntm_network_on_a_model():
    """As a torch.optim.Optimizer the whole model is one optimizee: its state keeps the memory's row per coordinate."""
    torch.manual_seed(4)
    net = CoordinatewiseLSTM(gac_cells=3, memory_slots=4, write_heads=2)
    with torch.no_grad():
        net.write_a.weight.normal_(0, 0.5)
    model = torch.nn.Linear(3, 2)
    opt = l2l.LearnedOptimizer(model.parameters(), net)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 3)).square().sum().backward()
        opt.step()
    assert opt.state[model.weight]["lstm"].shape == (3, 2, 6, 20)  # layers + memory, 2, coordinates, hidden
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
