"""Numbers and claims computed by a notebook, written to a results JSON that tests and the report read.

Each notebook calls :func:`record` with the values it computed and :func:`claim` rows of the form
(what is claimed, our numbers, does it hold). Under ``make run`` the files go to
``runs/<timestamp>/results/``; otherwise to ``runs/interactive/results/``.
"""

from __future__ import annotations

import atexit
import functools
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from l2l_helpers.settings import results_dir


def _plain(value: Any) -> Any:
    """JSON-friendly copy: tensors and NumPy scalars become numbers or lists; inf/NaN become strings."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


#: A claim's verdict (:mod:`~l2l_helpers.evaluation.intervals` explains how a paired interval decides it).
VERDICTS = ("reproduced", "not reproduced", "inconclusive", "too few tasks", "not tested")
#: The fields every claim record carries (None where one does not apply, e.g. no interval for a yes-or-no rule).
CLAIM_FIELDS = ("verdict", "interval", "n", "seeds", "method", "split", "planned_n")


def claim(
    text: str,
    ours: str,
    holds: bool | None = None,
    *,
    id: str | None = None,
    verdict: str | None = None,
    interval: Sequence[float] | None = None,
    metric: str | None = None,
    n: int | None = None,
    tasks: int | None = None,
    seeds: int | None = None,
    ratio: float | None = None,
    method: str | None = None,
    split: str | None = None,
    log_ratios: Sequence[float] | None = None,
    comparisons: Any = None,
) -> dict[str, Any]:
    """One row of a claims table: the claim, our computed numbers, and its verdict.

    Either ``holds`` (True / False / None = not tested: a yes-or-no rule) or ``verdict`` (one of :data:`VERDICTS`)
    with, for a comparison, its 95% ``interval``, the ``metric`` it is on, ``n`` (independent held-out tasks or task
    groups; ``tasks`` is the same), the number of meta-trained optimizers (``seeds``) and the interval's ``method``:
    the fields :func:`~l2l_helpers.evaluation.intervals.lower_than` returns, so ``claim(text,
    **lower_than(results))`` works
    (``comparisons`` is accepted and left out of the row). ``id`` names the claim in the plan
    (:mod:`~l2l_helpers.notebook.plan`); ``split`` (``test``: the locked tasks) and ``planned_n`` are filled in by
    :func:`report_claims`. ``reproduced`` (True / False / None) is kept for readers of older results files.
    """
    if verdict is None:
        verdict = "not tested" if holds is None else ("reproduced" if holds else "not reproduced")
    elif holds is not None:
        raise ValueError("give holds (a yes-or-no rule) or verdict (from an interval), not both")
    if verdict not in VERDICTS:
        raise ValueError(f"verdict={verdict!r} is unknown; use one of: {', '.join(VERDICTS)}")
    if n is not None and tasks is not None and n != tasks:
        raise ValueError(f"n={n} and tasks={tasks} disagree: give one")
    row: dict[str, Any] = {"claim": text, "id": id, "ours": ours, "verdict": verdict}
    row["reproduced"] = {"reproduced": True, "not reproduced": False}.get(verdict)
    row |= {"interval": None if interval is None else list(interval), "n": n if n is not None else tasks}
    row |= {"seeds": seeds, "method": method, "split": split, "planned_n": None}
    extra = {"metric": metric, "ratio": ratio, "log_ratios": None if log_ratios is None else list(log_ratios)}
    row.update({k: v for k, v in extra.items() if v is not None})
    return row


def software_check(text: str, ours: str, holds: bool) -> dict[str, Any]:
    """A row of a notebook's checks: a property of the software (the written-out code equals the package's, phi
    does not grow with n), reported beside the claims but never counted among the paper's claims."""
    return {"check": text, "ours": ours, "holds": bool(holds)}


def verdict_of(row: Mapping[str, Any]) -> str:
    """A recorded claim's verdict; rows written before verdicts existed have only ``reproduced``."""
    if row.get("verdict") in VERDICTS:
        return str(row["verdict"])
    return {True: "reproduced", False: "not reproduced"}.get(row.get("reproduced"), "not tested")  # type: ignore[arg-type]


