"""``python -m l2l_helpers train``: meta-train an optimizer from flags, resume a run, or warm-start from another one."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import inspect
import shlex
import time
from pathlib import Path
from typing import Any

from l2l_helpers.cli.parser import CLIError, _optimizer_path, _problem_args, _typed
from l2l_helpers.meta.checkpoints import CheckpointWriteError, read_checkpoint
from l2l_helpers.meta.config import MetaTrainConfig
from l2l_helpers.meta.meta_training import meta_train
from l2l_helpers.optimizees import make_problem
from l2l_helpers.optimizees.mnist import MNISTProblem
from l2l_helpers.optimizer.coordinatewise_lstm import OptimizerConfig
from l2l_helpers.optimizer.grouped_lstm import AnyConfig, GroupedConfig, OptimizerNet, build_optimizer, config_from_dict
from l2l_helpers.runtime import resolve_device, seed_everything, versions

#: The train flags that set the optimizer network's architecture: (flag, argparse dest, OptimizerConfig field).
_ARCHITECTURE_FLAGS = (
    ("--lstm-layers", "lstm_layers", "num_layers"),
    ("--lstm-hidden", "lstm_hidden", "hidden_size"),
    ("--preprocessing", "preprocessing", "preprocessing"),
    ("--p", "p", "p"),
    ("--output-scale", "output_scale", "output_scale"),
    ("--gac-cells", "gac_cells", "gac_cells"),
    ("--memory-slots", "memory_slots", "memory_slots"),
    ("--write-heads", "write_heads", "write_heads"),
)


def _architecture(args: argparse.Namespace) -> AnyConfig:
    """The config of a new run: the flags given, OptimizerConfig's defaults for the others; on the conv problem one
    such LSTM per parameter group (the paper's two) unless ``--one-lstm``."""
    config = OptimizerConfig(
        **{field: getattr(args, dest) for _, dest, field in _ARCHITECTURE_FLAGS if getattr(args, dest) is not None}
    )
    if args.problem != "conv":
        if args.one_lstm:
            raise CLIError(f"--one-lstm chooses between one and two LSTMs on the conv problem, not {args.problem}")
        return config
    if args.one_lstm:
        return config
    from l2l_helpers.optimizees.conv import GROUPS

    return GroupedConfig.same(config, GROUPS)


def _check_architecture(args: argparse.Namespace, stored: AnyConfig, flag: str, source: object) -> None:
    """Refuse architecture flags that contradict the network a run continues (``--resume``) or starts from
    (``--init-from``); flags that agree with it are accepted."""
    if args.one_lstm and isinstance(stored, GroupedConfig):
        raise CLIError(
            f"{flag} {source}: --one-lstm was given but its optimizer has one LSTM per parameter group "
            f"({', '.join(stored.names)}); drop --one-lstm to keep that network"
        )
    members = [cfg for _, cfg in stored.groups] if isinstance(stored, GroupedConfig) else [stored]
    clashes = [
        (name, getattr(args, dest), field)
        for name, dest, field in _ARCHITECTURE_FLAGS
        if getattr(args, dest) is not None and any(getattr(args, dest) != getattr(cfg, field) for cfg in members)
    ]
    stored = members[0]
    if clashes:
        given = "; ".join(
            f"{name} {value} was given but its optimizer network has {field}={getattr(stored, field)!r}"
            for name, value, field in clashes
        )
        flags = " and ".join(name for name, _, _ in clashes)
        raise CLIError(
            f"{flag} {source}: {given}; a run with {flag} keeps that network, so drop {flags} to keep it, "
            f"or train a new network without {flag} and with another --out"
        )


#: The train flags of the meta-training recipe: (flag, argparse dest = MetaTrainConfig field). --epochs is not one:
#: it is the target a resumed run trains to.
_RECIPE_FLAGS = (
    ("--steps", "steps"),
    ("--unroll", "unroll"),
    ("--lr", "lr"),
    ("--tasks-per-epoch", "tasks_per_epoch"),
    ("--weights", "weights"),
    ("--select", "select"),
    ("--second-order", "second_order"),
    ("--grad-clip", "grad_clip"),
    ("--val-every", "val_every"),
    ("--val-tasks", "val_tasks"),
    ("--checkpoint-every", "checkpoint_every"),
    ("--seed", "seed"),
)


#: The optimizee flags: (flag, argparse dest = the problem's keyword argument).
_PROBLEM_FLAGS = (
    ("--hidden", "hidden"),
    ("--activation", "activation"),
    ("--init", "init"),
    ("--init-scale", "init_scale"),
    ("--size", "size"),
    ("--style", "style"),
    ("--style-weight", "style_weight"),
    ("--tv-weight", "tv_weight"),
    ("--labels", "labels"),
    ("--dataset", "dataset"),
)


def _problem_defaults(name: str) -> dict[str, Any]:
    """The keyword arguments of problem ``name``'s class with their defaults (what a recipe leaves out)."""
    from l2l_helpers.optimizees.base import REGISTRY

    module, cls = REGISTRY[name].split(":")
    problem_class = getattr(importlib.import_module(f"l2l_helpers.optimizees.{module}"), cls)
    return {k: p.default for k, p in inspect.signature(problem_class).parameters.items() if p.default is not p.empty}


def _shown(flag: str, value: object) -> str:
    """A value as the user would type it after ``flag``."""
    if isinstance(value, (list, tuple)):
        return ("," if flag == "--labels" else " ").join(map(str, value))
    return "none" if value is None else str(value)


def _check_recipe(args: argparse.Namespace, config: MetaTrainConfig, problem_args: dict[str, Any] | None) -> None:
    """Refuse recipe and optimizee flags typed with ``--resume`` that differ from the checkpoint's (a resumed run
    keeps its recipe: they would be ignored); typed flags that agree with it, and --epochs, are accepted."""
    typed = _typed(args.argv)
    clashes = []
    for flag, dest in _RECIPE_FLAGS:
        if dest in typed and getattr(args, dest) != getattr(config, dest):
            clashes.append((flag, getattr(args, dest), getattr(config, dest), dest))
    if problem_args is not None:
        _problem_args(args)  # --labels / --dataset on another problem: the same error as for a new run
        defaults = _problem_defaults(args.problem)
        for flag, dest in _PROBLEM_FLAGS:
            if dest not in typed or (dest not in problem_args and dest not in defaults):
                continue  # not typed, or no setting of this problem (ignored, as in a new run)
            stored = problem_args.get(dest, defaults.get(dest))
            given = getattr(args, dest)
            if (list(given) if isinstance(given, tuple) else given) != (
                list(stored) if isinstance(stored, tuple) else stored
            ):
                clashes.append((flag, given, stored, dest))
    if not clashes:
        return
    parts = []
    for k, (flag, given, stored, dest) in enumerate(clashes):
        typed_as = flag if isinstance(given, bool) else f"{flag} {_shown(flag, given)}"
        was = f"{dest}={stored}" if isinstance(given, bool) else _shown(flag, stored)
        parts.append(f"{typed_as} differs from the checkpoint's {was}" if k == 0 else f"{typed_as} from its {was}")
    flags = "the flag" if len(clashes) == 1 else "these flags"
    raise CLIError(
        f"{', '.join(parts)} ({args.resume}); drop {flags} to continue with the checkpoint's recipe, "
        "or start a new run without --resume and with another --out"
    )


def _resumed(
    args: argparse.Namespace,
) -> tuple[OptimizerNet, MetaTrainConfig, dict[str, Any], dict[str, Any]]:
    """The network, settings, problem arguments and metadata stored in ``--resume``'s checkpoint (only --epochs
    may change; other recipe flags must agree with it)."""
    payload = read_checkpoint(args.resume)
    training = payload.get("training")
    if not training:
        raise CLIError(f"--resume {args.resume}: the file holds weights only, no training state")
    net_config = config_from_dict(payload["config"])
    _check_architecture(args, net_config, "--resume", args.resume)
    stored = dict(training["config"])
    if args.epochs is not None:
        stored["epochs"] = args.epochs
    meta = payload["metadata"]
    if meta.get("problem_args") is not None and meta.get("problem_name") != args.problem:
        raise CLIError(f"--resume {args.resume} was trained on {meta.get('problem_name')}, not {args.problem}")
    config = MetaTrainConfig(**stored)
    _check_recipe(args, config, meta.get("problem_args"))
    problem_args = meta.get("problem_args", _problem_args(args))
    return build_optimizer(net_config), config, problem_args, meta


def _new_run(
    args: argparse.Namespace,
) -> tuple[OptimizerNet, MetaTrainConfig, dict[str, Any], dict[str, Any]]:
    """A fresh network and settings from the command line's flags (no stored metadata)."""
    config = MetaTrainConfig(
        epochs=args.epochs or 100,
        steps=args.steps,
        unroll=args.unroll,
        lr=args.lr,
        tasks_per_epoch=args.tasks_per_epoch,
        weights=args.weights,
        second_order=args.second_order,
        grad_clip=args.grad_clip,
        val_every=args.val_every,
        val_tasks=args.val_tasks,
        select=args.select,
        checkpoint_every=args.checkpoint_every,
        seed=args.seed,
    )
    if args.init_from is None:
        return build_optimizer(_architecture(args)), config, _problem_args(args), {}
    net, start = _warm_started(args)
    return net, config, _problem_args(args), {"initialised_from": start}


def _warm_started(args: argparse.Namespace) -> tuple[OptimizerNet, dict[str, Any]]:
    """The network of ``--init-from`` (a checkpoint path or a shipped name), to be meta-trained further with
    this command's recipe: the next stage of a curriculum, recorded as a new run (not a resume). Returns it and
    the record of where it came from (its own earlier stages nested inside)."""
    path = _optimizer_path(args.init_from, "--init-from")
    payload = read_checkpoint(path)
    net_config = config_from_dict(payload["config"])
    _check_architecture(args, net_config, "--init-from", args.init_from)
    meta = payload.get("metadata", {})
    if meta.get("problem_name") not in (None, args.problem):
        raise CLIError(f"--init-from {args.init_from} was trained on {meta['problem_name']}, not {args.problem}")
    net = build_optimizer(net_config)
    net.load_state_dict(payload["state_dict"])
    return net, {
        "source": str(args.init_from),
        "command": meta.get("command"),
        "resumed_with": meta.get("resumed_with", []),
        "seed": meta.get("seed"),
        "meta_training_images": meta.get("meta_training_images"),
        "initialised_from": meta.get("initialised_from"),  # the stage before it, if any: the whole curriculum
    }


def cmd_train(args: argparse.Namespace) -> int:
    """Meta-train, checkpointing as it goes; resumes from ``--resume``."""
    device = resolve_device(args.device)
    seed_everything(args.seed)
    out = args.out or Path("checkpoints") / f"{args.problem}.pt"
    if args.resume is not None and args.init_from is not None:
        raise CLIError("--resume continues a run and --init-from starts a new one from trained weights: give one")
    net, config, problem_args, stored = _resumed(args) if args.resume is not None else _new_run(args)
    problem = make_problem(args.problem, **problem_args)
    net.to(device)
    metadata = {
        "command": shlex.join(["python", "-m", "l2l_helpers", *args.argv]),
        "problem_name": args.problem,
        "problem_args": problem_args,
        "seed": args.seed,
        "device": str(device),
        "versions": versions(),
    }
    if isinstance(problem, MNISTProblem):  # which images it sees, so that no evaluation draws from them
        metadata["meta_training_images"] = problem.data.training_record()
    elif args.problem == "conv":  # which dataset: its held-out images are the same 2,000 test images in every case
        metadata["meta_training_images"] = {"source": problem.data.source, "images": problem.data.description}
    if "command" in stored:  # a resumed file keeps the command that started the run; the resumes are listed after it
        resumes = [*stored.get("resumed_with", []), metadata["command"]]
        metadata.update(command=stored["command"], resumed_with=resumes, seed=stored.get("seed", args.seed))
    if (start := stored.get("initialised_from")) is not None:  # --init-from, or a resumed run that began so
        if isinstance(problem, MNISTProblem) and start["meta_training_images"] != metadata["meta_training_images"]:
            raise CLIError(
                f"--init-from {start['source']} was meta-trained on other MNIST images than this run's; a model "
                "trained on both could not be evaluated on either's held-out images: warm-start from an "
                "optimizer trained on the same data"
            )
        metadata["initialised_from"] = start
    print(f"meta-training on {problem.describe()}; {device}; checkpoints -> {out}")
    start = time.perf_counter()
    try:
        result = meta_train(
            net, problem, config, checkpoint_path=out, resume=args.resume, metadata=metadata, progress=not args.quiet
        )
    except CheckpointWriteError as exc:  # e.g. a full disk: the last good checkpoint is intact, say how to go on
        raise CLIError(_write_failed(exc, args, out, config.epochs)) from None
    seconds = time.perf_counter() - start
    done = result.history[-1]["epoch"] if result.history else 0
    if result.interrupted:
        print(f"interrupted: {done} epochs kept in {out}; continue with --resume {out}")
        return 130
    best = f"best validation meta-loss {result.best_val:.4g} at epoch {result.best_epoch}" if result.best_epoch else ""
    print(f"done: {done} epochs in {seconds:.0f} s; {best}; skipped meta-steps: {result.skipped}; saved {out}")
    return 0


def _write_failed(exc: CheckpointWriteError, args: argparse.Namespace, out: Path, epochs: int) -> str:
    """The one line for a checkpoint that could not be written: what failed, what is kept, how to go on."""
    fix = "free space" if exc.disk_full else "fix that"
    if exc.last_epoch is None:
        return f"{exc}; {fix}, then run the command again"
    command = ["python", "-m", "l2l_helpers", "train", "--problem", args.problem, "--resume", str(out)]
    if out != Path("checkpoints") / f"{args.problem}.pt":
        command += ["--out", str(out)]
    return f"{exc}; {fix}, then resume: {shlex.join([*command, '--epochs', str(epochs)])}"
