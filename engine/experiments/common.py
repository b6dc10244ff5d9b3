"""Helpers that several experiments share (twin networks and the spiral task: ``twins``)."""
from __future__ import annotations

import numpy as np

from engine.registry import ParameterError

EPS = 1e-5  # torch.nn.BatchNorm1d's default
MAX_BATCH_SIZES = 4  # in a batch_sizes parameter: each size costs a training run


def batch_sizes_between(low: int, high: int, extra: tuple[int, ...] = ()) -> np.ndarray:
    """Powers of two from ``low`` up to ``high`` (both included), plus ``extra``, sorted."""
    sizes = {low, high, *extra}
    size = 1
    while size < high:
        size *= 2
        if low < size < high:
            sizes.add(size)
    return np.array(sorted(sizes), dtype=np.int64)


def parse_batch_sizes(text: str, low: int = 2, high: int = 256) -> np.ndarray:
    """``"4,8,32"`` -> array([4, 8, 32]): 1 to 4 increasing integers in [low, high]."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ParameterError(
            f"parameter 'batch_sizes' must be comma-separated integers, got {text!r}") from None
    if not 1 <= len(sizes) <= MAX_BATCH_SIZES or any(not low <= m <= high for m in sizes) \
            or sorted(set(sizes)) != sizes:
        raise ParameterError(
            f"parameter 'batch_sizes' = {text!r} must list 1 to {MAX_BATCH_SIZES} increasing "
            f"batch sizes, each in [{low}, {high}]")
    return np.array(sizes, dtype=np.int64)
