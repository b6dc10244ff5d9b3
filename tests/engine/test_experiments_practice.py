import copy

import numpy as np
import pytest

from engine.experiments.practice import (FINETUNE_MODES, FrozenStatistics, batch_norms, batch_statistics_logits,
                                         bn_input_variances, dropout_network, freeze_statistics,
                                         parse_sizes, shifted_inputs, training_mode_accuracy,
                                         with_population_statistics)
from engine.network import build_mlp
from engine.optim import SGD
from engine.registry import ParameterError
from engine.train import train

REDUCED = {
    "inference_mode_pitfalls": {"steps": 60, "record_every": 20, "n_train": 400,
                                "n_test": 256, "eval_batches": "1,4,64"},
    "tiny_batch_finetuning": {"pretrain_steps": 60, "finetune_steps": 20, "n_train": 400,
                              "n_test": 256, "finetune_size": 16},
    "dropout_variance_shift": {"epochs": 4, "train_size": 128, "test_size": 200, "width": 16},
    "norm_position": {"steps": 40, "n_train": 400, "n_test": 256, "depth": 2},
}


def trained_bn_model(seed=0, depth=2, width=8, steps=30):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((96, 5))
    y = (x[:, 0] > 0).astype(np.int64)
    model = build_mlp(rng, 5, 2, depth, width, norm="batch")
    train(model, SGD(model.params(), 0.1, momentum=0.9), x, y, rng, steps, 16)
    return model, x, y


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_same_seed_same_result_and_other_seed_differs(name, assert_deterministic,
                                                      float_arrays):
    assert_deterministic(name, 1, 2, varying=lambda key, value: key.endswith("acc")
                         or float_arrays(key, value))


def test_batch_statistics_logits_is_training_mode_without_side_effects():
    model, x, _ = trained_bn_model()
    running = [n.running_mean.copy() for n in batch_norms(model)]
    probe = copy.deepcopy(model)
    expected = np.concatenate([probe.forward(x[i:i + 16], training=True)
                               for i in range(0, 96, 16)])
    np.testing.assert_allclose(batch_statistics_logits(model, x, 16), expected, atol=1e-12)
    for before, norm in zip(running, batch_norms(model)):
        np.testing.assert_array_equal(before, norm.running_mean)
    # a batch of one: every example gets beta at every unit, so the same output
    single = batch_statistics_logits(model, x, 1)
    assert np.ptp(single, axis=0).max() == 0
    with pytest.raises(ValueError):
        batch_statistics_logits(model, x, 7)


def test_population_statistics_are_the_data_statistics_layer_by_layer():
    model, x, _ = trained_bn_model(depth=3)
    precise = with_population_statistics(model, x)
    variances = bn_input_variances(precise, x)
    for norm, var in zip(batch_norms(precise), variances):
        np.testing.assert_allclose(norm.running_var, var, rtol=1e-10)
    assert batch_norms(precise)[0].running_mean == pytest.approx(
        (x @ precise.hidden[0].linear.W + precise.hidden[0].linear.b).mean(axis=0))
    # the original keeps its own statistics and the weights are shared values
    assert not np.allclose(batch_norms(model)[0].running_var, batch_norms(precise)[0].running_var)
    np.testing.assert_array_equal(model.hidden[1].linear.W, precise.hidden[1].linear.W)


def test_frozen_statistics_normalize_with_the_running_ones_and_still_learn_gamma():
    model, x, y = trained_bn_model()
    expected = model.forward(x, training=False)
    frozen = copy.deepcopy(model)
    freeze_statistics(frozen)
    assert all(isinstance(block.norm, FrozenStatistics) for block in frozen.hidden)
    np.testing.assert_allclose(frozen.forward(x, training=True), expected, atol=1e-12)
    means = [n.running_mean.copy() for n in batch_norms(frozen)]
    gamma = batch_norms(frozen)[0].gamma.copy()
    train(frozen, SGD(frozen.params(), 0.1), x, y, np.random.default_rng(0), 5, 2)
    for before, norm in zip(means, batch_norms(frozen)):
        np.testing.assert_array_equal(before, norm.running_mean)
    assert not np.array_equal(gamma, batch_norms(frozen)[0].gamma)


def test_training_mode_accuracy_leaves_the_model_alone():
    model, x, y = trained_bn_model()
    means = batch_norms(model)[0].running_mean.copy()
    assert 0 <= training_mode_accuracy(model, x, y, 16) <= 1
    np.testing.assert_array_equal(means, batch_norms(model)[0].running_mean)


def test_dropout_places():
    before = dropout_network(0, 4, 3, 8, "before", 0.5)
    after = dropout_network(0, 4, 3, 8, "after", 0.5)
    none = dropout_network(0, 4, 3, 8, "none", 0.5)
    assert all(block.dropout is not None for block in before.hidden)
    assert [block.dropout is not None for block in after.hidden] == [False, False, True]
    assert all(block.dropout is None for block in none.hidden)
    np.testing.assert_array_equal(before.hidden[0].linear.W, after.hidden[0].linear.W)


def test_shifted_inputs_keep_rows_apart_and_zero_shift_is_identity():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 3))
    np.testing.assert_array_equal(shifted_inputs(rng, x, 0.0), x)
    moved = shifted_inputs(rng, x, 1.0)
    assert not np.allclose(moved.mean(axis=0), x.mean(axis=0))


def test_parse_sizes():
    assert list(parse_sizes("1,4,64")) == [1, 4, 64]
    for bad in ("4,1", "x", "", "0,2"):
        with pytest.raises(ParameterError):
            parse_sizes(bad)


@pytest.mark.parametrize("name, overrides", [
    ("inference_mode_pitfalls", {"record_every": 100}),
    ("inference_mode_pitfalls", {"eval_batches": "1,512"}),
    ("tiny_batch_finetuning", {"finetune_batch": 32}),
    ("norm_position", {"activation": "sigmoid"}),
])
def test_bad_parameters_refused(run, name, overrides):
    with pytest.raises(ParameterError):
        run(name, **overrides)


def test_inference_mode_pitfalls_behaviour(run):
    r = run("inference_mode_pitfalls")
    assert r["single_spread"] == 0  # one example alone: the same output for every example
    assert r["train_mode_acc"][0] <= r["majority"] + 1e-12
    assert len(r["ema_acc"]) == len(r["precise_acc"]) == 3
    # the slow average lags further behind the current statistics than the fast one
    assert r["slow_lag"][-1] > r["ema_lag"][-1]


def test_finetuning_modes_start_from_one_pretrained_network(run):
    r = run("tiny_batch_finetuning", shift=0.0)
    assert r["frozen_gain"] == r["frozen_acc"] - r["batch_acc"]
    for mode in FINETUNE_MODES:
        assert 0 <= r[f"{mode}_acc"] <= 1


def test_dropout_before_batch_norm_shifts_its_variance(run):
    r = run("dropout_variance_shift", epochs=8)
    assert r["before_shift_all"] > r["none_shift_all"]
    assert r["before_shift"].shape == (r["depth"] - 1,)


def test_the_bias_before_batch_norm_is_dead_and_after_it_is_not(run):
    r = run("norm_position")
    assert r["bias_grad"] < 1e-12 and r["shift_invariance"] < 1e-12
    assert r["bias_twin_diff"] < 1e-10
    assert r["after_bias_grad"] > 1e-3
    assert r["acc_diff"] == r["after_acc"] - r["before_acc"]
    assert 0 <= r["plain_acc"] <= 1 and r["plain_loss"] > 0
    assert len(r["before_curve"]) == len(r["curve_steps"]) == 10
