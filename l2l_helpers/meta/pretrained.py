"""Trained optimizer networks shipped with the project, and their recipes (produced by ``l2l train``; notebooks 05-09).

:func:`load_pretrained` gives a shipped network; :func:`recipe_of` the settings it was meta-trained with;
:func:`optimizer_for` / :func:`optimizers_for` load one or every seed with a line saying where it came from (loading
never trains); :func:`retrained_optimizer` / :func:`retrained_optimizers` meta-train them here from scratch with their
recipes (a notebook's ``RETRAIN``), shared between the notebooks of one ``make run``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from l2l_helpers import settings
from l2l_helpers.meta.checkpoints import load_optimizer, read_checkpoint
from l2l_helpers.meta.config import MetaTrainConfig
from l2l_helpers.meta.meta_training import meta_train
from l2l_helpers.meta.training_state import MetaTrainResult
from l2l_helpers.optimizees.base import Problem, make_problem
from l2l_helpers.optimizer.grouped_lstm import AnyConfig, GroupedConfig, OptimizerNet, build_optimizer, config_from_dict
from l2l_helpers.runtime import check_positive_int


def available_pretrained() -> list[str]:
    """Names accepted by :func:`load_pretrained`."""
    return sorted(p.stem for p in settings.PRETRAINED_DIR.glob("*.pt"))


def seed_names(name: str) -> list[str]:
    """The shipped meta-training seeds of ``name``: ``name`` itself, then ``name_seed1``, ``name_seed2``, ...

    Each is an independently meta-trained optimizer (its own initial phi and its own training tasks, both
    from ``--seed``), made by the same command with another seed. ``ValueError`` if ``name`` is not shipped.
    """
    pretrained_path(name)
    names, k = [name], 1
    while (settings.PRETRAINED_DIR / f"{name}_seed{k}.pt").is_file():
        names.append(f"{name}_seed{k}")
        k += 1
    return names


def pretrained_path(name: str) -> Path:
    """File of the shipped optimizer ``name``; ``ValueError`` listing the names if unknown."""
    path = settings.PRETRAINED_DIR / f"{name}.pt"
    if not name or "/" in name or not path.is_file():
        names = ", ".join(available_pretrained()) or "none shipped yet"
        raise ValueError(f"no pretrained optimizer named {name!r}; available: {names}")
    return path


def load_pretrained(name: str, device: torch.device | str = "cpu") -> OptimizerNet:
    """A shipped trained optimizer network, rebuilt from the architecture stored with its weights."""
    net, _ = load_optimizer(pretrained_path(name), device)
    return net


def pretrained_info(name: str) -> dict[str, Any]:
    """How a shipped optimizer was made: the training command, seed, recipe and its metrics.

    ``info["evaluation"]``, when shipped (``<name>.eval.json``, written by ``l2l evaluate --out``), holds
    its held-out results against tuned baselines and the command that measured them.
    """
    info = dict(read_checkpoint(pretrained_path(name))["metadata"])
    evaluation = settings.PRETRAINED_DIR / f"{name}.eval.json"
    if evaluation.is_file():
        info["evaluation"] = json.loads(evaluation.read_text())
    return info


# --------------------------------------------------------------------------------------------
# Recipes: retrain a shipped optimizer from scratch


@dataclass
class Recipe:
    """How a shipped optimizer was trained: architecture, meta-training settings and problem."""

    optimizer: AnyConfig  # one LSTM's, or one per parameter group (conv)
    training: MetaTrainConfig
    problem_name: str
    problem_args: dict[str, Any]
    command: str

    def problem(self) -> Problem:
        """The problem family it was meta-trained on."""
        return make_problem(self.problem_name, **self.problem_args)


def _recipe_in(payload: dict[str, Any]) -> Recipe | None:
    """The recipe a checkpoint's payload stores, or None when it stores none."""
    meta, training = payload.get("metadata", {}), payload.get("training")
    if not training or "problem_name" not in meta:
        return None
    return Recipe(
        config_from_dict(payload["config"]),
        MetaTrainConfig(**training["config"]),
        meta["problem_name"],
        dict(meta.get("problem_args") or {}),
        meta.get("command", ""),
    )


