"""Layer norm and group norm (engine.layernorm): gradients, what they normalize, refusals and
determinism (PyTorch comparisons are in test_norms_torch.py)."""
import numpy as np
import pytest

from engine.gradcheck import check_layer_gradients, numeric_gradient, relative_error
from engine.layernorm import (GroupNorm, LayerNorm, groupnorm_backward, groupnorm_forward,
                              layernorm_backward, layernorm_forward)
from engine.speed import Workspace

GRAD_TOL = 1e-6


def _randomize_affine(layer, rng):
    if layer.gamma is not None:
        layer.gamma[...] = rng.uniform(0.5, 2.0, layer.gamma.shape) * rng.choice([-1, 1])
        layer.beta[...] = rng.standard_normal(layer.beta.shape)
    return layer


# --- gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize("make, shape", [
    (lambda: LayerNorm(5), (4, 5)),
    (lambda: LayerNorm((3, 4)), (2, 3, 4)),
    (lambda: LayerNorm((2, 3), elementwise_affine=False), (3, 2, 2, 3)),
    (lambda: LayerNorm(6), (6,)),  # one sample, no batch axis
    # Two values per set: xhat is +-1 whatever x, so dx comes from eps alone; a large eps
    # makes it large enough for finite differences to measure.
    (lambda: LayerNorm(2, eps=0.5), (3, 2)),
    (lambda: GroupNorm(2, 6), (3, 6, 2, 3)),
    (lambda: GroupNorm(1, 4), (2, 4, 3, 3)),  # one group: layer norm over (C, H, W)
    (lambda: GroupNorm(4, 4), (2, 4, 2, 3)),  # one channel per group: instance norm
    (lambda: GroupNorm(3, 6, affine=False), (2, 6, 5)),
    (lambda: GroupNorm(2, 4), (2, 4)),  # no spatial axes
    (lambda: GroupNorm(2, 4, eps=0.5), (2, 4, 1, 1)),  # 1x1 images, two values per group
], ids=["ln", "ln-2d", "ln-noaffine", "ln-unbatched", "ln-2-values", "gn", "gn-1-group",
        "gn-instance", "gn-noaffine-1d", "gn-no-spatial", "gn-1x1"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_gradients_match_finite_differences(make, shape, training):
    rng = np.random.default_rng(30)
    layer = _randomize_affine(make(), rng)
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0) + rng.standard_normal()
    errors = check_layer_gradients(layer, x, rng, training=training)
    assert set(errors) == {"x"} | set(layer.params())
    assert max(errors.values()) < GRAD_TOL, errors


def test_functional_pairs_match_finite_differences_and_need_no_parameters():
    rng = np.random.default_rng(31)
    x, w = rng.standard_normal((3, 4, 5)) * 2 + 1, rng.standard_normal((3, 4, 5))
    for forward, backward, setting in ((layernorm_forward, layernorm_backward, (4, 5)),
                                       (groupnorm_forward, groupnorm_backward, 2)):
        y, cache = forward(x, setting)
        dx, dgamma, dbeta = backward(w, cache)
        assert dgamma is None and dbeta is None
        numeric = numeric_gradient(lambda v: np.sum(forward(v, setting)[0] * w), x.copy())
        assert relative_error(dx, numeric) < GRAD_TOL


def test_the_plain_numpy_of_the_module_docstring_is_what_the_core_computes():
    rng = np.random.default_rng(32)
    x, dy = rng.standard_normal((4, 6, 3)) * 2 + 1, rng.standard_normal((4, 6, 3))
    gamma, beta, eps = rng.uniform(0.5, 2, 6), rng.standard_normal(6), 1e-5
    rows = x.reshape(4 * 3, -1)  # group norm with 3 groups of 2 channels
    mean, var = rows.mean(axis=1, keepdims=True), rows.var(axis=1, keepdims=True)
    xhat = (rows - mean) / np.sqrt(var + eps)
    g = gamma[:, None]
    y_plain = g * xhat.reshape(x.shape) + beta[:, None]
    dxhat = (dy * g).reshape(rows.shape)
    dx_plain = (dxhat - dxhat.mean(axis=1, keepdims=True)
                - xhat * (dxhat * xhat).mean(axis=1, keepdims=True)) / np.sqrt(var + eps)
    y, cache = groupnorm_forward(x, 3, gamma, beta, eps)
    dx, dgamma, dbeta = groupnorm_backward(dy, cache)
    for ours, plain in ((y, y_plain), (dx, dx_plain.reshape(x.shape)),
                        (dgamma, (dy * xhat.reshape(x.shape)).sum(axis=(0, 2))),
                        (dbeta, dy.sum(axis=(0, 2)))):
        np.testing.assert_allclose(ours, plain, rtol=1e-12, atol=1e-12)