def interval_text(row: Mapping[str, Any]) -> str:
    """A claim's interval for a table: ``[low, high] (metric; 20 tasks, 3 seeds)``, or empty when it has none."""
    interval = row.get("interval")
    if not interval:
        return ""
    low, high = (float(v) for v in interval)
    text = f"[{low:.3g}, {high:.3g}]"
    n = row.get("n", row.get("tasks"))
    sizes = ", ".join(
        f"{v} {k if v != 1 else k[:-1]}" for k, v in (("tasks", n), ("seeds", row.get("seeds"))) if v is not None
    )
    details = "; ".join(part for part in (str(row.get("metric") or ""), sizes) if part)
    return f"{text} ({details})" if details else text


def verdict_text(row: Mapping[str, Any]) -> str:
    """A claim's verdict for a Markdown table; ``not reproduced`` in bold."""
    verdict = verdict_of(row)
    return f"**{verdict}**" if verdict == "not reproduced" else verdict


def _update(notebook: str, change: Callable[[dict[str, Any]], None]) -> Path:
    path = results_dir() / f"{notebook}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"notebook": notebook, "values": {}, "claims": [], "figures": []}
    if path.exists():
        try:
            data.update(json.loads(path.read_text()))
        except json.JSONDecodeError:
            pass  # a broken file from an interrupted run is replaced
    change(data)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
    return path


def record(
    notebook: str,
    values: dict[str, Any] | None = None,
    claims: list[dict[str, Any]] | None = None,
    checks: list[dict[str, Any]] | None = None,
) -> Path:
    """Merge ``values``, ``claims`` and ``checks`` into ``<results_dir>/<notebook>.json``; returns the file."""

    def change(data: dict[str, Any]) -> None:
        data["values"].update(_plain(values or {}))
        if claims:
            texts = {c["claim"] for c in claims}
            data["claims"] = [c for c in data["claims"] if c["claim"] not in texts] + _plain(claims)
        if checks:
            texts = {c["check"] for c in checks}
            data["checks"] = [c for c in data.get("checks", []) if c["check"] not in texts] + _plain(checks)

    return _update(notebook, change)


@functools.cache
def _png_renderer() -> str | None:
    """Start one kaleido browser for the whole process (measured: 2 s per PNG without it, 0.15 s with it).

    Returns why no PNG can be made (no kaleido, no Chrome/Chromium), or None when the browser runs. Without a
    browser kaleido's shared server dies in its thread while ``start_sync_server`` returns, and every
    ``write_image`` after it waits forever (a `make run` hung so on a machine without Chromium): so the browser is
    looked for first. Registered to close at exit.
    """
    try:
        import kaleido
        from choreographer.browsers.chromium import Chromium
    except ImportError as exc:
        return f"no PNG: {exc}"
    if Chromium.find_browser(skip_local=False) is None:
        return "no PNG: kaleido finds no Chrome or Chromium (Debian: apt install chromium)"
    try:
        kaleido.start_sync_server(silence_warnings=True)
        atexit.register(kaleido.stop_sync_server, silence_warnings=True)
    except Exception as exc:  # the browser would not start: say so per figure
        return f"no PNG: {type(exc).__name__}: {exc}"[:200]
    return None


