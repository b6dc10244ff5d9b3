"""BatchNorm2d (engine.batchnorm2d): gradients, its identity with BatchNorm1d over the pixels,
refusals, layout (PyTorch comparisons are in test_norms_torch.py)."""
import numpy as np
import pytest

from engine.batchnorm import BatchNorm1d
from engine.batchnorm2d import BatchNorm2d, batchnorm2d_backward, batchnorm2d_forward, to_rows
from engine.gradcheck import check_layer_gradients

GRAD_TOL = 1e-6


def _images(rng, shape, shift=0.5, scale=2.0):
    return rng.standard_normal(shape) * scale + shift


def _warm_up(layer, rng, shape, steps=3):
    for _ in range(steps):
        layer.forward(_images(rng, shape, shift=rng.standard_normal(), scale=rng.uniform(0.5, 3)))
    return layer


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kwargs, shape", [
    ({}, (2, 3, 3, 4)),
    ({"affine": False}, (3, 2, 2, 2)),
    ({"track_running_stats": False}, (2, 3, 2, 3)),
    # Two values per channel: xhat is +-1 whatever x, so dx comes from eps alone; a large
    # eps makes it large enough for finite differences to measure.
    ({"eps": 0.5}, (1, 2, 2, 1)),  # one image of two pixels
    ({"eps": 0.5}, (2, 3, 1, 1)),  # two 1x1 images
], ids=["bn2d", "noaffine", "notrack", "one-image", "1x1"])
def test_batchnorm2d_gradients_match_finite_differences(kwargs, shape, training):
    rng = np.random.default_rng(51)
    layer = _warm_up(BatchNorm2d(shape[1], **kwargs), rng, shape)
    if layer.affine:
        layer.gamma[...] = rng.uniform(0.5, 2, shape[1]) * rng.choice([-1, 1], shape[1])
        layer.beta[...] = rng.standard_normal(shape[1])
    errors = check_layer_gradients(layer, _images(rng, shape), rng, training=training)
    assert set(errors) == {"x"} | set(layer.params())
    assert max(errors.values()) < GRAD_TOL, errors


def test_batchnorm2d_is_batchnorm1d_of_the_pixels():
    """Per channel over N*H*W values: the same outputs, gradients and running statistics
    as BatchNorm1d given every pixel as a row."""
    rng = np.random.default_rng(55)
    images, rows = BatchNorm2d(3, momentum=0.3), BatchNorm1d(3, momentum=0.3)
    for step in range(3):
        x, dy = _images(rng, (2, 3, 4, 5), shift=step), rng.standard_normal((2, 3, 4, 5))
        pixels = x.transpose(0, 2, 3, 1).reshape(-1, 3)
        for training in (True, False):
            y = images.forward(x, training)
            np.testing.assert_array_equal(
                y, rows.forward(pixels, training).reshape(2, 4, 5, 3).transpose(0, 3, 1, 2))
            np.testing.assert_array_equal(
                images.backward(dy),
                rows.backward(dy.transpose(0, 2, 3, 1).reshape(-1, 3))
                .reshape(2, 4, 5, 3).transpose(0, 3, 1, 2))
            np.testing.assert_array_equal(images.dgamma, rows.dgamma)
        np.testing.assert_array_equal(images.running_var, rows.running_var)
    assert images.num_batches_tracked == 3
    y, cache = batchnorm2d_forward(x, images.gamma, images.beta, 1e-5)
    np.testing.assert_allclose(cache.mean, x.mean(axis=(0, 2, 3)), rtol=1e-13)
    np.testing.assert_allclose(cache.var, x.var(axis=(0, 2, 3)), rtol=1e-13)
    dx, dgamma, dbeta = batchnorm2d_backward(dy, cache)
    np.testing.assert_allclose(dbeta, dy.sum(axis=(0, 2, 3)), rtol=1e-13)
    assert dx.shape == x.shape and dgamma.shape == (3,)


