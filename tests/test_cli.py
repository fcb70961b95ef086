"""The command line: one-line errors with exit status 2, and a tiny train / resume / evaluate round."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import error_line, same_weights

import l2l_helpers as l2l
from l2l_helpers import read_checkpoint
from l2l_helpers.cli.main import main
from l2l_helpers.meta.pretrained import pretrained_path

TINY = ["--steps", "10", "--unroll", "5", "--tasks-per-epoch", "2", "--val-every", "1", "--val-tasks", "2"]


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    """Run ``python -m l2l_helpers`` as a user would."""
    env = {**os.environ, "L2L_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "l2l_helpers", *args], capture_output=True, text=True, env=env)


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
    # the file keeps the command that started the run (what make pretrained records), the resume listed after it
    assert second["metadata"]["command"] == first["metadata"]["command"]
    assert len(second["metadata"]["resumed_with"]) == 1 and "--resume" in second["metadata"]["resumed_with"][0]
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


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch quadratic checkpoint whose optimizer network is not the default one (1 x 10 units, ...)."""
    out = tmp_path_factory.mktemp("small") / "small.pt"
    arch = ["--lstm-layers", "1", "--lstm-hidden", "10", "--preprocessing", "none", "--p", "5", "--output-scale", "0.5"]
    assert main(["train", "--problem", "quadratic", "--epochs", "1", *TINY, *arch, "--out", str(out), "--quiet"]) == 0
    assert read_checkpoint(out)["config"] == {
        "num_layers": 1,
        "hidden_size": 10,
        "preprocessing": "none",
        "p": 5.0,
        "output_scale": 0.5,
    }
    return out


@pytest.mark.parametrize(
    ("flag", "given", "stored"),
    [
        ("--lstm-hidden", "20", "10"),
        ("--lstm-layers", "2", "1"),
        ("--preprocessing", "log_sign", "'none'"),
        ("--p", "10", "5.0"),
        ("--output-scale", "0.1", "0.5"),
    ],
)
def test_resume_with_other_architecture_is_an_error(capsys, tmp_path, small_checkpoint, flag, given, stored):
    """An architecture flag that contradicts the --resume checkpoint is refused, naming both values; nothing trains."""
    out = tmp_path / "continued.pt"
    args = ["train", "--problem", "quadratic", "--epochs", "2", "--resume", str(small_checkpoint), "--out", str(out)]
    err = error_line(capsys, [*args, flag, given, "--quiet"])
    assert err.startswith("l2l train: error: ")
    assert f"{flag} {given}" in err and stored in err and str(small_checkpoint) in err
    assert "drop" in err and "--out" in err
    assert not out.exists()
    assert read_checkpoint(small_checkpoint)["training"]["epoch"] == 1


def test_resume_with_agreeing_architecture_flags(tmp_path, small_checkpoint):
    """Architecture flags that agree with the --resume checkpoint (or are not given) are accepted."""
    out = tmp_path / "continued.pt"
    args = ["train", "--problem", "quadratic", "--epochs", "2", "--resume", str(small_checkpoint), "--out", str(out)]
    same = ["--lstm-layers", "1", "--lstm-hidden", "10", "--preprocessing", "none", "--p", "5.0"]
    assert main([*args, *same, "--output-scale", ".5", "--quiet"]) == 0
    continued = read_checkpoint(out)
    assert continued["training"]["epoch"] == 2
    assert continued["config"] == read_checkpoint(small_checkpoint)["config"]


