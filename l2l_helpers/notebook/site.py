"""A run's browsable site: every executed notebook as a page with its plotly figures drawn, offline.

``build_site(run_dir)`` writes ``run_dir/site/``: ``index.html`` (the notebooks with their times and status, the
claims by paper figure, :mod:`~l2l_helpers.notebook.claims_table`), one page per executed notebook (nbconvert's ``lab``
template), and ``report.html`` (``report.md`` rendered by markdown-it-py). plotly.js is copied once from the plotly
package into ``site/assets/`` and every page refers to it by a relative path; nothing is loaded from the internet,
so the folder reads from disk (open ``index.html``) or served. ``make run`` builds it at the end of every run.

Also ``python -m l2l_helpers.notebook.site --readme README.md RUN_DIR``: the claims table of a full run, with the
run's date,
profile and machine, written into the README between ``<!-- results:begin -->`` and ``<!-- results:end -->``,
and one key figure of the run copied (small) to ``docs/images/run_figure.png``.
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from l2l_helpers.notebook.claims_table import (
    claims_by_figure,
    figure_table_html,
    figure_table_markdown,
    load_results,
    splits_line,
    verdict_tally,
)
from l2l_helpers.notebook.pages import PLOTLY_JS, _nav, _page, markdown_html, markdown_page, notebook_page

PAPER_URL = "https://arxiv.org/abs/1606.04474"
PAPER = "Andrychowicz et al. (2016), Learning to learn by gradient descent by gradient descent"
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"
#: Key figures for the README, first found wins: notebook 06's MNIST loss curves, else 05's quadratics.
README_FIGURES = ("06_mnist-100_steps", "05_quadratics-loss_curves")
FIGURE_PNG = "run_figure.png"  # in docs/images/ beside the README, which shows it


# ----------------------------------------------------------------------------------------------- what was run


def executed_notebooks(run_dir: Path) -> list[Path]:
    """The run's executed notebooks (``run_dir/NN_*.ipynb``), in reading order."""
    return sorted(run_dir.glob("[0-9]*.ipynb"))


def run_info(run_dir: Path) -> dict[str, Any]:
    """The run's ``run.json`` (written by the runner); for a run without one, what the executed notebooks'
    papermill metadata says (times, status, parameters; the machine is then unknown)."""
    path = run_dir / "run.json"
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}); delete it to fall back on the notebooks") from exc
    import nbformat

    runs, ends = [], []
    for nb_path in executed_notebooks(run_dir):
        meta = nbformat.read(nb_path, as_version=4).metadata.get("papermill", {})
        params = dict(meta.get("parameters", {}))
        failed = bool(meta.get("exception"))
        runs.append(
            {
                "name": nb_path.stem,
                "ok": not failed,
                "seconds": meta.get("duration"),
                "error": "raised (see the notebook)" if failed else "",
                "parameters": params,
            }
        )
        ends.append(meta.get("end_time") or "")
    smoke = any(r["parameters"].get("SMOKE") for r in runs)
    paper = any(r["parameters"].get("RETRAIN") for r in runs)
    devices = {str(r["parameters"]["DEVICE"]) for r in runs if "DEVICE" in r["parameters"]}
    return {
        "written": max(ends, default="")[:19],
        "profile": "smoke" if smoke else "paper" if paper else "default",
        "device": ", ".join(sorted(devices)) or "unknown",
        "machine": None,
        "seconds": sum(r["seconds"] or 0 for r in runs),
        "notebooks": runs,
    }


def duration_text(seconds: float | None) -> str:
    """``42 s``, ``30 min 27 s``, ``6 h 05 min``."""
    if seconds is None:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def machine_text(info: Mapping[str, Any]) -> str:
    """``Intel(R) Xeon(R) ... (2 cores), torch 2.13.0, device cpu``, from ``run.json``'s machine."""
    m = info.get("machine") or {}
    if not m:
        return f"device {info.get('device', 'unknown')} (machine not recorded)"
    parts = [f"{m.get('cpu', 'unknown CPU')} ({m.get('cores', '?')} cores)", f"torch {m.get('torch', '?')}"]
    device = m.get("device") or info.get("device", "unknown")
    parts.append(f"device {device}" + (f" ({m['gpu']})" if m.get("gpu") else ""))
    return ", ".join(parts)


def run_line(info: Mapping[str, Any]) -> str:
    """One line on the run: date, profile, notebooks and time, machine."""
    runs = info.get("notebooks", [])
    failed = [r["name"] for r in runs if not r.get("ok")]
    status = f"{len(failed)} FAILED: {', '.join(failed)}" if failed else "all ok"
    date = str(info.get("written", ""))[:16].replace("T", " ") or "unknown date"
    return (
        f"Run of {date}, profile `{info.get('profile', '?')}`: {len(runs)} notebooks ({status}) in "
        f"{duration_text(info.get('seconds'))}, on {machine_text(info)}."
    )


# --------------------------------------------------------------------------------------------- notebook pages


