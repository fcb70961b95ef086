"""Does each fast path earn its place? Its notebook's whole run with the fast path and with its plain path pinned.

Every fast path of ``l2l_helpers/kernels`` has a plain PyTorch path beside it (``L2L_PLAIN`` pins it). A fast path
keeps its place only if it makes its notebook's whole run at least 1.3x faster. This script runs each notebook
headless (``make run``'s runner, one notebook at a time, the same profile) once per arm, one arm after the other,
with a reference epoch timed before and after each (the unit of every timing here), and prints for each fast path
the two runs' seconds, their ratio in seconds and in reference epochs, and how far the two runs' recorded numbers
differ (float rounding) and whether their verdicts agree.

    python benchmarks/bench_fast_paths.py                      # every fast path, profile dev
    python benchmarks/bench_fast_paths.py --paths conv_block   # one

The arms (the LSTM steps on MNIST's notebook 06, the convnet's block on 10, neural art's loss on 09):

* ``native``: the default (the native step where selected) against both LSTM steps pinned plain (``nn.LSTMCell``);
* ``fused``: the native step off, the fused step against ``nn.LSTMCell`` (what machines without the native step
  run: GPUs, no C++ compiler);
* ``conv_block`` and ``style_loss``: the default against that kernel pinned plain.

Writes ``benchmarks/results/fast_paths.json`` (not committed) and the runs under ``benchmarks/results/fast_paths/``.
Run nothing else meanwhile: on a 2-core machine another job's threads distort every timing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD = 1.3
#: fast path -> (notebook, the fast arm's environment, the plain arm's environment)
ARMS: dict[str, tuple[str, dict[str, str], dict[str, str]]] = {
    "native": ("06", {}, {"L2L_PLAIN": "native,fused"}),
    "fused": ("06", {"L2L_PLAIN": "native"}, {"L2L_PLAIN": "native,fused"}),
    "conv_block": ("10", {}, {"L2L_PLAIN": "conv_block"}),
    "style_loss": ("09", {}, {"L2L_PLAIN": "style_loss"}),
}


def arm_label(notebook: str, env: dict[str, str]) -> str:
    """A folder name for one arm: the notebook and what it pins (``06-default``, ``06-plain-native-fused``)."""
    pinned = env.get("L2L_PLAIN")
    return f"{notebook}-" + ("plain-" + pinned.replace(",", "-") if pinned else "default")


def numbers(value: Any, path: str = "") -> Iterator[tuple[str, float]]:
    """Every number in a results JSON (figures left out), with its path; numbers inside text count too."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "figures":
                yield from numbers(item, f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from numbers(item, f"{path}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, float(value)


def results_difference(a: Path, b: Path) -> dict[str, Any]:
    """The largest relative difference between two runs' recorded numbers, how many differ, and whether every
    claim's verdict is the same."""
    da, db = json.loads(a.read_text()), json.loads(b.read_text())
    na, nb = dict(numbers(da)), dict(numbers(db))
    differ = [
        (abs(na[k] - nb[k]) / max(abs(na[k]), abs(nb[k]), 1e-300), k)
        for k in na.keys() & nb.keys()
        if na[k] != nb[k] and not (math.isnan(na[k]) and math.isnan(nb[k]))
    ]
    worst = max(differ, default=(0.0, ""))
    verdicts = [c.get("verdict") for c in da.get("claims", [])], [c.get("verdict") for c in db.get("claims", [])]
    return {
        "numbers": len(na),
        "differ": len(differ),
        "missing": len(na.keys() ^ nb.keys()),
        "largest_relative": worst[0],
        "at": worst[1],
        "same_verdicts": verdicts[0] == verdicts[1],
    }


def run_arm(notebook: str, env: dict[str, str], out: Path, profile: str) -> dict[str, Any]:
    """One headless run of ``notebook`` with ``env`` set (and every ``L2L_PLAIN`` unset otherwise)."""
    from l2l_helpers.notebook.runner import run_notebooks

    saved = {name: os.environ.get(name) for name in ("L2L_PLAIN", "L2L_NATIVE")}
    for name in saved:
        os.environ.pop(name, None)
    os.environ.update(env)
    try:
        summary = run_notebooks(ROOT / "notebooks", out, profile=profile, only=[notebook], echo=print)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    run = summary.runs[0]
    if not run.ok:
        raise RuntimeError(f"notebook {notebook} failed with {env}: {run.error}")
    before, after = run.reference_s
    return {
        "env": env,
        "seconds": run.seconds,
        "reference_s": [before, after],
        "reference_epochs": run.reference_epochs,
        "results": str(next((out / "results").glob(f"{notebook}_*.json"))),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", nargs="+", choices=list(ARMS), default=list(ARMS), help="fast paths to measure")
    parser.add_argument("--profile", default="dev", help="make run's profile for every arm (default: dev)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="where results go")
    args = parser.parse_args(argv)
    runs: dict[str, dict[str, Any]] = {}
    for name in args.paths:
        notebook, fast, plain = ARMS[name]
        for env in (fast, plain):
            label = arm_label(notebook, env)
            if label not in runs:  # the plain LSTM arm serves both native and fused
                print(f"== {label}: {env or 'default'}", flush=True)
                runs[label] = run_arm(notebook, env, args.out / "fast_paths" / label, args.profile)
    rows = []
    for name in args.paths:
        notebook, fast, plain = ARMS[name]
        a, b = runs[arm_label(notebook, fast)], runs[arm_label(notebook, plain)]
        rows.append(
            {
                "fast_path": name,
                "notebook": notebook,
                "fast_s": a["seconds"],
                "plain_s": b["seconds"],
                "ratio_seconds": b["seconds"] / a["seconds"],
                "ratio_reference_epochs": b["reference_epochs"] / a["reference_epochs"],
                "keeps_place": b["reference_epochs"] / a["reference_epochs"] >= THRESHOLD,
                "results": results_difference(Path(a["results"]), Path(b["results"])),
            }
        )
    out = args.out / "fast_paths.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"profile": args.profile, "runs": runs, "rows": rows}, indent=1))
    print(f"\nwhole runs, profile {args.profile} (ratio: plain / fast; a fast path stays at >= {THRESHOLD}x)\n")
    print("| fast path | notebook | fast | plain | ratio (s) | ratio (ref. epochs) | stays | numbers differing |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        d = r["results"]
        moved = f"{d['differ']} of {d['numbers']}, largest rel. {d['largest_relative']:.1e}"
        moved += "" if d["same_verdicts"] else ", VERDICTS DIFFER"
        print(
            f"| {r['fast_path']} | {r['notebook']} | {r['fast_s']:.0f} s | {r['plain_s']:.0f} s | "
            f"{r['ratio_seconds']:.2f}x | {r['ratio_reference_epochs']:.2f}x | {'yes' if r['keeps_place'] else 'no'} "
            f"| {moved} |"
        )
    print(f"\nwritten: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
