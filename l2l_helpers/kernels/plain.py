"""One switch for every optimizee kernel with a hand-written backward: :func:`plain_only`.

:mod:`.conv_block` (the convnet's block) and :mod:`.style_loss` (neural art's loss) compute their gradients by
hand, once: autograd cannot differentiate those backwards again. Second-order meta-training (``second_order=True``,
the paper's dashed edges kept) needs the optimizee's gradient inside the graph, so it runs inside
:func:`plain_only`, where both fall back to PyTorch's operators.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

_depth = 0


@contextlib.contextmanager
def plain_only() -> Iterator[None]:
    """Inside, the optimizees' hand-written kernels run PyTorch's operators (graphs that are differentiated
    twice)."""
    global _depth
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1


def plain_wanted() -> bool:
    """True inside :func:`plain_only`."""
    return _depth > 0
