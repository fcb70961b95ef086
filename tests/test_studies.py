"""The experiments' helpers (evaluation.inputs, notebook.tables, meta.quick, ...) at tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_optimizees import synthetic_data

import l2l_helpers as l2l
from l2l_helpers.meta import quick
from l2l_helpers.notebook.plotting import figure_data
from l2l_helpers.optimizees import MNISTProblem


def test_optimizer_inputs_are_the_preprocessed_gradients():
    """Sampled at steps 0, every, ...; the channels are exactly the preprocessing of the sampled gradients."""
    problem = MNISTProblem(hidden=(4,), batch_size=8, data=synthetic_data())
    inputs = l2l.optimizer_inputs(l2l.CoordinatewiseLSTM(), problem, n_tasks=2, steps=7, every=3, max_per_step=50)
    assert sorted(set(inputs["step"].tolist())) == [0, 3, 6]
    assert all(len(v) == 150 for v in inputs.values())
    x = l2l.preprocess(torch.as_tensor(inputs["grad"]), "log_sign", 10.0).numpy()
    np.testing.assert_allclose(inputs["log_channel"], x[:, 0])
    np.testing.assert_allclose(inputs["second_channel"], x[:, 1])
    stats = l2l.input_statistics({"grad": np.array([0.0, 1e-6, 0.1, 1.0])}, p=10.0)
    assert stats["zero_fraction"] == 0.25 and stats["below_threshold_fraction"] == 0.5
    assert stats["median_log10"] == pytest.approx(-1.0)


def test_horizon_markdown_finds_the_lowest_step():
    """Window 1 (no smoothing): losses that fall to step 2 and rise after, lowest at step 2, last / lowest = 4 / 1;
    a short run's cells blank."""
    long = l2l.EvalResult("L", torch.tensor([[8.0, 2.0, 1.0, 4.0], [8.0, 2.0, 1.0, 4.0]]))
    short = l2l.EvalResult("B", torch.tensor([[8.0, 4.0]]))
    table = l2l.horizon_markdown({"L": long, "B": short}, [1, 3], window=1)
    rows = table.splitlines()
    assert rows[0] == "| optimizer | step 1 | step 3 | lowest at step | last / lowest |"
    assert rows[2] == "| L | 2 | 4 | 2 | 4.00 |"
    assert rows[3] == "| B | 4 |  | 1 | 1.00 |"
    with pytest.raises(ValueError, match="results is empty"):
        l2l.horizon_markdown({}, [1])


def test_window_mean_by_hand():
    """The mean over tasks, then over the window's steps up to the step (fewer at the start)."""
    res = l2l.EvalResult("L", torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0], [3.0, 4.0, 5.0, 6.0, 7.0]]))  # means 2..6
    assert l2l.window_mean(res, 4, window=2) == pytest.approx((5 + 6) / 2)
    assert l2l.window_mean(res, 1, window=50) == pytest.approx((2 + 3) / 2)
    assert l2l.window_mean(res, 0, window=1) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="outside"):
        l2l.window_mean(res, 5)
    with pytest.raises(ValueError, match="window"):
        l2l.window_mean(res, 1, window=0)


def test_ks_distance():
    """0 for equal samples, 1 for separated ones, the largest CDF gap otherwise."""
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert l2l.ks_distance(a, a) == 0.0
    assert l2l.ks_distance(a, a + 10) == 1.0
    assert l2l.ks_distance(a, np.array([3.5, 4.5])) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="non-empty"):
        l2l.ks_distance(a, np.array([]))


def test_scale_ablation_trains_one_optimizer_per_kind_and_seed():
    """Rows are seeds, columns scales; a seed is reproducible and sets the training tasks too; Adam is an arm,
    the same for every seed, and invariant to the factor on f (an oracle: its update ignores the scale of g)."""
    config = l2l.MetaTrainConfig(epochs=2, tasks_per_epoch=2, steps=10, unroll=5, val_every=0, lr=0.03)
    kwargs = {"config": config, "scales": [0.1, 1.0, 10.0], "eval_tasks": 3, "steps": 10, "progress": False}
    out = l2l.scale_ablation(["log_sign", "none", "rescale"], [0, 1], tune_tasks=2, **kwargs)
    final = out.final()
    assert out.arms == ["log_sign", "none", "rescale", "Adam"] and final["none"].shape == (2, 3)
    assert np.isfinite(final["log_sign"]).all() and out.adam_lr in l2l.DEFAULT_LR_GRID
    assert not np.allclose(final["log_sign"][0], final["log_sign"][1])
    np.testing.assert_allclose(final["Adam"][0], final["Adam"][0][1], rtol=1e-4)  # loss / s the same at every s
    assert out.at(10.0)[0]["Adam"] is out.at(10.0)[1]["Adam"]
    again = l2l.scale_ablation(["log_sign"], [1], adam=False, **kwargs)
    np.testing.assert_allclose(again.final()["log_sign"][0], final["log_sign"][1], rtol=1e-6)
    assert again.arms == ["log_sign"] and "Adam" not in again.at(1.0)[0]
    # seed 1's run is meta_train from phi seeded 1 on the training tasks of seed 1 (not seed 0's tasks)
    for task_seed, same in ((1, True), (0, False)):
        torch.manual_seed(1)
        net = l2l.CoordinatewiseLSTM()
        l2l.meta_train(net, l2l.QuadraticProblem(), l2l.MetaTrainConfig(**{**config.__dict__, "seed": task_seed}))
        alone = l2l.evaluate(l2l.LearnedRule(net), l2l.QuadraticProblem(), 3, 10).mean_final
        assert bool(alone == pytest.approx(final["log_sign"][1][1], rel=1e-5)) is same
    with pytest.raises(ValueError, match="was not evaluated"):
        out.at(3.0)
    off = out.off_scale("log_sign", "none")  # every scale but 1, all seeds
    parts = out.compare("log_sign", "none")
    assert off["ours"].startswith("s=0.1: ") and "s=1:" not in off["ours"] and off["seeds"] == 2
    assert off["verdict"] == l2l.combined([parts[0]["verdict"], parts[2]["verdict"]])
    with pytest.raises(ValueError, match="no factor other than 1"):
        l2l.ScaleAblation(["log_sign"], [0], [1.0], [[{}]], None).off_scale("log_sign", "log_sign")
    with pytest.raises(ValueError, match="seeds"):
        l2l.scale_ablation(["none"], [], **kwargs)
    with pytest.raises(ValueError, match="scales"):
        l2l.scale_ablation(["none"], [0], **{**kwargs, "scales": [0.0]})