# --- what they normalize ---------------------------------------------------------------------


def test_layer_norm_normalizes_each_sample_whatever_the_batch():
    rng = np.random.default_rng(33)
    x = rng.standard_normal((5, 3, 8)) * rng.uniform(0.1, 10, (5, 1, 1)) + 7
    layer = LayerNorm((3, 8))
    y = layer.forward(x)
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1, rtol=1e-4)  # eps = 1e-5 shrinks it
    # A sample's output is the same alone, in another batch, and in eval mode (up to the
    # order of BLAS's sums, which depends on the batch's shape).
    np.testing.assert_allclose(layer.forward(x[2]), y[2], rtol=1e-14)
    np.testing.assert_allclose(layer.forward(x[1:3], training=False), y[1:3], rtol=1e-15)


def test_group_norm_normalizes_each_group_of_each_sample_and_instance_norm_each_channel():
    rng = np.random.default_rng(34)
    x = rng.standard_normal((3, 6, 4, 4)) * rng.uniform(0.1, 10, (1, 6, 1, 1)) + 3
    y = GroupNorm(3, 6).forward(x).reshape(3, 3, 2, 4, 4)
    np.testing.assert_allclose(y.mean(axis=(2, 3, 4)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(2, 3, 4)), 1, rtol=1e-3)
    instance = GroupNorm(6, 6).forward(x)
    np.testing.assert_allclose(instance.mean(axis=(2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(instance.var(axis=(2, 3)), 1, rtol=1e-3)
    one_group = GroupNorm(1, 6).forward(x)
    np.testing.assert_allclose(one_group, LayerNorm((6, 4, 4), elementwise_affine=False)
                               .forward(x), rtol=1e-14, atol=1e-14)


def test_a_set_of_one_value_gives_beta_and_no_gradient():
    """Instance norm of 1x1 images: each set is one value, so xhat = 0 exactly, as the
    variance is 0 (PyTorch accepts this in group norm and gives beta up to rounding)."""
    rng = np.random.default_rng(35)
    layer = _randomize_affine(GroupNorm(3, 3), rng)
    y = layer.forward(rng.standard_normal((2, 3, 1, 1)))
    np.testing.assert_array_equal(y, np.broadcast_to(layer.beta[:, None, None], y.shape))
    dy = rng.standard_normal(y.shape)
    assert not layer.backward(dy).any() and not layer.dgamma.any()
    np.testing.assert_array_equal(layer.dbeta, dy.sum(axis=(0, 2, 3)))


def test_cache_keeps_the_statistics():
    rng = np.random.default_rng(36)
    x = rng.standard_normal((2, 4, 3))
    _, cache = groupnorm_forward(x, 2)
    sets = x.reshape(4, 6)
    np.testing.assert_allclose(cache.mean, sets.mean(axis=1), rtol=1e-14)
    np.testing.assert_allclose(cache.var, sets.var(axis=1), rtol=1e-14)


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make, x, words", [
    (lambda: LayerNorm(4), np.ones((3, 5)), ["x", "normalized_shape"]),
    (lambda: LayerNorm((2, 4)), np.ones(4), ["x", "normalized_shape"]),
    (lambda: LayerNorm(2), np.array([[1.0, np.nan]]), ["x", "NaN"]),
    (lambda: LayerNorm(2), np.array([[1.0, np.inf]]), ["x", "NaN or infinite"]),
    (lambda: LayerNorm(2), np.ones((2, 2), complex), ["x", "real numbers"]),
    (lambda: GroupNorm(2, 4), np.ones(4), ["x", "(N, C, *)"]),
    (lambda: GroupNorm(2, 4), np.ones((2, 6, 3)), ["x", "6 channels", "num_channels"]),
    (lambda: GroupNorm(2, 4), np.ones((0, 4, 3)), ["x", "dimension 0"]),
    (lambda: GroupNorm(2, 4), np.full((2, 4, 3), -np.inf), ["x", "NaN or infinite"]),
], ids=["ln-features", "ln-rank", "ln-nan", "ln-inf", "ln-complex", "gn-rank", "gn-channels",
        "gn-empty", "gn-inf"])
def test_bad_input_is_refused_by_name(make, x, words):
    with pytest.raises(ValueError) as error:
        make().forward(x)
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize("make, name", [
    (lambda: GroupNorm(3, 4), "num_channels"),
    (lambda: GroupNorm(0, 4), "num_groups"),
    (lambda: GroupNorm(2, 4.0), "num_channels"),
    (lambda: GroupNorm(2, 4, eps=0.0), "eps"),
    (lambda: LayerNorm(0), "normalized_shape"),
    (lambda: LayerNorm(()), "normalized_shape"),
    (lambda: LayerNorm((2, -1)), "normalized_shape"),
    (lambda: LayerNorm("4"), "normalized_shape"),
    (lambda: LayerNorm(4, eps=float("nan")), "eps"),
    (lambda: LayerNorm(4, dtype=np.int64), "dtype"),
])
def test_bad_settings_are_refused_by_name(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_functional_refusals_name_the_argument():
    x = np.arange(24.0).reshape(2, 4, 3)
    with pytest.raises(ValueError, match="which num_groups = 3 does not divide"):
        groupnorm_forward(x, 3)
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\)"):
        groupnorm_forward(x, 2, np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="beta contains NaN"):
        layernorm_forward(x, 3, np.ones(3), np.array([0.0, np.nan, 0.0]))
    with pytest.raises(ValueError, match="both"):
        layernorm_forward(x, 3, np.ones(3), None)
    with pytest.raises(ValueError, match="variance overflows"):
        layernorm_forward(np.array([[3e38, -3e38]], np.float32), 2)
    layer = LayerNorm(3)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 3)))
    layer.forward(np.arange(6.0).reshape(2, 3))
    with pytest.raises(ValueError, match="dy must have"):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(ValueError, match="dy contains NaN"):
        layer.backward(np.full((2, 3), np.nan))


