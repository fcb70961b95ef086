"""A run's site and the claims by paper figure: grouping, tables, the README block, and (slow) a SMOKE run's site
opened in the system's Chromium, offline: no console errors, every plotly figure drawn, every link resolving."""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import re
import threading
import urllib.parse
from pathlib import Path

import nbformat
import pytest
from helpers import CHROMIUM_ARGS

from l2l_helpers.notebook import claims_table, pages, site
from l2l_helpers.notebook.claims_table import FIGURES, NOTEBOOK_FIGURES, claims_by_figure, figure_of
from l2l_helpers.notebook.results import claim

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "notebook", "figure"),
    [
        ("the LSTM outperforms SGD, NAG, RMSprop and Adam (Figure 4, left): lower final loss", "05_x", "fig4-left"),
        ("it is also ahead over the whole trajectory (sum of losses)", "05_quadratics", "fig4-left"),
        ("the LSTM beats SGD, NAG, RMSprop and Adam after 100 steps (Figure 4, middle)", "06_mnist", "fig4-middle"),
        ("and still beats the baselines (re-tuned for 200 steps) (Figure 4, right)", "06_mnist", "fig4-right"),
        ("as a torch.optim.Optimizer ... after 100 steps (not in the paper)", "06_mnist", "beyond"),
        ("the LSTM beats the tuned baselines (Figure 4, middle: the reference for Figure 5)", "07_x", "fig4-middle"),
        ("on an MLP with 40 hidden units (Figure 5, left)", "07_architectures", "fig5"),
        ("Figure 5 (left and middle): wider, deeper", "05_quadratics", "fig5"),
        ("compared with Figure 4's curves", "07_architectures", "fig5"),  # Figure 4 without a panel: the default
        ("the KS distance is over 3x the floor", "08_relu_failure", "fig5"),
        ("with the training painting (Figure 7, left) the LSTM ends lower", "09_neural_art", "fig7"),
        ("on 2 labels ... it transfers to labels it never saw (Figure 6, right)", "10_convnets", "fig6"),
        ("preprocessing keeps the optimizer working ... (Appendix A)", "03_preprocessing", "appendix"),
        ("on the training scale both inputs work", "03_preprocessing", "appendix"),
        ("LSTM+GAC ends lower than the coordinatewise LSTM", "11_beyond_the_paper", "appendix"),
        ("NTM-BFGS is ahead of the coordinatewise LSTM", "11_beyond_the_paper", "appendix"),
        ("past the 200 steps of Figure 4 it keeps improving (not claimed by the paper)", "11_beyond", "beyond"),
        ("meta-training lowers the meta-loss", "01_problem_framing", "method"),
        ("the coordinatewise LSTM of Figure 3 shares phi", "05_quadratics", "method"),
        ("a claim of a notebook the table does not know", "99_new", "beyond"),
    ],
)
def test_figure_of_reads_the_claim_text_then_the_notebook(text: str, notebook: str, figure: str):
    """A claim's figure: "not in the paper" first, then the figure it names, the appendix's pieces, the notebook."""
    assert figure_of(text, notebook) == figure


def test_every_notebook_has_a_figure():
    """Every numbered notebook has a default group, and every default is a group of the table."""
    numbers = {p.stem.split("_", 1)[0] for p in (ROOT / "notebooks").glob("[0-9]*.ipynb")}
    assert numbers and numbers <= set(NOTEBOOK_FIGURES)
    assert set(NOTEBOOK_FIGURES.values()) <= set(FIGURES)


def fabricated_results() -> dict[str, dict]:
    """Three notebooks' results as the notebooks write them, out of the paper's order on purpose."""
    return {
        "11_beyond_the_paper": {
            "claims": [
                claim("per second the LSTM ends lower (not claimed by the paper)", "...", verdict="inconclusive"),
                claim("LSTM+GAC (the appendix's cells) beats the baselines", "...", verdict="reproduced"),
            ]
        },
        "05_quadratics": {
            "claims": [
                claim(
                    "the LSTM | outperforms SGD (Figure 4, left)",
                    "LSTM/Adam 0.78",
                    verdict="reproduced",
                    interval=[0.353, 0.923],
                    metric="final loss: ratio of means LSTM/Adam",
                    tasks=20,
                    seeds=3,
                    ratio=0.777,
                ),
                claim("with the <paper's> recipe it outperforms all four", "...", verdict="not reproduced"),
            ]
        },
        "02_coordinatewise_lstm": {
            "claims": [
                claim("phi does not grow with n", "5,301 parameters", True),
                {"claim": "an old row", "ours": "x", "reproduced": False},  # written before verdicts existed
            ]
        },
        "04_meta_training": {"error": "unreadable results file: ..."},
    }


