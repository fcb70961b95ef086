"""Command line: ``python -m l2l_helpers`` (or ``l2l``) ``train``, ``evaluate``, ``list`` and ``run-notebooks``.

Bad input gives one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import sys
from collections.abc import Sequence
from typing import Any

import torch

from l2l_helpers.cli.parser import (
    CLIError,
    _optimizer_path,
    _positive_float,
    _problem_args,
    build_parser,
)
from l2l_helpers.cli.train import _shown, cmd_train
from l2l_helpers.evaluation.loops import EvalResult, evaluate
from l2l_helpers.evaluation.tuning import tune_learning_rate
from l2l_helpers.meta.checkpoints import load_optimizer
from l2l_helpers.meta.pretrained import shipped_optimizers
from l2l_helpers.optimizees import PROBLEMS, make_problem
from l2l_helpers.optimizees.base import Problem
from l2l_helpers.optimizees.data import check_unseen
from l2l_helpers.optimizees.mnist import MNISTProblem
from l2l_helpers.optimizer.baselines import BASELINES, make_baseline
from l2l_helpers.optimizer.coordinatewise_lstm import LearnedRule, OptimizerConfig
from l2l_helpers.optimizer.grouped_lstm import GroupedConfig, OptimizerNet, config_from_dict
from l2l_helpers.runtime import resolve_device, seed_everything, versions


def _learned_net(spec: str, device: torch.device) -> tuple[OptimizerNet, str, dict[str, Any]]:
    """A learned optimizer from a checkpoint path or a pretrained name, with its checkpoint's metadata."""
    path = _optimizer_path(spec, "--optimizer")  # a shipped name's file is <name>.pt: the stem is the label
    net, metadata = load_optimizer(path, device)  # one read: the network and what its file says of it
    return net, path.stem, dict(metadata or {})


def _check_unseen(metadata: dict[str, Any], problem: Problem, label: str) -> None:
    """An MNIST optimizer is never evaluated on the images it was meta-trained on (:func:`data.check_unseen`)."""
    if isinstance(problem, MNISTProblem) and metadata.get("problem_name") == "mnist":
        try:
            check_unseen(metadata.get("meta_training_images"), problem.data, f"--optimizer {label}")
        except ValueError as exc:
            raise CLIError(str(exc)) from None


def _fixed_lrs(items: Sequence[str]) -> dict[str, float]:
    fixed = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name.lower() not in BASELINES:
            raise CLIError(f"--lr {item!r}: expected NAME=LR with NAME in {', '.join(BASELINES)}")
        try:
            fixed[name.lower()] = _positive_float(value)
        except argparse.ArgumentTypeError as exc:
            raise CLIError(f"--lr {item!r}: {exc}") from None
    return fixed


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a learned optimizer and tuned baselines on the same held-out tasks."""
    device = resolve_device(args.device)
    seed_everything(args.seed)
    problem = make_problem(args.problem, **_problem_args(args))
    names = [] if args.baselines.strip().lower() == "none" else [n.strip().lower() for n in args.baselines.split(",")]
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise CLIError(f"--baselines: unknown {', '.join(unknown)}; use a comma list of {', '.join(BASELINES)}")
    fixed = _fixed_lrs(args.lr)
    if not names and args.optimizer is None:
        raise CLIError("nothing to evaluate: give --optimizer and/or --baselines")
    results: list[EvalResult] = []
    if args.optimizer is not None:
        net, label, metadata = _learned_net(args.optimizer, device)
        _check_unseen(metadata, problem, label)
        results.append(evaluate(LearnedRule(net), problem, args.tasks, args.steps, args.split, device, name=label))
    for name in names:
        lr = fixed.get(name)
        if lr is None:
            lr = tune_learning_rate(name, problem, problem.lr_grid, args.tune_tasks, args.steps, device=device).best_lr
        results.append(evaluate(make_baseline(name, lr), problem, args.tasks, args.steps, args.split, device))
    summaries = [r.summary() for r in results]
    report = {"problem": problem.describe(), "results": summaries}
    if args.out is not None:
        command = shlex.join(["python", "-m", "l2l_helpers", *args.argv])
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": command, "versions": versions(), **report}, indent=2) + "\n")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{problem.describe()}; {args.tasks} held-out {args.split} tasks, {args.steps} steps")
        print(f"{'optimizer':<14}{'lr':>10}{'mean final':>14}{'log10':>9}{'sum of losses':>16}")
        for s in sorted(summaries, key=lambda s: s["mean_final"] if math.isfinite(s["mean_final"]) else math.inf):
            lr = f"{s['lr']:.3g}" if s["lr"] is not None else "-"
            print(f"{s['name']:<14}{lr:>10}{s['mean_final']:>14.4g}{s['log10_mean_final']:>9.3f}{s['mean_sum']:>16.4g}")
    return 0


def _network_text(stored: dict[str, Any]) -> str:
    """A shipped network in a few words: layers x units, its appendix extensions, its parameter groups."""
    config = config_from_dict(stored)
    member = config.groups[0][1] if isinstance(config, GroupedConfig) else config
    words = [f"{member.num_layers}x{member.hidden_size}"]
    if member.output_scale != OptimizerConfig.output_scale:
        words.append(f"scale {member.output_scale:g}")
    if member.gac_cells:
        words.append(f"GAC {member.gac_cells}")
    if member.memory_slots:
        words.append(f"NTM {member.memory_slots}x{member.write_heads}")
    if isinstance(config, GroupedConfig):
        words.append("+".join(config.names))
    return " ".join(words)


def _problem_text(row: dict[str, Any]) -> str:
    """The problem, with the settings that differ from the train command's defaults."""
    if row["problem"] not in PROBLEMS:  # a file that does not say which
        return str(row["problem"] or "-")
    defaults = vars(build_parser().parse_args(["train", "--problem", row["problem"]]))
    args = row["problem_args"] or {}
    other = [f"{k} {_shown('--' + k, v)}" for k, v in args.items() if v is not None and defaults.get(k) != v]
    return f"{row['problem']} ({', '.join(other)})" if other else str(row["problem"])


