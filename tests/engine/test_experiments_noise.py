import numpy as np
import pytest

from engine.experiments.common import batch_sizes_between
from engine.registry import ParameterError

SMALL = {"min_batch": 8, "max_batch": 128, "small_batch": 16, "large_batch": 128,
         "trials": 2000}
EXPERIMENT = "batch_stat_noise"
REDUCED = {EXPERIMENT: SMALL}


def test_same_seed_same_result_and_other_seed_differs(assert_deterministic):
    assert_deterministic(EXPERIMENT, 3, 4, varying=["mean_var"])


def test_result_keys_and_shapes(run):
    r = run(EXPERIMENT)
    sizes = r["batch_sizes"]
    assert list(sizes) == [8, 16, 32, 64, 128]
    for key in ("mean_var", "mean_var_theory", "var_var", "var_var_theory", "example_spread",
                "example_spread_theory"):
        assert r[key].shape == sizes.shape, key
    assert r["values_small"].shape == r["values_large"].shape == (SMALL["trials"],)


@pytest.mark.parametrize("overrides", [{"trials": 10}, {"dropout_p": 1.0},
                                       {"min_batch": 1}, {"min_batch": 64, "max_batch": 32},
                                       {"small_batch": 128, "large_batch": 64}])
def test_bad_parameters_refused(run, overrides):
    with pytest.raises(ParameterError):
        run(EXPERIMENT, **overrides)


def test_statistics_follow_the_sampling_theory(run):
    r = run(EXPERIMENT)
    # Var(mu_B) = sigma^2/m and Var(var_B) = 2(m-1)sigma^4/m^2 up to sampling error
    assert r["mean_var_rel_error"] < 0.2
    assert r["var_var_rel_error"] < 0.25
    # the example's jitter shrinks like 1/sqrt(m): 16 -> 128 is sqrt(8)
    assert 2.3 < r["spread_ratio"] < 3.4


def test_noise_scales_with_the_unit_std_but_the_normalized_jitter_does_not(run):
    a, b = run(EXPERIMENT, 1, std=1.0), run(EXPERIMENT, 1, std=10.0)
    np.testing.assert_allclose(b["mean_var"], 100 * a["mean_var"], rtol=1e-9)
    np.testing.assert_allclose(b["example_spread"], a["example_spread"], rtol=1e-4)  # eps aside


def test_dropout_spread_is_its_analytic_value(run):
    r = run(EXPERIMENT, example_z=2.0, dropout_p=0.5)
    assert r["dropout_spread"] == pytest.approx(2.0, rel=0.05)


def test_batch_sizes_between():
    assert list(batch_sizes_between(8, 64)) == [8, 16, 32, 64]
    assert list(batch_sizes_between(10, 40, (24,))) == [10, 16, 24, 32, 40]


def test_the_jitter_is_algorithm_1_of_the_batch_and_nothing_else(run):
    r = run(EXPERIMENT)
    # The engine's value is Algorithm 1 recomputed from the batch (to rounding), and the same
    # batch normalized again gives the same values: no draw of its own.
    assert r["algorithm1_max_diff"] < 1e-12
    assert r["repeat_max_diff"] == 0.0


def test_algorithm1_is_the_normalization_of_the_first_row():
    from engine.experiments.noise import algorithm1
    batches = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0]])
    # column 0: mean 3, biased variance 8/3; column 1: mean 2, same variance
    expected = np.array([-2.0, -2.0]) / np.sqrt(8 / 3 + 1e-5)
    np.testing.assert_allclose(algorithm1(batches), expected)