def test_claims_by_figure_groups_in_the_papers_order():
    """Groups follow the paper, claims keep their notebook's order; checks without an interval keep their verdict."""
    groups = claims_by_figure(fabricated_results())
    assert list(groups) == ["method", "fig4-left", "appendix", "beyond"]
    method = groups["method"]
    assert [(r.claim, r.verdict, r.ratio_text) for r in method] == [
        ("phi does not grow with n", "reproduced", ""),
        ("an old row", "not reproduced", ""),
    ]
    first = groups["fig4-left"][0]
    assert (first.n, first.seeds, first.notebook) == (20, 3, "05_quadratics")
    assert first.n_text == "20" and claims_table.ClaimRow("x", "05", "c", "reproduced", n=16, planned_n=20).n_text == (
        "16 (planned 20)"
    )
    assert first.ratio_text == "0.777 [0.353, 0.923] final loss, LSTM/Adam"
    tally = claims_table.verdict_tally(groups)
    assert tally == "6 claims: 3 reproduced, 2 not reproduced, 1 inconclusive"


def test_figure_table_markdown_and_html():
    """One Markdown table (the figure named on its first row, pipes escaped, a failed claim in bold) that a Markdown
    library reads as a table; the HTML version escapes the text and links the notebooks."""
    groups = claims_by_figure(fabricated_results())
    md = claims_table.figure_table_markdown(groups)
    lines = md.splitlines()
    assert lines[0] == "| paper figure | claim | verdict | ratio [95% interval] | n (tasks) | seeds | notebook |"
    assert len(lines) == 2 + 6
    assert lines[2].startswith("| Method (Section 2, Figures 2 and 3) | phi does not grow with n | reproduced |")
    assert lines[3].startswith("|  | an old row | **not reproduced** |")
    assert "| the LSTM \\| outperforms SGD (Figure 4, left) | reproduced | 0.777 [0.353, 0.923]" in md
    assert "| 20 | 3 | 05_quadratics |" in md
    rendered = pages.markdown_html(md)
    assert rendered.count("<tr>") == 7 and "<strong>not reproduced</strong>" in rendered
    assert "the LSTM | outperforms" in rendered  # the escaped pipe stays inside its cell
    page = claims_table.figure_table_html(groups, {"05_quadratics": "05_quadratics.html"})
    assert page.count("<tr class='figure'>") == 4 and "Figure 4, left: quadratics" in page
    assert "with the &lt;paper&#x27;s&gt; recipe" in page and "<paper" not in page
    assert "<a href='05_quadratics.html'>05_quadratics</a>" in page and "<a href='11_" not in page
    assert "<td class='verdict not-reproduced'>not reproduced</td>" in page


def test_markdown_html_rebases_relative_links_only():
    """The report rendered one folder down: its figures and links get ``../``; URLs, anchors and raw HTML do not."""
    text = "![A curve](results/figures/a.png)\n\n[page](results/figures/a.html) [paper](https://arxiv.org/abs/1) "
    text += "[x](#y)\n\n<script>alert(1)</script>"
    out = pages.markdown_html(text, base="../")
    assert '<img src="../results/figures/a.png" alt="A curve"' in out
    assert '<a href="../results/figures/a.html">' in out and '<a href="https://arxiv.org/abs/1">' in out
    assert '<a href="#y">' in out and "<script>" not in out and "&lt;script&gt;" in out
    assert '<img src="results/figures/a.png"' in pages.markdown_html(text)


