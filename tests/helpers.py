"""Small pieces several test files share: tiny meta-training settings, seeded optimizer networks, the CLI's error
line, a full disk, how the browser tests start the system's Chromium, and a notebook's marked teaching cell."""

from __future__ import annotations

import ast
import errno
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import nbformat
import pytest
import torch

import l2l_helpers as l2l
from l2l_helpers.cli.main import main
from l2l_helpers.meta import checkpoints

#: Chromium's flags for a headless run on a machine with no network and no GPU (never `playwright install`).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

#: A meta-training run of a few seconds on quadratics: short horizon, two unrolls, validation every epoch.
TINY = {"steps": 10, "unroll": 5, "tasks_per_epoch": 2, "val_every": 1, "val_tasks": 2, "lr": 1e-2}


def fresh_net(seed: int = 0, **kwargs) -> l2l.CoordinatewiseLSTM:
    """An untrained optimizer network with seeded weights."""
    torch.manual_seed(seed)
    return l2l.CoordinatewiseLSTM(**kwargs)


def lively_net(seed: int = 0, hidden: int = 8) -> l2l.CoordinatewiseLSTM:
    """A random net with a non-trivial output layer, so its updates clearly move theta."""
    net = fresh_net(seed, num_layers=2, hidden_size=hidden, output_scale=0.1)
    with torch.no_grad():
        net.output.weight.normal_()
        net.output.bias.normal_(0, 0.1)
    return net


def train(epochs: int, **kwargs) -> tuple[l2l.CoordinatewiseLSTM, l2l.MetaTrainResult]:
    """A tiny meta-training run on quadratics from the seeded network."""
    net = fresh_net()
    config = l2l.MetaTrainConfig(epochs=epochs, **TINY)
    return net, l2l.meta_train(net, l2l.QuadraticProblem(), config, progress=False, **kwargs)


def same_weights(a: dict, b: dict) -> bool:
    """Bit-for-bit equality of two state dicts."""
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def error_line(capsys: pytest.CaptureFixture, args: list[str]) -> str:
    """Run the CLI's main() in-process, expect exit status 2, return the single stderr line."""
    try:
        status = main(args)
    except SystemExit as exc:  # argparse errors
        status = exc.code
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


def disk_full_after(monkeypatch: pytest.MonkeyPatch, writes: int) -> None:
    """Checkpoint writes fail with ENOSPC (after half a file) once ``writes`` have succeeded."""
    real_save, done = checkpoints.torch.save, []

    def save(obj, fh, *args, **kwargs):
        if len(done) >= writes:
            fh.write(b"PK\x03\x04 half a file")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done.append(1)
        return real_save(obj, fh, *args, **kwargs)

    monkeypatch.setattr(checkpoints.torch, "save", save)


def teaching_cell(notebook: Path, marker: str) -> str:
    """The source of the notebook's one code cell that starts with ``marker`` (its plain-PyTorch cell)."""
    cells = [c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    found = [s for s in cells if s.startswith(marker)]
    assert len(found) == 1, f"{notebook.name} needs exactly one code cell starting with {marker!r}"
    return found[0]


def cell_functions(
    notebook: Path, marker: str, namespace: dict, names: Sequence[str] | None = None
) -> dict[str, Callable]:
    """The functions the marked cell defines (only ``names`` where given), and nothing else of the cell.

    They are exec'd in ``namespace``, which holds only what the test gives them (``torch``, ``math``, ...), so a
    function that leans on a name the cell's other lines define fails here instead of passing by accident.
    """
    tree = ast.parse(teaching_cell(notebook, marker))
    defs = [node for node in tree.body if isinstance(node, ast.FunctionDef) and (names is None or node.name in names)]
    missing = set(names or ()) - {node.name for node in defs}
    assert defs and not missing, f"the cell {marker!r} of {notebook.name} defines no {sorted(missing) or 'function'}"
    exec(compile(ast.Module(body=defs, type_ignores=[]), str(notebook), "exec"), namespace)
    return {node.name: namespace[node.name] for node in defs}
