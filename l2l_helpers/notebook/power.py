"""How many tasks a claim needs, from a development run: the sign test's power on each claim's per-task log ratios
(``python -m l2l_helpers.notebook.power power RUN``), and the dev log ratios the interval tests resample
(``python -m l2l_helpers.notebook.power dev-log-ratios RUN OUT``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def claim_power(row: dict[str, Any], target: float = 0.8) -> dict[str, Any] | None:
    """For a recorded claim with its deciding comparison's per-task ``log_ratios`` (a ``dev`` run): n, the median log
    ratio, the share of tasks on its side (smoothed: (count + 1/2) / (n + 1), so that a clean sweep of a few tasks is
    not read as certainty), the sign test's power at this n and the tasks :func:`tasks_for_power` needs for
    ``target``; None for a claim without log ratios."""
    import numpy as np

    from l2l_helpers.evaluation.intervals import power, tasks_for_power

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
    from l2l_helpers.notebook.claims_table import load_results

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
    from l2l_helpers.notebook.claims_table import load_results

    out = {}
    for notebook, data in load_results(Path(run_dir) / "results").items():
        for row in data.get("claims", []):
            logs = [float(v) for v in row.get("log_ratios") or [] if isinstance(v, (int, float))]
            if row.get("split") == "dev" and len(logs) >= least:
                out[f"{notebook}/{row.get('id')}"] = logs
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m l2l_helpers.notebook.power power RUN_DIR`` or ``... dev-log-ratios RUN_DIR OUT.json``: the power
    of each
    claim on a ``dev`` run's tasks, or the log ratios the coverage test resamples."""
    import argparse
    import json
    import sys

    parser = argparse.ArgumentParser(prog="python -m l2l_helpers.notebook.power", description=main.__doc__)
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
    command = f"python -m l2l_helpers.notebook.power dev-log-ratios {args.run_dir} {args.out}"
    args.out.write_text(json.dumps({"command": command, "log_ratios": found}, indent=1) + "\n")
    print(f"{len(found)} claims' log ratios written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
