"""Ghost batch norm and the jittered norm (engine.normalization): functional pairs and layers."""
import numpy as np
import pytest

from engine.batchnorm import BatchNorm1d
from engine.gradcheck import check_layer_gradients, numeric_gradient, relative_error
from engine.normalization import (GhostBatchNorm1d, JitteredNorm, draw_jitter,
                                  ghost_batchnorm_backward, ghost_batchnorm_forward,
                                  jitter_backward, jitter_forward)


def test_ghost_batch_norm_normalizes_each_chunk_and_has_correct_gradients():
    rng = np.random.default_rng(0)
    x = 2 + 3 * rng.standard_normal((12, 3))
    ghost = GhostBatchNorm1d(3, 4)
    ghost.gamma[...] = [0.5, 1.0, 2.0]
    ghost.beta[...] = [0.0, 1.0, -1.0]
    y = ghost.forward(x)
    for chunk in range(3):
        plain = BatchNorm1d(3)
        plain.gamma[...], plain.beta[...] = ghost.gamma, ghost.beta
        rows = slice(4 * chunk, 4 * chunk + 4)
        np.testing.assert_allclose(y[rows], plain.forward(x[rows]), atol=1e-12)
    errors = check_layer_gradients(ghost, x, rng)
    assert max(errors.values()) < 1e-6
    # inference uses the running statistics, like BatchNorm1d
    np.testing.assert_allclose(ghost.forward(x, training=False),
                               (x - ghost.running_mean) / np.sqrt(ghost.running_var + 1e-5)
                               * ghost.gamma + ghost.beta)


def test_ghost_batch_norm_refuses_uneven_batches():
    with pytest.raises(ValueError, match="multiple of ghost_batch"):
        GhostBatchNorm1d(2, 4).forward(np.ones((10, 2)) + np.arange(10)[:, None])
    with pytest.raises(ValueError, match="ghost_batch"):
        GhostBatchNorm1d(2, 1)


def test_ghost_functional_pair_matches_the_layer_and_finite_differences():
    rng = np.random.default_rng(5)
    x = 1 + 2 * rng.standard_normal((8, 3))
    gamma, beta = rng.standard_normal(3), rng.standard_normal(3)
    layer = GhostBatchNorm1d(3, 2)
    layer.gamma[...], layer.beta[...] = gamma, beta
    y, cache = ghost_batchnorm_forward(x, gamma, beta, 1e-5, 2)
    np.testing.assert_array_equal(y, layer.forward(x))
    np.testing.assert_array_equal(cache.chunk_means, x.reshape(4, 2, 3).mean(axis=1))
    w = rng.standard_normal(y.shape)
    dx, dgamma, dbeta = ghost_batchnorm_backward(w, cache)
    np.testing.assert_array_equal(dx, layer.backward(w))
    np.testing.assert_array_equal(dgamma, layer.dgamma)

    def loss(xv, g=gamma, b=beta):
        return float(np.sum(ghost_batchnorm_forward(xv, g, b, 1e-5, 2)[0] * w))

    assert relative_error(dx, numeric_gradient(loss, x.copy())) < 1e-6
    assert relative_error(dgamma, numeric_gradient(lambda g: loss(x, g=g), gamma.copy())) < 1e-6
    assert relative_error(dbeta, numeric_gradient(lambda b: loss(x, b=b), beta.copy())) < 1e-6
    dx_plain, dgamma_plain, _ = ghost_batchnorm_backward(
        w, ghost_batchnorm_forward(x, None, None, 1e-5, 2)[1])
    assert dgamma_plain is None
    assert relative_error(dx_plain, numeric_gradient(
        lambda xv: float(np.sum(ghost_batchnorm_forward(xv, None, None, 1e-5, 2)[0] * w)),
        x.copy())) < 1e-6


def test_jittered_norm_moves_the_distribution_in_training_only_and_backpropagates_exactly():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 4))
    norm = BatchNorm1d(4)
    jittered = JitteredNorm(BatchNorm1d(4), np.random.default_rng(3), shift=2.0, scale=3.0)
    y = jittered.forward(x, training=True)
    norm.forward(x, training=True)  # the same running statistics as the wrapped norm
    assert np.abs(y.mean(axis=0)).max() > 0.1  # no longer mean 0, std 1 per unit
    assert np.all((y.std(axis=0) >= 1 / 3 - 1e-3) & (y.std(axis=0) <= 3 + 1e-3))
    np.testing.assert_array_equal(jittered.forward(x, training=False),
                                  norm.forward(x, training=False))
    errors = check_layer_gradients(jittered, x, np.random.default_rng(4))
    assert max(errors.values()) < 1e-6


def test_jitter_pair_draws_scale_then_shift_and_backpropagates_the_scale():
    s, t = draw_jitter(np.random.default_rng(6), 3, 2.0, np.log(3.0))
    rng = np.random.default_rng(6)
    np.testing.assert_array_equal(s, np.exp(rng.uniform(-np.log(3.0), np.log(3.0), 3)))
    np.testing.assert_array_equal(t, rng.uniform(-2.0, 2.0, 3))
    y = np.random.default_rng(7).standard_normal((5, 3))
    out, cache = jitter_forward(y, s, t)
    np.testing.assert_array_equal(out, y * s + t)
    w = np.random.default_rng(8).standard_normal(out.shape)
    numeric = numeric_gradient(lambda v: float(np.sum(jitter_forward(v, s, t)[0] * w)), y)
    assert relative_error(jitter_backward(w, cache), numeric) < 1e-6
