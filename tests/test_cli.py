"""The command line: one-line errors with exit status 2, and a tiny train / resume / evaluate round."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from l2l_helpers import read_checkpoint
from l2l_helpers.cli import main

TINY = ["--steps", "10", "--unroll", "5", "--tasks-per-epoch", "2", "--val-every", "1", "--val-tasks", "2"]


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    """Run ``python -m l2l_helpers`` as a user would."""
    env = {**os.environ, "L2L_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "l2l_helpers", *args], capture_output=True, text=True, env=env)


def error_line(capsys: pytest.CaptureFixture, args: list[str]) -> str:
    """Run main() in-process, expect exit status 2, return the single stderr line."""
    try:
        status = main(args)
    except SystemExit as exc:  # argparse errors
        status = exc.code
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["train", "--problem", "foo"], "--problem"),
        (["train", "--problem", "mnist", "--activation", "softplus"], "--activation"),
        (["train", "--problem", "quadratic", "--epochs", "0"], "--epochs"),
        (["train", "--problem", "quadratic", "--epochs", "ten"], "--epochs"),
        (["train", "--problem", "quadratic", "--lr", "-1"], "--lr"),
        (["train", "--problem", "quadratic", "--steps", "10", "--unroll", "20"], "unroll"),
        (["train", "--problem", "quadratic", "--preprocessing", "sqrt"], "--preprocessing"),
        (["train", "--problem", "quadratic", "--device", "tpu"], "--device"),
        (["evaluate", "--problem", "quadratic", "--optimizer", "no-such-optimizer"], "no pretrained optimizer"),
        (["evaluate", "--problem", "quadratic", "--optimizer", "missing.pt"], "no such file"),
        (["evaluate", "--problem", "quadratic", "--baselines", "adam,lbfgs"], "lbfgs"),
        (["evaluate", "--problem", "quadratic", "--lr", "adam=fast"], "adam=fast"),
        (["evaluate", "--problem", "quadratic", "--baselines", "none"], "nothing to evaluate"),
        (["run-notebooks", "--notebooks", "no/such/folder"], "does not exist"),
    ],
)
def test_bad_input_gives_one_line_error(capsys, args, fragment):
    """Every invalid value ends in one stderr line naming the problem, exit status 2, no traceback."""
    assert fragment in error_line(capsys, args)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_a_clear_error(capsys):
    """--device cuda on a machine without a GPU says so."""
    assert "no CUDA GPU" in error_line(capsys, ["train", "--problem", "quadratic", "--device", "cuda"])


def test_not_a_checkpoint_is_a_clear_error(capsys, tmp_path):
    """A file that is not a checkpoint, given as --optimizer or --resume, is named as such."""
    bogus = tmp_path / "notes.pt"
    bogus.write_text("not a checkpoint")
    assert "not an l2l optimizer checkpoint" in error_line(
        capsys, ["evaluate", "--problem", "quadratic", "--optimizer", str(bogus)]
    )
    assert "not an l2l optimizer checkpoint" in error_line(
        capsys, ["train", "--problem", "quadratic", "--resume", str(bogus)]
    )


def test_subprocess_error_has_no_traceback(tmp_path):
    """As a user runs it: a bad value prints one line and exits 2."""
    done = run_cli(
        ["train", "--problem", "quadratic", "--steps", "5", "--unroll", "10", "--out", str(tmp_path / "x.pt")]
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["l2l train: error: unroll=10 is longer than the horizon steps=5"]


def test_train_resume_evaluate_round_trip(tmp_path, capsys):
    """train writes a checkpoint with its command; --resume continues the epoch count; evaluate reads it."""
    out = tmp_path / "quad.pt"
    assert main(["train", "--problem", "quadratic", "--epochs", "2", *TINY, "--out", str(out), "--quiet"]) == 0
    first = read_checkpoint(out)
    assert first["training"]["epoch"] == 2
    assert "train --problem quadratic" in first["metadata"]["command"]
    assert (
        main(["train", "--problem", "quadratic", "--epochs", "3", "--resume", str(out), "--out", str(out), "--quiet"])
        == 0
    )
    second = read_checkpoint(out)
    assert second["training"]["epoch"] == 3
    assert [h["epoch"] for h in second["training"]["history"]] == [1, 2, 3]
    capsys.readouterr()
    args = ["evaluate", "--problem", "quadratic", "--optimizer", str(out), "--baselines", "adam,sgd"]
    assert main([*args, "--lr", "adam=0.1", "--steps", "10", "--tasks", "3", "--tune-tasks", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in report["results"]}
    assert set(by_name) == {"quad", "Adam", "SGD"}
    assert by_name["Adam"]["lr"] == 0.1
    assert all(r["tasks"] == 3 and r["steps"] == 10 for r in report["results"])


def test_weights_only_file_cannot_be_resumed(tmp_path, capsys):
    """A checkpoint without training state is refused by --resume with a reason."""
    from l2l_helpers import CoordinatewiseLSTM, save_checkpoint

    path = save_checkpoint(tmp_path / "w.pt", CoordinatewiseLSTM())
    assert "weights only" in error_line(capsys, ["train", "--problem", "quadratic", "--resume", str(path)])


def test_evaluate_table(capsys):
    """The default output is a table with one row per optimizer."""
    args = ["evaluate", "--problem", "quadratic", "--baselines", "sgd,nag", "--steps", "5", "--tasks", "2"]
    assert main([*args, "--tune-tasks", "2"]) == 0
    out = capsys.readouterr().out
    assert "SGD" in out and "NAG" in out and "mean final" in out


def test_console_script_help():
    """python -m l2l_helpers --help lists the three commands."""
    done = run_cli(["--help"])
    assert done.returncode == 0
    for command in ("train", "evaluate", "run-notebooks"):
        assert command in done.stdout
    assert Path(sys.executable).exists()
