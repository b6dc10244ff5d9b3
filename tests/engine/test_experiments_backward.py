import numpy as np
import pytest

from engine.batchnorm import batchnorm_backward, batchnorm_forward
from engine.experiments.backward import error_vs_reference, input_gradient_formula
from engine.registry import ParameterError

REDUCED = {
    "bn_backward_check": {"max_batch": 16, "features": 3},
    "bn_scale_invariance": {},
    "depth_gradient_norms": {"depth": 12, "width": 32, "batch": 32, "steps": 20,
                             "train_size": 256},
}


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_same_seed_same_result_and_other_seed_differs(name, assert_deterministic,
                                                      float_arrays):
    assert_deterministic(name, 5, 6, varying=float_arrays)


@pytest.mark.parametrize("name, overrides", [
    ("bn_backward_check", {"batch": 2}),
    ("bn_backward_check", {"h": 0.0}),
    ("bn_scale_invariance", {"batch": 1}),
    ("depth_gradient_norms", {"depth": 60}),
    ("depth_gradient_norms", {"train_size": 64, "batch": 128}),
])
def test_bad_parameters_refused(run, name, overrides):
    with pytest.raises(ParameterError):
        run(name, **overrides)


def test_formulas_written_out():
    rng = np.random.default_rng(0)
    x, dy, gamma = rng.standard_normal((6, 2)), rng.standard_normal((6, 2)), np.array([0.5, 2.0])
    _, cache = batchnorm_forward(x, gamma, np.zeros(2), 1e-5)
    xhat = cache.centered * cache.inv_std
    dx, _, _ = batchnorm_backward(dy, cache)
    np.testing.assert_allclose(input_gradient_formula(dy, xhat, cache.inv_std, gamma), dx,
                               rtol=1e-10, atol=1e-12)
    quoted = input_gradient_formula(dy, xhat, cache.inv_std, gamma, missing_one_over_m=True)
    # the two differ exactly by the missing factor on the last term
    last = xhat * (gamma * dy * xhat).sum(axis=0) * cache.inv_std
    np.testing.assert_allclose(dx - quoted, last * (1 - 1 / 6), rtol=1e-10, atol=1e-12)


def test_error_vs_reference():
    assert error_vs_reference(np.array([3.0, 4.0]), np.array([3.0, 4.0])) == 0.0
    assert error_vs_reference(np.array([0.0, 0.0]), np.array([3.0, 4.0])) == 1.0
    assert error_vs_reference(np.array([30.0, 40.0]), np.array([3.0, 4.0])) == 9.0


def test_finite_differences_side_with_the_correct_formula(run):
    r = run("bn_backward_check")
    assert r["max_engine_error"] < 1e-6
    assert r["max_correct_error"] < 1e-6
    assert r["min_quoted_error"] > 0.1
    # the right gradient has no part along 1 or xhat; the quoted one is mostly along xhat
    assert r["engine_ones_cosine"] < 1e-9
    assert r["engine_xhat_cosine"] < 1e-4
    assert r["quoted_xhat_cosine"] > 0.5


def test_a_batch_of_one_gives_a_zero_gradient_and_is_refused(run):
    r = run("bn_backward_check")
    assert r["single_correct_norm"] == 0.0 and r["single_quoted_norm"] == 0.0
    assert r["engine_refuses_single"] is True


def test_scale_invariance_of_the_backward_pass(run):
    r = run("bn_scale_invariance")
    assert r["max_output_change"] < 0.01
    assert r["max_dW_deviation"] < 0.01
    assert r["max_du_change"] < 0.01
    np.testing.assert_allclose(r["plain_du_ratio"], r["scales"], rtol=1e-9)


def test_gradients_explode_towards_the_input_only_with_batch_norm_at_init(run):
    r = run("depth_gradient_norms")
    assert r["bn_init"].shape == r["plain_trained"].shape == (13,)
    assert r["first_to_last_bn_init"] > 2 * r["first_to_last_plain_init"]
    # without normalization a global weight gain compounds over the layers
    assert r["plain_by_gain"][-1] > 100 * r["bn_by_gain"][-1]
