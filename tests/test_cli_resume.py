"""`l2l train --resume`: a run keeps its recipe (flags that differ are refused, naming both values), and a full disk
while checkpointing ends in one line that says what is kept and how to go on."""

from __future__ import annotations

import shlex
from dataclasses import asdict
from pathlib import Path

import pytest
from helpers import disk_full_after, error_line

from l2l_helpers.cli.main import main
from l2l_helpers.meta.checkpoints import load_optimizer, read_checkpoint, save_checkpoint
from l2l_helpers.meta.config import MetaTrainConfig
from l2l_helpers.optimizer.coordinatewise_lstm import CoordinatewiseLSTM

#: The recipe of the trained checkpoint below; --lr and --checkpoint-every differ from the train command's defaults.
RECIPE = ["--steps", "10", "--unroll", "5", "--tasks-per-epoch", "2", "--val-every", "1", "--val-tasks", "2"]
RECIPE += ["--lr", "0.003", "--checkpoint-every", "1", "--seed", "3"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch quadratic run with the recipe above."""
    out = tmp_path_factory.mktemp("resume") / "quad.pt"
    assert main(["train", "--problem", "quadratic", "--epochs", "1", *RECIPE, "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.parametrize(
    ("flags", "given", "stored"),
    [
        (["--lr", "0.01"], "--lr 0.01", "0.003"),
        (["--lr", "0.001"], "--lr 0.001", "0.003"),  # the train command's default, but typed: refused
        (["--lr=0.01"], "--lr 0.01", "0.003"),
        (["--steps", "20"], "--steps 20", "10"),
        (["--unroll", "2"], "--unroll 2", "5"),
        (["--tasks-per-epoch", "4"], "--tasks-per-epoch 4", "2"),
        (["--tasks-per", "4"], "--tasks-per-epoch 4", "2"),  # an abbreviation counts as typed
        (["--weights", "linear"], "--weights linear", "ones"),
        (["--select", "final"], "--select final", "sum"),
        (["--second-order"], "--second-order", "second_order=False"),
        (["--grad-clip", "1"], "--grad-clip 1.0", "none"),
        (["--val-every", "10"], "--val-every 10", "1"),
        (["--val-tasks", "8"], "--val-tasks 8", "2"),
        (["--checkpoint-every", "10"], "--checkpoint-every 10", "1"),
        (["--seed", "0"], "--seed 0", "3"),
    ],
)
def test_resume_refuses_a_recipe_flag_that_differs(capsys, tmp_path, trained, flags, given, stored):
    """A meta-training flag typed with --resume that differs from the checkpoint's recipe is refused in one line
    naming both values and the file; nothing trains and the checkpoint is untouched."""
    out = tmp_path / "continued.pt"
    args = ["train", "--problem", "quadratic", "--epochs", "2", "--resume", str(trained), "--out", str(out)]
    err = error_line(capsys, [*args, *flags, "--quiet"])
    assert err == (
        f"l2l train: error: {given} differs from the checkpoint's {stored} ({trained}); drop the flag to continue "
        "with the checkpoint's recipe, or start a new run without --resume and with another --out"
    )
    assert not out.exists()
    assert read_checkpoint(trained)["training"]["epoch"] == 1


def test_resume_names_every_flag_that_differs(capsys, trained):
    """Several differing flags are named together."""
    args = ["train", "--problem", "quadratic", "--epochs", "2", "--resume", str(trained), "--quiet"]
    err = error_line(capsys, [*args, "--lr", "0.01", "--steps", "20"])
    assert "--steps 20 differs from the checkpoint's 10, --lr 0.01 from its 0.003" in err and "drop these flags" in err


def test_resume_with_the_same_recipe_typed_continues(tmp_path, trained):
    """Recipe flags that repeat the checkpoint's values (and a new --epochs target) are accepted: the run goes on."""
    out = tmp_path / "continued.pt"
    args = ["train", "--problem", "quadratic", "--epochs", "2", "--resume", str(trained), "--out", str(out)]
    assert main([*args, *RECIPE, "--lr", "3e-3", "--weights", "ones", "--select", "sum", "--quiet"]) == 0
    continued = read_checkpoint(out)
    assert continued["training"]["epoch"] == 2
    assert continued["training"]["config"] == {**read_checkpoint(trained)["training"]["config"], "epochs": 2}


def _stored_recipe(tmp_path: Path, problem: str, problem_args: dict) -> Path:
    """A resumable checkpoint of ``problem`` with these problem arguments (its recipe the defaults)."""
    metadata = {"problem_name": problem, "problem_args": problem_args}
    training = {"config": asdict(MetaTrainConfig())}
    return save_checkpoint(tmp_path / f"{problem}.pt", CoordinatewiseLSTM(), metadata, training)


MNIST = {"hidden": [20], "activation": "sigmoid", "init": "normal", "init_scale": 0.01}
ART = {"size": 64, "style": "starry_night", "style_weight": 1e6, "tv_weight": 0.2}


@pytest.mark.parametrize(
    ("problem", "stored_args", "flags", "given", "stored"),
    [
        ("mnist", MNIST, ["--hidden", "20", "20"], "--hidden 20 20", "20"),
        ("mnist", MNIST, ["--activation", "relu"], "--activation relu", "sigmoid"),
        ("mnist", MNIST, ["--init", "pytorch"], "--init pytorch", "normal"),
        ("mnist", MNIST, ["--init-scale", "0.1"], "--init-scale 0.1", "0.01"),
        ("neural_art", ART, ["--size", "32"], "--size 32", "64"),
        ("neural_art", ART, ["--style", "the_scream"], "--style the_scream", "starry_night"),
        ("neural_art", ART, ["--style-weight", "1e5"], "--style-weight 100000.0", "1000000.0"),
        ("neural_art", ART, ["--tv-weight", "0"], "--tv-weight 0.0", "0.2"),
        ("conv", {"labels": [5, 6]}, ["--labels", "0,1"], "--labels 0,1", "5,6"),
        ("conv", {"labels": None}, ["--dataset", "cifar10"], "--dataset cifar10", "fashion_mnist"),
    ],
)
def test_resume_refuses_a_problem_flag_that_differs(capsys, tmp_path, problem, stored_args, flags, given, stored):
    """An optimizee flag typed with --resume that differs from the checkpoint's problem is refused, naming both
    values (a recipe without --dataset is Fashion-MNIST's)."""
    path = _stored_recipe(tmp_path, problem, stored_args)
    err = error_line(capsys, ["train", "--problem", problem, "--epochs", "200", "--resume", str(path), *flags])
    assert err.startswith(f"l2l train: error: {given} differs from the checkpoint's {stored} ({path}); drop the flag")


def test_resume_with_the_same_problem_flags_typed_continues(tmp_path, capsys):
    """An MNIST run resumed with its optimizee flags typed again continues; another value is refused."""
    out = tmp_path / "m.pt"
    problem = ["--problem", "mnist", "--hidden", "8", "--activation", "relu", "--init-scale", "0.05", "--quiet"]
    tiny = ["--steps", "4", "--unroll", "2", "--val-every", "1", "--val-tasks", "1", "--out", str(out)]
    assert main(["train", *problem, *tiny, "--epochs", "1"]) == 0
    assert main(["train", *problem, "--resume", str(out), "--out", str(out), "--epochs", "2"]) == 0
    assert read_checkpoint(out)["training"]["epoch"] == 2
    capsys.readouterr()
    err = error_line(capsys, ["train", *problem, "--hidden", "20", "--resume", str(out), "--epochs", "3"])
    assert "--hidden 20 differs from the checkpoint's 8" in err


def test_full_disk_while_checkpointing_is_one_line_with_the_resume_command(capsys, tmp_path, monkeypatch):
    """ENOSPC after a first good checkpoint: exit status 2, one line naming the failed write, the last good checkpoint
    and its epoch, and the command that resumes; that checkpoint still loads, and the command continues the run."""
    out = tmp_path / "m.pt"
    disk_full_after(monkeypatch, writes=1)  # epoch 1 is written, epoch 2 is not
    args = ["train", "--problem", "quadratic", "--epochs", "4", *RECIPE, "--out", str(out), "--quiet"]
    err = error_line(capsys, args)
    monkeypatch.undo()
    resume = f"python -m l2l_helpers train --problem quadratic --resume {out} --out {out} --epochs 4"
    assert err == (
        f"l2l train: error: could not write checkpoint {out} (epoch 2): [Errno 28] No space left on device; "
        f"the last good checkpoint is {out} (epoch 1); free space, then resume: {resume}"
    )
    assert read_checkpoint(out)["training"]["epoch"] == 1
    load_optimizer(out)
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no half-written temporary file
    assert main(shlex.split(resume)[3:]) == 0
    assert read_checkpoint(out)["training"]["epoch"] == 4


def test_full_disk_before_any_checkpoint(capsys, tmp_path, monkeypatch):
    """ENOSPC on the first write: nothing to resume, so the line says to run the command again."""
    out = tmp_path / "m.pt"
    disk_full_after(monkeypatch, writes=0)
    args = ["train", "--problem", "quadratic", "--epochs", "2", *RECIPE, "--out", str(out), "--quiet"]
    err = error_line(capsys, args)
    assert err.endswith(f"no earlier checkpoint is at {out}; free space, then run the command again")
    assert list(tmp_path.iterdir()) == []


def test_resume_command_of_the_default_checkpoint_path(capsys, tmp_path, monkeypatch):
    """Without --out the resume command needs none either (checkpoints/<problem>.pt is the default)."""
    monkeypatch.chdir(tmp_path)
    disk_full_after(monkeypatch, writes=1)
    err = error_line(capsys, ["train", "--problem", "quadratic", "--epochs", "3", *RECIPE, "--quiet"])
    assert err.endswith(
        "free space, then resume: python -m l2l_helpers train --problem quadratic --resume checkpoints/quadratic.pt "
        "--epochs 3"
    )