def _copy_plotly_js(target: Path) -> None:
    """plotly.js of the installed plotly package, once, into the site."""
    from importlib.resources import files

    target.parent.mkdir(parents=True, exist_ok=True)
    bundled = files("plotly") / "package_data" / "plotly.min.js"
    if bundled.is_file():
        with bundled.open("rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst)
    else:  # a plotly without the file in its package data
        from plotly.offline import get_plotlyjs

        target.write_text(get_plotlyjs(), encoding="utf-8")


# ------------------------------------------------------------------------------------------------- the site


def _notebooks_table(info: Mapping[str, Any], pages: set[str]) -> str:
    """The index's table of notebooks: page, status, time, claims, the executed notebook."""
    rows = ["<table><thead><tr><th>notebook</th><th>status</th><th>time</th><th>reference epochs</th>"]
    rows[0] += "<th>claims</th><th>executed notebook</th></tr></thead><tbody>"
    for run in info.get("notebooks", []):
        name = str(run["name"])
        page = f"<a href='{html.escape(name)}.html'>{html.escape(name)}</a>" if name in pages else html.escape(name)
        if run.get("ok"):
            status = "<td>ok</td>"
        else:
            status = f"<td class='failed'>FAILED: {html.escape(str(run.get('error', '')))}</td>"
        epochs = run.get("reference_epochs")
        tally = ", ".join(f"{n} {k}" for k, n in (run.get("claims") or {}).items() if n)
        source = f"<a href='../{html.escape(name)}.ipynb'>{html.escape(name)}.ipynb</a>" if name in pages else ""
        rows.append(
            f"<tr><td>{page}</td>{status}<td class='num'>{duration_text(run.get('seconds'))}</td>"
            f"<td class='num'>{'' if epochs is None else f'{epochs:.0f}'}</td><td>{html.escape(tally)}</td>"
            f"<td>{source}</td></tr>"
        )
    rows.append("</tbody></table>")
    return "\n".join(rows)


def _index_page(run_dir: Path, info: Mapping[str, Any], results: Mapping[str, Any], pages: set[str]) -> str:
    groups = claims_by_figure(results)
    report = "<a href='report.html'>the run's report</a> (every recorded value and key figure)"
    body = [
        _nav([("Index", "index.html"), ("Report", "report.html")] if (run_dir / "report.md").is_file() else []),
        f"<h1>l2l run {html.escape(run_dir.name)}</h1>",
        markdown_html(run_line(info)),
        f"<p>Companion to <a href='{PAPER_URL}'>{html.escape(PAPER)}</a>."
        + (f" See also {report}." if (run_dir / "report.md").is_file() else "")
        + "</p>",
        "<h2>Notebooks</h2>",
        _notebooks_table(info, pages),
        "<h2>Claims by paper figure</h2>",
    ]
    if groups:
        body.append(f"<p>{html.escape(verdict_tally(groups))}.</p>")
        body.append(figure_table_html(groups, {name: f"{name}.html" for name in pages}))
    else:
        body.append("<p>No claims were recorded in this run.</p>")
    return _page(f"l2l run {run_dir.name}", "\n".join(body))


def build_site(run_dir: str | Path) -> Path:
    """Write ``run_dir/site/`` (index, a page per executed notebook, the report) and return the folder."""
    run_dir = Path(run_dir)
    notebooks = executed_notebooks(run_dir) if run_dir.is_dir() else []
    results = load_results(run_dir / "results")
    if not notebooks and not results:
        raise FileNotFoundError(
            f"{run_dir} has no executed notebooks (NN_*.ipynb) or results/*.json: give the folder of a run, "
            "e.g. runs/<timestamp> from make run"
        )
    info = run_info(run_dir)
    site = run_dir / "site"
    if site.exists():
        shutil.rmtree(site)  # pages of notebooks that are not in the run any more go too
    site.mkdir(parents=True)
    _copy_plotly_js(site / PLOTLY_JS)
    pages = {path.stem for path in notebooks}
    has_report = (run_dir / "report.md").is_file()
    main = [("Index", "index.html")] + ([("Report", "report.html")] if has_report else [])
    for path in notebooks:
        nav = _nav([*main, ("Executed notebook (.ipynb)", f"../{path.name}")])
        (site / f"{path.stem}.html").write_text(notebook_page(path, pages, nav), encoding="utf-8")
    if has_report:
        page = markdown_page((run_dir / "report.md").read_text(), "l2l run report", base="../", nav=_nav(main))
        (site / "report.html").write_text(page, encoding="utf-8")
    (site / "index.html").write_text(_index_page(run_dir, info, results, pages), encoding="utf-8")
    return site


# --------------------------------------------------------------------------------------------------- README


def readme_block(run_dir: Path) -> str:
    """What goes between the README's markers: the claims by paper figure, claim by claim (verdict, ratio with its
    interval, n, seeds), which tasks they were measured on, and the run's line."""
    groups = claims_by_figure(load_results(run_dir / "results"))
    if not groups:
        raise ValueError(f"{run_dir / 'results'} holds no claims: give the folder of a run whose notebooks ran")
    lines = [f"Claims of this run by paper figure: {verdict_tally(groups)}. {splits_line(groups)}".strip(), ""]
    lines += [figure_table_markdown(groups), ""]
    lines.append(run_line(run_info(run_dir)))
    return "\n".join(lines)


def replace_between_markers(text: str, block: str) -> str:
    """``text`` with everything between :data:`README_BEGIN` and :data:`README_END` replaced by ``block``."""
    begin, end = text.count(README_BEGIN), text.count(README_END)
    if begin != 1 or end != 1 or text.index(README_BEGIN) > text.index(README_END):
        raise ValueError(
            f"the README needs {README_BEGIN} and then {README_END}, once each (found {begin} and {end}): "
            "put them where the results table goes"
        )
    head, rest = text.split(README_BEGIN)
    _, tail = rest.split(README_END)
    return f"{head}{README_BEGIN}\n{block.strip()}\n{README_END}{tail}"


def key_figure_png(run_dir: Path) -> tuple[Path, str] | None:
    """The run's PNG for the README (:data:`README_FIGURES`, first found) and its title, or None."""
    entries = {
        Path(str(f["png"])).stem: (run_dir / "results" / str(f["png"]), str(f.get("title") or f.get("name", "")))
        for data in load_results(run_dir / "results").values()
        for f in (data.get("figures") or [])
        if isinstance(f, dict) and f.get("png")
    }
    for stem in README_FIGURES:
        if stem in entries and entries[stem][0].is_file():
            return entries[stem]
    return None


def save_small_png(source: Path, target: Path, width: int = 800, limit: int = 150_000) -> Path:
    """``source`` at most ``width`` pixels wide, as an optimized PNG under ``limit`` bytes (a 256-colour palette
    where the full colours are larger)."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as img:
        img = img.convert("RGB")
        if img.width > width:
            img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
        img.save(target, optimize=True)
        if target.stat().st_size > limit:
            img.quantize(256, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
    if target.stat().st_size > limit:
        raise ValueError(f"{target} is {target.stat().st_size:,} bytes even with 256 colours; give a smaller width")
    return target


def write_readme(
    readme: str | Path, run_dir: str | Path, allow_smoke: bool = False, figure: str | Path | None = None
) -> Path:
    """Write the claims table of ``run_dir`` into ``readme`` between its markers, with the run's date, profile and
    machine, and copy the run's key figure (small) to ``figure`` (default ``docs/images/run_figure.png`` beside the
    README); a SMOKE run is refused unless ``allow_smoke``. Returns the README."""
    readme, run_dir = Path(readme), Path(run_dir)
    if not readme.is_file():
        raise FileNotFoundError(f"{readme} does not exist: give the README to write the results into")
    if not executed_notebooks(run_dir) and not (run_dir / "results").is_dir():
        raise FileNotFoundError(f"{run_dir} has no executed notebooks or results/: give the folder of a run")
    info = run_info(run_dir)
    if info.get("profile") == "smoke" and not allow_smoke:
        raise ValueError(f"{run_dir} is a SMOKE run: the README shows a full run (make run); --allow-smoke to force")
    text = readme.read_text()
    replace_between_markers(text, "")  # the markers are checked before anything is written
    if (found := key_figure_png(run_dir)) is not None:  # the README shows it under its introduction
        save_small_png(found[0], Path(figure) if figure is not None else readme.parent / "docs" / "images" / FIGURE_PNG)
    readme.write_text(replace_between_markers(text, readme_block(run_dir)))
    return readme


# ------------------------------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m l2l_helpers.notebook.site``: build a run's site, or write its claims into the README."""
    parser = argparse.ArgumentParser(
        prog="python -m l2l_helpers.notebook.site",
        description="Build the browsable site of a run (RUN_DIR/site/index.html: every executed notebook with its "
        "figures drawn offline, the claims by paper figure, the report), or with --readme write the run's claims "
        "table into a README between <!-- results:begin --> and <!-- results:end -->.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", type=Path, help="a run's folder, e.g. runs/20261208-101500")
    parser.add_argument(
        "--readme",
        type=Path,
        metavar="README",
        help="instead of the site: write the claims table, a key figure and the run's date, profile and machine "
        "into this file between its markers",
    )
    parser.add_argument("--allow-smoke", action="store_true", help="with --readme: accept a SMOKE-profile run")
    parser.add_argument(
        "--figure",
        type=Path,
        help="with --readme: where the key figure's PNG goes (default: docs/images/run_figure.png beside the README)",
    )
    args = parser.parse_args(argv)
    try:
        if args.readme is not None:
            path = write_readme(args.readme, args.run_dir, allow_smoke=args.allow_smoke, figure=args.figure)
            print(f"results of {args.run_dir} written into {path}")
        else:
            print(f"site: {build_site(args.run_dir) / 'index.html'}")
    except (ValueError, FileNotFoundError) as exc:
        print(f"l2l site: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
