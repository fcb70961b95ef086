"""The main job: execute every notebook headlessly with papermill and write a report (``make run``).

Each run goes to ``runs/<timestamp>/``: the executed notebooks, ``results/*.json`` written by the
notebooks, and ``report.md`` / ``report.html`` that read without a kernel. The terminal shows one progress bar
named after the running notebook, one line per notebook (seconds, claims reproduced / not / not tested), and at
the end the total time in reference epochs (:mod:`~l2l_helpers.kernels.reference`: one timed before each notebook and
one after the last, each notebook's seconds divided by the mean of the two around it, so that a machine that
speeds up or slows down during the run is measured in the unit it had then) and the report's path. Kernels talk
to the runner over local IPC sockets, not TCP.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import html
import io
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .results import interval_text, verdict_of, verdict_text
from .settings import RETRAIN_DIR_ENV

#: Parameters each profile sets in notebooks that declare them (INTERACTIVE is always False headless).
PROFILES: dict[str, dict[str, Any]] = {
    "default": {"SMOKE": False},
    "smoke": {"SMOKE": True},
    "paper": {"SMOKE": False, "RETRAIN": True},
}


@dataclass
class NotebookRun:
    """How one notebook's execution went."""

    name: str
    ok: bool
    seconds: float
    parameters: dict[str, Any]
    error: str = ""
    claims: dict[str, int] = field(default_factory=dict)  # "reproduced", "not", "inconclusive", "not tested"
    #: seconds of the reference epochs timed just before and just after this notebook (None: not timed)
    reference_s: tuple[float, float] | None = None

    @property
    def reference_epochs(self) -> float | None:
        """This notebook's seconds in reference epochs: over the mean of the two timed around it."""
        return None if self.reference_s is None else self.seconds / (sum(self.reference_s) / 2)

    def line(self) -> str:
        """One line for the terminal: name, seconds (and reference epochs), and the claims tally (or the error)."""
        epochs = f" = {self.reference_epochs:4.0f} ref. epochs" if self.reference_epochs is not None else ""
        head = f"{self.name:<26}{self.seconds:6.0f} s{epochs}  "
        if not self.ok:
            return head + f"FAILED: {self.error}"
        tally = ", ".join(f"{n} {k}" for k, n in self.claims.items() if n or k in ("reproduced", "not"))
        return head + (f"claims: {tally}" if self.claims else "no claims recorded")


@dataclass
class RunSummary:
    """Where a run wrote its outputs and how each notebook went."""

    out_dir: Path
    runs: list[NotebookRun] = field(default_factory=list)
    #: seconds of the reference epochs: one timed before each notebook and one after the last (None: not timed)
    reference_s: tuple[float, ...] | None = None

    @property
    def seconds(self) -> float:
        """Seconds spent in the notebooks."""
        return sum(r.seconds for r in self.runs)

    @property
    def reference_epochs(self) -> float | None:
        """The notebooks' time in reference epochs (each notebook's against the two timed around it), or None if
        not timed."""
        epochs = [r.reference_epochs for r in self.runs]
        return None if self.reference_s is None or None in epochs else sum(epochs)  # type: ignore[arg-type]

    def reference_text(self, what: str) -> str:
        """`` = N reference epochs (...)``: how the unit was measured, for the terminal and the report."""
        if self.reference_s is None or self.reference_epochs is None:
            return ""
        low, high = min(self.reference_s), max(self.reference_s)
        return (
            f" = {self.reference_epochs:.0f} reference epochs ({what} took {low:.2f}-{high:.2f} s, "
            f"{len(self.reference_s)} timed: before each notebook and after the last)"
        )

    @property
    def report(self) -> Path:
        """The Markdown report."""
        return self.out_dir / "report.md"

    @property
    def failed(self) -> list[NotebookRun]:
        """Notebooks that raised."""
        return [r for r in self.runs if not r.ok]


def notebook_parameters(path: Path, profile: str, device: str) -> dict[str, Any]:
    """The profile's parameters that the notebook's ``parameters`` cell declares."""
    import papermill

    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is unknown; use one of: {', '.join(PROFILES)}")
    declared = papermill.inspect_notebook(str(path))
    wanted = {"INTERACTIVE": False, "DEVICE": device, **PROFILES[profile]}
    return {k: v for k, v in wanted.items() if k in declared}


