"""Every path and environment switch of the package, resolved in one place (README, "Settings").

| setting | environment variable | default |
|---|---|---|
| :func:`assets_dir`: shipped data (MNIST test set, paintings) | | in the package, or a checkout's ``data/`` |
| :func:`data_dir`: downloads (MNIST training files) | ``L2L_DATA_DIR`` | a checkout's ``data/``, or a user cache |
| :func:`results_dir`: the notebooks' results | ``L2L_RESULTS_DIR`` (``make run``) | ``runs/interactive/results`` |
| :func:`retrain_dir`: retrained optimizers, tunings, per run | ``L2L_RETRAIN_DIR`` (set by ``make run``) | none |
| :func:`offline`: never download | ``L2L_OFFLINE=1`` | downloads when online |
| :func:`native_mode`: which LSTM step | ``L2L_NATIVE=auto|1|0`` | ``auto`` (the faster, measured) |
| :func:`native_target`: the native step's build | ``L2L_NATIVE_MARCH`` | ``native`` (this CPU) |
| :func:`plotly_renderer` | ``L2L_PLOTLY_RENDERER`` | ``plotly_mimetype`` (offline in JupyterLab) |
| :func:`plain_paths`: fast paths pinned to the plain PyTorch path | ``L2L_PLAIN=1`` or names | none |
| :func:`keep_memory`: :func:`~l2l_helpers.runtime.setup` keeps freed memory | ``L2L_KEEP_MEMORY`` | off (runner: on) |

Functions, not constants: a variable set after import (the notebook runner, a test) is seen.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The repository around the package when it runs from a checkout (editable install, ``make``), else None.
CHECKOUT_DIR: Path | None = (
    PACKAGE_DIR.parent
    if (PACKAGE_DIR.parent / "pyproject.toml").is_file() and (PACKAGE_DIR.parent / "data").is_dir()
    else None
)
PRETRAINED_DIR = PACKAGE_DIR / "pretrained_weights"
_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
NATIVE_TARGETS = ("native", "haswell", "skylake-avx512")
#: The fast paths of :mod:`l2l_helpers.kernels`, each beside a plain PyTorch path that computes the same numbers.
FAST_PATHS = ("native", "fused", "conv_block", "style_loss")


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def assets_dir() -> Path:
    """The data that ships with the package: ``MNIST/raw`` (the official test set) and ``styles/`` (paintings).

    A wheel carries them as ``l2l_helpers/assets`` (``pyproject.toml`` maps the repository's ``data/`` there);
    a checkout reads ``data/`` itself.
    """
    installed = PACKAGE_DIR / "assets"
    if installed.is_dir():
        return installed
    if CHECKOUT_DIR is not None:
        return CHECKOUT_DIR / "data"
    raise FileNotFoundError(f"the package's data is missing from {installed}: reinstall l2l-helpers")


def data_dir() -> Path:
    """Where downloaded data goes and is looked for first: ``$L2L_DATA_DIR``, a checkout's ``data/``, or a cache."""
    if _env("L2L_DATA_DIR"):
        return Path(_env("L2L_DATA_DIR"))
    if CHECKOUT_DIR is not None:
        return CHECKOUT_DIR / "data"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "l2l_helpers"


def styles_dir() -> Path:
    """The paintings for neural art."""
    return assets_dir() / "styles"


def results_dir() -> Path:
    """``$L2L_RESULTS_DIR`` if set (the runner sets it), else ``runs/interactive/results`` (checkout or cwd)."""
    if _env("L2L_RESULTS_DIR"):
        return Path(_env("L2L_RESULTS_DIR"))
    return (CHECKOUT_DIR or Path.cwd()) / "runs" / "interactive" / "results"


#: Set by the notebook runner: a folder where optimizers retrained in one run are kept for the next notebooks.
RETRAIN_DIR_ENV = "L2L_RETRAIN_DIR"


def retrain_dir() -> Path | None:
    """Where a ``make run`` keeps optimizers retrained and baselines tuned in one notebook for the next ones."""
    return Path(_env(RETRAIN_DIR_ENV)) if _env(RETRAIN_DIR_ENV) else None


def offline() -> bool:
    """True when ``L2L_OFFLINE=1``: nothing is downloaded."""
    return _env("L2L_OFFLINE") == "1"


def native_mode() -> str:
    """``auto``, ``on`` or ``off``, from ``L2L_NATIVE`` (unset means ``auto``); other values are an error."""
    value = _env("L2L_NATIVE").lower()
    if value in ("", "auto"):
        return "auto"
    if value in _ON or value in _OFF:
        return "on" if value in _ON else "off"
    raise ValueError(f"L2L_NATIVE={value!r}: use auto (the faster step on this machine), 1 (native) or 0 (fused)")


def native_target() -> str:
    """The native step's build target, from ``L2L_NATIVE_MARCH`` (default ``native``); unknown ones are an error."""
    value = _env("L2L_NATIVE_MARCH") or "native"
    if value not in NATIVE_TARGETS:
        raise ValueError(f"L2L_NATIVE_MARCH={value!r}: use one of {', '.join(NATIVE_TARGETS)}")
    return value


def plain_paths() -> frozenset[str]:
    """The fast paths ``L2L_PLAIN`` pins to their plain PyTorch path: ``1`` (or ``all``) every one of
    :data:`FAST_PATHS`, or a comma-separated list of them (``L2L_PLAIN=conv_block,style_loss``); unset: none."""
    value = _env("L2L_PLAIN").lower()
    if value in ("", *_OFF):
        return frozenset()
    if value in ("all", *_ON):
        return frozenset(FAST_PATHS)
    names = {name.strip() for name in value.split(",") if name.strip()}
    unknown = names - set(FAST_PATHS)
    if unknown:
        raise ValueError(f"L2L_PLAIN={value!r}: unknown fast path(s) {sorted(unknown)}; use 1 or some of {FAST_PATHS}")
    return frozenset(names)


def keep_memory() -> bool:
    """``L2L_KEEP_MEMORY`` (unset means off): whether :func:`~l2l_helpers.runtime.setup` asks malloc to keep freed
    memory (:func:`~l2l_helpers.runtime.keep_freed_memory`), a setting of the whole process; the headless runner
    (``make run``) sets it for its kernels. Other values than on/off are an error."""
    value = _env("L2L_KEEP_MEMORY").lower()
    if value in _ON:
        return True
    if value == "" or value in _OFF:
        return False
    raise ValueError(f"L2L_KEEP_MEMORY={value!r}: use 1 (keep freed memory) or 0 (malloc's defaults, the default)")


def plotly_renderer() -> str:
    """Plotly's renderer for notebooks: ``$L2L_PLOTLY_RENDERER`` or ``plotly_mimetype`` (works offline)."""
    return _env("L2L_PLOTLY_RENDERER") or "plotly_mimetype"