def test_rescale_preprocessing_divides_by_the_constant():
    """The paper's simple alternative: one constant for every coordinate, one input."""
    grad = torch.tensor([-3.0, 0.0, 2e-6, 50.0])
    x = l2l.preprocess(grad, "rescale", 10.0)
    assert x.shape == (4, 1)
    torch.testing.assert_close(x[:, 0], grad / 10.0)
    assert l2l.CoordinatewiseLSTM(preprocessing="rescale").config.input_size == 1


def test_scale_ablation_refuses_bad_kinds_before_training(monkeypatch):
    """An empty or unknown preprocessing kind is a ValueError naming it, raised before any meta-training."""
    monkeypatch.setattr(quick, "meta_train_stack", lambda *a, **k: pytest.fail("trained before checking"))
    kwargs = {"config": l2l.MetaTrainConfig(epochs=1), "scales": [1.0], "eval_tasks": 1, "progress": False}
    with pytest.raises(ValueError, match="kinds"):
        l2l.scale_ablation([], [0], **kwargs)
    with pytest.raises(ValueError, match="'log'"):
        l2l.scale_ablation(["none", "log"], [0], **kwargs)


def test_architecture_summary_counts():
    """Parameter counts follow the LSTM formula and do not depend on the number of coordinates."""
    s = l2l.architecture_summary(2, 20, "log_sign", n_coords=100)
    lstm = 4 * 20 * (2 + 20) + 8 * 20 + 4 * 20 * (20 + 20) + 8 * 20
    assert s["parameters"] == lstm + 21
    assert s["parameters"] == l2l.architecture_summary(2, 20, "log_sign", n_coords=10**6)["parameters"]
    assert s["state_per_coordinate"] == 80 and s["state_floats"] == 8000
    assert s["updates"].shape == s["grads"].shape == (10,)


def test_trajectories_2d_follow_the_rules():
    """SGD's path is theta_{t+1} = theta_t - lr grad; every path has steps + 1 points."""
    tasks = l2l.QuadraticProblem(dim=2).tasks("dev", [0])
    runs = l2l.trajectories_2d(tasks, ("SGD", "LSTM"), 0.01, 5, {"LSTM": l2l.CoordinatewiseLSTM()})
    path, losses = runs["SGD"]
    assert path.shape == (6, 2) and losses.shape == (6,)
    theta = torch.tensor(path[0]).unsqueeze(0).requires_grad_(True)
    grad = torch.autograd.grad(tasks.loss(theta).sum(), theta)[0][0]
    np.testing.assert_allclose(path[1], path[0] - 0.01 * grad.numpy(), rtol=1e-5)
    own = l2l.trajectories_2d(tasks, ("SGD", "Adam"), {"SGD": 0.01, "Adam": 0.1}, 5, {})
    np.testing.assert_allclose(own["SGD"][0], path, rtol=1e-6)  # SGD at its own rate: the same path
    with pytest.raises(ValueError, match="no learning rate for 'NAG'"):
        l2l.trajectories_2d(tasks, ("NAG",), {"SGD": 0.01}, 5, {})
    xs, ys, z = l2l.optimizees.landscape(tasks, [p for p, _ in runs.values()])
    assert z.shape == (len(ys), len(xs)) and np.isfinite(z).all()
    with pytest.raises(ValueError, match="2-d"):
        l2l.optimizees.landscape(l2l.QuadraticProblem().tasks("dev", [0]), [])