def test_new_training_uses_default_architecture(tmp_path):
    """Without architecture flags a new run gets the paper's network (the defaults that --help names)."""
    out = tmp_path / "default.pt"
    assert main(["train", "--problem", "quadratic", "--epochs", "1", *TINY, "--out", str(out), "--quiet"]) == 0
    assert read_checkpoint(out)["config"] == {
        "num_layers": 2,
        "hidden_size": 20,
        "preprocessing": "log_sign",
        "p": 10.0,
        "output_scale": 0.1,
    }


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child: SIGINT back to its default, so Python installs its Ctrl-C handler even when the tests run as
    a background job or under nohup (which start with SIGINT ignored, and a child inherits that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_cli(args: list[str], **kwargs) -> subprocess.Popen:
    """Start ``python -m l2l_helpers`` in the background."""
    env = {**os.environ, "L2L_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "l2l_helpers", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=_ctrl_c_as_in_a_terminal,
        **kwargs,
    )


CLI_TINY = ["--problem", "quadratic", "--steps", "10", "--unroll", "5", "--tasks-per-epoch", "2"]


CLI_TINY += ["--val-every", "1", "--val-tasks", "2", "--checkpoint-every", "1", "--quiet", "--seed", "3"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_signal_saves_and_resume_matches_uninterrupted(tmp_path, sig):
    """SIGTERM/SIGINT to `l2l train` saves a checkpoint and exits 130; --resume ends bit-for-bit as a straight run."""
    path = tmp_path / "sig.pt"
    proc = start_cli(["train", *CLI_TINY, "--epochs", "100000", "--out", str(path)])
    deadline = time.time() + 60
    while time.time() < deadline:
        if path.exists() and l2l.read_checkpoint(path)["training"]["epoch"] >= 2:
            break
        time.sleep(0.2)
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # it did not stop: never leave a training running behind the tests
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in out and "--resume" in out
    done = l2l.read_checkpoint(path)["training"]["epoch"]
    assert done >= 2
    target = str(done + 2)
    resumed = start_cli(["train", *CLI_TINY, "--epochs", target, "--resume", str(path), "--out", str(path)])
    straight_path = tmp_path / "straight.pt"
    assert resumed.wait(timeout=120) == 0, resumed.stderr.read()
    straight = start_cli(["train", *CLI_TINY, "--epochs", target, "--out", str(straight_path)])
    assert straight.wait(timeout=120) == 0, straight.stderr.read()
    a, b = l2l.read_checkpoint(path), l2l.read_checkpoint(straight_path)
    assert a["training"]["epoch"] == b["training"]["epoch"] == done + 2
    assert same_weights(a["training"]["last_state"], b["training"]["last_state"])
    assert same_weights(a["state_dict"], b["state_dict"])


def test_mnist_training_records_its_images_and_evaluate_refuses_seen_ones(tmp_path, capsys):
    """An MNIST optimizer stores which images it was meta-trained on; evaluating it on any of them is refused."""
    from l2l_helpers.cli.main import _check_unseen
    from l2l_helpers.cli.parser import CLIError

    out = tmp_path / "m.pt"
    args = ["train", "--problem", "mnist", "--epochs", "1", *TINY, "--out", str(out), "--quiet"]
    assert main(args) == 0
    metadata = read_checkpoint(out)["metadata"]
    assert metadata["meta_training_images"]["source"] == "offline-sample"
    offline = l2l.load_mnist(verbose=False)
    leaky = l2l.MNISTData(*[getattr(offline, k) for k in ("train_images", "train_labels")] * 2, "full",
                          offline.train_ids, offline.train_ids)  # fmt: skip
    _check_unseen(metadata, l2l.MNISTProblem(), "m")  # the held-out split: fine
    with pytest.raises(CLIError, match="meta-trained on 8000 of the 8000 images"):
        _check_unseen(metadata, l2l.MNISTProblem(data=leaky), "m")


def test_init_from_starts_a_new_run_from_trained_weights(tmp_path, capsys, small_checkpoint):
    """--init-from (a curriculum's second stage): the network and weights of the given checkpoint, a fresh run with
    this command's recipe (epoch count from 0), the first stage recorded through a later resume."""
    out = tmp_path / "stage2.pt"
    args = ["train", "--problem", "quadratic", "--epochs", "1", *TINY, "--init-from", str(small_checkpoint)]
    assert main([*args, "--lr", "1e-9", "--out", str(out), "--quiet"]) == 0
    second, first = read_checkpoint(out), read_checkpoint(small_checkpoint)
    assert second["config"] == first["config"]  # its network, not the default one
    assert second["training"]["epoch"] == 1 and second["training"]["config"]["lr"] == 1e-9
    for name, tensor in first["state_dict"].items():  # started from its weights (a 1e-9 step barely moves them)
        torch.testing.assert_close(second["state_dict"][name], tensor, rtol=0, atol=1e-6)
    start = second["metadata"]["initialised_from"]
    assert start["source"] == str(small_checkpoint) and start["command"] == first["metadata"]["command"]
    resume = ["train", "--problem", "quadratic", "--epochs", "2", "--resume", str(out), "--out", str(out), "--quiet"]
    assert main(resume) == 0
    assert read_checkpoint(out)["metadata"]["initialised_from"] == start
    capsys.readouterr()


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--lstm-hidden", "20"], "drop --lstm-hidden"),
        (["--resume", "x.pt"], "give one"),
        (["--problem", "mnist"], "was trained on quadratic, not mnist"),
    ],
)
def test_init_from_refuses_contradictions(capsys, tmp_path, small_checkpoint, extra, fragment):
    """--init-from keeps the given network, excludes --resume and refuses another problem's optimizer."""
    out = tmp_path / "never.pt"
    args = ["train", "--problem", "quadratic", "--epochs", "1", "--init-from", str(small_checkpoint), "--out", str(out)]
    err = error_line(capsys, [*args, *extra, "--quiet"])
    assert fragment in err
    assert not out.exists()


