"""Building blocks of the experiment notebooks: tuned baselines, held-out comparisons, plain PyTorch loops,
the optimizer's inputs and the distance between their distributions."""

from __future__ import annotations

import math
import typing

import numpy as np
import pytest
import torch
from test_optimizees import synthetic_data
from torch.nn import functional as F

import l2l_helpers as l2l
from l2l_helpers import experiments as ex
from l2l_helpers import widgets
from l2l_helpers.optimizees import MNISTProblem


def result(name: str, finals: list[float], lr: float | None = None) -> l2l.EvalResult:
    """An EvalResult whose curves start at 1 and end at ``finals``."""
    final = torch.tensor(finals)
    return l2l.EvalResult(name, torch.stack([torch.ones_like(final), final], 1), lr)


def test_beats_compares_mean_final_losses():
    """LSTM wins only if it is strictly below every other; diverged (inf/NaN) runs always lose."""
    results = {"LSTM": result("LSTM", [0.1, 0.3]), "Adam": result("Adam", [0.2, 0.4]), "SGD": result("SGD", [0.1])}
    holds, text = ex.beats(results, "LSTM", ["Adam"])
    assert holds and text == "LSTM 0.2 vs Adam 0.3"
    assert not ex.beats(results)[0]  # SGD has the same mean 0.1 < 0.2
    assert ex.beats({"LSTM": result("LSTM", [1.0]), "NAG": result("NAG", [math.nan])})[0]
    assert not ex.beats({"LSTM": result("LSTM", [math.inf]), "NAG": result("NAG", [1e9])})[0]
    with pytest.raises(ValueError, match="learned='RNN'"):
        ex.beats(results, "RNN")


def test_comparison_markdown_sorted_by_final_loss():
    """Best first; a learned optimizer has no learning rate."""
    table = ex.comparison_markdown({"Adam": result("Adam", [0.5], 0.01), "LSTM": result("LSTM", [0.25])})
    rows = table.splitlines()[2:]
    assert rows[0].startswith("| LSTM | learned | 0.25") and rows[1].startswith("| Adam | 0.01 | 0.5")


def test_tuning_and_held_out_comparison_use_the_right_tasks():
    """Baselines are tuned on training tasks and everyone is tested on the same held-out tasks."""
    problem = l2l.QuadraticProblem()
    tuned = ex.tune_baselines(problem, ("SGD", "Adam"), grid=(1e-3, 1e-2, 1e-1), n_tasks=3, steps=20, progress=False)
    assert set(tuned) == {"SGD", "Adam"}
    for t in tuned.values():
        assert t.best_lr == min(t.scores, key=t.scores.get)
    train_scores = l2l.evaluate(l2l.make_baseline("SGD", 1e-2), problem, 3, 20, split="train").mean_final
    assert tuned["SGD"].scores[1e-2] == pytest.approx(train_scores)
    results = ex.held_out_comparison(problem, {"LSTM": l2l.CoordinatewiseLSTM()}, tuned, 4, 20, progress=False)
    assert list(results) == ["LSTM", "SGD", "Adam"]
    starts = [r.losses[:, 0] for r in results.values()]
    assert all(torch.equal(s, starts[0]) for s in starts)  # same tasks for everyone
    test_start = l2l.evaluate(l2l.make_baseline("SGD", 1.0), problem, 4, 1, split="test").losses[:, 0]
    assert torch.equal(starts[0], test_start)
    assert results["Adam"].lr == tuned["Adam"].best_lr
    with pytest.raises(ValueError, match="names is empty"):
        ex.tune_baselines(problem, ())


def test_recipe_and_optimizer_for():
    """The shipped quadratic optimizer loads as stored; retraining rebuilds it from the stored recipe."""
    recipe = ex.recipe_of("quadratic")
    stored = l2l.read_checkpoint(l2l.pretrained.pretrained_path("quadratic"))
    assert recipe.optimizer.to_dict() == stored["config"]
    assert recipe.training.epochs == stored["training"]["config"]["epochs"]
    assert recipe.command.startswith("python -m l2l_helpers train --problem quadratic")
    assert isinstance(recipe.problem(), l2l.QuadraticProblem)
    net, source = ex.optimizer_for("quadratic")
    shipped = l2l.load_pretrained("quadratic")
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), shipped.state_dict().values(), strict=True))
    assert "shipped" in source and recipe.command in source
    fresh, source = ex.optimizer_for("quadratic", retrain=True, epochs=1, progress=False)
    assert "retrained here" in source and "1 epochs" in source
    assert fresh.config == shipped.config
    assert not torch.equal(fresh.output.weight, shipped.output.weight)
    with pytest.raises(ValueError, match="no pretrained optimizer named 'nope'"):
        ex.optimizer_for("nope")
    with pytest.raises(ValueError, match="epochs"):
        ex.optimizer_for("quadratic", retrain=True, epochs=0)


