"""Command line: ``python -m l2l_helpers`` (or ``l2l``) ``train``, ``evaluate``, ``list`` and ``run-notebooks``.

Bad input gives one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import inspect
import json
import math
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch

from .baselines import BASELINES, make_baseline
from .checkpoints import CheckpointWriteError, load_optimizer, read_checkpoint
from .coordinatewise_lstm import LearnedRule, OptimizerConfig
from .data import check_unseen
from .datasets import CONV_DATASETS
from .evaluation import EvalResult, evaluate, tune_learning_rate
from .grouped_lstm import AnyConfig, GroupedConfig, OptimizerNet, build_optimizer, config_from_dict
from .meta_training import SELECTIONS, WEIGHTINGS, MetaTrainConfig, meta_train
from .optimizees import ACTIVATIONS, INITS, PROBLEMS, make_problem
from .optimizees.base import Problem
from .optimizees.mnist import MNISTProblem
from .preprocessing import PREPROCESSING_INPUTS
from .pretrained import available_pretrained, pretrained_path, shipped_optimizers
from .runtime import DEVICES, resolve_device, seed_everything, versions


class CLIError(Exception):
    """An error to report in one line."""


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (with a pointer to --help) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be an integer >= {minimum}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} must be a non-negative finite number")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite number")
    return value


def _add_problem_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("optimizee")
    g.add_argument("--problem", required=True, choices=PROBLEMS, help="problem family (paper: both)")
    g.add_argument(
        "--hidden", type=_positive_int, nargs="+", default=[20], metavar="N", help="MNIST MLP hidden sizes (20)"
    )
    g.add_argument("--activation", choices=list(ACTIVATIONS), default="sigmoid", help="MNIST MLP activation")
    g.add_argument(
        "--init",
        choices=INITS,
        default="normal",
        help="MNIST init: N(0, s^2), PyTorch's default, or mixed (one per task)",
    )
    g.add_argument("--init-scale", type=_positive_float, default=0.01, help="std of the normal init (0.01)")
    g.add_argument("--size", type=_int_at_least(16), default=64, help="neural_art image size (paper: 64, test 128)")
    g.add_argument("--style", default="starry_night", help="neural_art painting in data/styles")
    g.add_argument("--style-weight", type=_non_negative_float, default=1e6, help="neural_art style weight (1e6)")
    g.add_argument("--tv-weight", type=_non_negative_float, default=0.2, help="neural_art total-variation weight (0.2)")
    g.add_argument(
        "--labels",
        type=_label_list,
        default=None,
        metavar="L,L,...",
        help="conv: keep only these labels, e.g. 0,1,2,3,4 (default: all ten)",
    )
    g.add_argument(
        "--dataset",
        choices=CONV_DATASETS,
        default=None,
        help="conv: fashion_mnist (default, offline), cifar10 (the paper's) or auto (CIFAR-10 where it is on disk)",
    )
    g.add_argument("--device", choices=DEVICES, default="auto", help="auto = cuda if available")
    g.add_argument(
        "--seed",
        type=_non_negative_int,
        default=0,
        help="random seed (0); in train it also picks phi's initialisation and the training tasks",
    )


def _label_list(text: str) -> list[int]:
    """An argparse type: a comma list of integer labels (the problem checks their range)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of integer labels, e.g. 0,1,2") from None


def _problem_args(args: argparse.Namespace) -> dict[str, Any]:
    for flag, value in (("--labels", args.labels), ("--dataset", args.dataset)):
        if value is not None and args.problem != "conv":
            raise CLIError(f"{flag} belongs to the conv problem, not to {args.problem}: drop it")
    if args.problem == "conv":  # the dataset only when given: a recipe without one is Fashion-MNIST's
        return {"labels": args.labels} | ({"dataset": args.dataset} if args.dataset is not None else {})
    if args.problem == "neural_art":
        return {"size": args.size, "style": args.style, "style_weight": args.style_weight, "tv_weight": args.tv_weight}
    if args.problem == "mnist":
        return {
            "hidden": list(args.hidden),
            "activation": args.activation,
            "init": args.init,
            "init_scale": args.init_scale,
        }
    return {}