def _claim_counts(results_file: Path) -> dict[str, int]:
    """How many of a notebook's recorded claims were reproduced, not reproduced, inconclusive, not tested."""
    try:
        claims = json.loads(results_file.read_text()).get("claims", [])
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}
    verdicts = [verdict_of(c) for c in claims if isinstance(c, dict)]
    counts = {"reproduced": verdicts.count("reproduced"), "not": verdicts.count("not reproduced")}
    return counts | {"inconclusive": verdicts.count("inconclusive"), "not tested": verdicts.count("not tested")}


@functools.cache
def _ipc_kernel_manager() -> type:
    """A kernel manager whose kernels use local IPC sockets: nothing listens on the network, and the kernels have
    no reason to warn, once each, that TCP runs unencrypted."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

    return IPCKernelManager


def run_notebooks(
    notebook_dir: str | Path = "notebooks",
    out_dir: str | Path | None = None,
    profile: str = "default",
    device: str = "auto",
    clock: bool = True,
    echo: Callable[[str], None] | None = None,
) -> RunSummary:
    """Execute ``notebook_dir/*.ipynb`` in order into ``out_dir`` (default ``runs/<timestamp>``); write the report.

    ``clock`` times one reference epoch before each notebook and one after the last (one more epoch as warm-up),
    so that the run's time is stated in the unit of :mod:`~l2l_helpers.kernels.reference`. ``echo``
    gets the terminal lines (default: above the progress bar on stderr).
    """
    import papermill
    from tqdm.auto import tqdm

    notebook_dir = Path(notebook_dir)
    if not notebook_dir.is_dir():
        raise FileNotFoundError(f"notebook folder {notebook_dir} does not exist")
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is unknown; use one of: {', '.join(PROFILES)}")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out_dir) if out_dir is not None else Path("runs") / stamp
    (out / "results").mkdir(parents=True, exist_ok=True)
    notebooks = sorted(notebook_dir.glob("[0-9]*.ipynb"))
    say = echo or (lambda line: tqdm.write(line, file=sys.stderr))
    say(f"l2l: {len(notebooks)} notebooks, profile {profile}, device {device}, into {out}")
    reference = _reference_clock(device) if clock else None
    timings = [reference()] if reference else []
    summary = RunSummary(out)
    previous = {name: os.environ.get(name) for name in ("L2L_RESULTS_DIR", RETRAIN_DIR_ENV)}
    os.environ["L2L_RESULTS_DIR"] = str((out / "results").resolve())  # read by the notebooks' record()
    os.environ[RETRAIN_DIR_ENV] = str((out / "retrained").resolve())  # optimizers retrained once per run
    try:
        bar = tqdm(notebooks, unit="nb", file=sys.stderr, bar_format="{desc:<26}{n}/{total} notebooks [{elapsed}]")
        for path in bar:
            bar.set_description(path.stem)
            params = notebook_parameters(path, profile, device)
            start = time.perf_counter()
            try:
                papermill.execute_notebook(
                    str(path),
                    str(out / path.name),
                    parameters=params,
                    kernel_name="python3",
                    cwd=str(notebook_dir),
                    progress_bar=False,
                    kernel_manager_class=_ipc_kernel_manager(),
                )
                run = NotebookRun(path.stem, True, time.perf_counter() - start, params)
            except Exception as exc:  # a failing notebook is reported; the others still run
                message = str(exc).strip().splitlines()
                error = message[-1] if message else repr(exc)
                run = NotebookRun(path.stem, False, time.perf_counter() - start, params, error)
            run.claims = _claim_counts(out / "results" / f"{path.stem}.json")
            if reference:
                timings.append(reference())
                run.reference_s = (timings[-2], timings[-1])
            summary.runs.append(run)
            say(run.line())
        bar.close()
    finally:  # the variables were only for the kernels of this run
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if reference:
        summary.reference_s = tuple(timings)
    write_report(summary, profile, device)
    say(_total_line(summary))
    return summary


def _reference_clock(device: str) -> Callable[[], float]:
    """One timed reference epoch per call, after a warm-up epoch (on the run's device)."""
    from .kernels.reference import ReferenceClock
    from .runtime import resolve_device

    with contextlib.redirect_stdout(io.StringIO()):  # MNIST's loading lines: the notebooks print them, once each
        clock = ReferenceClock(resolve_device(device))
    return lambda: clock(1)


def _total_line(summary: RunSummary) -> str:
    failed = f", {len(summary.failed)} FAILED" if summary.failed else ""
    line = f"{len(summary.runs)} notebooks in {summary.seconds:.0f} s{failed}{summary.reference_text('one')}"
    return f"{line}; report: {summary.report}"


def _load_results(results_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            out[path.stem] = {"error": f"unreadable results file: {exc}"}
    return out


def _short(value: Any, limit: int = 300) -> str:
    """A value for the report's bullet list; long lists (curves) are cut with their length stated."""
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters; full values in results/)"


def _markdown_table(rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return lines


def _notebook_section(name: str, data: dict[str, Any]) -> list[str]:
    """One notebook's part of the report: its claims table, key figures and recorded values."""
    md = ["", f"## {name}", ""]
    claims = data.get("claims", [])
    if claims:
        rows = [["claim", "ours", "verdict", "95% interval"]]
        rows += [[str(c.get("claim", "")), str(c.get("ours", "")), verdict_text(c), interval_text(c)] for c in claims]
        md += [*_markdown_table(rows), ""]
    for fig in data.get("figures", []):
        title = str(fig.get("title", fig.get("name", "figure"))).replace("]", ")").replace("[", "(")
        if fig.get("png"):
            md += [f"![{title}](results/{fig['png']})", ""]
        md += [f"[{title} (interactive)](results/{fig['html']})", ""]
    md += [f"- {key}: {_short(value)}" for key, value in data.get("values", {}).items()]
    return md


def _html_line(line: str) -> str:
    """One line of the report's small Markdown subset (no tables) as HTML."""
    if line.startswith("# "):
        return f"<h1>{html.escape(line[2:])}</h1>"
    if line.startswith("## "):
        return f"<h2>{html.escape(line[3:])}</h2>"
    if line.startswith("!["):
        alt, src = line[2:].split("](", 1)
        return f"<p><img src='{html.escape(src[:-1])}' alt='{html.escape(alt)}' style='max-width:100%'></p>"
    if line.startswith("[") and "](" in line:
        text, href = line[1:].split("](", 1)
        return f"<p><a href='{html.escape(href[:-1])}'>{html.escape(text)}</a></p>"
    if line.startswith("- "):
        return f"<li>{html.escape(line[2:])}</li>"
    return f"<p>{html.escape(line)}</p>" if line else ""


def _html_page(md: list[str]) -> str:
    """The report as one standalone HTML page."""
    body: list[str] = []
    in_table = False
    for line in md:
        if line.startswith("|---"):
            continue
        if line.startswith("| ") != in_table:
            in_table = not in_table
            body.append("<table>" if in_table else "</table>")
        if line.startswith("| "):
            cells = "".join(f"<td>{html.escape(c.strip())}</td>" for c in line.strip("| ").split(" | "))
            body.append(f"<tr>{cells}</tr>")
        elif _html_line(line):
            body.append(_html_line(line))
    if in_table:
        body.append("</table>")
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:auto}"
        "table{border-collapse:collapse}td{border:1px solid #ccc;padding:2px 6px}"
    )
    return f"<!doctype html><meta charset='utf-8'><title>l2l run report</title><style>{style}</style>" + "\n".join(body)


def write_report(summary: RunSummary, profile: str, device: str) -> Path:
    """Write ``report.md`` and ``report.html``: notebook status table, then each notebook's recorded results."""
    results = _load_results(summary.out_dir / "results")
    speed = summary.reference_text("the plain reference epoch, on this machine,")
    md = [
        "# l2l run report",
        "",
        f"Profile `{profile}`, device `{device}`, {len(summary.runs)} notebooks in {summary.seconds:.0f} s{speed}, "
        f"{len(summary.failed)} failed. Written {dt.datetime.now().isoformat(timespec='seconds')}.",
        "",
    ]
    if summary.runs:
        rows = [["notebook", "status", "seconds", "reference epochs", "claims", "parameters"]]
        for r in summary.runs:
            status = "ok" if r.ok else f"FAILED: {r.error}"
            tally = ", ".join(f"{n} {k}" for k, n in r.claims.items())
            epochs = "" if r.reference_epochs is None else f"{r.reference_epochs:.0f}"
            rows.append([r.name, status, f"{r.seconds:.0f}", epochs, tally, json.dumps(r.parameters)])
        md += _markdown_table(rows)
    else:
        md.append("No notebooks were found to run.")
    for name, data in results.items():
        md += _notebook_section(name, data)
    summary.report.write_text("\n".join(md) + "\n")
    (summary.out_dir / "report.html").write_text(_html_page(md))
    if summary.failed:
        (summary.out_dir / "FAILED").write_text("\n".join(r.name for r in summary.failed) + "\n")
    return summary.report
