"""Notebook 10's pieces: class samples, the label-set comparisons, seed means, gradient scales, the ReLU+BN sentence,
the Figure 6 panels, the label panel and the paper-vs-run rows of the convnet."""

from __future__ import annotations

import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers.notebook.departures import paper_vs_run
from l2l_helpers.optimizees.conv import ConvProblem
from l2l_helpers.optimizer.grouped_lstm import GroupedConfig, GroupedLSTM
from tests.test_optimizees_conv import synthetic


def _tiny(labels=None) -> ConvProblem:
    return ConvProblem(synthetic(n=40, size=8), labels, channels=2, kernel=3, conv_layers=1, hidden=4, batch_size=4)


def _result(name: str, final: list[float]) -> l2l.EvalResult:
    losses = torch.tensor([[1.0, f] for f in final])
    return l2l.EvalResult(name, losses)


def test_class_samples_give_one_rgb_image_per_label():
    data = synthetic(n=30, size=8)
    samples = l2l.class_samples(data)
    assert list(samples) == [f"{k}: {k}" for k in range(10)]
    first = samples["3: 3"]
    assert first.shape == (3, 8, 8)
    assert torch.equal(first[0], data.test_images[(data.test_labels == 3).nonzero()[0, 0], 0])
    assert len(l2l.class_samples(data, per_class=2)) == 20
    with pytest.raises(ValueError, match="split"):
        l2l.class_samples(data, split="val")


def test_comparisons_by_condition_run_everyone_on_the_same_held_out_networks():
    """Baselines tuned per label set (whole grid on the first, around its rates on the others); the learned
    optimizers of each set run beside them on the same tasks: a baseline's curve equals running it alone."""
    torch.manual_seed(0)
    net = GroupedLSTM(GroupedConfig.same(l2l.OptimizerConfig(), ("conv", "fc")))
    problems = {"all": _tiny(), "two": _tiny([0, 1])}
    learned = {"all": {"LSTM s0": net}, "two": {"LSTM s0": net}}
    results, tuned = l2l.comparisons_by_condition(problems, learned, [0.01, 0.1], 1, 2, 4, progress=False)
    assert set(results["two"]) == {"final", "sum"}  # one comparison per metric, against baselines tuned for it
    assert set(results["two"]["final"]) == {"LSTM s0", "SGD", "NAG", "RMSprop", "Adam"}
    for key, problem in problems.items():
        for metric in ("final", "sum"):
            nag = tuned[key][metric]["NAG"]
            assert nag.criterion == metric
            alone = l2l.evaluate(l2l.make_baseline("NAG", nag.best_lr), problem, n_tasks=2, steps=4)
            torch.testing.assert_close(results[key][metric]["NAG"].losses, alone.losses)
        torch.testing.assert_close(results[key]["final"]["LSTM s0"].losses, results[key]["sum"]["LSTM s0"].losses)
    near = tuned["two"]["final"]["Adam"].scores
    assert tuned["all"]["final"]["Adam"].best_lr in near  # the subsets' search is centred on the first set's rate
    with pytest.raises(ValueError, match="no learned optimizers for"):
        l2l.comparisons_by_condition(problems, {"all": {}}, [0.1], progress=False)


def test_seed_means_stack_each_kinds_seeds():
    results = {"A s0": _result("A s0", [1.0, 3.0]), "A s1": _result("A s1", [5.0, 7.0]), "SGD": _result("SGD", [2.0])}
    out = l2l.seed_means(results, {"A": ["A s0", "A s1"]})
    assert list(out) == ["A", "SGD"] and out["A"].mean_final == pytest.approx(4.0)
    with pytest.raises(ValueError, match="not among the results"):
        l2l.seed_means(results, {"B": ["B s0"]})


def test_gradient_scales_cover_every_coordinate_of_each_group():
    problem = _tiny()
    out = l2l.group_gradient_scales(problem)
    assert sum(t["coordinates"] for t in out["table"].values()) == problem.dim
    tasks = problem.tasks("dev", [0])
    theta = tasks.init_theta().requires_grad_(True)
    (grad,) = torch.autograd.grad(tasks.loss(theta, 0).sum(), theta)
    fc = grad[0].abs()[problem.groups()["fc"]]
    assert out["table"]["fc"]["median"] == pytest.approx(float(fc.median()))
    assert "| conv |" in out["markdown"] and "fc / conv" in out["markdown"]


def test_relu_bn_sentence_reports_each_seed_against_the_best_baseline():
    results = {
        "LSTM s0": _result("LSTM s0", [1.0, 1.0]),
        "LSTM s1": _result("LSTM s1", [3.0, 3.0]),
        "one LSTM s0": _result("one LSTM s0", [0.1, 0.1]),  # another learned optimizer is no baseline
        "NAG": _result("NAG", [2.0, 2.0]),
        "Adam": _result("Adam", [4.0, 4.0]),
    }
    text = l2l.relu_bn_markdown(results, ["LSTM s0", "LSTM s1"])
    assert "0.50, 1.50 times that of the best tuned baseline, NAG (2)" in text
    assert "some seeds end below" in text
    assert "every seed ends below" in l2l.relu_bn_markdown(results, ["LSTM s0"])
    with pytest.raises(ValueError, match="at least one learned"):
        l2l.relu_bn_markdown(results, [])


def test_figure_6_panels_share_colours_and_the_legend():
    panels = {
        "all": {"LSTM": _result("LSTM", [1.0]), "NAG": _result("NAG", [2.0])},
        "two": {"LSTM": _result("LSTM", [0.5]), "NAG": _result("NAG", [0.7]), "LSTM-sub": _result("x", [0.6])},
    }
    fig = l2l.plot.plot_panels(panels, "Figure 6")
    assert len(fig.data) == 5 and [t.showlegend for t in fig.data] == [True, True, False, False, True]
    lstm = [t for t in fig.data if t.name == "LSTM"]
    assert lstm[0].line.color == lstm[1].line.color
    with pytest.raises(ValueError, match="panels is empty"):
        l2l.plot.plot_panels({})


def test_label_panel_renders_and_asks_again_for_a_subset_of_one():
    pytest.importorskip("ipywidgets")
    data = synthetic(n=40, size=8)
    torch.manual_seed(0)
    net = l2l.CoordinatewiseLSTM()
    panel = l2l.panels.label_subset_panel({"LSTM": net}, data, {"Adam": 0.01}, (0, 1), steps=3)
    # the panel's problem uses the paper's convnet on these 8x8 images: three poolings fit
    fig = panel.render(chosen=(0, 1))
    assert {t.name for t in fig.data} >= {"LSTM", "Adam (lr 0.01)"}
    assert "Pick again" in panel.render(chosen=(2,)).data


def test_conv_rows_mark_the_data_and_the_number_of_lstms():
    problem = _tiny()
    two = GroupedConfig.same(l2l.OptimizerConfig(), ("conv", "fc"))
    rows = {r.name: r for r in paper_vs_run("conv", two, None, problem)}
    assert not rows["LSTMs"].departs and rows["data"].departs  # synthetic data, not CIFAR-10
    assert rows["network"].departs  # one layer of 2 channels is not the paper's
    one = {r.name: r for r in paper_vs_run("conv", l2l.OptimizerConfig(), None, problem)}
    assert one["LSTMs"].departs and one["LSTMs"].ours == "one LSTM for every parameter"
    paper_net = ConvProblem(synthetic(n=40, size=28))
    assert not {r.name: r for r in paper_vs_run("conv", two, None, paper_net)}["network"].departs