def build_parser() -> argparse.ArgumentParser:
    """The ``l2l`` argument parser."""
    parser = _Parser(prog="l2l", description="Learning to learn by gradient descent by gradient descent.")
    parser.add_argument("--version", action="version", version=version_line(), help="print the versions and exit")
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser, metavar="COMMAND", help="what to do (see COMMAND --help)"
    )

    t = sub.add_parser("train", help="meta-train an LSTM optimizer", description="Meta-train an LSTM optimizer.")
    _add_problem_args(t)
    # default None: a value the user gave can be told from the default (OptimizerConfig's, see _architecture)
    o = t.add_argument_group("optimizer network")
    o.add_argument("--lstm-layers", type=_positive_int, default=None, help="LSTM layers (paper: 2)")
    o.add_argument("--lstm-hidden", type=_positive_int, default=None, help="units per LSTM layer (paper: 20)")
    o.add_argument(
        "--preprocessing",
        choices=list(PREPROCESSING_INPUTS),
        default=None,
        help="how gradients enter the LSTM (paper: log_sign, Appendix A; none = the raw gradient)",
    )
    o.add_argument("--p", type=_positive_float, default=None, help="preprocessing constant (paper: 10)")
    o.add_argument("--output-scale", type=_positive_float, default=None, help="factor on the LSTM's output")
    o.add_argument(
        "--gac-cells",
        type=_non_negative_int,
        default=None,
        metavar="N",
        help="Global Averaging Cells per layer (paper's Appendix; 0 = none, at most --lstm-hidden)",
    )
    o.add_argument(
        "--memory-slots",
        type=_non_negative_int,
        default=None,
        metavar="M",
        help="NTM-BFGS memory (paper's Appendix): M rank-one slots per optimizee (0 = none, below --lstm-hidden)",
    )
    o.add_argument(
        "--write-heads",
        type=_positive_int,
        default=None,
        metavar="K",
        help="NTM-BFGS rank-one writes per step (3, the paper's BFGS count; at most --memory-slots)",
    )
    o.add_argument(
        "--one-lstm",
        action="store_true",
        help="conv: one LSTM for every parameter (the paper's ablation; default: one per layer type, conv and fc)",
    )
    m = t.add_argument_group("meta-training")
    m.add_argument("--epochs", type=_positive_int, default=None, help="trajectories to train on (100)")
    m.add_argument("--steps", type=_positive_int, default=100, help="optimizee horizon T (paper: 100)")
    m.add_argument("--unroll", type=_positive_int, default=20, help="truncated BPTT length (paper: 20)")
    m.add_argument("--lr", type=_positive_float, default=1e-3, help="Adam learning rate on phi (1e-3)")
    m.add_argument("--tasks-per-epoch", type=_positive_int, default=1, help="optimizees per trajectory batch")
    m.add_argument("--weights", choices=list(WEIGHTINGS), default="ones", help="w_t (paper: ones)")
    m.add_argument(
        "--select", choices=list(SELECTIONS), default="sum", help="validation keeps the best sum or final loss"
    )
    m.add_argument("--second-order", action="store_true", help="keep second derivatives (paper: dropped)")
    m.add_argument("--grad-clip", type=_positive_float, default=None, help="max meta-gradient norm")
    m.add_argument("--val-every", type=_non_negative_int, default=10, help="epochs between validations")
    m.add_argument("--val-tasks", type=_positive_int, default=8, help="held-out validation tasks")
    m.add_argument("--checkpoint-every", type=_non_negative_int, default=10, help="epochs between checkpoints")
    m.add_argument("--out", type=Path, default=None, help="checkpoint file (checkpoints/<problem>.pt)")
    m.add_argument("--resume", type=Path, default=None, help="continue from this checkpoint")
    m.add_argument(
        "--init-from",
        default=None,
        metavar="PATH|NAME",
        help="start a new run from this checkpoint's or shipped optimizer's weights (a curriculum stage)",
    )
    m.add_argument("--quiet", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="compare optimizers on held-out tasks", description="Evaluate optimizers.")
    _add_problem_args(e)
    e.add_argument("--optimizer", default=None, help="checkpoint PATH or pretrained NAME of a learned optimizer")
    e.add_argument("--baselines", default="adam,rmsprop,sgd,nag", help="comma list of baselines, or 'none'")
    e.add_argument("--lr", action="append", default=[], metavar="NAME=LR", help="fix a baseline's lr (no tuning)")
    e.add_argument("--steps", type=_positive_int, default=100, help="optimizee steps (paper: 100 and 200)")
    e.add_argument("--tasks", type=_positive_int, default=20, help="held-out tasks")
    e.add_argument(
        "--split",
        choices=("dev", "test"),
        default="dev",
        help="held-out tasks to evaluate: dev (development, the default) or test (the locked tasks of the claims)",
    )
    e.add_argument("--tune-tasks", type=_positive_int, default=8, help="training tasks for lr grid search")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.add_argument("--out", type=Path, default=None, help="also write the JSON (with this command) to a file")

    li = sub.add_parser(
        "list",
        help="the shipped optimizers: problem, seeds, recipe and validation score",
        description="List the shipped optimizers (read from their files; nothing is trained).",
    )
    li.add_argument("--json", action="store_true", help="print JSON instead of a table")

    r = sub.add_parser(
        "run-notebooks",
        help="execute every notebook into runs/<timestamp>/ with a report",
        description="Execute the notebooks headlessly, in reading order, and write a report.",
    )
    r.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="folder of the numbered notebooks")
    r.add_argument("--out", type=Path, default=None, help="output folder (runs/<timestamp>)")
    r.add_argument(
        "--only",
        type=_name_list,
        default=None,
        metavar="N,N,...",
        help="run only these notebooks, by number or name, e.g. 06,07 (default: all)",
    )
    r.add_argument(
        "--profile",
        choices=["default", "smoke", "paper", "dev", "full"],
        default="default",
        help="default (the shipped optimizers, the claims on the locked test tasks), smoke (CI sizes, dev tasks, a "
        "few minutes), paper (every shipped optimizer meta-trained from scratch with its stored recipe), dev (the "
        "default sizes on the dev tasks, for development) or full (every claim at the plan's number of tasks, where "
        "a notebook's default is smaller to stay within 10 minutes)",
    )
    r.add_argument("--device", choices=DEVICES, default="auto", help="auto = cuda if available")
    return parser