def test_optimizer_for_retrains_on_the_given_problem():
    """``problem=`` replaces the recipe's problem family when retraining (notebook 09: other features)."""

    class Spy(l2l.QuadraticProblem):
        splits: typing.ClassVar[list[str]] = []

        def tasks(self, split, indices, device="cpu"):
            self.splits.append(split)
            return super().tasks(split, indices, device)

    spy = Spy(scale=10.0)
    ex.optimizer_for("quadratic", retrain=True, epochs=1, progress=False, problem=spy)
    assert "train" in spy.splits


def test_retrained_optimizer_is_shared_within_a_run(tmp_path, monkeypatch):
    """Under the runner (L2L_RETRAIN_DIR set) the first notebook retrains, the next ones load its result."""
    monkeypatch.setenv(ex.RETRAIN_DIR_ENV, str(tmp_path))
    first, source = ex.optimizer_for("quadratic", retrain=True, epochs=2, progress=False)
    assert "retrained here" in source
    (path,) = tmp_path.glob("quadratic-*.pt")
    again, source = ex.optimizer_for("quadratic", retrain=True, epochs=2, progress=False)
    assert "retrained earlier in this run" in source and str(path) in source
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True))
    _, source = ex.optimizer_for("quadratic", retrain=True, epochs=3, progress=False)  # another recipe
    assert "retrained here" in source and len(list(tmp_path.glob("quadratic-*.pt"))) == 2
    monkeypatch.delenv(ex.RETRAIN_DIR_ENV)
    recipe = ex.recipe_of("quadratic")
    assert ex.retrain_path("quadratic", recipe.optimizer, recipe.training, l2l.QuadraticProblem()) is None


def test_interrupted_retraining_continues_in_the_next_notebook(tmp_path, monkeypatch):
    """A retraining interrupted in one notebook (Ctrl-C) is resumed, not restarted, by the next one."""
    monkeypatch.setenv(ex.RETRAIN_DIR_ENV, str(tmp_path))

    def stop(record, result):
        raise KeyboardInterrupt

    ex.optimizer_for("quadratic", retrain=True, epochs=3, progress=False, callback=stop)
    (path,) = tmp_path.glob("quadratic-*.pt")
    assert l2l.read_checkpoint(path)["training"]["epoch"] == 1  # the finished epoch is kept
    _, source = ex.optimizer_for("quadratic", retrain=True, epochs=3, progress=False)
    assert "retrained here" in source and l2l.read_checkpoint(path)["training"]["epoch"] == 3


def test_tune_near_searches_around_each_best_rate_on_training_tasks():
    """Each baseline gets its own grid, best_lr x factors, scored on training tasks like tune_baselines."""
    problem = l2l.QuadraticProblem()
    tuned = ex.tune_baselines(problem, ("SGD", "Adam"), grid=(1e-2, 1e-1), n_tasks=2, steps=10, progress=False)
    near = ex.tune_near(problem, tuned, factors=(0.5, 1.0, 2.0), n_tasks=2, steps=10, progress=False)
    for name, t in near.items():
        grid = [tuned[name].best_lr * f for f in (0.5, 1.0, 2.0)]
        assert all(any(r == pytest.approx(g) for r in t.scores) for g in grid)  # (+ steps past an edge best)
        assert t.scores[tuned[name].best_lr] == pytest.approx(tuned[name].scores[tuned[name].best_lr])
        assert t.best_lr == min(t.scores, key=t.scores.get)
    with pytest.raises(ValueError, match="factors"):
        ex.tune_near(problem, tuned, factors=(0.0, 1.0))
    with pytest.raises(ValueError, match="tuned is empty"):
        ex.tune_near(problem, {})


def test_mlp_model_is_pytorch_default():
    """Layer sizes follow ``hidden``; weights are within nn.Linear's default bound 1/sqrt(fan_in)."""
    torch.manual_seed(0)
    model = ex.mlp_model((30, 7), "relu")
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 30), (30, 7), (7, 10)]
    assert isinstance(model[1], torch.nn.ReLU) and len(model) == 5
    assert linears[0].weight.abs().max() <= 1 / math.sqrt(784)
    with pytest.raises(ValueError, match="activation='gelu'"):
        ex.mlp_model((20,), "gelu")


def test_torch_training_curve_records_minibatch_losses():
    """Loss t is the cross-entropy on minibatch t before step t; with lr 0 nothing changes between batches."""
    data = synthetic_data()
    torch.manual_seed(0)
    model = ex.mlp_model((5,))
    curve = ex.torch_training_curve(
        model, torch.optim.SGD(model.parameters(), lr=0.0), data.train_images, data.train_labels, 3, 16, seed=4
    )
    gen = torch.Generator().manual_seed(4)
    expected = []
    for _ in range(4):
        idx = torch.randint(0, len(data.train_labels), (16,), generator=gen)
        expected.append(float(F.cross_entropy(model(data.train_images[idx]), data.train_labels[idx]).detach()))
    np.testing.assert_allclose(curve, expected, rtol=1e-6)
    with pytest.raises(ValueError, match="steps"):
        sgd = torch.optim.SGD(model.parameters(), lr=0.1)
        ex.torch_training_curve(model, sgd, data.train_images, data.train_labels, 0)


