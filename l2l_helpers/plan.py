"""The evaluation plan (``notebooks/PLAN.md``): every claim's statistic, number of held-out tasks, seeds, baseline
tuning and rule, fixed on ``dev`` tasks before the locked ``test`` tasks were evaluated.

The plan is a Markdown file a reader can read; each notebook has a section ``## <notebook>`` with one table whose
rows are its claims: ``| id | claim | statistic | n | seeds | baselines tuned for | rule |``. A notebook's claims
carry their ``id``; :func:`~l2l_helpers.results.report_claims` looks each one up here and records ``planned_n``
beside the ``n`` the run used, so that a run that evaluated fewer tasks than planned says so.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .settings import CHECKOUT_DIR

#: Columns of a notebook's table, in order.
COLUMNS = ("id", "claim", "statistic", "n", "seeds", "baselines tuned for", "rule")


def plan_file() -> Path | None:
    """``notebooks/PLAN.md`` of a checkout, or None where the package runs without one (an installed wheel)."""
    if CHECKOUT_DIR is None:
        return None
    path = CHECKOUT_DIR / "notebooks" / "PLAN.md"
    return path if path.is_file() else None


def parse_plan(text: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``{notebook: {claim id: row}}`` from the plan's Markdown (sections ``## NN_name``; other sections are prose);
    ``n`` and ``seeds`` become integers (None for a dash). A table whose header is not :data:`COLUMNS`, or an id
    used twice in a notebook, is a ``ValueError``."""
    plan: dict[str, dict[str, dict[str, Any]]] = {}
    notebook, header_seen = None, False
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("## "):
            name = stripped[3:].strip().split()[0]
            notebook = name if name[:2].isdigit() and name[2:3] == "_" else None  # other sections are prose
            header_seen = False
            continue
        if notebook is None or not stripped.startswith("|"):
            continue
        cells = [c.strip() for c in stripped.strip("|").split("|")]
        if not header_seen:
            if tuple(c.lower() for c in cells) != COLUMNS:
                raise ValueError(f"PLAN.md line {number}: a table's header must be | {' | '.join(COLUMNS)} |")
            header_seen = True
            continue
        if set("".join(cells)) <= set("-: "):
            continue  # the separator row
        if len(cells) != len(COLUMNS):
            raise ValueError(f"PLAN.md line {number}: {len(cells)} cells, expected {len(COLUMNS)}")
        row: dict[str, Any] = dict(zip(COLUMNS, cells, strict=True))
        for key in ("n", "seeds"):
            row[key] = int(row[key]) if row[key].isdigit() else None
        claims = plan.setdefault(notebook, {})
        if row["id"] in claims:
            raise ValueError(f"PLAN.md line {number}: claim id {row['id']!r} appears twice in {notebook}")
        claims[row["id"]] = row
    return plan


@functools.cache
def _load(path: str, mtime: float) -> dict[str, dict[str, dict[str, Any]]]:
    return parse_plan(Path(path).read_text())


def planned(notebook: str) -> dict[str, dict[str, Any]]:
    """The plan's rows for ``notebook`` by claim id (empty without a plan file or a section for it)."""
    path = plan_file()
    if path is None:
        return {}
    return _load(str(path), path.stat().st_mtime).get(notebook, {})


def claim_power(row: dict[str, Any], target: float = 0.8) -> dict[str, Any] | None:
    """For a recorded claim with its deciding comparison's per-task ``log_ratios`` (a ``dev`` run): n, the median log
    ratio, the share of tasks on its side (smoothed: (count + 1/2) / (n + 1), so that a clean sweep of a few tasks is
    not read as certainty), the sign test's power at this n and the tasks :func:`tasks_for_power` needs for
    ``target``; None for a claim without log ratios."""
    import numpy as np

    from .intervals import power, tasks_for_power

    logs = np.asarray(row.get("log_ratios") or [], dtype=float)
    logs = logs[~np.isnan(logs)]
    if len(logs) < 2:
        return None
    median = float(np.median(logs))
    side = np.sign(median) or 1.0
    share = (float(np.sum(np.sign(logs) == side)) + 0.5) / (len(logs) + 1)
    return {
        "n": len(logs),
        "median_log_ratio": median,
        "share": share,
        "power": power(share, len(logs)),
        "n_for_power": tasks_for_power(share, target),
    }


def power_table(run_dir: str | Path, target: float = 0.8) -> str:
    """A Markdown table of every claim of a (``dev``) run with log ratios: :func:`claim_power` row by row."""
    from .claims_table import load_results

    lines = [
        f"| notebook | id | n | median log ratio | share of tasks on its side | power at n | n for {target:.0%} |",
        "|---|---|---|---|---|---|---|",
    ]
    for notebook, data in load_results(Path(run_dir) / "results").items():
        for row in data.get("claims", []):
            found = claim_power(row, target)
            if found is None:
                continue
            lines.append(
                f"| {notebook} | {row.get('id')} | {found['n']} | {found['median_log_ratio']:.3f} "
                f"| {found['share']:.2f} | {found['power']:.2f} | {found['n_for_power'] or '> 1000'} |"
            )
    return "\n".join(lines)


def dev_log_ratios(run_dir: str | Path, least: int = 16) -> dict[str, list[float]]:
    """The per-task log ratios of every claim of a ``dev`` run decided on at least ``least`` tasks, by
    ``notebook/id``: the populations the coverage test resamples (``tests/data/dev_log_ratios.json``)."""
    from .claims_table import load_results

    out = {}
    for notebook, data in load_results(Path(run_dir) / "results").items():
        for row in data.get("claims", []):
            logs = [float(v) for v in row.get("log_ratios") or [] if isinstance(v, (int, float))]
            if row.get("split") == "dev" and len(logs) >= least:
                out[f"{notebook}/{row.get('id')}"] = logs
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m l2l_helpers.plan power RUN_DIR`` or ``... dev-log-ratios RUN_DIR OUT.json``: the power of each
    claim on a ``dev`` run's tasks, or the log ratios the coverage test resamples."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(prog="python -m l2l_helpers.plan", description=main.__doc__)
    parser.add_argument("what", choices=("power", "dev-log-ratios"), help="what to compute from the run")
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run of the dev profile (make run PROFILE=dev)")
    parser.add_argument("out", type=Path, nargs="?", help="dev-log-ratios: the JSON file to write")
    args = parser.parse_args(argv)
    if not (args.run_dir / "results").is_dir():
        print(f"l2l plan: error: {args.run_dir} has no results/: give a run's folder", file=sys.stderr)
        return 2
    if args.what == "power":
        print(power_table(args.run_dir))
        return 0
    if args.out is None:
        print("l2l plan: error: dev-log-ratios needs OUT.json", file=sys.stderr)
        return 2
    found = dev_log_ratios(args.run_dir)
    command = f"python -m l2l_helpers.plan dev-log-ratios {args.run_dir} {args.out}"
    args.out.write_text(json.dumps({"command": command, "log_ratios": found}, indent=1) + "\n")
    print(f"{len(found)} claims' log ratios written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
