"""What a headless run writes beside the executed notebooks: run.json (machine, times, reference epochs) and report.md
(every notebook's claims, checks and values)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from l2l_helpers.notebook.claims_table import (
    claims_by_figure,
    figure_table_markdown,
    load_results,
    splits_line,
    verdict_tally,
)
from l2l_helpers.notebook.results import interval_text, verdict_text


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

    from l2l_helpers.runtime import resolve_device, versions

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
    :func:`~l2l_helpers.notebook.site.markdown_page`): notebook status table, the claims by paper figure, then each
    notebook's recorded results."""
    from l2l_helpers.notebook.pages import markdown_page

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
