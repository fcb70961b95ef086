"""A run's claims in one table, grouped by the figure of the paper (Andrychowicz et al., 2016) they reproduce.

Each notebook records its claims in ``results/<notebook>.json`` (:func:`~l2l_helpers.notebook.results.claim`). A claim's
group comes from its text where it names one ("... (Figure 4, middle)", "(Appendix A)", "(not in the paper)"),
otherwise from the notebook it belongs to (:data:`NOTEBOOK_FIGURES`). The table is written as Markdown (README,
report) and as HTML (the run's site, :mod:`~l2l_helpers.notebook.site`).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l2l_helpers.notebook.results import VERDICTS, verdict_of, verdict_text

#: The groups in the paper's order: key -> heading.
FIGURES: dict[str, str] = {
    "method": "Method (Section 2, Figures 2 and 3)",
    "fig4-left": "Figure 4, left: quadratics",
    "fig4-middle": "Figure 4, middle: MNIST, 100 steps",
    "fig4-right": "Figure 4, right: MNIST, 200 steps",
    "fig5": "Figure 5: MNIST, other architectures",
    "fig6": "Figure 6: convnets (CIFAR-10 in the paper)",
    "fig7": "Figure 7: neural art",
    "fig8": "Figure 8: neural art, images",
    "appendix": "Appendix: preprocessing, information sharing",
    "beyond": "Beyond the paper",
}

#: Where each notebook's claims belong when their text names no figure (each notebook's "Where in the paper").
NOTEBOOK_FIGURES: dict[str, str] = {
    "01": "method",
    "02": "method",
    "03": "appendix",
    "04": "method",
    "05": "fig4-left",
    "06": "fig4-middle",
    "07": "fig5",
    "08": "fig5",
    "09": "fig7",
    "10": "fig6",
    "11": "beyond",
}

_BEYOND = re.compile(r"not (?:in|claimed by) the paper|beyond the paper", re.IGNORECASE)
_FIGURE = re.compile(r"Figure\s+(\d+)(?:\s*[,(]?\s*(left|middle|right))?", re.IGNORECASE)
_APPENDIX = re.compile(r"\bappendix\b|\bGAC\b|NTM-BFGS|Global Averaging", re.IGNORECASE)


def figure_of(text: str, notebook: str) -> str:
    """The key in :data:`FIGURES` of a claim: "not in the paper" first, then the first figure the text names
    (Figure 4 only with its panel), then the appendix's pieces, else the notebook's default."""
    if _BEYOND.search(text):
        return "beyond"
    for match in _FIGURE.finditer(text):
        number, panel = int(match.group(1)), (match.group(2) or "").lower()
        if number <= 3:
            return "method"
        if number == 4 and panel:
            return f"fig4-{panel}"
        if 5 <= number <= 8:
            return f"fig{number}"
        if number > 8:  # the paper's appendix figures
            return "appendix"
    if _APPENDIX.search(text):
        return "appendix"
    return NOTEBOOK_FIGURES.get(notebook.split("_", 1)[0], "beyond")


@dataclass(frozen=True)
class ClaimRow:
    """One claim of a run as the table shows it."""

    figure: str
    notebook: str
    claim: str
    verdict: str
    ratio: float | None = None
    interval: tuple[float, float] | None = None
    metric: str = ""
    n: int | None = None
    seeds: int | None = None
    split: str | None = None
    planned_n: int | None = None

    @property
    def n_text(self) -> str:
        """The tasks behind the interval, with the plan's number where the run used another: ``16 (planned 20)``."""
        if self.n is None:
            return ""
        if self.planned_n is not None and self.planned_n != self.n:
            return f"{self.n} (planned {self.planned_n})"
        return str(self.n)

    @property
    def ratio_text(self) -> str:
        """``0.81 [0.7, 0.93] final loss, LSTM/Adam``; empty for a check that is not a comparison."""
        if self.interval is None:
            return "" if self.ratio is None else f"{self.ratio:.3g}"
        low, high = self.interval
        head = f"{self.ratio:.3g} " if self.ratio is not None else ""
        metric = self.metric.replace(": ratio of means ", ", ").replace(": median-task ratio ", ", ")
        return f"{head}[{low:.3g}, {high:.3g}]" + (f" {metric}" if metric else "")


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _row(notebook: str, claim: Mapping[str, Any]) -> ClaimRow:
    text = " ".join(str(claim.get("claim", "")).split())
    interval = claim.get("interval")
    bounds = tuple(_number(v) for v in interval) if isinstance(interval, (list, tuple)) and len(interval) == 2 else ()
    return ClaimRow(
        figure=figure_of(text, notebook),
        notebook=notebook,
        claim=text,
        verdict=verdict_of(claim),
        ratio=_number(claim.get("ratio")),
        interval=bounds if len(bounds) == 2 and None not in bounds else None,  # type: ignore[arg-type]
        metric=str(claim.get("metric") or ""),
        n=claim.get("n", claim.get("tasks")),
        seeds=claim.get("seeds"),
        split=claim.get("split"),
        planned_n=claim.get("planned_n"),
    )


