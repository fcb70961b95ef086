"""The main job's runner: notebooks executed with the profile's parameters, a report that lists each one."""

from __future__ import annotations

import json
import os

import nbformat
import pytest

from l2l_helpers.notebook import runner
from l2l_helpers.notebook.runner import notebook_parameters, run_notebooks, select_notebooks


def write_notebook(path, body: str, params: str = "SMOKE = False\nINTERACTIVE = True\nDEVICE = 'auto'") -> None:
    """A two-cell notebook: a tagged parameters cell, then ``body``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(params, metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell(body)]
    nbformat.write(nb, path)


RECORD = """
import json, os, pathlib
out = pathlib.Path(os.environ['L2L_RESULTS_DIR']) / '01_ok.json'
out.write_text(json.dumps({'claims': [{'claim': 'smoke is on', 'ours': SMOKE, 'reproduced': SMOKE}],
                           'values': {'interactive': INTERACTIVE, 'device': DEVICE},
                           'figures': [{'name': 'c', 'title': 'A curve', 'html': 'figures/01_ok-c.html',
                                        'png': 'figures/01_ok-c.png'}]}))
"""


def test_parameters_follow_the_profile(tmp_path):
    """Only parameters the notebook declares are passed; headless runs are never interactive."""
    path = tmp_path / "01_x.ipynb"
    write_notebook(path, "pass", params="SMOKE = False\nINTERACTIVE = True")
    assert notebook_parameters(path, "smoke", "cpu") == {"INTERACTIVE": False, "SMOKE": True}
    assert notebook_parameters(path, "default", "cpu") == {"INTERACTIVE": False, "SMOKE": False}
    with pytest.raises(ValueError, match="profile"):
        notebook_parameters(path, "huge", "cpu")


def test_only_selects_notebooks_by_number_or_name(tmp_path):
    """``only`` takes numbers ("06", "6") or stems, keeps the reading order, and names the notebooks on a typo."""
    paths = [tmp_path / f"{stem}.ipynb" for stem in ("01_problem_framing", "05_quadratics", "06_mnist")]
    assert select_notebooks(paths, None) == paths
    assert select_notebooks(paths, ["06", "01_problem_framing"]) == [paths[0], paths[2]]
    assert select_notebooks(paths, ["5"]) == [paths[1]] and select_notebooks(paths, "06") == [paths[2]]
    with pytest.raises(ValueError, match=r"'07', 'mnist'.*01_problem_framing, 05_quadratics, 06_mnist"):
        select_notebooks(paths, ["07", "06", "mnist"])
    with pytest.raises(ValueError, match="names no notebook"):
        select_notebooks(paths, [])
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    write_notebook(nbs / "01_ok.ipynb", "pass")
    with pytest.raises(ValueError, match="01_ok"):  # before anything runs or is written
        run_notebooks(nbs, tmp_path / "run", only=["02"], clock=False)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_run_notebooks_writes_report(tmp_path, monkeypatch, capfd):
    """An ok and a failing notebook: both executed, the report shows their status and the recorded claims; the
    terminal gets one line per notebook and a total in reference epochs, and no kernel warnings."""
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    write_notebook(nbs / "01_ok.ipynb", RECORD)
    write_notebook(nbs / "02_broken.ipynb", "raise RuntimeError('deliberate failure')")
    write_notebook(nbs / "helper_not_numbered.ipynb", "raise RuntimeError('must not run')")
    monkeypatch.setenv("L2L_RESULTS_DIR", "caller's own")
    epochs = iter([2.0, 3.0, 5.0])  # a stand-in clock: the reference epoch "took" 2 s, then 3 s, then 5 s
    monkeypatch.setattr(runner, "_reference_clock", lambda device: lambda: next(epochs))
    lines: list[str] = []
    summary = run_notebooks(nbs, tmp_path / "run", profile="smoke", device="cpu", echo=lines.append)
    assert os.environ["L2L_RESULTS_DIR"] == "caller's own"  # set only for the run's kernels
    assert lines[0] == f"l2l: 2 notebooks, profile smoke, device cpu, into {tmp_path / 'run'}"
    first, second = summary.runs
    assert first.reference_s == (2.0, 3.0) and second.reference_s == (3.0, 5.0)  # the epochs timed around each
    assert lines[1].startswith("01_ok ") and lines[1].endswith(" ref. epochs  claims: 1 reproduced, 0 not")
    assert f" s = {first.seconds / 2.5:4.0f} ref. epochs" in lines[1]
    assert lines[2].startswith("02_broken ") and "FAILED: " in lines[2] and "deliberate failure" in lines[2]
    expected = first.seconds / 2.5 + second.seconds / 4.0  # each notebook in the unit measured around it
    assert summary.reference_s == (2.0, 3.0, 5.0) and summary.reference_epochs == pytest.approx(expected)
    total = f"2 notebooks in {summary.seconds:.0f} s, 1 FAILED = {expected:.0f} reference epochs (one took 2.00-5.00 s"
    site = tmp_path / "run" / "site" / "index.html"
    assert lines[3].startswith(total) and lines[3].endswith(f"; report: {summary.report}; site: {site}")
    assert len(lines) == 4 and site.is_file()
    assert {p.name for p in site.parent.glob("*.html")} == {"index.html", "report.html", "01_ok.html", "02_broken.html"}
    assert "without encryption" not in capfd.readouterr().err  # the kernels ran over IPC, not TCP
    assert [r.name for r in summary.runs] == ["01_ok", "02_broken"]
    assert [r.name for r in summary.failed] == ["02_broken"]
    assert "deliberate failure" in summary.failed[0].error
    executed = nbformat.read(tmp_path / "run" / "01_ok.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "SMOKE = True" in injected[0].source and "INTERACTIVE = False" in injected[0].source
    results = json.loads((tmp_path / "run" / "results" / "01_ok.json").read_text())
    assert results["values"] == {"interactive": False, "device": "cpu"}
    report = summary.report.read_text()
    assert "| 01_ok | ok |" in report
    assert "| 1 reproduced, 0 not, 0 inconclusive, 0 too few tasks, 0 not tested |" in report
    assert f"| {first.seconds:.0f} | {first.seconds / 2.5:.0f} |" in report  # seconds, reference epochs
    assert "reference epochs (the plain reference epoch, on this machine, took 2.00-5.00 s, 3 timed" in report
    assert "FAILED: " in report and "deliberate failure" in report
    assert "| smoke is on | True | reproduced |  |" in report
    assert "![A curve](results/figures/01_ok-c.png)" in report
    assert "[A curve (interactive)](results/figures/01_ok-c.html)" in report
    assert "## Claims by paper figure" in report and "| Method (Section 2, Figures 2 and 3) | smoke is on |" in report
    page = (tmp_path / "run" / "report.html").read_text()  # report.md rendered by markdown-it-py
    assert "<table>" in page and '<img src="results/figures/01_ok-c.png" alt="A curve"' in page
    assert '<a href="results/figures/01_ok-c.html">' in page
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert (info["profile"], info["device"], info["machine"]["device"]) == ("smoke", "cpu", "cpu")
    assert [(r["name"], r["ok"]) for r in info["notebooks"]] == [("01_ok", True), ("02_broken", False)]
    assert (tmp_path / "run" / "FAILED").read_text().split() == ["02_broken"]


@pytest.mark.slow
def test_without_the_checkouts_benchmarks_the_run_goes_on_in_seconds(tmp_path, monkeypatch):
    """An installed package run on a folder of notebooks has no benchmarks/reference.py: the run says so and goes
    on, timed in seconds only."""
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    write_notebook(nbs / "01_ok.ipynb", RECORD)
    monkeypatch.setattr(runner, "CHECKOUT_DIR", None)
    lines: list[str] = []
    summary = run_notebooks(nbs, tmp_path / "run", profile="smoke", device="cpu", echo=lines.append)
    assert lines[1].startswith("times in seconds only, no reference epochs: benchmarks/reference.py not found")
    assert not summary.failed and summary.reference_s is None and summary.runs[0].reference_s is None
    assert "ref. epochs" not in lines[2] and "reference epochs" not in lines[3]


@pytest.mark.slow
def test_the_reference_clock_times_an_epoch():
    """The clock make run uses: one timed epoch of the plain reference per call, after a warm-up."""
    clock = runner._reference_clock("cpu")
    first, second = clock(), clock()
    assert 0 < first < 600 and 0 < second < 600
