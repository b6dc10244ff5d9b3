import numpy as np
import pytest

from engine.experiments.drift import (CLASSES, PROBE_NORM, cats_task, change_parts, probe_loss,
                                     step_interaction, train_between_losses, unit_drift)
from engine.experiments.twins import twin_mlps
from engine.measure import layer_of_parameter
from engine.optim import SGD
from engine.registry import ParameterError
from engine.train import train_step

REDUCED = {
    "sigmoid_input_drift": {"steps": 100, "width": 20, "train_size": 200, "every": 20},
    "first_layer_perturbation": {"depth": 4, "width": 16},
    "drift_by_depth": {"depth": 4, "width": 16, "standardize": True, "loss_from": 0.6,
                       "loss_to": 0.4, "train_size": 300},
    "moving_early_layers": {"depth": 3, "early": 1, "width": 16, "steps": 20,
                            "train_size": 300},
    "concurrent_updates": {"depth": 3, "early": 1, "width": 16, "steps": 20,
                           "train_size": 300},
}


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_same_seed_same_result_other_seed_differs(name, assert_deterministic, float_arrays):
    assert_deterministic(name, 5, 6, varying=float_arrays)


@pytest.mark.parametrize("name, overrides", [
    ("sigmoid_input_drift", {"unit": 20}),  # width is 20
    ("sigmoid_input_drift", {"batch": 400}),  # more than train_size
    ("sigmoid_input_drift", {"steps": 10}),
    ("first_layer_perturbation", {"size": 0.0}),
    ("first_layer_perturbation", {"activation": "softplus"}),
    ("drift_by_depth", {"loss_to": 0.6}),  # not below loss_from
    ("drift_by_depth", {"depth": 1}),
    ("moving_early_layers", {"early": 3}),  # no hidden layer left to learn
    ("concurrent_updates", {"early": 3}),  # no later hidden layer
])
def test_bad_parameters_refused(run, name, overrides):
    with pytest.raises(ParameterError):
        run(name, **overrides)


def test_change_parts_splits_the_mean_squared_change_exactly():
    rng = np.random.default_rng(0)
    before = rng.standard_normal((200, 5)) * [1, 2, 3, 4, 5]
    after = before * 1.5 + 2 + rng.standard_normal((200, 5))
    dist, example = change_parts(before, after)
    scale = np.sum(before.std(axis=0) ** 2)
    assert dist**2 + example**2 == pytest.approx(np.sum(np.mean((after - before) ** 2, 0)) / scale)


def test_change_parts_affine_change_is_all_distribution_and_a_shuffle_all_per_example():
    rng = np.random.default_rng(1)
    before = rng.standard_normal((100, 3))
    dist, example = change_parts(before, 3 * before - 1)
    assert dist > 1 and example == pytest.approx(0, abs=1e-6)
    dist, example = change_parts(before, before[rng.permutation(100)])
    assert dist == pytest.approx(0, abs=1e-12) and example > 1


def test_change_parts_refuses_constant_or_mismatched_values():
    with pytest.raises(ValueError, match="no spread"):
        change_parts(np.ones((10, 2)), np.zeros((10, 2)))
    with pytest.raises(ValueError, match="one shape"):
        change_parts(np.ones((10, 2)), np.ones((10, 3)))


def test_unit_drift_in_units_of_spread():
    # one unit whose percentiles all rise by 2 while its 15-85 spread stays 1
    percentiles = np.array([[[0.0], [0.5], [1.0]], [[2.0], [2.5], [3.0]]])
    assert unit_drift(percentiles) == pytest.approx([2.0])


def test_unit_drift_refuses_a_unit_without_spread():
    percentiles = np.zeros((2, 3, 2))
    percentiles[:, 2, 0] = 1.0  # unit 0 has a spread, unit 1 none
    with pytest.raises(ValueError, match="unit 1 has no spread"):
        unit_drift(percentiles)


def test_sigmoid_input_drift_records_and_shapes(run):
    r = run("sigmoid_input_drift")
    assert list(r["record_steps"]) == [0, 20, 40, 60, 80, 100]
    assert r["plain_percentiles"].shape == r["bn_percentiles"].shape == (6, 3)
    assert r["plain_unit_drift"].shape == (20,)
    # with batch norm and gamma = 1, beta = 0 the unit starts standardized
    low, median, high = r["bn_percentiles"][0]
    assert low < median < high and 1.5 < high - low < 2.5


