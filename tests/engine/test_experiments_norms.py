import numpy as np
import pytest

from engine.batchnorm import BatchNorm1d
from engine.experiments.norms import PositionBatchNorm, effective_sizes, normalized_mlp
from engine.gradcheck import check_layer_gradients
from engine.layernorm import GroupNorm, LayerNorm
from engine.registry import ParameterError

REDUCED = {
    "norm_batch_size": {"batch_sizes": "2,16", "depth": 2, "width": 16, "examples": 256,
                        "train_size": 128, "test_size": 128},
    "batch_dependence": {},
    "conv_bn_identities": {},
    "channel_stat_noise": {"pool": 256, "trials": 200},
    "conv_norm_small_batch": {"batch_sizes": "2,8", "channels": 4, "examples": 128,
                              "train_size": 64, "test_size": 64},
}


@pytest.mark.parametrize("name", ["norm_batch_size", "conv_norm_small_batch"])
def test_training_runs_are_deterministic_and_seeds_differ(assert_deterministic, float_arrays,
                                                          name):
    assert_deterministic(name, 3, 4, varying=float_arrays)


def test_norm_batch_size_reports_every_norm_at_every_size(run):
    r = run("norm_batch_size")
    assert list(r["batch_sizes"]) == [2, 16]
    assert list(r["steps"]) == [128, 16]  # the same examples at every batch size
    for key in ("bn_acc", "ln_acc", "gn_acc", "bn_batch_mode_acc"):
        assert r[key].shape == (2,) and np.all((0 <= r[key]) & (r[key] <= 1)), key


def test_the_networks_differ_only_in_their_normalization():
    nets = {kind: normalized_mlp(np.random.default_rng(5), kind, 2, 8, 4)
            for kind in ("bn", "ln", "gn")}
    kinds = {kind: type(net.layers[1]) for kind, net in nets.items()}
    assert kinds == {"bn": BatchNorm1d, "ln": LayerNorm, "gn": GroupNorm}
    first = nets["bn"].params()
    for net in nets.values():
        for name, value in net.params().items():
            np.testing.assert_array_equal(value, first[name], err_msg=name)


@pytest.mark.parametrize("name, overrides", [
    ("norm_batch_size", {"groups": 3}),  # does not divide width 16
    ("norm_batch_size", {"batch_sizes": "1,4"}),  # batch norm cannot train on one example
    ("norm_batch_size", {"batch_sizes": "2,256"}),  # larger than the training set
    ("batch_dependence", {"groups": 5}),
    ("channel_stat_noise", {"batch": 300}),
    ("conv_norm_small_batch", {"batch_sizes": "8,4"}),
])
def test_bad_parameters_refused(run, name, overrides):
    with pytest.raises(ParameterError):
        run(name, **overrides)


def test_only_batch_norm_outputs_depend_on_the_rest_of_the_batch(run):
    r = run("batch_dependence")
    assert r["bn_change"] > 0.01 and r["bn2d_change"] > 0.01
    for key in ("ln_change", "gn_change", "gn2d_change", "in2d_change", "ln_mode_diff",
                "gn_mode_diff", "ln_single_diff"):
        assert r[key] < 1e-12, key
    assert r["bn_refuses_one"]


def test_batch_norm_of_two_examples_is_plus_or_minus_one(run):
    r = run("batch_dependence", 2)
    assert r["bn_pair_formula_dev"] < 1e-12
    assert r["bn_pair_near_one"] > 0.9
    assert r["ln_pair_max_abs"] > 1.5  # layer norm keeps graded values


def test_batch_norm_2d_is_the_per_channel_formula(run):
    r = run("conv_bn_identities")
    for key in ("formula_diff", "channel_mean_max", "channel_var_dev", "shared_value_diff",
                "single_vs_instance"):
        assert r[key] < 1e-12, key
    assert r["position_shared_value_diff"] > 0.01
    assert r["params_position"] == r["params_channel"] * r["size"] ** 2


def test_position_batch_norm_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    layer = PositionBatchNorm(2, 3, 3)
    layer.gamma[...] = rng.normal(1.0, 0.3, layer.gamma.shape)
    x = rng.normal(size=(4, 2, 3, 3))
    errors = check_layer_gradients(layer, x, rng)
    assert max(errors.values()) < 1e-6, errors


def test_effective_sizes_of_independent_and_of_constant_maps():
    rng = np.random.default_rng(1)
    batch = 4
    independent = rng.normal(size=(2000, 3, 4, 4))
    per_channel, per_position = effective_sizes(independent, batch, 2000, rng)
    assert per_channel == pytest.approx(batch * 16, rel=0.15)
    assert per_position == pytest.approx(batch, rel=0.1)
    constant = np.broadcast_to(rng.normal(size=(2000, 3, 1, 1)), (2000, 3, 4, 4))
    per_channel, _ = effective_sizes(constant, batch, 2000, rng)
    assert per_channel == pytest.approx(batch, rel=0.15)  # 16 copies are worth one value


def test_channel_statistics_are_worth_more_than_n_and_less_than_nhw(run):
    r = run("channel_stat_noise")
    for layer in ("layer1", "layer2"):
        assert r[f"{layer}_position_size"] == pytest.approx(r["batch"], rel=0.2)
        assert r["batch"] < r[f"{layer}_channel_size"] < r[f"{layer}_nominal"]
    assert r["layer1_nominal"] == r["batch"] * 64 and r["layer2_nominal"] == r["batch"] * 16


def test_conv_experiment_reports_both_placements(run):
    r = run("conv_norm_small_batch")
    for key in ("channel_acc", "position_acc", "channel_batch_mode_acc",
                "position_batch_mode_acc"):
        assert r[key].shape == (2,) and np.all((0 <= r[key]) & (r[key] <= 1)), key
