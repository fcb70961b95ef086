"""A plain (non-editable) install works away from the checkout: the wheel carries the data, the paintings, the
shipped optimizers and the C++ source, and notebook 06 runs at SMOKE size from another folder, offline."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import sys
import l2l_helpers as l2l
from l2l_helpers import settings
assert l2l.__file__.startswith(sys.argv[1]), l2l.__file__
assert settings.CHECKOUT_DIR is None and settings.assets_dir().is_relative_to(sys.argv[1])
data = l2l.load_mnist()
assert data.source == "offline-sample", data.source
assert l2l.load_style("the_scream", 32).shape == (3, 32, 32)
assert set(l2l.available_pretrained()) >= {"quadratic", "mnist", "neural_art"}
assert l2l.kernels.native.SOURCE.is_file()
print("installed copy OK")
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package built as a wheel (no editable hooks) and unpacked into a folder of its own."""
    work = tmp_path_factory.mktemp("install")
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(work), "."]
    done = subprocess.run(build, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"pip wheel failed: {done.stderr[-2000:]}")
    (wheel,) = work.glob("l2l_helpers-*.whl")
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def run_elsewhere(site: Path, command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), "L2L_OFFLINE": "1", "L2L_DATA_DIR": str(cwd / "data")}
    env["L2L_RESULTS_DIR"] = str(cwd / "results")
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_installed_copy_finds_its_data(installed, tmp_path):
    done = run_elsewhere(installed, [sys.executable, "-c", CHECK, str(installed)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "installed copy OK" in done.stdout


@pytest.mark.slow  # 25-50 s: sent to a worker first in make test
def test_notebook_06_runs_from_another_folder(installed, tmp_path):
    """What a reader does after ``pip install .``: open a notebook anywhere and run it (SMOKE size here)."""
    notebook = tmp_path / "06_mnist.ipynb"
    notebook.write_bytes((ROOT / "notebooks" / "06_mnist.ipynb").read_bytes())
    command = [sys.executable, "-m", "papermill", "-k", "python3", "-p", "SMOKE", "True", "-p", "INTERACTIVE", "False"]
    done = run_elsewhere(installed, [*command, str(notebook), str(tmp_path / "out.ipynb")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "results" / "06_mnist.json").is_file()