def save_figure(notebook: str, name: str, fig: Any, png: bool = True) -> dict[str, str]:
    """Keep a key figure for the report: standalone HTML (always) and PNG (when kaleido can render one).

    Files go to ``<results_dir>/figures/<notebook>-<name>.{html,png}``; the HTML pages share one local
    ``plotly.min.js``, so they open without a kernel and without internet. Returns the files written
    (paths relative to the results folder) and the figure's title.
    """
    if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
        raise ValueError(f"name={name!r} must be a non-empty file stem of letters, digits, '-' and '_'")
    folder = results_dir() / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{notebook}-{name}"
    fig.write_html(folder / f"{stem}.html", include_plotlyjs="directory", full_html=True)
    entry = {"name": name, "title": str(fig.layout.title.text or name), "html": f"figures/{stem}.html"}
    if png and (why := _png_renderer()) is not None:
        entry["png_error"] = why
    elif png:
        try:
            width, height = fig.layout.width or 900, fig.layout.height or 500  # a figure's own size wins
            with warnings.catch_warnings():  # the shared browser ignores per-call browser options, and says so
                warnings.filterwarnings("ignore", message="The kopts argument is ignored")
                fig.write_image(folder / f"{stem}.png", width=width, height=height, scale=1)
            entry["png"] = f"figures/{stem}.png"
        except Exception as exc:  # kaleido or its browser missing: the HTML version still reads without a kernel
            entry["png_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]

    def change(data: dict[str, Any]) -> None:
        data["figures"] = [f for f in data.get("figures", []) if f.get("name") != name] + [entry]

    _update(notebook, change)
    return entry


def check(holds: bool, message: str, smoke: bool = False) -> bool:
    """Assert a notebook's claim; in a SMOKE run (too small to show it) report instead of failing."""
    if not holds and not smoke:
        raise AssertionError(f"claim does not hold: {message}")
    status = "holds" if holds else "does not hold in this SMOKE run (too small to show it)"
    print(f"{message}: {status}")
    return bool(holds)


def claims_markdown(claims: list[dict[str, Any]], checks: list[dict[str, Any]] | None = None) -> str:
    """A Markdown claims table for ``IPython.display.Markdown``: the verdict, and the 95% interval where one
    decides it (with the metric it is on, and how many tasks and optimizers); then the software checks, apart."""
    lines = ["| claim | ours | verdict | 95% interval |", "|---|---|---|---|"]
    lines += [f"| {c['claim']} | {c['ours']} | {verdict_text(c)} | {interval_text(c)} |" for c in claims]
    if checks:
        lines += ["", "| software check | ours | holds |", "|---|---|---|"]
        lines += [f"| {c['check']} | {c['ours']} | {'yes' if c['holds'] else '**no**'} |" for c in checks]
    return "\n".join(lines)


def fill_plan(notebook: str, claims: list[dict[str, Any]], split: str | None) -> list[dict[str, Any]]:
    """The claims with ``split`` and ``planned_n`` (from the plan, :mod:`~l2l_helpers.notebook.plan`, by claim id)
    filled in;
    a claim id the plan does not know is an error, so a notebook cannot record a claim nobody planned. A claim
    measured on fewer tasks than planned (a SMOKE run, a smaller default than the plan's) is ``not tested``: its
    numbers are kept, its verdict withheld."""
    from l2l_helpers.notebook.plan import planned

    plan = planned(notebook)
    out = []
    for row in claims:
        row = dict(row)
        if plan and row.get("id") not in plan:
            known = ", ".join(plan) or "none"
            raise ValueError(f"{notebook}: claim id {row.get('id')!r} is not in notebooks/PLAN.md (known: {known})")
        row["split"] = split if row.get("n") is not None else row.get("split")
        row["planned_n"] = plan[row["id"]]["n"] if plan else None
        n, wanted = row.get("n"), row["planned_n"]
        if n is not None and wanted is not None and n < wanted and row["verdict"] != "not tested":
            # fewer tasks than planned: the planned test was not made; the numbers stay, the verdict is withheld
            row["ours"] = (
                f"{row['ours']} [n = {n} of the planned {wanted}: verdict withheld, {row['verdict']} at this n]"
            )
            row["verdict"], row["reproduced"] = "not tested", None
        out.append(row)
    return out


def report_claims(
    notebook: str,
    claims: list[dict[str, Any]],
    values: dict[str, Any] | None = None,
    figures: Mapping[str, Any] | None = None,
    checks: list[dict[str, Any]] | None = None,
    split: str | None = None,
) -> Path:
    """Close a notebook: write its values, claims and software checks (:func:`record`), keep its key figures for
    the report (:func:`save_figure`) and show the claims table. ``split`` is the held-out split the claims were
    measured on (``test``: the locked tasks; ``dev`` in a SMOKE run). Returns the results file."""
    from IPython.display import Markdown, display

    claims = fill_plan(notebook, claims, split)
    path = record(notebook, values, claims, checks)
    for name, fig in (figures or {}).items():
        save_figure(notebook, name, fig)
    display(Markdown(claims_markdown(claims, checks)))
    if claims:
        display(
            Markdown(
                "*Each ratio is the median task's (log ratio, paired on the same tasks) with the sign test's 95% "
                "interval; the paper draws mean loss curves (`notebooks/PLAN.md`).*"
            )
        )
    if split == "test":
        display(
            Markdown(
                "*Verdicts on the locked `test` tasks, as planned in `notebooks/PLAN.md`: the recipes, task counts and "
                "rules were chosen on `dev` tasks, before these tasks were evaluated.*"
            )
        )
    elif split is not None:
        display(Markdown(f"*These verdicts are on the `{split}` tasks (development), not the locked `test` tasks.*"))
    return path