@pytest.mark.slow
def test_quick_meta_training_beats_the_untrained_optimizer():
    """The panel's default short meta-training (notebooks 02 and 04) lowers the held-out final loss."""
    run = l2l.quick_meta_training()
    untrained, trained = run.curves["untrained LSTM"], run.curves["LSTM"]
    assert trained.mean_final < 0.2 * untrained.mean_final
    assert torch.equal(untrained.losses[:, 0], trained.losses[:, 0]), "both start from the same held-out tasks"


def test_quick_meta_training_shapes_and_callback():
    """One record (and one callback) per epoch; every curve has eval_tasks rows and steps + 1 columns."""
    seen = []
    run = l2l.quick_meta_training(
        1, 4, "none", 0.5, 2, 2, 3, steps=10, adam_lr=0.1, callback=lambda record, _result: seen.append(record)
    )
    assert [r["epoch"] for r in seen] == [1, 2] == [h["epoch"] for h in run.result.history]
    assert list(run.curves) == ["untrained LSTM", "LSTM", "Adam"]
    assert all(c.losses.shape == (3, 11) for c in run.curves.values())
    assert run.net.config == l2l.OptimizerConfig(1, 4, "none", output_scale=0.5)
    fig = l2l.plot.plot_quick_training(run)
    assert fig.layout.title.text.startswith("1 x 4 LSTM, none, output scale 0.5, 2 epochs")
    names = [d["name"] for d in figure_data(fig)]
    assert names == ["meta-loss", "untrained LSTM", "LSTM", "Adam (lr 0.1)"]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"num_layers": 0}, "num_layers"),
        ({"hidden_size": 2.5}, "hidden_size"),
        ({"preprocessing": "sqrt"}, "preprocessing"),
        ({"output_scale": 0.0}, "output_scale"),
        ({"epochs": 0}, "epochs"),
        ({"tasks_per_epoch": -1}, "tasks_per_epoch"),
        ({"eval_tasks": 0}, "eval_tasks"),
        ({"meta_lr": float("nan")}, "meta_lr"),
        ({"adam_lr": -0.1}, "adam_lr"),
    ],
)
def test_quick_meta_training_names_bad_values(kwargs, name):
    """A wrong setting raises ValueError naming it, before any training."""
    with pytest.raises(ValueError, match=name):
        l2l.quick_meta_training(**kwargs)


def test_image_gallery_names_each_picture_with_its_style_ratio():
    """Notebook 09's gallery: one picture per optimizer and step count, each caption with the picture's style loss
    relative to the photo's; step 0 is the photo itself (100.0%), and Adam's picture after some steps is more styled;
    negative or missing step counts are refused."""
    problem = l2l.NeuralArtProblem(size=32, style_weight=1e6)
    rules = {"Adam": l2l.make_baseline("adam", 0.02)}
    gallery = l2l.image_gallery(rules, problem, [0, 10], task=2)
    (first, image0), (second, image10) = gallery.items()
    assert first == "Adam, step 0, style 100.0%" and second.startswith("Adam, step 10, style ")
    assert float(second.rsplit(" ", 1)[1].rstrip("%")) < 100.0
    torch.testing.assert_close(image0, problem.tasks("dev", [2]).content[0])
    assert image10.shape == (3, 32, 32) and 0 <= image10.min() and image10.max() <= 1
    for bad in ([], [-1]):
        with pytest.raises(ValueError, match="at_steps"):
            l2l.image_gallery(rules, problem, bad)


def test_figure8_row_is_photo_painting_then_each_result_with_its_style_ratio():
    """Figure 8's row: the held-out photo, the painting, each optimizer after the same steps, and a longer reference
    run, every result captioned with its style ratio; the reference is the same rule run longer, so it is further
    styled; a step count below 1 is refused."""
    problem = l2l.NeuralArtProblem(size=32, style="the_scream")
    adam = l2l.make_baseline("adam", 0.02)
    row = l2l.figure8_row(
        {"Adam": adam, "SGD": l2l.make_baseline("sgd", 1.0)}, problem, 5, task=1, reference=("Adam", adam, 20)
    )
    captions = [c for c, _ in row]
    assert captions[:2] == ["photo (held out)", "style: the_scream"]
    assert captions[2].startswith("Adam: style ") and captions[3].startswith("SGD: style ")
    assert captions[4].startswith("Adam, 20 steps: style ")
    torch.testing.assert_close(row[0][1], problem.tasks("dev", [1]).content[0])
    torch.testing.assert_close(row[1][1], problem.style_image())
    ratio = [float(c.rsplit(" ", 1)[1].rstrip("%")) for c in captions[2:]]
    assert ratio[2] < ratio[0] < 100.0, captions
    alone = l2l.image_gallery({"Adam": adam}, problem, [5], task=1)
    torch.testing.assert_close(row[2][1], next(iter(alone.values())))
    assert all(image.shape == (3, 32, 32) for _, image in row)
    with pytest.raises(ValueError, match="steps"):
        l2l.figure8_row({"Adam": adam}, problem, 0)
    with pytest.raises(ValueError, match="reference steps"):
        l2l.figure8_row({"Adam": adam}, problem, 5, reference=("Adam", adam, 0))