@pytest.mark.parametrize("x, training, words", [
    (np.ones((2, 3, 4)), True, ["x", "4-D"]),
    (np.ones((2, 2, 4, 4)), True, ["x", "2 channels", "num_features"]),
    (np.ones((2, 2, 4, 4)), False, ["x", "num_features"]),
    (np.ones((1, 3, 1, 1)), True, ["x", "one value per channel"]),
    (np.ones((2, 3, 0, 4)), False, ["x", "no values"]),
    (np.array([[[[1.0]], [[2.0]], [[np.nan]]], [[[1.0]], [[2.0]], [[3.0]]]]), True,
     ["x", "NaN", "column 2"]),
    (np.full((2, 3, 2, 2), np.inf), False, ["x", "inf"]),
    (np.ones((2, 3, 2, 2), complex), True, ["x", "real numbers"]),
], ids=["rank", "channels-train", "channels-eval", "one-value", "empty", "nan", "inf-eval",
        "complex"])
def test_bad_input_is_refused_by_name(x, training, words):
    with pytest.raises(ValueError) as error:
        BatchNorm2d(3).forward(x, training=training)
    for word in words:
        assert word in str(error.value)


def test_eval_mode_accepts_one_value_per_channel_when_statistics_are_tracked():
    assert BatchNorm2d(3).forward(np.ones((1, 3, 1, 1)), training=False).shape == (1, 3, 1, 1)
    with pytest.raises(ValueError, match="one value per channel"):
        BatchNorm2d(3, track_running_stats=False).forward(np.ones((1, 3, 1, 1)), training=False)


@pytest.mark.parametrize("kwargs, name", [
    ({"num_features": 0}, "num_features"), ({"num_features": 3, "momentum": 2.0}, "momentum"),
    ({"num_features": 3, "eps": -1.0}, "eps"),
])
def test_bad_settings_are_refused_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        BatchNorm2d(**kwargs)


def test_bad_gradients_are_refused_by_name():
    rng = np.random.default_rng(57)
    layer = BatchNorm2d(2)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((2, 2, 3, 3)))
    layer.forward(rng.standard_normal((2, 2, 3, 3)))
    with pytest.raises(ValueError, match="dy must have"):
        layer.backward(np.ones((2, 2, 3, 2)))
    with pytest.raises(ValueError, match="dy contains NaN"):
        layer.backward(np.full((2, 2, 3, 3), np.nan))
    with pytest.raises(ValueError, match=r"gamma must have shape \(2,\)"):
        batchnorm2d_forward(np.ones((2, 2, 3, 3)), np.ones(3), None, 1e-5)


def test_outputs_are_views_of_the_pixel_rows_and_an_output_goes_back_in_without_a_copy():
    """y and dx are (N, H, W, C) in memory; an input in that layout (e.g. y after ReLU) is
    rearranged to rows as a view."""
    rng = np.random.default_rng(58)
    layer = BatchNorm2d(3)
    y = layer.forward(_images(rng, (2, 3, 4, 5)))
    assert y.shape == (2, 3, 4, 5) and y.transpose(0, 2, 3, 1).flags.c_contiguous
    relu = np.maximum(y, 0.0)
    assert relu.transpose(0, 2, 3, 1).flags.c_contiguous
    assert np.shares_memory(to_rows(relu), relu)
    np.testing.assert_array_equal(BatchNorm2d(3).forward(relu),
                                  BatchNorm2d(3).forward(np.ascontiguousarray(relu)))


def test_float32_layer_computes_in_float32():
    rng = np.random.default_rng(59)
    layer = BatchNorm2d(3, dtype=np.float32)
    y = layer.forward(_images(rng, (2, 3, 2, 2)))
    dx = layer.backward(rng.standard_normal((2, 3, 2, 2)))
    assert y.dtype == dx.dtype == layer.dgamma.dtype == layer.running_var.dtype == np.float32