def _table_line(row: dict[str, Any]) -> tuple[str, ...]:
    """One row of ``l2l list``'s table."""
    n, recipe, validation = len(row["seeds"]), row["recipe"], row["validation"]
    scores = " / ".join(
        "-" if s["best_val_meta_loss"] is None else f"{s['best_val_meta_loss']:.4g}" for s in validation["seeds"]
    )
    head = (row["name"], f"{n} seed{'s' if n > 1 else ''}", _problem_text(row), _network_text(row["network"]))
    if recipe is None:
        return (*head, "-", "-", "-", "-", "-", "-", "-", "-")
    extra = [f"clip {recipe['grad_clip']:g}"] if recipe["grad_clip"] is not None else []
    extra += ["second order"] if recipe["second_order"] else []
    return (
        *head,
        str(recipe["epochs"]),
        f"{recipe['lr']:g}",
        f"{recipe['steps']}/{recipe['unroll']}",
        str(recipe["tasks_per_epoch"]),
        recipe["preprocessing"],
        f"{recipe['weights']}/{recipe['select']}",
        ", ".join(extra) or "-",
        scores,
    )


def cmd_list(args: argparse.Namespace) -> int:
    """List the shipped optimizers from their files (nothing is trained)."""
    rows = shipped_optimizers()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("name", "seeds", "problem", "network", "epochs", "lr", "T/unroll", "tasks", "input", "w/select")
    table = [(*header, "other", "best validation"), *map(_table_line, rows)]
    widths = [max(len(line[k]) for line in table) for k in range(len(header) + 2)]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    print("network: LSTM layers x units (scale: the factor on its output); tasks: optimizees per epoch;")
    print("input: preprocessing; w/select: the weights w_t / what validation keeps (sum of losses or final loss);")
    print("other: meta-gradient clipping, second derivatives; best validation: that score, per seed")
    print("(python -m l2l_helpers list --json gives everything the files store)")
    return 0


def cmd_run_notebooks(args: argparse.Namespace) -> int:
    """Execute every notebook (or those of ``--only``) headlessly and write the report."""
    from l2l_helpers.notebook.runner import run_notebooks

    summary = run_notebooks(args.notebooks, args.out, profile=args.profile, device=args.device, only=args.only)
    for run in summary.failed:  # its last line already named the report
        print(f"failed: {run.name}: {run.error}", file=sys.stderr)
    return 1 if summary.failed else 0


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``l2l`` and ``python -m l2l_helpers``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    commands = {"train": cmd_train, "evaluate": cmd_evaluate, "list": cmd_list, "run-notebooks": cmd_run_notebooks}
    if args.command == "train":
        signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM saves a checkpoint like Ctrl-C
    try:
        return commands[args.command](args)
    except (CLIError, ValueError, FileNotFoundError) as exc:
        print(f"l2l {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"l2l {args.command}: interrupted", file=sys.stderr)
        return 130
