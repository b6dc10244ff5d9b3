import numpy as np
import pytest

from engine.experiments.shift import VARIANTS, standardized_shift, with_reestimated_statistics
from engine.network import build_mlp
from engine.registry import ParameterError

SMALL = {"n_train": 200, "n_test": 200, "steps": 60, "batch": 32, "repeats": 1, "width": 16}
EXPERIMENT = "cats_covariate_shift"
REDUCED = {EXPERIMENT: SMALL}


def test_same_seed_same_result_and_other_seed_differs(assert_deterministic):
    assert_deterministic(EXPERIMENT, 3, 4, varying=["unit_black"])


def test_result_keys_and_shapes(run):
    r = run(EXPERIMENT, repeats=2, depth=3)
    for name, *_ in VARIANTS:
        for key in (f"acc_black_{name}", f"acc_colour_{name}", f"gap_{name}"):
            assert isinstance(r[key], float), key
        assert r[f"colour_{name}"].shape == (2,)
    for key in ("hidden_shift_plain", "hidden_shift_bn", "hidden_shift_adabn",
                "hidden_shift_null_plain", "hidden_shift_null_bn"):
        assert r[key].shape == (3,)
    for key in ("unit_black", "unit_colour", "unit_adabn"):
        assert r[key].shape == (3, SMALL["n_test"])
    assert r["pictures_black"].shape == r["pictures_colour"].shape == (4, 8, 8, 3)
    assert r["gap_bn"] == pytest.approx(r["acc_black_bn"] - r["acc_colour_bn"])


@pytest.mark.parametrize("overrides", [{"repeats": 0}, {"mixed_fraction": 0.0},
                                       {"size": 5}, {"batch": 256, "n_train": 200}])
def test_bad_parameters_refused(run, overrides):
    with pytest.raises(ParameterError):
        run(EXPERIMENT, **overrides)


def test_black_training_does_not_transfer_but_mixed_training_does(run):
    r = run(EXPERIMENT, 0, n_train=400, steps=150)
    assert r["acc_black_bn"] > 0.9 and r["acc_black_plain"] > 0.9
    assert r["gap_bn"] > 0.1 and r["gap_plain"] > 0.1
    assert r["acc_colour_bn_mixed"] > r["acc_colour_bn"] + 0.1
    # the change of palette moves the hidden units far beyond what a second sample of black
    # cats does (the measure's noise floor), with and without batch norm
    assert np.all(r["hidden_shift_plain"] > 3 * r["hidden_shift_null_plain"])
    assert np.all(r["hidden_shift_bn"] > 3 * r["hidden_shift_null_bn"])
    # re-estimating the statistics realigns every unit's mean on the coloured cats
    assert np.all(r["hidden_shift_adabn"] < 0.3 * r["hidden_shift_bn"])


def test_reestimated_statistics_are_those_of_the_new_data_and_the_model_is_untouched():
    rng = np.random.default_rng(0)
    model = build_mlp(rng, 5, 2, 2, 4, "relu", norm="batch")
    x = 3.0 + rng.standard_normal((5000, 5))
    adapted = with_reestimated_statistics(model, x)
    first = adapted.hidden[0]
    z = first.linear.forward(x)
    np.testing.assert_allclose(first.norm.running_mean, z.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(first.norm.running_var, z.var(axis=0, ddof=1), rtol=1e-12)
    assert np.all(model.hidden[0].norm.running_mean == 0)  # the original keeps its statistics
    # in inference mode the adapted model normalizes x like a training-mode pass does
    out_eval = adapted.forward(x, training=False)
    out_train = model.forward(x, training=True)
    np.testing.assert_allclose(out_eval, out_train, rtol=1e-3, atol=1e-3)  # m / (m - 1)


def test_reestimation_needs_batch_norm():
    model = build_mlp(np.random.default_rng(0), 3, 2, 1, 4, "relu")
    with pytest.raises(ValueError, match="BatchNorm1d"):
        with_reestimated_statistics(model, np.ones((4, 3)))


def test_standardized_shift():
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((20000, 3)) * [1.0, 2.0, 4.0]
    columns, shift = standardized_shift(reference, reference + 2.0)
    assert list(columns) == [0, 1, 2]
    np.testing.assert_allclose(shift, [2.0, 1.0, 0.5], rtol=1e-2)
    reference[:, 1] = 7.0  # a dead unit is left out
    columns, _ = standardized_shift(reference, reference)
    assert list(columns) == [0, 2]
    with pytest.raises(ValueError, match="constant"):
        standardized_shift(np.ones((5, 2)), np.zeros((5, 2)))