def _name_list(text: str) -> list[str]:
    """An argparse type: a non-empty comma list of notebook numbers or names."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names no notebook; give numbers or names, e.g. 06,07")
    return names


def package_version() -> str:
    """The installed version of ``l2l-helpers``, or the one in pyproject.toml when it is not installed."""
    try:
        return importlib.metadata.version("l2l-helpers")
    except importlib.metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        text = pyproject.read_text()
    except OSError:
        return "unknown"
    found = re.search(r'^\[project\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    return found.group(1) if found else "unknown"


def version_line() -> str:
    """What ``l2l --version`` prints: the package's version and torch's."""
    return f"l2l-helpers {package_version()} (torch {torch.__version__})"


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of ``parser``'s subcommands, by name."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def _typed(argv: Sequence[str]) -> set[str]:
    """The argparse dests of the options the user typed in ``argv`` (not those left at their defaults), however
    they were spelled (``--lr=0.1``, an abbreviation)."""
    parser = build_parser()
    for sub in subcommands(parser).values():
        for action in sub._actions:
            action.default = argparse.SUPPRESS  # an option not typed then leaves no attribute
    typed, _ = parser.parse_known_args(list(argv))
    return set(vars(typed)) - {"command"}


def _optimizer_path(spec: str, flag: str) -> Path:
    """The file of a learned optimizer given as a checkpoint path or a pretrained name."""
    if Path(spec).suffix or Path(spec).exists():
        if not Path(spec).exists():
            raise CLIError(f"{flag} {spec}: no such file (pretrained names: {', '.join(available_pretrained())})")
        return Path(spec)
    return pretrained_path(spec)


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
    from .optimizees.conv import GROUPS

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
    from .optimizees.base import REGISTRY

    module, cls = REGISTRY[name].split(":")
    problem_class = getattr(importlib.import_module(f"{__package__}.optimizees.{module}"), cls)
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
    from .runner import run_notebooks

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
