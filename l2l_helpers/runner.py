"""The main job: execute every notebook headlessly with papermill and write a report (``make run``).

Each run goes to ``runs/<timestamp>/``: the executed notebooks, ``results/*.json`` written by the
notebooks, ``run.json`` (profile, device, machine, each notebook's time and status), ``report.md`` / ``report.html``
that read without a kernel, and ``site/`` (:mod:`~l2l_helpers.site`: every executed notebook as a page with its
figures drawn offline, and the claims by paper figure). The terminal shows one progress bar named after the running
notebook, one line per notebook (seconds, claims reproduced / not / not tested), and at the end the total time in
reference epochs (:mod:`~l2l_helpers.kernels.reference`: one timed before each notebook and one after the last, each
notebook's seconds divided by the mean of the two around it, so that a machine that speeds up or slows down during the
run is measured in the unit it had then), the report's and the site's paths. Kernels talk to the runner over local
IPC sockets, not TCP.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import io
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .claims_table import claims_by_figure, figure_table_markdown, load_results, splits_line, verdict_tally
from .results import interval_text, verdict_of, verdict_text
from .settings import RETRAIN_DIR_ENV

#: Parameters each profile sets in notebooks that declare them (INTERACTIVE is always False headless).
PROFILES: dict[str, dict[str, Any]] = {
    "default": {"SMOKE": False},
    "smoke": {"SMOKE": True},
    "paper": {"SMOKE": False, "RETRAIN": True},
    "dev": {"SMOKE": False, "SPLIT": "dev"},
    "full": {"SMOKE": False, "FULL": True},
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
    """How many of a notebook's recorded claims were reproduced, not reproduced, inconclusive, on too few tasks,
    not tested."""
    try:
        claims = json.loads(results_file.read_text()).get("claims", [])
    except (OSError, json.JSONDecodeError, AttributeError):
        return {}
    verdicts = [verdict_of(c) for c in claims if isinstance(c, dict)]
    counts = {"reproduced": verdicts.count("reproduced"), "not": verdicts.count("not reproduced")}
    counts |= {"inconclusive": verdicts.count("inconclusive"), "too few tasks": verdicts.count("too few tasks")}
    return counts | {"not tested": verdicts.count("not tested")}


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


def select_notebooks(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    """The notebooks ``only`` names, by number (``"06"`` or ``"6"``) or stem (``"06_mnist"``), in reading order."""
    if only is None:
        return list(notebooks)
    if isinstance(only, str):
        only = [only]

    def names(name: str, path: Path) -> bool:
        head = path.stem.split("_", 1)[0]
        return name == path.stem or (name.isdigit() and head.isdigit() and int(name) == int(head))

    unknown = [name for name in only if not any(names(name, p) for p in notebooks)]
    if unknown or not only:
        available = ", ".join(p.stem for p in notebooks) or "none"
        asked = ", ".join(map(repr, unknown)) if unknown else "nothing"
        raise ValueError(f"only={asked} names no notebook; use numbers or names of: {available}")
    return [p for p in notebooks if any(names(name, p) for name in only)]


def run_notebooks(
    notebook_dir: str | Path = "notebooks",
    out_dir: str | Path | None = None,
    profile: str = "default",
    device: str = "auto",
    clock: bool = True,
    echo: Callable[[str], None] | None = None,
    only: Sequence[str] | None = None,
) -> RunSummary:
    """Execute ``notebook_dir/*.ipynb`` in order into ``out_dir`` (default ``runs/<timestamp>``); write the report
    and the run's site (:func:`~l2l_helpers.site.build_site`).

    ``only`` runs just the notebooks it names, by number (``"06"``) or stem (``"06_mnist"``). ``clock`` times one
    reference epoch before each notebook and one after the last (one more epoch as warm-up), so that the run's time
    is stated in the unit of :mod:`~l2l_helpers.kernels.reference`. ``echo`` gets the terminal lines (default: above
    the progress bar on stderr).
    """
    import papermill
    from tqdm.auto import tqdm

    notebook_dir = Path(notebook_dir)
    if not notebook_dir.is_dir():
        raise FileNotFoundError(f"notebook folder {notebook_dir} does not exist")
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is unknown; use one of: {', '.join(PROFILES)}")
    notebooks = select_notebooks(sorted(notebook_dir.glob("[0-9]*.ipynb")), only)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(out_dir) if out_dir is not None else Path("runs") / stamp
    (out / "results").mkdir(parents=True, exist_ok=True)
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
    say(_total_line(summary, _site(out)))
    return summary


def _site(out: Path) -> str:
    """Build the run's site; its index page, or why it was not built (the run's results stay either way)."""
    try:
        from .site import build_site

        return str(build_site(out) / "index.html")
    except Exception as exc:  # a run of hours is not lost to a page that would not render
        return f"not built ({type(exc).__name__}: {exc}; retry: python -m l2l_helpers.site {out})"


def _reference_clock(device: str) -> Callable[[], float]:
    """One timed reference epoch per call, after a warm-up epoch (on the run's device)."""
    from .kernels.reference import ReferenceClock
    from .runtime import resolve_device

    with contextlib.redirect_stdout(io.StringIO()):  # MNIST's loading lines: the notebooks print them, once each
        clock = ReferenceClock(resolve_device(device))
    return lambda: clock(1)


def _total_line(summary: RunSummary, site: str) -> str:
    failed = f", {len(summary.failed)} FAILED" if summary.failed else ""
    line = f"{len(summary.runs)} notebooks in {summary.seconds:.0f} s{failed}{summary.reference_text('one')}"
    return f"{line}; report: {summary.report}; site: {site}"


def _short(value: Any, limit: int = 300) -> str:
    """A value for the report's bullet list; long lists (curves) are cut with their length stated."""
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters; full values in results/)"


def _markdown_table(rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return lines


def _notebook_section(name: str, data: dict[str, Any]) -> list[str]:
    """One notebook's part of the report: its claims table (with each claim's method, split, n and planned n), its
    software checks apart, key figures and recorded values."""
    md = ["", f"## {name}", ""]
    claims = data.get("claims", [])
    if claims:
        rows = [["claim", "ours", "verdict", "95% interval", "split", "n (planned)", "method"]]
        for c in claims:
            n, planned = c.get("n", c.get("tasks")), c.get("planned_n")
            sizes = "" if n is None else f"{n}" + (f" ({planned})" if planned is not None else "")
            row = [str(c.get("claim", "")), str(c.get("ours", "")), verdict_text(c), interval_text(c)]
            rows.append([*row, str(c.get("split") or ""), sizes, str(c.get("method") or "")])
        md += [*_markdown_table(rows), ""]
    checks = data.get("checks", [])
    if checks:
        rows = [["software check (not a claim of the paper)", "ours", "holds"]]
        rows += [
            [str(c.get("check", "")), str(c.get("ours", "")), "yes" if c.get("holds") else "**no**"] for c in checks
        ]
        md += [*_markdown_table(rows), ""]
    for fig in data.get("figures", []):
        title = str(fig.get("title", fig.get("name", "figure"))).replace("]", ")").replace("[", "(")
        if fig.get("png"):
            md += [f"![{title}](results/{fig['png']})", ""]
        md += [f"[{title} (interactive)](results/{fig['html']})", ""]
    md += [f"- {key}: {_short(value)}" for key, value in data.get("values", {}).items()]
    return md


def machine(device: str = "auto") -> dict[str, Any]:
    """What the run ran on: CPU model, cores, Python and torch versions, the device ``device`` resolves to, and the
    GPU's name where one is used."""
    import torch

    from .runtime import resolve_device, versions

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(terse=True)}
    info |= versions()  # python, torch, numpy, plotly, ...
    try:
        info["device"] = str(resolve_device(device))
    except ValueError as exc:  # e.g. cuda asked for on a machine without one: the notebooks said so
        info["device"] = f"{device} ({exc})"
    if info["device"].startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_run_info(summary: RunSummary, profile: str, device: str) -> Path:
    """Write ``run.json``: the run's profile, device, machine, and each notebook's seconds and status (the site and
    the README's results read it)."""
    runs = [
        {
            "name": r.name,
            "ok": r.ok,
            "seconds": r.seconds,
            "reference_epochs": r.reference_epochs,
            "error": r.error,
            "parameters": r.parameters,
            "claims": r.claims,
        }
        for r in summary.runs
    ]
    info = {
        "written": dt.datetime.now().isoformat(timespec="seconds"),
        "profile": profile,
        "device": device,
        "machine": machine(device),
        "seconds": summary.seconds,
        "reference_epochs": summary.reference_epochs,
        "notebooks": runs,
    }
    path = summary.out_dir / "run.json"
    path.write_text(json.dumps(info, indent=2, default=str))
    return path


def write_report(summary: RunSummary, profile: str, device: str) -> Path:
    """Write ``run.json``, ``report.md`` and ``report.html`` (``report.md`` rendered by
    :func:`~l2l_helpers.site.markdown_page`): notebook status table, the claims by paper figure, then each
    notebook's recorded results."""
    from .site import markdown_page

    write_run_info(summary, profile, device)
    results = load_results(summary.out_dir / "results")
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
    groups = claims_by_figure(results)
    if groups:
        md += ["", "## Claims by paper figure", "", f"{verdict_tally(groups)}. {splits_line(groups)}".strip(), ""]
        md += [figure_table_markdown(groups)]
    for name, data in results.items():
        md += _notebook_section(name, data)
    summary.report.write_text("\n".join(md) + "\n")
    (summary.out_dir / "report.html").write_text(markdown_page("\n".join(md), "l2l run report"))
    if summary.failed:
        (summary.out_dir / "FAILED").write_text("\n".join(r.name for r in summary.failed) + "\n")
    return summary.report
