"""Aggregates over seeds and the confidence interval of a finding, against hand-computed cases
and scipy; the interval covers the true mean at about its level."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from kb.answers import stats

VALUES = np.array([1.0, 2.0, 4.0, 7.0])  # mean 3.5, sample variance 7, n 4


def test_aggregates_on_a_hand_computed_sample():
    assert stats.mean(VALUES) == 3.5
    assert stats.median(VALUES) == 3.0
    assert (stats.minimum(VALUES), stats.maximum(VALUES)) == (1.0, 7.0)
    assert stats.std(VALUES) == pytest.approx(math.sqrt(7.0))
    assert stats.quantile(VALUES, 0.5) == 3.0
    assert stats.quantile(VALUES, 1.0) == 7.0
    assert stats.frac(VALUES > 3) == 0.5


def test_the_interval_is_students_t_by_hand_and_by_scipy():
    half = 3.182446305284263 * math.sqrt(7.0) / 2  # t(0.975, 3) * s / sqrt(4)
    low, high = stats.ci(VALUES)
    assert (low, high) == pytest.approx((3.5 - half, 3.5 + half), rel=1e-12)
    expected = scipy_stats.t.interval(0.95, 3, loc=3.5, scale=scipy_stats.sem(VALUES))
    assert (stats.ci_low(VALUES), stats.ci_high(VALUES)) == pytest.approx(expected, rel=1e-12)


def test_per_seed_arrays_are_reduced_across_seeds_only():
    rows = np.array([[1.0, 10.0], [3.0, 30.0], [2.0, 20.0]])  # three seeds, two elements
    assert stats.mean(rows).tolist() == [2.0, 20.0]
    assert stats.maximum(rows).tolist() == [3.0, 30.0]
    low, high = stats.ci(rows)
    assert low.shape == high.shape == (2,)
    assert low[1] == pytest.approx(20 - 10 * (2 - low[0]), rel=1e-12)  # scales with the data


@pytest.mark.parametrize("call, message", [
    (lambda: stats.ci([1.0]), "needs at least 2 seeds, got 1"),
    (lambda: stats.std([1.0]), "needs at least 2 seeds, got 1"),
    (lambda: stats.mean([]), "needs at least 1 seed, got 0"),
    (lambda: stats.quantile(VALUES, 1.5), "quantile needs q in [0, 1], got 1.5"),
    (lambda: stats.frac(VALUES), "frac(...) needs a condition"),
])
def test_what_cannot_be_computed_says_why(call, message):
    with pytest.raises(ValueError) as raised:
        call()
    assert message in str(raised.value)


@pytest.mark.parametrize("n", [3, 10, 30])
def test_the_interval_covers_the_true_mean_at_about_its_level(n):
    # 4000 synthetic samples from a known distribution (fixed seed: the test cannot flake);
    # the binomial standard error of the coverage is about 0.0035.
    rng = np.random.default_rng(20261203 + n)
    samples = rng.normal(loc=1.5, scale=2.0, size=(4000, n))
    low, high = stats.ci(samples.T)  # seeds along the first axis, one column per sample
    coverage = np.mean((low <= 1.5) & (1.5 <= high))
    assert 0.935 <= coverage <= 0.965, coverage


def test_too_narrow_an_interval_would_be_caught_by_the_coverage_test():
    # The same check applied to a z interval (ignoring that s is estimated) at n = 3 fails:
    rng = np.random.default_rng(7)
    samples = rng.normal(size=(4000, 3))
    half = 1.96 * samples.std(axis=1, ddof=1) / math.sqrt(3)
    coverage = np.mean(np.abs(samples.mean(axis=1)) <= half)
    assert coverage < 0.9


def test_results_are_deterministic_for_the_same_values():
    assert stats.ci(VALUES) == stats.ci(VALUES.copy())


def test_an_effect_keeps_the_seeds_the_values_and_the_interval():
    effect = stats.Effect.of("x.gap", (10, 11, 12, 13), VALUES)
    assert effect.mean == 3.5 and effect.ci == pytest.approx(stats.ci(VALUES))
    assert effect.to_json() == {"quantity": "x.gap", "mean": 3.5, "ci": list(effect.ci),
                                "seeds": 4, "values": [1.0, 2.0, 4.0, 7.0]}