def test_init_from_unknown_name_lists_the_shipped_ones(capsys):
    err = error_line(capsys, ["train", "--problem", "mnist", "--init-from", "no_such_optimizer", "--epochs", "1"])
    assert "no pretrained optimizer named 'no_such_optimizer'" in err and "mnist" in err


def test_init_from_an_optimizer_trained_on_other_mnist_images_is_refused(capsys, tmp_path):
    """Warm-starting from an optimizer meta-trained on other images would hide them from the leak check: refused."""
    from l2l_helpers import CoordinatewiseLSTM, save_checkpoint

    other = {"source": "full", "images": "the official training set (60000 images)"}
    path = save_checkpoint(
        tmp_path / "other.pt", CoordinatewiseLSTM(), {"problem_name": "mnist", "meta_training_images": other}
    )
    out = tmp_path / "never.pt"
    args = ["train", "--problem", "mnist", "--epochs", "1", "--init-from", str(path), "--out", str(out), "--quiet"]
    assert "other MNIST images" in error_line(capsys, args)
    assert not out.exists()


def test_init_from_accepts_architecture_flags_that_agree(tmp_path, small_checkpoint):
    """As with --resume, a flag that repeats the starting network's value is no contradiction."""
    out = tmp_path / "stage2.pt"
    args = ["train", "--problem", "quadratic", "--epochs", "1", *TINY, "--init-from", str(small_checkpoint)]
    assert main([*args, "--lstm-hidden", "10", "--lstm-layers", "1", "--out", str(out), "--quiet"]) == 0
    assert read_checkpoint(out)["config"] == read_checkpoint(small_checkpoint)["config"]


def test_conv_problem_trains_and_evaluates_on_a_label_subset(tmp_path, capsys):
    """`--problem conv --labels` meta-trains on those classes only and stores them in the recipe; bad subsets and
    --labels on another problem are refused with what to fix."""
    out = tmp_path / "conv.pt"
    tiny = ["--steps", "4", "--unroll", "2", "--tasks-per-epoch", "1", "--val-every", "1", "--val-tasks", "1"]
    assert main(["train", "--problem", "conv", "--labels", "3,7", "--epochs", "1", *tiny, "--out", str(out)]) == 0
    metadata = read_checkpoint(out)["metadata"]
    assert metadata["problem_name"] == "conv" and metadata["problem_args"] == {"labels": [3, 7]}
    assert "labels [3, 7]" in metadata["problem"]
    capsys.readouterr()
    args = ["evaluate", "--problem", "conv", "--labels", "3,7", "--optimizer", str(out), "--baselines", "adam"]
    assert main([*args, "--lr", "adam=0.01", "--steps", "3", "--tasks", "2"]) == 0
    printed = capsys.readouterr().out
    assert "\nconv " in printed and "Adam" in printed  # the learned optimizer is named after its file
    assert main(["train", "--problem", "conv", "--labels", "4", "--epochs", "1"]) == 2
    assert "one label" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:  # argparse's own error: one line, status 2
        main(["train", "--problem", "conv", "--labels", "1,x", "--epochs", "1"])
    assert exited.value.code == 2 and "comma list" in capsys.readouterr().err
    assert main(["train", "--problem", "mnist", "--labels", "1,2", "--epochs", "1"]) == 2
    assert "--labels belongs to the conv problem" in capsys.readouterr().err