# --- determinism, buffers, dtype ---------------------------------------------------------------


def test_same_seed_gives_bit_identical_results_and_a_reused_workspace_changes_nothing():
    def run(seed):
        rng = np.random.default_rng(seed)
        outputs = []
        for layer in (LayerNorm((4, 5)), GroupNorm(2, 4), GroupNorm(4, 4, dtype=np.float32)):
            _randomize_affine(layer, rng)
            for _ in range(3):
                x = rng.standard_normal((3, 4, 5))
                outputs += [layer.forward(x), layer.backward(rng.standard_normal((3, 4, 5)))]
                outputs += [g.copy() for g in layer.grads().values()]
        return outputs

    first, second = run(37), run(37)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(first[0], run(38)[0])

    rng = np.random.default_rng(39)
    x1, x2, dy = (rng.standard_normal((3, 4, 5)) for _ in range(3))
    workspace = Workspace()
    y1, _ = groupnorm_forward(x1, 2, workspace=workspace)
    y1_copy = y1.copy()
    y2, cache = groupnorm_forward(x2, 2, workspace=workspace)
    assert np.array_equal(y1, y1_copy), "an earlier output was overwritten"
    y2_alone, cache_alone = groupnorm_forward(x2, 2)
    assert np.array_equal(y2, y2_alone)
    assert np.array_equal(groupnorm_backward(dy, cache)[0], groupnorm_backward(dy, cache_alone)[0])


def test_float32_layers_compute_in_float32():
    rng = np.random.default_rng(40)
    for layer, shape in ((LayerNorm(4, dtype=np.float32), (3, 4)),
                         (GroupNorm(2, 4, dtype=np.float32), (3, 4, 2))):
        y = layer.forward(rng.standard_normal(shape))
        dx = layer.backward(rng.standard_normal(shape))
        assert y.dtype == dx.dtype == layer.dgamma.dtype == np.float32