def write_run(run_dir: Path, profile: str = "default", png_size: tuple[int, int] = (1400, 900)) -> Path:
    """A finished run as the runner leaves it: run.json, results with a key figure's PNG (a plot-like picture)."""
    from PIL import Image, ImageDraw

    figures = run_dir / "results" / "figures"
    figures.mkdir(parents=True)
    results = fabricated_results()
    results["05_quadratics"]["figures"] = [
        {"name": "loss_curves", "title": "Quadratics [held-out]", "png": "figures/05_quadratics-loss_curves.png"}
    ]
    for name, data in results.items():
        (run_dir / "results" / f"{name}.json").write_text(json.dumps(data))
    img = Image.new("RGB", png_size, "white")
    draw = ImageDraw.Draw(img)
    for k, colour in enumerate(("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")):
        points = [(x, 100 + 60 * k + int(600 * 0.99**x)) for x in range(0, png_size[0], 4)]
        draw.line(points, fill=colour, width=3)
    img.save(figures / "05_quadratics-loss_curves.png")
    info = {
        "written": "2026-12-08T10:15:00",
        "profile": profile,
        "device": "auto",
        "machine": {"cpu": "Test CPU 9000", "cores": 2, "torch": "2.13.0", "device": "cpu", "python": "3.11"},
        "seconds": 1827.0,
        "notebooks": [
            {"name": "02_coordinatewise_lstm", "ok": True, "seconds": 12.0, "parameters": {}},
            {"name": "05_quadratics", "ok": True, "seconds": 1815.0, "parameters": {}},
        ],
    }
    (run_dir / "run.json").write_text(json.dumps(info))
    return run_dir


README = "# l2l\n\nIntro.\n\n## Results\n\n<!-- results:begin -->\nold table\n<!-- results:end -->\n\nMore text.\n"


def test_readme_gets_the_table_the_run_line_and_a_small_figure(tmp_path):
    """The README's block is replaced (the rest kept), twice in a row gives the same file, and the key figure is
    copied at most 800 px wide and under 150 KB."""
    from PIL import Image

    run = write_run(tmp_path / "runs" / "20261208-101500")
    readme = tmp_path / "repo" / "README.md"
    readme.parent.mkdir()
    readme.write_text(README)
    site.write_readme(readme, run)
    text = readme.read_text()
    head, block = text.split("<!-- results:begin -->\n")
    block, tail = block.split("\n<!-- results:end -->")
    assert head == "# l2l\n\nIntro.\n\n## Results\n\n" and tail == "\n\nMore text.\n"
    assert "old table" not in block and "Claims of this run by paper figure: 6 claims: 3 reproduced" in block
    assert "| Figure 4, left: quadratics | the LSTM \\| outperforms SGD" in block  # claim by claim
    assert "![" not in block
    assert block.splitlines()[-1] == (
        "Run of 2026-12-08 10:15, profile `default`: 2 notebooks (all ok) in 30 min 27 s, on Test CPU 9000 "
        "(2 cores), torch 2.13.0, device cpu."
    )
    png = readme.parent / "docs" / "images" / "run_figure.png"
    with Image.open(png) as img:
        assert img.width == 800 and img.height == round(900 * 800 / 1400)
    assert png.stat().st_size < 150_000
    site.write_readme(readme, run)
    assert readme.read_text() == text


