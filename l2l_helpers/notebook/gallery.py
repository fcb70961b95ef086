"""Pictures of a run: styled images after given numbers of steps and one row of the paper's Figure 8 (notebook 09), one
image per class of a dataset (notebook 10)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from l2l_helpers.evaluation.loops import optimize
from l2l_helpers.optimizees import Problem
from l2l_helpers.runtime import check_positive_int


def image_gallery(
    rules: Mapping[str, Any],
    problem: Problem,
    at_steps: Sequence[int],
    task: int = 0,
    device: torch.device | str = "cpu",
    split: str = "dev",
) -> dict[str, torch.Tensor]:
    """Held-out image ``task`` after each of ``at_steps`` steps of each optimizer (neural art, notebook 09).

    Returns ``{"<name>, step <t>, style <r>": image (3, H, W)}`` in the order optimizer by optimizer, where r is the
    image's style loss relative to the photo's own (``NeuralArtTasks.style_ratio``: 100% is the photo untouched, a
    few per cent an image that carries the painting), so that each picture has its number beside it.
    """
    if not at_steps or min(at_steps) < 0:
        raise ValueError(f"at_steps={list(at_steps)!r} must be a non-empty list of step counts >= 0")
    tasks = problem.tasks(split, [task], device)
    out = {}
    for name, rule in rules.items():
        for t, (ratio, image) in _styled_images(rule, tasks, at_steps).items():
            out[f"{name}, step {t}, style {ratio:.1%}"] = image
    return out


def _styled_images(rule: Any, tasks: Any, at_steps: Sequence[int]) -> dict[int, tuple[float, torch.Tensor]]:
    """``{t: (style ratio, image (3, H, W))}`` of the one-image batch ``tasks`` after each of ``at_steps`` steps of
    ``rule``: one run to the last of them, keeping only those iterates (:func:`image_gallery`, :func:`figure8_row`)."""
    wanted, out = set(at_steps), {}

    def keep(t: int, theta: torch.Tensor, grad: torch.Tensor | None) -> None:
        if t in wanted:
            out[t] = (float(tasks.style_ratio(theta)[0]), tasks.images(theta)[0].clamp(0, 1).cpu())

    optimize(rule, tasks, max(at_steps), keep)
    return {t: out[t] for t in at_steps}


def figure8_row(
    rules: Mapping[str, Any],
    problem: Problem,
    steps: int,
    task: int = 0,
    device: torch.device | str = "cpu",
    reference: tuple[str, Any, int] | None = None,
    split: str = "dev",
) -> list[tuple[str, torch.Tensor]]:
    """One row of Figure 8 (notebook 09): held-out photo ``task`` | the painting | each optimizer's image after
    ``steps`` steps, every result captioned "name: style r" with its style ratio (``NeuralArtTasks.style_ratio``:
    100% is the photo untouched). ``reference`` = (name, rule, steps) adds a last picture run longer, captioned with
    its step count, e.g. Adam for 300 steps: what a well-styled image of this problem looks like.

    Returns ``[(caption, image (3, H, W)), ...]`` for :func:`~l2l_helpers.notebook.plotting.plot_images`.
    """
    check_positive_int("steps", steps)
    tasks = problem.tasks(split, [task], device)
    row = [("photo (held out)", tasks.content[0].cpu()), (f"style: {problem.style}", problem.style_image())]
    runs = [(name, rule, steps) for name, rule in rules.items()]
    if reference is not None:
        name, rule, longer = reference
        check_positive_int("reference steps", longer)
        runs.append((f"{name}, {longer} steps", rule, longer))
    for name, rule, n_steps in runs:
        ratio, image = _styled_images(rule, tasks, [n_steps])[n_steps]
        row.append((f"{name}: style {ratio:.1%}", image))
    return row


def class_samples(data: Any, per_class: int = 1, split: str = "test") -> dict[str, torch.Tensor]:
    """The first ``per_class`` images of every class of ``data`` (an
    :class:`~l2l_helpers.optimizees.datasets.ImageData`) as RGB
    tensors (3, H, W), named "label k: class", for :func:`~l2l_helpers.notebook.plotting.plot_images` (notebook 10)."""
    check_positive_int("per_class", per_class)
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} must be 'train' or 'test'")
    images, labels = (data.test_images, data.test_labels) if split == "test" else (data.train_images, data.train_labels)
    out = {}
    for k, name in enumerate(data.classes):
        for j, i in enumerate(torch.nonzero(labels == k).flatten()[:per_class].tolist()):
            image = images[i]
            out[f"{k}: {name}" + (f" ({j + 1})" if per_class > 1 else "")] = image.expand(3, -1, -1)
    return out
