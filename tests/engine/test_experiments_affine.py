import numpy as np
import pytest

from engine.experiments.affine import (moment_changes, scale_normalized_weights,
                                       start_as_plain, undo_error, undoing_summary)
from engine.experiments.twins import spiral_task, spiral_twins
from engine.registry import ParameterError

SMALL = {"depth": 3, "width": 12, "batch": 32, "train_size": 256, "steps": 30, "every": 10}
REDUCED = {
    "distribution_control": {**SMALL, "layer": 3},
    "gamma_beta_undo": {**SMALL, "probe": 128},
}


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_same_seed_same_result_other_seed_differs(name, assert_deterministic):
    assert_deterministic(name, 5, 6)


@pytest.mark.parametrize("name, overrides", [
    ("distribution_control", {"layer": 4}),  # deeper than depth = 3
    ("distribution_control", {"layer": 0}),
    ("distribution_control", {"every": 0}),
    ("gamma_beta_undo", {"probe": 512}),  # more than train_size = 256
    ("gamma_beta_undo", {"lr": -0.1}),
])
def test_bad_parameters_refused(run, name, overrides):
    with pytest.raises(ParameterError):
        run(name, **overrides)


def test_with_batch_norm_earlier_layers_cannot_move_the_mean_or_the_spread(run):
    r = run("distribution_control")
    # Batch norm: mean beta and std |gamma| on the batch, whatever the earlier weights are.
    assert r["bn_earlier_mean_avg"] < 1e-9
    assert r["bn_earlier_spread_avg"] < 1e-4
    assert r["beta_gap"] < 1e-9 and r["gamma_gap"] < 1e-3
    # Without it, they do; and with it the individual values still move.
    assert r["plain_earlier_mean_avg"] > 1e-3 and r["plain_earlier_spread_avg"] > 1e-3
    assert r["bn_earlier_values_avg"] > 1e-3


def test_distribution_control_watching_the_first_layer_sees_no_earlier_layer(run):
    r = run("distribution_control", layer=1)
    for label in ("plain", "bn"):
        for part in ("mean", "spread", "values"):
            assert r[f"{label}_earlier_{part}_avg"] == 0.0


def test_moment_changes_in_units_of_the_spread():
    before = np.array([[0.0, 1.0], [2.0, 3.0]])  # each column: mean m, std 1
    mean_shift, spread, values = moment_changes(before, before * 2 + 1)
    # column means 1, 2 -> 3, 5 (shifts of 2 and 3 stds), stds 1 -> 2; the values of the
    # first column move by 1 and 3 (RMS sqrt(5)), of the second by 2 and 4 (RMS sqrt(10))
    assert mean_shift == pytest.approx(2.5)
    assert spread == pytest.approx(np.log(2))
    assert values == pytest.approx((np.sqrt(5) + np.sqrt(10)) / 2)


def test_start_as_plain_makes_batch_norm_the_identity():
    x, y = spiral_task(np.random.default_rng(0), 200, 0.75)
    nets = spiral_twins(3, depth=3, width=10)
    start_as_plain(nets["bn"], nets["plain"], x)
    np.testing.assert_allclose(nets["bn"].forward(x), nets["plain"].forward(x),
                               rtol=1e-10, atol=1e-12)
    assert undo_error(nets["bn"]) < 1e-10


def test_undoing_summary_counts_units_at_the_undoing_point():
    stats = {"gamma": np.array([2.0, 1.0, -2.0]), "sigma": np.array([2.0, 2.0, 2.0]),
             "beta": np.array([0.5, 0.5, 0.5]), "mu": np.array([0.5, 0.5, 3.0])}
    summary = undoing_summary(stats)
    assert summary["undone_fraction"] == pytest.approx(1 / 3)  # only the first unit
    assert summary["log_ratio"] == pytest.approx(0.0)  # median of 0, log 2, 0
    assert summary["shift"] == pytest.approx(0.0)


def test_undone_start_same_function_same_output_gradient_different_hidden_gradients(run):
    r = run("gamma_beta_undo")
    assert r["start_output_gap"] < 1e-10
    cosines = r["start_gradient_cosine"]
    assert cosines.shape == (4,)  # three hidden layers and the output layer
    assert cosines[-1] == pytest.approx(1.0, abs=1e-10)  # same inputs, same dL/dlogits
    assert r["start_min_gradient_cosine"] < 0.999
    assert r["undone_undo_error"][0] < 0.1


def test_scaling_the_weights_that_feed_batch_norm_keeps_the_function():
    x, _ = spiral_task(np.random.default_rng(0), 200, 0.75)
    nets = {gain: spiral_twins(4, depth=3, width=10)["bn"] for gain in (1.0, 10.0)}
    scale_normalized_weights(nets[10.0], 10.0)
    scaled, usual = nets[10.0].forward(x), nets[1.0].forward(x)
    # equal up to eps, which the larger variance makes relatively smaller
    assert np.abs(scaled - usual).max() < 1e-3 * np.abs(usual).max()
    # every hidden layer's input z, hence its batch std, is ten times larger
    for scaled, plain in zip(nets[10.0].hidden, nets[1.0].hidden):
        np.testing.assert_allclose(scaled.linear.W, 10 * plain.linear.W)
    np.testing.assert_array_equal(nets[10.0].out.linear.W, nets[1.0].out.linear.W)


def test_gamma_tracking_compares_the_scaled_network_with_the_usual_one(run):
    r = run("gamma_beta_undo", gain=10.0)
    assert r["scaled_start_output_gap"] < 1e-3
    assert r["scaled_start_gamma_gradient_gap"] < 1e-2
    # after a few steps the scaled network's sigma_B are still about ten times larger
    assert abs(r["sigma_log_ratio"] - np.log(10.0)) < 0.3
    assert r["gamma_tracking"] == pytest.approx(r["gamma_log_ratio"] / r["sigma_log_ratio"])
    assert r["bn_undo_closed"] == pytest.approx(1 - r["bn_final_undo_error"]
                                                / r["bn_start_undo_error"])
    for name in ("gamma", "beta", "sigma", "mu"):
        assert r[f"scaled_{name}"].shape == r[f"bn_{name}"].shape == (3 * 12,)
