import copy

import numpy as np
import pytest

from engine.experiments.optimization import landscape_along_gradient, steps_to_target
from engine.experiments.twins import LOSS_WINDOW, spiral_task, spiral_twins
from engine.losses import softmax_cross_entropy
from engine.registry import ParameterError

SMALL = {"depth": 3, "width": 12, "batch": 32, "train_size": 256}
REDUCED = {
    "gradient_ics": {**SMALL, "steps": 30, "every": 10},
    "loss_smoothness": {**SMALL, "steps": 30, "every": 10, "n_steps": 3},
    "lr_steps_to_target": {**SMALL, "max_steps": 40, "n_lrs": 3},
}


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_same_seed_same_result_other_seed_differs(name, assert_deterministic):
    assert_deterministic(name, 5, 6)


@pytest.mark.parametrize("name, overrides", [
    ("gradient_ics", {"depth": 1}),
    ("gradient_ics", {"lr": 0.0}),
    ("gradient_ics", {"batch": 512, "train_size": 256}),
    ("loss_smoothness", {"max_step": 5.0}),
    ("lr_steps_to_target", {"min_lr": 1.0, "max_lr": 0.5}),
    ("lr_steps_to_target", {"target": 0.0}),
])
def test_bad_parameters_refused(run, name, overrides):
    with pytest.raises(ParameterError):
        run(name, **overrides)


def test_gradient_ics_shapes_and_ranges(run):
    r = run("gradient_ics")
    assert list(r["checkpoints"]) == [0, 10, 20]
    assert list(r["layers"]) == [2, 3, 4]  # layer 1 left out, the output layer last
    for label in ("plain", "bn"):
        assert r[f"{label}_cosine"].shape == r[f"{label}_l2"].shape == (3, 3)
        assert r[f"{label}_rel_l2"].shape == (3, 3)
        assert np.all(np.abs(r[f"{label}_cosine"]) <= 1 + 1e-12)
        assert np.all(r[f"{label}_l2"] >= 0)
        # G' lies on a ray at angle theta from G, so ||G - G'|| >= ||G|| sin(theta): the
        # relative change cannot be smaller than the sine the cosine implies.
        sine = np.sqrt(np.clip(1 - r[f"{label}_cosine"] ** 2, 0, None))
        assert np.all(r[f"{label}_rel_l2"] >= sine - 1e-9)
    assert r["cosine_gain"] == pytest.approx(r["bn_mean_cosine"] - r["plain_mean_cosine"])
    assert r["rel_l2_ratio"] == pytest.approx(r["bn_mean_rel_l2"] / r["plain_mean_rel_l2"])


def test_gradient_ics_vanishes_with_the_step(run):
    # G' - G is about lr times a Hessian block times the gradient: a tiny step shifts nothing.
    r = run("gradient_ics", lr=1e-4)
    assert r["plain_mean_cosine"] > 0.999 and r["bn_mean_cosine"] > 0.999
    assert r["plain_mean_rel_l2"] < 0.01 and r["bn_mean_rel_l2"] < 0.01


def test_spiral_twins_start_from_the_same_weights():
    nets = spiral_twins(7, depth=3, width=8)
    plain, bn = nets["plain"].params(), nets["bn"].params()
    for name, value in plain.items():
        np.testing.assert_array_equal(value, bn[name])
    assert set(bn) - set(plain) == {f"hidden{i}.norm.{p}" for i in range(3)
                                    for p in ("gamma", "beta")}


def test_landscape_starts_at_the_loss_descends_and_leaves_the_model_alone():
    rng = np.random.default_rng(0)
    x, y = spiral_task(rng, 64, 0.75)
    mlp = spiral_twins(1, depth=2, width=16)["plain"]
    before = copy.deepcopy(mlp.params())
    loss, _ = softmax_cross_entropy(mlp.forward(x), y)
    losses, changes, norm = landscape_along_gradient(mlp, x, y, np.array([1e-4, 1e-3]))
    assert losses[0] == pytest.approx(loss, rel=1e-12)
    assert losses[2] < losses[1] < losses[0]  # small steps along -g go downhill
    assert 0 < changes[0] < changes[1] and norm > 0
    for name, value in mlp.params().items():
        np.testing.assert_array_equal(value, before[name])


def test_steps_to_target_reports_divergence_and_reaching():
    rng = np.random.default_rng(0)
    x, y = spiral_task(rng, 256, 0.75)

    def plain():
        return spiral_twins(2, depth=3, width=16)["plain"]

    assert steps_to_target(plain(), x, y, 3, lr=50.0, batch=32, max_steps=50,
                           target=0.1) == (50, True)
    # Any loss is below 100: the target is met as soon as the window is full.
    assert steps_to_target(plain(), x, y, 3, lr=0.01, batch=32, max_steps=50,
                           target=100.0) == (LOSS_WINDOW, False)
    assert steps_to_target(plain(), x, y, 3, lr=1e-4, batch=32, max_steps=30,
                           target=0.01) == (30, False)


def test_smoothness_is_the_gradient_change_per_unit_of_distance(run):
    r = run("loss_smoothness")
    for label in ("plain", "bn"):
        norms = r[f"{label}_gradient_norm"]
        assert norms.shape == r[f"{label}_beta_smoothness"].shape and np.all(norms > 0)
        per_distance = r[f"{label}_gradient_changes"] / (r["step_sizes"] * norms[:, None])
        np.testing.assert_allclose(r[f"{label}_beta_smoothness"], per_distance.max(axis=1))
    assert r["gradient_norm_ratio"] == pytest.approx(r["plain_mean_gradient_norm"]
                                                     / r["bn_mean_gradient_norm"])


def test_lr_sweep_summaries_follow_the_per_lr_steps(run):
    r = run("lr_steps_to_target", max_lr=10.0)
    assert r["lrs"][0] == pytest.approx(0.02) and r["lrs"][-1] == pytest.approx(10.0)
    assert r["plain_diverged"][-1]  # a learning rate of 10 blows a plain ReLU network up
    for label in ("plain", "bn"):
        steps = r[f"{label}_steps"]
        assert r[f"{label}_best_steps"] == steps.min()
        assert not np.any(r[f"{label}_reached"] & r[f"{label}_diverged"])
    assert r["speedup"] == pytest.approx(r["plain_best_steps"] / r["bn_best_steps"])
    # the speed-up splits into the part at the same rate and the part from a larger rate
    assert r["speedup"] == pytest.approx(r["same_lr_speedup"] * r["lr_gain"])
    assert r["lr_gain"] >= 1  # bn's best rate is at least as good as any other
    assert r["best_lr_ratio"] == pytest.approx(r["bn_best_lr"] / r["plain_best_lr"])