def test_conv_trains_two_lstms_by_default_and_one_with_one_lstm(tmp_path, capsys):
    """The paper's conv optimizer is one LSTM per layer type; --one-lstm is its ablation. A run keeps its kind:
    --resume with the other kind, --one-lstm or --dataset on another problem are refused with what to do."""
    tiny = ["--steps", "4", "--unroll", "2", "--val-every", "1", "--val-tasks", "1", "--epochs", "1", "--quiet"]
    two, one = tmp_path / "two.pt", tmp_path / "one.pt"
    assert main(["train", "--problem", "conv", "--labels", "0,1", *tiny, "--out", str(two)]) == 0
    assert main(["train", "--problem", "conv", "--labels", "0,1", "--one-lstm", *tiny, "--out", str(one)]) == 0
    assert isinstance(l2l.load_optimizer(two)[0], l2l.GroupedLSTM)
    assert read_checkpoint(two)["config"]["groups"].keys() == {"conv", "fc"}
    assert type(l2l.load_optimizer(one)[0]) is l2l.CoordinatewiseLSTM
    assert "--one-lstm was given but its optimizer has one LSTM per parameter group (conv, fc)" in error_line(
        capsys, ["train", "--problem", "conv", "--labels", "0,1", "--one-lstm", "--resume", str(two), "--epochs", "2"]
    )
    assert "--one-lstm chooses between one and two LSTMs on the conv problem" in error_line(
        capsys, ["train", "--problem", "quadratic", "--one-lstm", "--epochs", "1"]
    )
    assert "--dataset belongs to the conv problem" in error_line(
        capsys, ["evaluate", "--problem", "quadratic", "--dataset", "cifar10", "--baselines", "adam"]
    )
    args = ["evaluate", "--problem", "conv", "--labels", "2,3", "--optimizer", str(two), "--baselines", "none"]
    assert main([*args, "--steps", "2", "--tasks", "1"]) == 0  # another label subset: the routing of its size


def test_version_names_the_package_and_torch(capsys):
    """--version prints the package's version and torch's, and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    from importlib.metadata import version

    assert capsys.readouterr().out.strip() == f"l2l-helpers {version('l2l-helpers')} (torch {torch.__version__})"


def test_version_without_the_installed_package_reads_pyproject(monkeypatch):
    """Run from a checkout that is not installed, the version is pyproject.toml's."""
    import importlib.metadata

    tomllib = pytest.importorskip("tomllib")
    from l2l_helpers.cli import parser as cli

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    pyproject = Path(cli.__file__).resolve().parents[2] / "pyproject.toml"
    assert cli.package_version() == tomllib.loads(pyproject.read_text())["project"]["version"]


def _without_help(parser, where: str) -> list[str]:
    """Every action of ``parser`` and of its subcommands' parsers (but -h) that has no help text."""
    import argparse

    from l2l_helpers.cli.parser import subcommands

    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{where} {'/'.join(action.option_strings) or action.dest}")
        if isinstance(action, argparse._SubParsersAction):
            described = {a.dest for a in action._choices_actions if a.help}
            missing += [f"{where} {name} (the command)" for name in action.choices if name not in described]
    for name, sub in subcommands(parser).items():
        missing += _without_help(sub, f"{where} {name}")
    return missing


