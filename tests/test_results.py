"""The notebooks' results files and claim checks."""

from __future__ import annotations

import json
import math

import pytest
import torch

from l2l_helpers import check, claim, claims_markdown, record, software_check


def test_record_merges_and_writes_plain_json(tmp_path, monkeypatch):
    """Values merge across calls, tensors and inf become JSON, a claim with the same text is replaced."""
    monkeypatch.setenv("L2L_RESULTS_DIR", str(tmp_path))
    record("nb", {"a": torch.tensor([1.0, 2.0]), "b": math.inf}, [claim("x holds", "1 < 2", True)])
    path = record("nb", {"c": 3}, [claim("x holds", "1 < 3", False), claim("y", "-", None)])
    data = json.loads(path.read_text())
    assert data["values"] == {"a": [1.0, 2.0], "b": "inf", "c": 3}
    empty = dict.fromkeys(("id", "interval", "n", "seeds", "method", "split", "planned_n"))
    assert data["claims"] == [
        {"claim": "x holds", "ours": "1 < 3", "verdict": "not reproduced", "reproduced": False, **empty},
        {"claim": "y", "ours": "-", "verdict": "not tested", "reproduced": None, **empty},
    ]
    record("nb", checks=[software_check("phi is shared", "5,301 parameters", True)])
    data = json.loads(path.read_text())
    assert data["checks"] == [{"check": "phi is shared", "ours": "5,301 parameters", "holds": True}]
    assert len(data["claims"]) == 2  # checks are kept apart, never among the claims


def test_check_asserts_unless_smoke(capsys):
    """A failing claim raises in a full run and is only reported in a SMOKE run."""
    assert check(True, "fine") is True
    with pytest.raises(AssertionError, match="claim does not hold: bad"):
        check(False, "bad")
    assert check(False, "bad", smoke=True) is False
    assert "too small" in capsys.readouterr().out


def test_claims_markdown():
    """One table row per claim: its verdict, and its interval with metric and sizes where it has one."""
    rows = [claim("a", "1", True), claim("b", "2", False), claim("c", "3", None)]
    rows.append(claim("d", "4", verdict="inconclusive", interval=[0.91, 1.05], metric="final loss", tasks=20, seeds=3))
    assert claims_markdown(rows).splitlines()[2:] == [
        "| a | 1 | reproduced |  |",
        "| b | 2 | **not reproduced** |  |",
        "| c | 3 | not tested |  |",
        "| d | 4 | inconclusive | [0.91, 1.05] (final loss; 20 tasks, 3 seeds) |",
    ]
    with_checks = claims_markdown(rows[:1], [software_check("same forward pass", "atol 1e-6", False)]).splitlines()
    assert with_checks[3:] == [
        "",
        "| software check | ours | holds |",
        "|---|---|---|",
        "| same forward pass | atol 1e-6 | **no** |",
    ]


def test_save_figure_writes_html_and_records_it(tmp_path, monkeypatch):
    """A figure becomes standalone HTML (local plotly.js) and is listed once per name in the results file."""
    import plotly.graph_objects as go

    from l2l_helpers import save_figure

    monkeypatch.setenv("L2L_RESULTS_DIR", str(tmp_path))
    fig = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]), layout={"title": "two points"})
    entry = save_figure("nb", "curve", fig, png=False)
    assert entry == {"name": "curve", "title": "two points", "html": "figures/nb-curve.html"}
    page = (tmp_path / entry["html"]).read_text()
    assert "plotly.min.js" in page and (tmp_path / "figures" / "plotly.min.js").exists()
    save_figure("nb", "curve", fig, png=False)
    data = json.loads((tmp_path / "nb.json").read_text())
    assert data["figures"] == [entry]
    with pytest.raises(ValueError, match="name"):
        save_figure("nb", "../escape", fig)


def test_save_figure_png_or_reason(tmp_path, monkeypatch):
    """With png=True there is either a PNG file or the reason kaleido could not make one."""
    import plotly.graph_objects as go

    from l2l_helpers import save_figure

    monkeypatch.setenv("L2L_RESULTS_DIR", str(tmp_path))
    entry = save_figure("nb", "bar", go.Figure(go.Bar(y=[1, 2])))
    if "png" in entry:
        assert (tmp_path / entry["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert entry["png_error"]


def test_save_figure_without_a_browser_says_so_and_does_not_wait(tmp_path, monkeypatch):
    """No Chrome/Chromium: the HTML is written and the reason given at once (kaleido's shared server would die in
    its thread and leave write_image waiting forever: a `make run` hung so)."""
    import plotly.graph_objects as go
    from choreographer.browsers.chromium import Chromium

    from l2l_helpers import save_figure
    from l2l_helpers.notebook import results

    monkeypatch.setenv("L2L_RESULTS_DIR", str(tmp_path))
    monkeypatch.setattr(Chromium, "find_browser", staticmethod(lambda **kwargs: None))
    results._png_renderer.cache_clear()
    try:
        entry = save_figure("nb", "bar", go.Figure(go.Bar(y=[1, 2])))
    finally:
        results._png_renderer.cache_clear()  # the other tests find the real browser (or its absence) again
    assert "png" not in entry and "no Chrome or Chromium" in entry["png_error"] and "apt install" in entry["png_error"]
    assert (tmp_path / entry["html"]).is_file()


def test_png_figures_are_embedded_in_the_report(tmp_path, monkeypatch):
    """With kaleido and Chromium, a key figure becomes a real PNG that report.md and report.html embed."""
    import shutil

    import plotly.graph_objects as go

    from l2l_helpers import save_figure
    from l2l_helpers.notebook.report import RunSummary, write_report

    pytest.importorskip("kaleido", reason="kaleido is missing (pip install -e '.[dev]')")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium; .ci/run does this)")
    monkeypatch.setenv("L2L_RESULTS_DIR", str(tmp_path / "results"))
    entry = save_figure("05_x", "curves", go.Figure(go.Scatter(y=[3, 1, 2]), layout={"title": "Loss curves"}))
    assert "png_error" not in entry and entry["png"] == "figures/05_x-curves.png"
    png = tmp_path / "results" / entry["png"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    report = write_report(RunSummary(tmp_path), "smoke", "cpu").read_text()
    assert "![Loss curves](results/figures/05_x-curves.png)" in report
    assert '<img src="results/figures/05_x-curves.png"' in (tmp_path / "report.html").read_text()
