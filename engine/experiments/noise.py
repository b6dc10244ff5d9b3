"""How noisy batch statistics are: the batch mean and variance against the batch size, and
what their noise does to one example's normalized value (compared with dropout's noise)."""
from __future__ import annotations

import numpy as np

from engine.batchnorm import batchnorm_forward
from engine.experiments.common import EPS, batch_sizes_between
from engine.layers import dropout_mask
from engine.registry import Param, ParameterError, experiment

def normalize_columns(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch norm (no gamma, beta) of every column of ``x`` as an independent mini-batch.

    Each column is one draw of a batch of ``x.shape[0]`` examples, so a single call of the
    engine's forward pass normalizes thousands of batches. Returns the normalized values,
    the batch means and the (biased) batch variances, one per column."""
    y, cache = batchnorm_forward(x, None, None, EPS)
    return y, cache.mean.copy(), cache.var.copy()


def algorithm1(batches: np.ndarray) -> np.ndarray:
    """The first row of every column normalized by Ioffe & Szegedy's (2015) Algorithm 1,
    written out: the batch's mean, its biased variance, then (x - mean) / sqrt(var + eps).
    Nothing in it is random: the value depends on the batch alone."""
    mean = batches.mean(axis=0)
    var = ((batches - mean) ** 2).mean(axis=0)
    return (batches[0] - mean) / np.sqrt(var + EPS)


@experiment(
    "batch_stat_noise",
    params={
        "min_batch": Param(int, 8, 2, 4096, "smallest batch size"),
        "max_batch": Param(int, 512, 2, 4096, "largest batch size"),
        "small_batch": Param(int, 64, 2, 4096, "the 'small' batch of the comparison"),
        "large_batch": Param(int, 512, 2, 4096, "the 'large' batch of the comparison"),
        "trials": Param(int, 4000, 100, 20000, "mini-batches drawn at each batch size"),
        "mean": Param(float, 3.0, -100.0, 100.0, "mean of the unit's values over the data"),
        "std": Param(float, 2.0, 0.01, 100.0, "standard deviation of the unit's values"),
        "example_z": Param(float, 1.0, -4.0, 4.0,
                           "the tracked example's value, in standard deviations from the mean"),
        "dropout_p": Param(float, 0.5, 0.05, 0.9, "drop probability of the dropout comparison"),
    },
    figures=("noise_vs_batch", "example_spread"),
)
def batch_stat_noise(rng, min_batch, max_batch, small_batch, large_batch, trials, mean, std,
                     example_z, dropout_p):
    """The sampling noise of batch norm's statistics, against the batch size m.

    One hidden unit's values over the data are Gaussian (``mean``, ``std``). At each batch
    size, ``trials`` mini-batches are drawn; their mean mu_B and biased variance var_B are
    compared with the theory: Var(mu_B) = std^2 / m and Var(var_B) = 2 (m - 1) std^4 / m^2.
    Then one fixed example (at ``example_z`` standard deviations) is put into every
    mini-batch together with m - 1 random others, and the spread (standard deviation over
    the mini-batches) of its normalized value is measured; to first order it is
    sqrt((1 + z^2 / 2) / m). For scale, the same normalized value under inverted dropout
    with drop probability ``dropout_p`` has spread |z| sqrt(p / (1 - p)).

    Returns per batch size (``batch_sizes``): ``mean_var``/``mean_var_theory``,
    ``var_var``/``var_var_theory``, ``example_spread``/``example_spread_theory``; the
    largest relative deviations from theory (``mean_var_rel_error``, ``var_var_rel_error``);
    at the two compared sizes ``spread_small``, ``spread_large``, their ratio
    ``spread_ratio`` and its theory sqrt(large / small); ``algorithm1_max_diff``, the
    largest difference between the engine's normalized value of the tracked example and
    ``algorithm1`` recomputed from the same batch, and ``repeat_max_diff``, the largest
    difference between two normalizations of the same batches (both over every size and
    trial: the jitter is a function of the companions alone); ``dropout_spread`` and
    ``dropout_to_bn_small`` (dropout's spread over batch norm's at the small batch); the
    normalized values of the example at the small and large batch (``values_small``,
    ``values_large``); and the parameters.
    """
    if min_batch > max_batch:
        raise ParameterError(f"min_batch = {min_batch} must be <= max_batch = {max_batch}")
    if small_batch >= large_batch:
        raise ParameterError(
            f"small_batch = {small_batch} must be < large_batch = {large_batch}")
    sizes = batch_sizes_between(min_batch, max_batch, (small_batch, large_batch))
    example_value = mean + example_z * std

    mean_var, var_var, spread, by_hand_diff, repeat_diff = (np.empty(len(sizes))
                                                            for _ in range(5))
    values = {}
    for i, m in enumerate(sizes):
        batches = mean + std * rng.standard_normal((m, trials))
        _, batch_means, batch_vars = normalize_columns(batches)
        mean_var[i] = batch_means.var()
        var_var[i] = batch_vars.var()
        batches[0] = example_value  # the tracked example, with m - 1 random companions
        normalized, _, _ = normalize_columns(batches)
        spread[i] = normalized[0].std()
        by_hand_diff[i] = np.max(np.abs(normalized[0] - algorithm1(batches)))
        repeat_diff[i] = np.max(np.abs(normalize_columns(batches)[0] - normalized))
        if m in (small_batch, large_batch):
            values[int(m)] = normalized[0].copy()

    m = sizes.astype(np.float64)
    mean_var_theory = std**2 / m
    var_var_theory = 2 * (m - 1) * std**4 / m**2
    spread_theory = np.sqrt((1 + example_z**2 / 2) / m)
    dropped = example_z * dropout_mask(rng, (trials,), dropout_p)
    small, large = int(np.flatnonzero(sizes == small_batch)[0]), \
        int(np.flatnonzero(sizes == large_batch)[0])
    return {
        "batch_sizes": sizes,
        "mean_var": mean_var,
        "mean_var_theory": mean_var_theory,
        "var_var": var_var,
        "var_var_theory": var_var_theory,
        "mean_var_rel_error": float(np.max(np.abs(mean_var / mean_var_theory - 1))),
        "var_var_rel_error": float(np.max(np.abs(var_var / var_var_theory - 1))),
        "example_spread": spread,
        "example_spread_theory": spread_theory,
        "algorithm1_max_diff": float(by_hand_diff.max()),
        "repeat_max_diff": float(repeat_diff.max()),
        "spread_small": float(spread[small]),
        "spread_large": float(spread[large]),
        "spread_ratio": float(spread[small] / spread[large]),
        "spread_ratio_theory": float(np.sqrt(large_batch / small_batch)),
        "dropout_spread": float(dropped.std()),
        "dropout_to_bn_small": float(dropped.std() / spread[small]),
        "values_small": values[small_batch],
        "values_large": values[large_batch],
        "small_batch": small_batch,
        "large_batch": large_batch,
        "trials": trials,
        "std": std,
        "example_z": example_z,
        "dropout_p": dropout_p,
    }