def test_every_flag_of_every_command_has_a_help_text():
    """--help explains each option of each command (and each command) in the list."""
    from l2l_helpers.cli.parser import build_parser

    assert _without_help(build_parser(), "l2l") == []


def test_list_reads_every_shipped_optimizer_and_trains_nothing(capsys, monkeypatch):
    """`list --json`: one record per shipped optimizer with its seeds grouped, its problem, recipe and each seed's
    best validation score as stored in its file; nothing is meta-trained."""
    from l2l_helpers.cli import train as cli
    from l2l_helpers.meta import pretrained

    def no_training(*args, **kwargs):
        raise AssertionError("list must not train")

    monkeypatch.setattr(cli, "meta_train", no_training)
    monkeypatch.setattr(pretrained, "meta_train", no_training)
    assert main(["list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    listed = [name for row in rows for name in row["seeds"]]
    assert sorted(listed) == l2l.available_pretrained()  # each shipped file once
    quadratic = next(row for row in rows if row["name"] == "quadratic")
    assert quadratic["seeds"] == ["quadratic", "quadratic_seed1", "quadratic_seed2"]
    assert quadratic["problem"] == "quadratic"
    recipe = l2l.recipe_of("quadratic").training
    assert quadratic["recipe"]["epochs"] == recipe.epochs and quadratic["recipe"]["lr"] == recipe.lr
    assert quadratic["recipe"]["unroll"] == recipe.unroll and quadratic["recipe"]["preprocessing"] == "log_sign"
    for entry in quadratic["validation"]["seeds"]:
        stored = read_checkpoint(pretrained_path(entry["name"]))
        assert entry["best_val_meta_loss"] == stored["metadata"]["best_val_meta_loss"]
        assert entry["best_val_meta_loss"] == min(v["val_meta_loss"] for v in stored["training"]["val_history"])
    art = next(row for row in rows if row["name"] == "neural_art")
    assert art["recipe"]["select"] == "final" and art["validation"]["criterion"] == "mean final loss"


def test_list_table(capsys):
    """The default output is a table: one row per shipped optimizer, its seeds counted."""
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["name", "seeds", "problem", "network"]
    row = next(line.split() for line in lines if line.startswith("mnist "))
    assert row[:4] == ["mnist", "3", "seeds", "mnist"] and "2000" in row and "0.003" in row
    firsts = [name for name in l2l.available_pretrained() if not re.fullmatch(r".+_seed\d+", name)]
    assert [line.split()[0] for line in lines[1 : 1 + len(firsts)]] == firsts  # seeds share their first one's row


def test_run_notebooks_only_is_passed_as_a_list(monkeypatch, tmp_path):
    """--only 06,07 reaches run_notebooks as only=["06", "07"], beside the other options as they were."""
    from l2l_helpers.notebook import runner

    calls = []

    def fake_run(notebook_dir, out_dir, **kwargs):
        calls.append((notebook_dir, out_dir, kwargs))
        return runner.RunSummary(tmp_path)

    monkeypatch.setattr(runner, "run_notebooks", fake_run)
    assert main(["run-notebooks", "--only", "06, 07_ablation", "--profile", "smoke", "--out", str(tmp_path)]) == 0
    assert main(["run-notebooks"]) == 0
    assert calls == [
        (Path("notebooks"), tmp_path, {"profile": "smoke", "device": "auto", "only": ["06", "07_ablation"]}),
        (Path("notebooks"), None, {"profile": "default", "device": "auto", "only": None}),
    ]


@pytest.mark.parametrize(("only", "fragment"), [(",", "names no notebook"), ("99", "'99' names no notebook")])
def test_run_notebooks_only_that_names_nothing(capsys, tmp_path, only, fragment):
    """An empty --only, or one that matches no notebook, is one line naming it; nothing runs."""
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    err = error_line(capsys, ["run-notebooks", "--notebooks", str(notebooks), "--only", only, "--out", str(tmp_path)])
    assert fragment in err
    assert not list(tmp_path.iterdir())
