"""Aggregates over a sample of seeds: what a finding's condition says about an effect.

Each function takes the per-seed values stacked along the first axis (one row per seed) and
reduces that axis, so a per-seed array gives an array (one value per element). The confidence
interval of the mean is Student's t interval, ``mean ± t(0.975, n-1) · s / √n`` with the
sample standard deviation ``s`` (ddof = 1): exact for normally distributed per-seed values and
close for the sums and averages over training runs that findings measure; it needs at least
two seeds. scipy gives the t quantile.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy import stats as _scipy_stats

LEVEL = 0.95  # of every confidence interval shown or tested


def _sample(values: Any, least: int = 1) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.ndim == 0 or len(values) < least:
        raise ValueError(f"needs at least {least} seed{'s' * (least != 1)}, "
                         f"got {0 if values.ndim == 0 else len(values)}")
    return values


def mean(values: Any) -> Any:
    return _sample(values).mean(axis=0)


def median(values: Any) -> Any:
    return np.median(_sample(values), axis=0)


def minimum(values: Any) -> Any:
    return _sample(values).min(axis=0)


def maximum(values: Any) -> Any:
    return _sample(values).max(axis=0)


def std(values: Any) -> Any:
    """The sample standard deviation across seeds (ddof = 1)."""
    return _sample(values, 2).std(axis=0, ddof=1)


def quantile(values: Any, q: Any) -> Any:
    q = float(q)
    if not 0 <= q <= 1:
        raise ValueError(f"quantile needs q in [0, 1], got {q:g}")
    return np.quantile(_sample(values), q, axis=0)


def frac(holds: Any) -> Any:
    """The fraction of seeds for which a per-seed condition holds."""
    holds = np.asarray(holds)
    if holds.dtype != bool:
        raise ValueError("frac(...) needs a condition that is true or false for each seed")
    return _sample(holds).mean(axis=0)


def ci(values: Any, level: float = LEVEL) -> tuple[Any, Any]:
    """Student's t confidence interval of the mean across seeds: (low, high)."""
    values = _sample(values, 2)
    n = len(values)
    half = _scipy_stats.t.ppf(0.5 + level / 2, n - 1) * values.std(axis=0, ddof=1) / np.sqrt(n)
    centre = values.mean(axis=0)
    return centre - half, centre + half


def ci_low(values: Any) -> Any:
    return ci(values)[0]


def ci_high(values: Any) -> Any:
    return ci(values)[1]


# name in the expression language -> (function, number of extra arguments after the values)
AGGREGATES: dict[str, tuple[Callable, int]] = {
    "mean": (mean, 0),
    "median": (median, 0),
    "min": (minimum, 0),
    "max": (maximum, 0),
    "std": (std, 0),
    "quantile": (quantile, 1),
    "frac": (frac, 0),
    "ci_low": (ci_low, 0),
    "ci_high": (ci_high, 0),
}


@dataclass(frozen=True)
class Effect:
    """A measured quantity over a sample of seeds: what a finding reports."""

    quantity: str  # the expression measured per seed, as written
    mean: float
    ci: tuple[float, float]
    seeds: tuple[int, ...]
    values: tuple[float, ...]  # per seed, in the order of ``seeds``

    @classmethod
    def of(cls, quantity: str, seeds: tuple[int, ...], values: Any) -> "Effect":
        values = np.asarray(values, dtype=float)
        low, high = ci(values)
        return cls(quantity, float(values.mean()), (float(low), float(high)), tuple(seeds),
                   tuple(float(v) for v in values))

    def to_json(self) -> dict:
        return {"quantity": self.quantity, "mean": self.mean, "ci": list(self.ci),
                "seeds": len(self.seeds), "values": list(self.values)}