def test_readme_refuses_a_smoke_run_and_missing_markers(tmp_path, capsys):
    """The README shows a full run: a SMOKE run is refused unless allowed; a README without its markers is left
    as it was; the command line says so in one line and exits with 2."""
    run = write_run(tmp_path / "run", profile="smoke")
    readme = tmp_path / "README.md"
    readme.write_text(README)
    with pytest.raises(ValueError, match=r"SMOKE run.*--allow-smoke"):
        site.write_readme(readme, run)
    assert site.main(["--readme", str(readme), str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("l2l site: error: ") and "SMOKE" in err and err.count("\n") == 1
    assert readme.read_text() == README
    site.write_readme(readme, run, allow_smoke=True, figure=tmp_path / "fig.png")
    assert "profile `smoke`" in readme.read_text() and (tmp_path / "fig.png").is_file()
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match="results:begin"):
        site.write_readme(readme, run, allow_smoke=True)
    assert readme.read_text() == "no markers here\n"


def test_command_line_errors_and_help(tmp_path, capsys):
    """A folder that holds no run is one clear line and exit status 2; --help explains both uses."""
    assert site.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no executed notebooks" in err and "runs/<timestamp>" in err
    with pytest.raises(SystemExit) as exit_:
        site.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "RUN_DIR" in out and "--readme" in out and "--allow-smoke" in out


def executed_notebook(path: Path, smoke: bool, exception: bool) -> None:
    """A notebook with papermill's metadata, a plotly output, a tqdm bar (widgets) and links to other notebooks."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["papermill"] = {
        "duration": 12.5,
        "exception": exception,
        "parameters": {"SMOKE": smoke, "DEVICE": "cpu"},
        "end_time": "2026-12-08T10:15:00.123456",
    }
    bar = {
        "b": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_h", "IPY_MODEL_p"]}},
        "h": {"model_name": "HTMLModel", "state": {"value": "tuning: 100%"}},
        "p": {"model_name": "FloatProgressModel", "state": {"value": 4.0, "max": 4.0}},
        "s": {"model_name": "IntSliderModel", "state": {"value": 3}},
    }
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": bar, "version_major": 2}}
    figure = {"data": [{"type": "scatter", "y": [3, 1, 2]}], "layout": {"title": {"text": "curve"}}, "config": {}}
    widget = "application/vnd.jupyter.widget-view+json"
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "Next: [06 · MNIST](06_mnist.ipynb), back to [02](02_x.ipynb#top). $\\theta_{t+1} = \\theta_t - g_t$"
        ),
        nbformat.v4.new_code_cell(
            "fig",
            outputs=[
                nbformat.v4.new_output("display_data", {"application/vnd.plotly.v1+json": figure}),
                nbformat.v4.new_output("display_data", {widget: {"model_id": "b"}, "text/plain": "tuning: 0%"}),
                nbformat.v4.new_output("display_data", {widget: {"model_id": "s"}, "text/plain": "IntSlider(3)"}),
            ],
        ),
    ]
    nbformat.write(nb, path)


def test_notebook_pages_and_index_from_papermill_metadata(tmp_path):
    """A run without run.json: times and status from papermill's metadata; plotly drawn by the site's own
    plotly.js, widgets as their last state or text, notebook links to pages that exist, math as MathML."""
    run = tmp_path / "run"
    run.mkdir()
    executed_notebook(run / "02_x.ipynb", smoke=True, exception=False)
    executed_notebook(run / "05_y.ipynb", smoke=True, exception=True)
    info = site.run_info(run)
    assert (info["profile"], info["device"], info["seconds"]) == ("smoke", "cpu", 25.0)
    assert [(r["name"], r["ok"]) for r in info["notebooks"]] == [("02_x", True), ("05_y", False)]
    folder = site.build_site(run)
    assert sorted(p.name for p in folder.glob("*.html")) == ["02_x.html", "05_y.html", "index.html"]
    js = folder / "assets" / "plotly.min.js"
    assert js.stat().st_size > 1_000_000 and b"plotly.js" in js.read_bytes()[:2000]
    page = (folder / "02_x.html").read_text()
    scripts = re.findall(r"<script[^>]*\bsrc=['\"]([^'\"]+)", page)
    assert scripts == ["assets/plotly.min.js"]  # no require.js, MathJax or widget manager from a CDN
    assert "Plotly.newPlot" in page and "application/vnd.plotly.v1+json" not in page
    assert '<span>tuning: 100%</span><progress max="4" value="4">' in page and "IntSlider(3)" in page
    assert '<a href="02_x.html#top">02</a>' in page and "06 · MNIST" in page and 'href="06_mnist' not in page
    if importlib.util.find_spec("latex2mathml") is not None:  # without it the TeX stays as it is
        assert "<math" in page and "$\\theta" not in page
    assert '<a href="../02_x.ipynb">' in page
    index = (folder / "index.html").read_text()
    assert "profile <code>smoke</code>" in index and "FAILED" in index and "No claims were recorded" in index


def test_tex_that_latex2mathml_cannot_read_stays_readable():
    """Math is MathML where it converts, and its TeX source (escaped) where it does not."""
    pytest.importorskip("latex2mathml", reason="latex2mathml is missing: math shows as TeX")
    assert pages.tex_to_mathml("x^2", display=False).startswith("<math")
    unreadable = "\\begin{foo} x < 1"  # an environment never closed
    assert pages.tex_to_mathml(unreadable, display=True) == "<code class='tex'>$$\\begin{foo} x &lt; 1$$</code>"


# ------------------------------------------------------------------------------------- a SMOKE run in Chromium

SMOKE_NOTEBOOKS = ["02", "05"]  # fast at SMOKE size, both with plotly figures and claims


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def links_of(page) -> list[str]:
    """Every a[href], script[src], img[src] and link[href] of the page, absolute."""
    return page.evaluate(
        """() => [...document.querySelectorAll('a[href], script[src], img[src], link[href]')]
            .map(e => e.href || e.src)"""
    )


@pytest.mark.slow
def test_a_smoke_runs_site_reads_offline_in_chromium(tmp_path):
    """make run's site for notebooks 02 and 05 at SMOKE size, served from 127.0.0.1: every page linked from the
    index opens with no console error and no request to another host, every plotly output is drawn with its
    traces, and every link resolves (local files exist; the paper's arXiv link is well-formed, never fetched)."""
    import shutil

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing (pip install -e '.[dev]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install -y chromium)")
    from l2l_helpers.notebook.runner import run_notebooks

    run = tmp_path / "run"
    summary = run_notebooks(ROOT / "notebooks", run, profile="smoke", only=SMOKE_NOTEBOOKS, clock=False, echo=print)
    assert not summary.failed and len(summary.runs) == len(SMOKE_NOTEBOOKS)
    folder = run / "site"
    plotly_outputs = {
        p.stem: sum(
            "application/vnd.plotly.v1+json" in o.get("data", {})
            for c in nbformat.read(p, as_version=4).cells
            for o in c.get("outputs", [])
        )
        for p in run.glob("[0-9]*.ipynb")
    }
    assert all(plotly_outputs.values()), plotly_outputs
    for path in folder.glob("*.html"):
        assert not re.search(r"<script[^>]*\bsrc=['\"]https?:", path.read_text()), f"{path.name} loads a remote script"
    index = (folder / "index.html").read_text()
    assert "Claims by paper figure" in index and "Figure 4, left: quadratics" in index
    assert all(f"<a href='{stem}.html'>" in index for stem in plotly_outputs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(run)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    problems: list[str] = []
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))

            def local_only(route) -> None:
                if route.request.url.startswith(base):
                    route.continue_()
                else:
                    problems.append(f"request to another host: {route.request.url}")
                    route.abort()

            page.route("**/*", local_only)
            to_visit, seen, drawn = [base + "site/index.html"], set(), {}
            while to_visit:
                url = to_visit.pop()
                if url in seen:
                    continue
                seen.add(url)
                response = page.goto(url, wait_until="load")
                assert response is not None and response.ok, url
                plots = page.evaluate(
                    """() => [...document.querySelectorAll('.js-plotly-plot')]
                        .map(gd => Math.min((gd.data || []).length, gd.querySelectorAll('.main-svg .trace').length))"""
                )
                drawn[url.removeprefix(base)] = plots
                for link in links_of(page):
                    target = urllib.parse.urlsplit(link)
                    if not link.startswith(base):
                        assert target.scheme == "https" and target.netloc == "arxiv.org", link
                        assert re.fullmatch(r"/abs/\d{4}\.\d{4,5}", target.path), link
                        continue
                    local = run / urllib.parse.unquote(target.path).removeprefix("/")
                    assert local.is_file(), f"{url} links to a missing {local}"
                    if local.suffix == ".html" and local.parent == folder:  # the site's pages; the figures' own
                        to_visit.append(base + str(local.relative_to(run)))  # pages (results/) are plotly's
            browser.close()
    finally:
        server.shutdown()
    assert not problems, problems
    for stem, count in plotly_outputs.items():
        plots = drawn[f"site/{stem}.html"]
        assert len(plots) == count and min(plots) >= 1, (stem, plots)
    assert set(drawn) == {f"site/{p.name}" for p in folder.glob("*.html")}  # every page is linked from the index