def recipe_of(name: str) -> Recipe:
    """The recipe stored with the shipped optimizer ``name`` (``ValueError`` if unknown)."""
    recipe = _recipe_in(read_checkpoint(pretrained_path(name)))
    if recipe is None:
        raise ValueError(f"pretrained {name!r} stores no training recipe; it cannot be retrained automatically")
    return recipe


def _validation_of(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A shipped optimizer's seed, epochs and best validation score, as its checkpoint stores them."""
    meta, training = payload.get("metadata", {}), payload.get("training") or {}
    best = meta.get("best_val_meta_loss", training.get("best_val"))
    if best is None and training.get("val_history"):
        best = min(v["val_meta_loss"] for v in training["val_history"])
    return {
        "name": name,
        "seed": meta.get("seed", (training.get("config") or {}).get("seed")),
        "epochs_done": meta.get("epochs_done", training.get("epoch")),
        "best_epoch": meta.get("best_epoch", training.get("best_epoch")),
        "best_val_meta_loss": best if best is not None and math.isfinite(best) else None,
    }


def shipped_optimizers() -> list[dict[str, Any]]:
    """One record per shipped optimizer, its seeds (:func:`seed_names`) together: problem, network, recipe,
    command and each seed's best validation score (``l2l list``). Reads the files only; nothing is trained."""
    names = available_pretrained()
    rows = []
    for name in names:
        base, _, k = name.rpartition("_seed")
        if k.isdigit() and base in names:
            continue  # listed with its first seed
        seeds = seed_names(name)
        payloads = [read_checkpoint(pretrained_path(n)) for n in seeds]
        meta, recipe = payloads[0].get("metadata", {}), _recipe_in(payloads[0])
        training = None
        if recipe is not None:
            config, net = recipe.training, recipe.optimizer
            member = net.groups[0][1] if isinstance(net, GroupedConfig) else net
            training = {k: getattr(config, k) for k in ("epochs", "lr", "steps", "unroll", "tasks_per_epoch")}
            training["preprocessing"] = member.preprocessing
            training |= {k: getattr(config, k) for k in ("weights", "select", "second_order", "grad_clip")}
        criterion = meta.get("val_criterion") or (
            None if recipe is None else "sum of losses" if recipe.training.select == "sum" else "mean final loss"
        )
        rows.append(
            {
                "name": name,
                "seeds": seeds,
                "problem": meta.get("problem_name"),
                "problem_args": meta.get("problem_args"),
                "network": payloads[0]["config"],
                "recipe": training,
                "command": meta.get("command"),
                "validation": {
                    "criterion": criterion,
                    "seeds": [_validation_of(n, p) for n, p in zip(seeds, payloads, strict=True)],
                },
            }
        )
    return rows


def optimizer_for(name: str, device: torch.device | str = "cpu") -> tuple[OptimizerNet, str]:
    """The shipped optimizer ``name`` and a line saying where it came from. Loading never trains: a network
    meta-trained here is :func:`retrained_optimizer`'s."""
    net, meta = load_optimizer(pretrained_path(name), device)  # one read of the file: weights and metadata
    return net, f"shipped optimizer '{name}' (trained by: {meta.get('command', '')})"


def retrained_optimizer(
    name: str,
    device: torch.device | str = "cpu",
    epochs: int | None = None,
    progress: bool = True,
    callback: Callable[[dict[str, Any], MetaTrainResult], None] | None = None,
    problem: Problem | None = None,
) -> tuple[OptimizerNet, str]:
    """An optimizer meta-trained here with the stored recipe of the shipped ``name`` (a notebook's ``RETRAIN``).

    ``epochs`` overrides the recipe's epoch count (for quick runs); ``problem`` replaces the recipe's
    problem family (e.g. neural art with other features). Under ``make run`` a network finished earlier in the same
    run with the same recipe is read back, and an interrupted one resumed (:func:`retrain_path`). Returns (network,
    a line saying where it came from).
    """
    recipe = recipe_of(name)
    config = recipe.training
    if epochs is not None:
        config = MetaTrainConfig(**{**config.__dict__, "epochs": check_positive_int("epochs", epochs)})
    family = problem or recipe.problem()
    shared = retrain_path(name, recipe.optimizer, config, family)
    if shared is not None and shared.is_file():
        net, meta = load_optimizer(shared, device)
        if meta.get("epochs_done") == config.epochs:  # finished earlier in this run
            return net, (
                f"retrained earlier in this run with the recipe of '{name}': {config.epochs} epochs, best "
                f"validation at epoch {meta.get('best_epoch')} ({shared})"
            )
    torch.manual_seed(config.seed)
    net = build_optimizer(recipe.optimizer).to(device)
    resume = shared if shared is not None and shared.is_file() else None  # interrupted earlier: continue it
    result = meta_train(
        net, family, config, checkpoint_path=shared, resume=resume, progress=progress, callback=callback
    )
    return net, (
        f"retrained here with the recipe of '{name}': {config.epochs} epochs, best validation at epoch "
        f"{result.best_epoch}"
    )


def _seeds_of(name: str, seeds: int | None) -> list[str]:
    names = seed_names(name)
    if seeds is not None:
        check_positive_int("seeds", seeds)
        if seeds > len(names):
            raise ValueError(f"seeds={seeds}: only {len(names)} seeds of {name!r} are shipped ({', '.join(names)})")
        names = names[:seeds]
    return names


def optimizers_for(
    name: str, device: torch.device | str = "cpu", seeds: int | None = None
) -> list[tuple[str, OptimizerNet, str]]:
    """:func:`optimizer_for` for every shipped seed of ``name`` (:func:`seed_names`), or the first ``seeds`` of
    them: a list of (name, network, where it came from). Claims that rest on a meta-trained optimizer use several
    of them, each meta-trained independently. Loading never trains (:func:`retrained_optimizers` does)."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device={device!r}: give a device; to meta-train here call retrained_optimizers({name!r})")
    return [(seed_name, *optimizer_for(seed_name, device)) for seed_name in _seeds_of(name, seeds)]


def retrained_optimizers(
    name: str,
    device: torch.device | str = "cpu",
    epochs: int | None = None,
    progress: bool = True,
    seeds: int | None = None,
    callback: Callable[[dict[str, Any], MetaTrainResult], None] | None = None,
    problem: Problem | None = None,
) -> list[tuple[str, OptimizerNet, str]]:
    """:func:`retrained_optimizer` for every shipped seed of ``name`` (or the first ``seeds``), each with its own
    stored recipe: what :func:`optimizers_for` loads, meta-trained here instead. ``callback`` follows each run."""
    out = []
    for seed_name in _seeds_of(name, seeds):
        net, source = retrained_optimizer(seed_name, device, epochs, progress, callback, problem)
        out.append((seed_name, net, source))
    return out


def labelled_seeds(trained: Sequence[tuple[str, OptimizerNet, str]], label: str = "LSTM") -> dict[str, OptimizerNet]:
    """The networks of :func:`optimizers_for` under the names the notebooks' tables and figures give them:
    ``{"LSTM s0": net, "LSTM s1": ..., ...}`` in seed order (``label`` replaces ``"LSTM"``)."""
    if not label:
        raise ValueError("label is empty: give the name the seeds' networks are shown under, e.g. 'LSTM'")
    return {f"{label} s{k}": net for k, (_, net, _) in enumerate(trained)}


def retrain_path(name: str, optimizer: AnyConfig, config: MetaTrainConfig, problem: Problem) -> Path | None:
    """Where a run shares an optimizer retrained with this exact recipe (None outside ``make run``).

    With ``PROFILE=paper`` notebooks 06, 07 and 08 all retrain the MNIST optimizer: the first one trains
    it (checkpointing as it goes), the others load it.
    """
    folder = settings.retrain_dir()
    if folder is None:
        return None
    key = json.dumps([name, optimizer.to_dict(), asdict(config), problem.describe()], sort_keys=True, default=str)
    return Path(folder) / f"{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.pt"
