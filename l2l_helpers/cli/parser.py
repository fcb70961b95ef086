"""The command line's grammar: ``python -m l2l_helpers {train,evaluate,list,run-notebooks}`` and its checked
arguments."""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import torch

from l2l_helpers import settings
from l2l_helpers.meta.config import SELECTIONS, WEIGHTINGS
from l2l_helpers.meta.pretrained import available_pretrained, pretrained_path
from l2l_helpers.optimizees import ACTIVATIONS, INITS, PROBLEMS
from l2l_helpers.optimizees.datasets import CONV_DATASETS
from l2l_helpers.optimizer.preprocessing import PREPROCESSING_INPUTS
from l2l_helpers.runtime import DEVICES


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
    pyproject = settings.PACKAGE_DIR.parent / "pyproject.toml"
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