def load_results(results_dir: str | Path) -> dict[str, dict[str, Any]]:
    """``results/*.json`` of a run by notebook; an unreadable file becomes ``{"error": ...}``."""
    out = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            out[path.stem] = {"error": f"unreadable results file: {exc}"}
    return out


def claims_by_figure(results: Mapping[str, Mapping[str, Any]]) -> dict[str, list[ClaimRow]]:
    """Every recorded claim of a run (``results``: notebook -> its results JSON) by figure, in the paper's order;
    figures without claims are left out, and within a figure the claims keep the notebooks' order."""
    groups: dict[str, list[ClaimRow]] = {key: [] for key in FIGURES}
    for notebook in sorted(results):
        claims = results[notebook].get("claims", [])
        for claim in claims if isinstance(claims, list) else []:
            if isinstance(claim, Mapping):
                row = _row(notebook, claim)
                groups[row.figure].append(row)
    return {key: rows for key, rows in groups.items() if rows}


def splits_line(groups: Mapping[str, list[ClaimRow]]) -> str:
    """Which held-out tasks the verdicts were measured on: the locked ``test`` tasks (the plan's), or ``dev``."""
    splits = sorted({row.split for rows in groups.values() for row in rows if row.split})
    if splits == ["test"]:
        return (
            "Verdicts measured once on the locked test tasks, as planned in notebooks/PLAN.md; the recipes, task "
            "counts and rules were chosen on dev tasks."
        )
    if not splits:
        return ""
    return f"Verdicts measured on the {' and '.join(splits)} tasks (the locked test tasks are split 'test')."


def verdict_tally(groups: Mapping[str, list[ClaimRow]]) -> str:
    """``38 claims: 30 reproduced, 3 not reproduced, 4 inconclusive, 1 not tested`` (verdicts with none left out)."""
    verdicts = [row.verdict for rows in groups.values() for row in rows]
    counts = ", ".join(f"{verdicts.count(v)} {v}" for v in VERDICTS if verdicts.count(v))
    return f"{len(verdicts)} claim{'s' if len(verdicts) != 1 else ''}" + (f": {counts}" if counts else "")


def _cell(text: Any) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(("" if text is None else str(text)).split()).replace("|", "\\|")


COLUMNS = ("paper figure", "claim", "verdict", "ratio [95% interval]", "n (tasks)", "seeds", "notebook")


def figure_table_markdown(groups: Mapping[str, list[ClaimRow]]) -> str:
    """The claims by figure as one Markdown table; the figure is named on the first row of its group."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for key, rows in groups.items():
        for i, row in enumerate(rows):
            cells = [FIGURES[key] if i == 0 else "", row.claim, verdict_text({"verdict": row.verdict})]
            cells += [row.ratio_text, row.n_text, row.seeds, row.notebook]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def figure_table_html(groups: Mapping[str, list[ClaimRow]], notebook_href: Mapping[str, str] | None = None) -> str:
    """The claims by figure as one HTML table, a heading row per figure; ``notebook_href`` links notebook names."""
    links = notebook_href or {}
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS[1:])
    out = [f"<table class='claims'><thead><tr>{head}</tr></thead>"]
    for key, rows in groups.items():
        out.append(f"<tbody><tr class='figure'><th colspan='{len(COLUMNS) - 1}'>{html.escape(FIGURES[key])}</th></tr>")
        for row in rows:
            name = html.escape(row.notebook)
            notebook = f"<a href='{html.escape(links[row.notebook])}'>{name}</a>" if row.notebook in links else name
            verdict = f"<td class='verdict {row.verdict.replace(' ', '-')}'>{html.escape(row.verdict)}</td>"
            sizes = "".join(
                f"<td class='num'>{'' if v is None else html.escape(str(v))}</td>" for v in (row.n_text, row.seeds)
            )
            out.append(
                f"<tr><td>{html.escape(row.claim)}</td>{verdict}<td>{html.escape(row.ratio_text)}</td>{sizes}"
                f"<td>{notebook}</td></tr>"
            )
        out.append("</tbody>")
    out.append("</table>")
    return "\n".join(out)
