"""Helpers that several experiments share (twin networks and the spiral task: ``twins``)."""
from __future__ import annotations

import numpy as np

EPS = 1e-5  # torch.nn.BatchNorm1d's default


def batch_sizes_between(low: int, high: int, extra: tuple[int, ...] = ()) -> np.ndarray:
    """Powers of two from ``low`` up to ``high`` (both included), plus ``extra``, sorted."""
    sizes = {low, high, *extra}
    size = 1
    while size < high:
        size *= 2
        if low < size < high:
            sizes.add(size)
    return np.array(sorted(sizes), dtype=np.int64)
