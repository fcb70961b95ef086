"""The main job: execute every notebook headlessly with papermill and write a report (``make run``).

Each run goes to ``runs/<timestamp>/``: the executed notebooks, ``results/*.json`` written by the
notebooks, ``run.json`` (profile, device, machine, each notebook's time and status), ``report.md`` / ``report.html``
that read without a kernel, and ``site/`` (:mod:`~l2l_helpers.notebook.site`: every executed notebook as a page with its
figures drawn offline, and the claims by paper figure). The terminal shows one progress bar named after the running
notebook, one line per notebook (seconds, claims reproduced / not / not tested), and at the end the total time in
reference epochs (``benchmarks/reference.py``: one timed before each notebook and one after the last, each
notebook's seconds divided by the mean of the two around it, so that a machine that speeds up or slows down during the
run is measured in the unit it had then), the report's and the site's paths. Kernels talk to the runner over local
IPC sockets, not TCP.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import importlib.util
import io
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from l2l_helpers.notebook.report import NotebookRun, RunSummary, write_report
from l2l_helpers.notebook.results import verdict_of
from l2l_helpers.settings import CHECKOUT_DIR, RETRAIN_DIR_ENV

#: Parameters each profile sets in notebooks that declare them (INTERACTIVE is always False headless).
PROFILES: dict[str, dict[str, Any]] = {
    "default": {"SMOKE": False},
    "smoke": {"SMOKE": True},
    "paper": {"SMOKE": False, "RETRAIN": True},
    "dev": {"SMOKE": False, "SPLIT": "dev"},
    "full": {"SMOKE": False, "FULL": True},
}


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
    and the run's site (:func:`~l2l_helpers.notebook.site.build_site`).

    ``only`` runs just the notebooks it names, by number (``"06"``) or stem (``"06_mnist"``). ``clock`` times one
    reference epoch before each notebook and one after the last (one more epoch as warm-up), so that the run's time
    is stated in the unit of ``benchmarks/reference.py`` (seconds only where the checkout's ``benchmarks/`` is
    missing). ``echo`` gets the terminal lines (default: above
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
    try:
        reference = _reference_clock(device) if clock else None
    except FileNotFoundError as exc:  # an installed package without the checkout's benchmarks/
        say(f"times in seconds only, no reference epochs: {exc}")
        reference = None
    timings = [reference()] if reference else []
    summary = RunSummary(out)
    previous = {name: os.environ.get(name) for name in ("L2L_RESULTS_DIR", RETRAIN_DIR_ENV, "L2L_KEEP_MEMORY")}
    os.environ["L2L_RESULTS_DIR"] = str((out / "results").resolve())  # read by the notebooks' record()
    os.environ[RETRAIN_DIR_ENV] = str((out / "retrained").resolve())  # optimizers retrained once per run
    # a headless kernel exits after its notebook: it may keep freed memory for reuse (faster; runtime.setup)
    os.environ.setdefault("L2L_KEEP_MEMORY", "1")
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
        from l2l_helpers.notebook.site import build_site

        return str(build_site(out) / "index.html")
    except Exception as exc:  # a run of hours is not lost to a page that would not render
        return f"not built ({type(exc).__name__}: {exc}; retry: python -m l2l_helpers.notebook.site {out})"


def benchmark_module(name: str) -> ModuleType:
    """A script of the checkout's ``benchmarks/`` folder as a module (the reference epoch's clock lives there)."""
    if CHECKOUT_DIR is None or not (path := CHECKOUT_DIR / "benchmarks" / f"{name}.py").exists():
        raise FileNotFoundError(f"benchmarks/{name}.py not found: run the notebooks from a clone of the repository")
    spec = importlib.util.spec_from_file_location(f"l2l_benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def _reference_clock(device: str) -> Callable[[], float]:
    """One timed reference epoch per call, after a warm-up epoch (on the run's device)."""
    from l2l_helpers.runtime import resolve_device

    reference = benchmark_module("reference")
    with contextlib.redirect_stdout(io.StringIO()):  # MNIST's loading lines: the notebooks print them, once each
        clock = reference.ReferenceClock(resolve_device(device))
    return lambda: clock(1)


def _total_line(summary: RunSummary, site: str) -> str:
    failed = f", {len(summary.failed)} FAILED" if summary.failed else ""
    line = f"{len(summary.runs)} notebooks in {summary.seconds:.0f} s{failed}{summary.reference_text('one')}"
    return f"{line}; report: {summary.report}; site: {site}"