def test_batch_norm_pins_every_layers_mean_and_spread_after_a_change_of_w1(run):
    r = run("first_layer_perturbation")
    for kind in ("random", "step", "scale"):
        assert np.all(r[f"bn_{kind}_dist"] < 1e-3), kind
        assert np.all(r[f"plain_{kind}_dist"] > 1e-3), kind
    # a uniform rescaling of W1 is invisible with batch norm, not without
    assert np.all(r["bn_scale_output"] < 1e-3)
    assert np.all(r["plain_scale_output"] > 1e-3)
    assert np.all(r["bn_random_example"] > 0.01)  # individual examples still move
    # after the nonlinearity the mean and spread are no longer pinned
    assert np.all(r["bn_random_out_dist"] > 1e-4)
    assert r["plain_probe_loss"] > 0 and r["bn_probe_loss"] > 0


def test_drift_by_depth_first_layer_never_moves_and_bn_has_no_distribution_part(run):
    r = run("drift_by_depth")
    assert r["plain_total"][0] < 1e-6 and r["bn_total"][0] < 1e-6  # its input is the data
    assert np.all(r["bn_dist"] < 1e-3)
    assert np.all(r["plain_dist"][1:] > 1e-3)
    for net in ("plain", "bn"):
        assert 0 <= r[f"{net}_step_from"] < r[f"{net}_step_to"]
        assert r[f"{net}_steps"] == r[f"{net}_step_to"] - r[f"{net}_step_from"]


def small_twins(standardize=True, seed=0):
    rng = np.random.default_rng(seed)
    x, y = cats_task(rng, 300, standardize)
    return x, y, twin_mlps(1, x.shape[1], CLASSES, 3, 16, "tanh", norm_kwargs=PROBE_NORM)


def test_train_between_losses_measures_from_the_first_crossing_to_the_next():
    x, y, twins = small_twins()
    probe, probe_y = x[:100], y[:100]
    for mlp in twins.values():
        start, end = train_between_losses(mlp, 0.05, x, y, probe, probe_y, 2, 30, 0.6, 0.3,
                                          500)
        assert probe_loss(mlp, probe, probe_y) <= 0.3  # stopped at the step it got there
        assert start.step < end and len(start.pre) == len(start.params) == 3


def test_train_between_losses_fails_when_the_loss_is_not_reached():
    x, y, twins = small_twins()
    with pytest.raises(RuntimeError, match="did not fall to loss_to"):
        train_between_losses(twins["plain"], 0.01, x, y, x[:100], y[:100], 2, 30, 0.6, 1e-4, 5)


def split_names(mlp, early):
    params = mlp.params()
    depth = len(mlp.hidden)
    return (params, [n for n in params if layer_of_parameter(n, depth) < early],
            [n for n in params if layer_of_parameter(n, depth) >= early])


@pytest.mark.parametrize("net", ["plain", "bn"])
def test_step_interaction_leaves_the_ordinary_sgd_step(net):
    x, y, twins = small_twins()
    _, _, again = small_twins()
    mlp, reference = twins[net], again[net]
    params, early, late = split_names(mlp, 1)
    corners = step_interaction(mlp, params, early, late, x[:30], y[:30], 0.05)
    loss = train_step(reference, SGD(reference.params(), 0.05), x[:30], y[:30])
    assert corners[0] == pytest.approx(loss)
    for name, value in reference.params().items():
        np.testing.assert_allclose(params[name], value, rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("net", ["plain", "bn"])
def test_step_interaction_is_second_order_in_the_step(net):
    # The early and late steps' interaction (L00 - L01) - (L10 - L11) shrinks like lr^2,
    # the late step's own gain like lr: their ratio falls with the learning rate.
    ratios = []
    for lr in (1e-2, 1e-3):
        x, y, twins = small_twins(standardize=False)
        params, early, late = split_names(twins[net], 1)
        l00, l01, l10, l11 = step_interaction(twins[net], params, early, late, x[:30], y[:30], lr)
        ratios.append(abs((l00 - l01) - (l10 - l11)) / (l00 - l01))
    assert ratios[1] < 0.3 * ratios[0]


def test_concurrent_updates_fields(run):
    r = run("concurrent_updates")
    for net in ("plain", "bn"):
        assert r[f"{net}_late_gain"].shape == r[f"{net}_losses"].shape == (20,)
        gain, moved = r[f"{net}_late_gain"], r[f"{net}_late_gain_moved"]
        assert r[f"{net}_coupling"] == pytest.approx((gain - moved).sum() / gain.sum())
        assert gain.sum() > 0


def test_batch_norm_makes_later_layers_blind_to_affine_moves_of_early_units(run):
    r = run("moving_early_layers")
    assert r["bn_affine_loss"] == pytest.approx(r["bn_static_loss"], rel=1e-3)
    np.testing.assert_allclose(r["bn_affine_losses"], r["bn_static_losses"], rtol=1e-3)
    assert not np.allclose(r["plain_affine_losses"], r["plain_static_losses"], rtol=1e-3)
