"""Fast paths swapped in beside plain code, and the switch that pins the plain path: ``L2L_PLAIN``, :func:`plain_only`.

An optimizee module writes its computation in plain PyTorch and marks it :func:`swappable`; a kernel module
:func:`register` s a fast version of it, which runs where it applies (its ``supported`` says) unless the plain path is
pinned. The module reads as plain PyTorch and never imports a kernel.

Every fast path in :mod:`l2l_helpers.kernels` (:data:`~l2l_helpers.settings.FAST_PATHS`: the native and fused LSTM
steps, the convnet's block, neural art's loss) computes what a plain PyTorch path beside it computes, to float
rounding. ``L2L_PLAIN=1`` (or a list of names) pins the plain path for a whole process, e.g. a benchmark's arm.
:func:`plain_only` pins it inside a block: second-order meta-training (``second_order=True``, the paper's dashed
edges kept) needs the optimizee's gradient inside the graph, and hand-written backwards cannot be differentiated
twice.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from l2l_helpers import settings

_pinned: list[frozenset[str]] = []
_F = TypeVar("_F", bound=Callable[..., Any])
#: fast path -> (its fast function, whether it applies to these arguments)
_FAST: dict[str, tuple[Callable[..., Any], Callable[..., bool]]] = {}


@contextlib.contextmanager
def plain_only(*names: str) -> Iterator[None]:
    """Inside, the named fast paths (default: every optimizee kernel, ``conv_block`` and ``style_loss``) run their
    plain PyTorch path."""
    unknown = set(names) - set(settings.FAST_PATHS)
    if unknown:
        raise ValueError(f"unknown fast path(s) {sorted(unknown)}; use some of {settings.FAST_PATHS}")
    _pinned.append(frozenset(names or ("conv_block", "style_loss")))
    try:
        yield
    finally:
        _pinned.pop()


def plain_wanted(name: str) -> bool:
    """True where fast path ``name`` must give way to its plain path: inside :func:`plain_only` or by ``L2L_PLAIN``."""
    return name in settings.plain_paths() or any(name in pinned for pinned in _pinned)


def register(name: str, fast: Callable[..., Any], supported: Callable[..., bool]) -> None:
    """Make ``fast`` the version of :func:`swappable` function ``name`` that runs where ``supported(*args)``."""
    if name not in settings.FAST_PATHS:
        raise ValueError(f"unknown fast path {name!r}; add it to settings.FAST_PATHS")
    _FAST[name] = (fast, supported)


def swappable(name: str) -> Callable[[_F], _F]:
    """Decorator for a plain PyTorch function that fast path ``name`` may replace (see :func:`register`); the plain
    function stays reachable as ``.plain``."""

    def wrap(plain: _F) -> _F:
        @functools.wraps(plain)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            entry = _FAST.get(name)
            if entry is not None and not plain_wanted(name) and entry[1](*args, **kwargs):
                return entry[0](*args, **kwargs)
            return plain(*args, **kwargs)

        dispatch.plain = plain  # type: ignore[attr-defined]
        return dispatch  # type: ignore[return-value]

    return wrap
