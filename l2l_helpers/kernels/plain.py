"""One switch pins the plain PyTorch path of any fast path: ``L2L_PLAIN`` (all, or by name) or :func:`plain_only`.

Every fast path in :mod:`l2l_helpers.kernels` (:data:`~l2l_helpers.settings.FAST_PATHS`: the native and fused LSTM
steps, the convnet's block, neural art's loss) computes what a plain PyTorch path beside it computes, to float
rounding. ``L2L_PLAIN=1`` (or a list of names) pins the plain path for a whole process, e.g. a benchmark's arm.
:func:`plain_only` pins it inside a block: second-order meta-training (``second_order=True``, the paper's dashed
edges kept) needs the optimizee's gradient inside the graph, and hand-written backwards cannot be differentiated
twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from l2l_helpers import settings

_pinned: list[frozenset[str]] = []


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
