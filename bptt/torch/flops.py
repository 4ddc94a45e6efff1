"""Exact operation counts of PyTorch code ("The cost of BPTT", equation `bptt-cost`).

:func:`flop_count` runs a function under ``torch.utils.flop_counter.FlopCounterMode`` and
returns the floating-point operations of the matrix products it dispatched (forward and
backward, recomputations included), counted from the shapes: 2 m n k for an (m, k) @ (k, n)
product. Element-wise operations (tanh, additions) are not counted; they are O(B T H), below
the O(B T H^2) of the products. The count is exact and the same on every machine, so scaling
laws are asserted on it rather than on wall-clock time.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.utils.flop_counter import FlopCounterMode


def flop_count(fn: Callable[[], object]) -> int:
    """Floating-point operations of the matrix products that ``fn()`` runs (see module).

    ``fn`` must be a callable without arguments (``TypeError`` otherwise).
    """
    if not callable(fn):
        raise TypeError(f"fn: expected a callable without arguments, got {type(fn).__name__}")
    with FlopCounterMode(display=False) as mode:
        fn()
    return int(mode.get_total_flops())
