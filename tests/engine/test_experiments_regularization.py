import numpy as np
import pytest

from engine.experiments.regularization import unit_ablation_effects
from engine.network import build_mlp
from engine.registry import ParameterError

FAST = {"train_size": 64, "test_size": 200, "width": 16, "epochs": 10, "ghost_batch": 16}
REDUCED = {"bn_noise_regularization": {**FAST, "small_ghost_batch": 8}, "unit_reliance": FAST}


@pytest.mark.parametrize("name", sorted(REDUCED))
def test_same_seed_same_result_and_other_seed_differs(name, assert_deterministic):
    assert_deterministic(name, 2, 3, varying=lambda key, _: key.endswith("_test_acc"))


def test_result_keys(run):
    r = run("bn_noise_regularization")
    for name in ("plain", "dropout", "bn", "ghost", "small_ghost", "plain_mini", "bn_mini"):
        for key in ("train_acc", "test_acc", "test_loss"):
            assert f"{name}_{key}" in r
    assert r["noise_gain"] == r["ghost_test_acc"] - r["bn_test_acc"]
    reliance = run("unit_reliance")
    for name in ("plain", "dropout", "bn", "ghost"):
        effects = reliance[f"{name}_effects"]
        assert effects.shape == (FAST["width"],)
        assert np.all(np.diff(effects) <= 0)
        assert reliance[f"{name}_top_effect"] == effects[0]
        assert 0 <= reliance[f"{name}_top_flips"] <= 1
        # removing a unit can cost at most the predictions it flips
        assert reliance[f"{name}_top_acc_drop"] <= reliance[f"{name}_top_flips"]


@pytest.mark.parametrize("name, overrides", [
    ("bn_noise_regularization", {"ghost_batch": 24}),  # does not divide 64
    ("bn_noise_regularization", {"small_ghost_batch": 64}),  # the whole batch: no ghost
    ("unit_reliance", {"dropout_p": 0.95}),
    ("unit_reliance", {"depth": 0}),
])
def test_bad_parameters_refused(run, name, overrides):
    with pytest.raises(ParameterError):
        run(name, **overrides)


def test_unit_ablation_effects_match_a_real_removal():
    rng = np.random.default_rng(1)
    mlp = build_mlp(rng, 5, 2, 2, 6)
    x = rng.standard_normal((40, 5))
    y = rng.integers(2, size=40)
    effect, flips, accuracy_drop = unit_ablation_effects(mlp, x, y)
    logits = mlp.forward(x, training=False)
    margin = logits[:, 1] - logits[:, 0]
    h = mlp.hidden[-1].forward(mlp.hidden[0].forward(x, training=False), training=False)
    for j in range(6):
        removed = h.copy()
        removed[:, j] = 0
        out = mlp.out.linear.forward(removed)
        new_margin = out[:, 1] - out[:, 0]
        assert effect[j] == pytest.approx(np.abs(new_margin - margin).mean()
                                          / np.abs(margin).mean())
        assert flips[j] == np.mean((new_margin > 0) != (margin > 0))
        assert accuracy_drop[j] == pytest.approx(np.mean((margin > 0) == y)
                                                 - np.mean((new_margin > 0) == y))
