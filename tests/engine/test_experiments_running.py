import numpy as np
import pytest

from engine.batchnorm import BatchRenorm1d
from engine.experiments.running import (NORMS, parse_batch_sizes, renorm_schedule_callback,
                                        training_mode_disagreement)
from engine.network import build_mlp
from engine.registry import ParameterError

SMALL = {"batch_sizes": "4,16", "steps": 100, "n": 400, "record_every": 20}
EXPERIMENT = "running_averages_in_training"
REDUCED = {EXPERIMENT: SMALL}


def test_same_seed_same_result_and_other_seed_differs(assert_deterministic):
    assert_deterministic(EXPERIMENT, 3, 4, varying=["loss_curve_batch"])


def test_result_keys_and_shapes(run):
    r = run(EXPERIMENT)
    assert list(r["batch_sizes"]) == [4, 16]
    assert list(r["record_steps"]) == [19, 39, 59, 79, 99]
    for norm in NORMS:
        for key in ("acc", "diverged", "bias", "bias_growth", "disagree", "gap"):
            assert r[f"{key}_{norm}"].shape == (2,), (key, norm)
        assert r[f"bias_curve_{norm}"].shape == r[f"loss_curve_{norm}"].shape == (2, 5)


@pytest.mark.parametrize("overrides", [{"batch_sizes": "8,4"}, {"batch_sizes": "1,4"},
                                       {"batch_sizes": "4,x"}, {"batch_sizes": "2,4,8,16,32"},
                                       {"record_every": 200}, {"steps": 10},
                                       {"batch_sizes": "256", "n": 400}])
def test_bad_parameters_refused(run, overrides):
    with pytest.raises(ParameterError):
        run(EXPERIMENT, **overrides)


def test_parse_batch_sizes():
    assert list(parse_batch_sizes("4,8,32")) == [4, 8, 32]
    assert list(parse_batch_sizes(" 16 ")) == [16]
    with pytest.raises(ParameterError, match="batch_sizes"):
        parse_batch_sizes("")


def test_only_the_running_average_variant_moves_the_biases_it_normalizes_away(run):
    r = run(EXPERIMENT)
    # batch norm and Batch Renorm subtract the batch mean, so the bias gets no gradient
    assert np.all(r["bias_batch"] < 1e-9) and np.all(r["bias_renorm"] < 1e-9)
    assert np.all(r["bias_running"] > 1.0)
    # ... and they are still growing in the second half of training; the others do not move
    assert np.all(r["bias_growth_running"] > 1.0)
    assert np.all(r["bias_growth_batch"] == 1.0) and np.all(r["bias_growth_renorm"] == 1.0)
    # the running-average variant's training and inference outputs agree better than batch
    # norm's at the larger batch, where its averages are steady
    assert r["disagree_running"][1] < r["disagree_batch"][1]


def test_a_blown_up_run_is_reported_not_propagated_as_nan(run):
    r = run(EXPERIMENT, lr=2.0, batch_sizes="4")
    assert r["diverged_running"][0]
    assert r["acc_running"][0] == 0.0 and r["disagree_running"][0] == 1.0
    for norm in NORMS:
        for key in ("acc", "bias", "bias_growth", "disagree", "gap"):
            assert np.all(np.isfinite(r[f"{key}_{norm}"]))


def test_renorm_schedule_callback_follows_the_papers_proportions():
    model = build_mlp(np.random.default_rng(0), 3, 2, 2, 4, "relu", norm="renorm")
    set_limits = renorm_schedule_callback(1600)
    norms = [block.norm for block in model.hidden]
    assert all(isinstance(n, BatchRenorm1d) for n in norms)
    set_limits(0, 0.0, model)
    assert (norms[0].r_max, norms[0].d_max) == (1.0, 0.0)  # batch norm during warm-up
    set_limits(499, 0.0, model)
    assert norms[1].d_max == pytest.approx(5.0) and 1 < norms[1].r_max < 3
    set_limits(799, 0.0, model)
    assert (norms[1].r_max, norms[1].d_max) == (pytest.approx(3.0), pytest.approx(5.0))


def test_disagreement_is_zero_without_batch_dependence():
    rng = np.random.default_rng(0)
    model = build_mlp(rng, 3, 3, 2, 8, "relu")
    x = rng.standard_normal((64, 3))
    assert training_mode_disagreement(model, x, 8, rng) == (0.0, 0.0)
    bn_model = build_mlp(rng, 3, 3, 2, 8, "relu", norm="batch")
    disagree, gap = training_mode_disagreement(bn_model, x, 4, rng)
    assert gap > 0
    assert np.all(bn_model.hidden[0].norm.running_mean == 0)  # measured on a copy