def test_sequential_comparison_tunes_adam_then_tests_on_held_out_models():
    """Adam's lr is the argmin of its training scores; both optimizers run on the same held-out models."""
    problem = MNISTProblem(hidden=(6,), batch_size=8, data=synthetic_data())
    out = ex.sequential_comparison(
        l2l.CoordinatewiseLSTM(), problem, grid=(1e-3, 1e-1), n_tune=2, n_models=3, steps=4, progress=False
    )
    assert out["adam_lr"] == min(out["adam_scores"], key=out["adam_scores"].get)
    assert set(out["curves"]) == {"LSTM", "Adam"}
    lstm, adam = out["curves"]["LSTM"], out["curves"]["Adam"]
    assert lstm.shape == adam.shape == (3, 5)
    np.testing.assert_allclose(lstm[:, 0], adam[:, 0])  # same initial models, same first batches
    results = ex.as_eval_results(out["curves"], {"Adam": out["adam_lr"]})
    assert results["Adam"].lr == out["adam_lr"] and results["LSTM"].lr is None
    torch.testing.assert_close(results["LSTM"].losses, torch.as_tensor(lstm, dtype=torch.float32))


def test_optimizer_inputs_are_the_preprocessed_gradients():
    """Sampled at steps 0, every, ...; the channels are exactly the preprocessing of the sampled gradients."""
    problem = MNISTProblem(hidden=(4,), batch_size=8, data=synthetic_data())
    inputs = ex.optimizer_inputs(l2l.CoordinatewiseLSTM(), problem, n_tasks=2, steps=7, every=3, max_per_step=50)
    assert sorted(set(inputs["step"].tolist())) == [0, 3, 6]
    assert all(len(v) == 150 for v in inputs.values())
    x = l2l.preprocess(torch.as_tensor(inputs["grad"]), "log_sign", 10.0).numpy()
    np.testing.assert_allclose(inputs["log_channel"], x[:, 0])
    np.testing.assert_allclose(inputs["second_channel"], x[:, 1])
    stats = ex.input_statistics({"grad": np.array([0.0, 1e-6, 0.1, 1.0])}, p=10.0)
    assert stats["zero_fraction"] == 0.25 and stats["below_threshold_fraction"] == 0.5
    assert stats["median_log10"] == pytest.approx(-1.0)


def test_ks_distance():
    """0 for equal samples, 1 for separated ones, the largest CDF gap otherwise."""
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert ex.ks_distance(a, a) == 0.0
    assert ex.ks_distance(a, a + 10) == 1.0
    assert ex.ks_distance(a, np.array([3.5, 4.5])) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="non-empty"):
        ex.ks_distance(a, np.array([]))


def test_lstm_vs_adam_and_the_optimizee_panel():
    """The panel's function compares the learned optimizer with Adam tuned on the given grid."""
    net = l2l.CoordinatewiseLSTM()
    results = ex.lstm_vs_adam(net, (5,), "relu", n_tasks=1, steps=3, grid=(0.01,))
    assert list(results) == ["LSTM", "Adam"] and results["Adam"].lr == 0.01
    assert results["LSTM"].losses.shape == (1, 4)
    panel = widgets.optimizee_panel(net, hidden=5, activation="tanh", n_tasks=1)
    assert panel.values() == {"hidden": 5, "layers": 1, "activation": "tanh"}


def test_scale_ablation_trains_one_optimizer_per_kind_and_seed():
    """Rows are seeds, columns scales; a seed is reproducible, different seeds give different optimizers."""
    config = l2l.MetaTrainConfig(epochs=2, tasks_per_epoch=2, steps=10, unroll=5, val_every=0)
    kwargs = {"config": config, "scales": [0.1, 1.0], "eval_tasks": 3, "steps": 10, "progress": False}
    out = ex.scale_ablation(["log_sign", "none"], [0, 1], **kwargs)
    assert set(out) == {"log_sign", "none"} and out["none"].shape == (2, 2)
    assert np.isfinite(out["log_sign"]).all()
    assert not np.allclose(out["log_sign"][0], out["log_sign"][1])
    again = ex.scale_ablation(["log_sign"], [1], **kwargs)
    np.testing.assert_allclose(again["log_sign"][0], out["log_sign"][1], rtol=1e-6)
    with pytest.raises(ValueError, match="seeds"):
        ex.scale_ablation(["none"], [], **kwargs)
    with pytest.raises(ValueError, match="scales"):
        ex.scale_ablation(["none"], [0], **{**kwargs, "scales": [0.0]})


def test_scale_ablation_refuses_bad_kinds_before_training(monkeypatch):
    """An empty or unknown preprocessing kind is a ValueError naming it, raised before any meta-training."""
    monkeypatch.setattr(ex, "meta_train", lambda *a, **k: pytest.fail("trained before checking the kinds"))
    kwargs = {"config": l2l.MetaTrainConfig(epochs=1), "scales": [1.0], "eval_tasks": 1, "progress": False}
    with pytest.raises(ValueError, match="kinds"):
        ex.scale_ablation([], [0], **kwargs)
    with pytest.raises(ValueError, match="'log'"):
        ex.scale_ablation(["none", "log"], [0], **kwargs)
