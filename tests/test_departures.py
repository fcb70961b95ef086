"""Paper vs this run: the rows come from the stored recipe and the problem, and a departure is marked."""

from __future__ import annotations

import pytest

import l2l_helpers as l2l


def test_quadratic_recipes_against_the_paper():
    """The shipped recipe departs in its input and output scale; the paper-faithful one does not."""
    shipped = {r.name: r for r in l2l.recipe_rows("quadratic")}
    faithful = {r.name: r for r in l2l.recipe_rows("quadratic_paper")}
    assert shipped["preprocessing"].departs and shipped["preprocessing"].ours == "log_sign, p = 10"
    assert shipped["output scale"].departs and not faithful["output scale"].departs
    assert not faithful["preprocessing"].departs and faithful["preprocessing"].ours == "none"
    assert not shipped["w_t (weights of the losses)"].departs  # the shipped quadratic keeps w_t = 1
    assert shipped["meta-training length"].departs and shipped["meta-training length"].ours == "400 trajectories"
    assert not shipped["initial theta"].departs


def test_appendix_rows_only_where_used():
    """GAC and NTM-BFGS networks get a row each (the limited memory departs); plain networks get none."""
    plain = [r.name for r in l2l.paper_vs_run("quadratic", l2l.OptimizerConfig(), None, l2l.QuadraticProblem())]
    assert not [n for n in plain if "Appendix" in n]
    config = l2l.OptimizerConfig(gac_cells=5, memory_slots=18, write_heads=3)
    rows = {r.name: r for r in l2l.paper_vs_run("quadratic", config, None, l2l.QuadraticProblem())}
    gac, memory = rows["Global Averaging Cells (Appendix)"], rows["NTM-BFGS memory (Appendix)"]
    assert gac.ours == "5 of 20 cells per layer" and not gac.departs
    assert memory.departs and "last 18 rank-one writes" in memory.ours and "3 per step" in memory.ours


def test_rows_follow_the_settings_they_are_given():
    """Change one setting and exactly that row changes; a scaled problem departs from the paper's family."""
    opt = l2l.OptimizerConfig(preprocessing="log_sign", output_scale=0.01)
    paper_like = l2l.MetaTrainConfig(epochs=10_000, tasks_per_epoch=1, lr=0.001, select="final")
    rows = l2l.paper_vs_run("mnist", opt, paper_like, l2l.MNISTProblem(data=_tiny_data()))
    departing = [r.name for r in rows if r.departs]
    assert departing == ["data"], departing
    linear = l2l.MetaTrainConfig(**{**paper_like.__dict__, "weights": "linear"})
    assert [
        r.name for r in l2l.paper_vs_run("mnist", opt, linear, l2l.MNISTProblem(data=_tiny_data())) if r.departs
    ] == [
        "w_t (weights of the losses)",
        "data",
    ]
    scaled = l2l.paper_vs_run(
        "quadratic", l2l.OptimizerConfig(preprocessing="none", output_scale=1.0), None, l2l.QuadraticProblem(scale=10.0)
    )
    assert [r.name for r in scaled if r.departs] == ["functions"]
    with pytest.raises(ValueError, match="no paper values"):
        l2l.paper_vs_run("cifar", opt, None, l2l.QuadraticProblem())


def test_neural_art_rows_name_the_feature_network_photos_and_horizon():
    """Section 3.4 against the shipped neural-art recipe: random features instead of VGG-19, scikit-image crops
    instead of ImageNet images and 100 steps instead of 128 depart; the resolution follows the problem given."""
    rows = {r.name: r for r in l2l.recipe_rows("neural_art")}
    assert rows["feature network"].departs and "random" in rows["feature network"].ours
    assert rows["content images"].departs and "chelsea" in rows["content images"].ours
    assert rows["horizon T, unroll"].departs and rows["horizon T, unroll"].paper.startswith("128 steps")
    assert not rows["resolution"].departs and "style 1e+06" in rows["loss weights"].ours
    odd = {r.name: r for r in l2l.recipe_rows("neural_art", problem=l2l.NeuralArtProblem(size=48, style="shipwreck"))}
    assert odd["resolution"].departs and odd["styles"].ours == "shipwreck here"


def test_markdown_marks_departures_and_escapes_pipes():
    rows = l2l.recipe_rows("quadratic")
    text = l2l.departures_markdown(rows, "recipe")
    assert text.startswith("**recipe**") and "\\|\\|W theta - y\\|\\|" in text
    n = sum(r.departs for r in rows)
    assert f"{n} of {len(rows)} settings depart" in text and text.count("| departs |") == n
    assert len(l2l.departures_list(rows)) == n and all("(paper: " in line for line in l2l.departures_list(rows))


def _tiny_data() -> l2l.MNISTData:
    import torch

    images, labels = torch.rand(8, 784), torch.arange(8) % 10
    return l2l.MNISTData(images, labels, images, labels, "offline-sample")
