"""Convolution, pooling, Flatten and Sequential (engine.conv, engine.sequential): gradients,
the plain loops they vectorize, refusals, and a small convolutional network that learns the
cats (PyTorch comparisons are in test_conv_torch.py)."""
import numpy as np
import pytest

from engine.batchnorm2d import BatchNorm2d
from engine.conv import (AvgPool2d, Conv2d, Flatten, MaxPool2d, conv2d_backward,
                         conv2d_forward)
from engine.data import make_cats
from engine.gradcheck import check_layer_gradients
from engine.layers import Linear, ReLU
from engine.optim import SGD
from engine.sequential import Sequential
from engine.train import minibatch_indices, train_step

GRAD_TOL = 1e-6


def _images(rng, shape, shift=0.5, scale=2.0):
    return rng.standard_normal(shape) * scale + shift


def _conv(rng, *args, **kwargs):
    conv = Conv2d(*args, rng=rng, **kwargs)
    if conv.b is not None:
        conv.b[...] = rng.standard_normal(conv.b.shape)
    return conv


# --- gradients -----------------------------------------------------------------------------


@pytest.mark.parametrize("make, shape", [
    (lambda rng: _conv(rng, 3, 4, 3, padding=1), (2, 3, 5, 5)),
    (lambda rng: _conv(rng, 2, 3, (3, 2), stride=2), (2, 2, 7, 6)),
    (lambda rng: _conv(rng, 2, 2, 3, stride=(1, 2), padding=(2, 0), bias=False), (1, 2, 4, 5)),
    (lambda rng: _conv(rng, 3, 2, 1), (2, 3, 1, 1)),  # 1x1 images, 1x1 kernel
    (lambda rng: _conv(rng, 1, 2, 3, padding=1), (2, 1, 1, 1)),  # kernel larger than image
    (lambda rng: MaxPool2d(2), (2, 3, 4, 6)),
    (lambda rng: MaxPool2d(3, stride=1), (1, 2, 5, 4)),  # overlapping windows
    (lambda rng: MaxPool2d((2, 1)), (2, 2, 5, 3)),  # an odd row dropped
    (lambda rng: AvgPool2d(2), (2, 3, 4, 5)),
    (lambda rng: AvgPool2d(3, stride=2), (1, 2, 7, 7)),
    (lambda rng: Flatten(), (2, 3, 2, 2)),
], ids=["conv-pad", "conv-stride", "conv-nobias", "conv-1x1", "conv-big-kernel", "max",
        "max-overlap", "max-rect", "avg", "avg-overlap", "flatten"])
def test_layer_gradients_match_finite_differences(make, shape):
    rng = np.random.default_rng(50)
    layer = make(rng)
    errors = check_layer_gradients(layer, _images(rng, shape), rng)
    assert set(errors) == {"x"} | set(layer.params())
    assert max(errors.values()) < GRAD_TOL, errors


def test_sequential_gradients_match_finite_differences():
    rng = np.random.default_rng(52)
    # No bias before batch norm: it would cancel, its gradient 0 up to rounding.
    net = Sequential(_conv(rng, 2, 3, 3, padding=1, bias=False), BatchNorm2d(3), ReLU(),
                     MaxPool2d(2), Flatten(), Linear(3 * 2 * 2, 2, rng))
    errors = check_layer_gradients(net, _images(rng, (3, 2, 4, 4)), rng)
    assert set(errors) == {"x", "0.W", "1.gamma", "1.beta", "5.W", "5.b"}
    assert max(errors.values()) < GRAD_TOL, errors


# --- the plain math -------------------------------------------------------------------------


def test_convolution_is_the_loop_of_the_module_docstring():
    rng = np.random.default_rng(53)
    x, W, b = rng.standard_normal((2, 3, 7, 8)), rng.standard_normal((4, 3, 3, 2)), \
        rng.standard_normal(4)
    s = 2
    y, _ = conv2d_forward(x, W, b, stride=s)
    oh, ow = (7 - 3) // s + 1, (8 - 2) // s + 1
    plain = np.empty((2, 4, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * s:i * s + 3, j * s:j * s + 2]
            plain[:, :, i, j] = np.einsum("nckl,ockl->no", patch, W) + b
    np.testing.assert_allclose(y, plain, rtol=1e-13, atol=1e-13)
    padded, _ = conv2d_forward(x, W, None, padding=(1, 2))
    np.testing.assert_allclose(padded, conv2d_forward(np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2))),
                                                      W)[0], rtol=1e-13, atol=1e-13)


def test_conv_backward_without_dx_gives_the_same_parameter_gradients():
    rng = np.random.default_rng(54)
    x, W = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    y, cache = conv2d_forward(x, W, np.zeros(3), padding=1)
    dy = rng.standard_normal(y.shape)
    dx, dW, db = conv2d_backward(dy, cache)
    none, dW2, db2 = conv2d_backward(dy, cache, need_dx=False)
    assert none is None and dx.shape == x.shape
    np.testing.assert_array_equal(dW, dW2)
    np.testing.assert_array_equal(db, db2)


def test_pooling_takes_the_first_maximum_and_the_mean():
    x = np.array([[[[1.0, 3.0, 0.0, 0.0], [3.0, 2.0, 0.0, 0.0]]]])
    pool = MaxPool2d(2)
    np.testing.assert_array_equal(pool.forward(x), [[[[3.0, 0.0]]]])
    # Ties go to the first entry of the window in row-major order, as in PyTorch.
    np.testing.assert_array_equal(pool.backward(np.array([[[[5.0, 7.0]]]])),
                                  [[[[0.0, 5.0, 7.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])
    avg = AvgPool2d(2)
    np.testing.assert_array_equal(avg.forward(x), [[[[2.25, 0.0]]]])
    np.testing.assert_array_equal(avg.backward(np.array([[[[4.0, 8.0]]]])),
                                  [[[[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]]]])


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("make, x, words", [
    (lambda: Conv2d(3, 2, 3, rng=np.random.default_rng(0)), np.ones((2, 3, 5)), ["x", "4-D"]),
    (lambda: Conv2d(3, 2, 3, rng=np.random.default_rng(0)), np.ones((2, 4, 5, 5)),
     ["x", "4 channels", "in_channels"]),
    (lambda: Conv2d(3, 2, 3, rng=np.random.default_rng(0)), np.ones((2, 3, 2, 5)),
     ["x", "height", "kernel_size"]),
    (lambda: Conv2d(1, 1, 2, rng=np.random.default_rng(0)), np.full((1, 1, 2, 2), np.nan),
     ["x", "NaN"]),
    (lambda: MaxPool2d(2), np.ones((1, 1, 3, 1)), ["x", "width", "kernel_size"]),
    (lambda: AvgPool2d(2), np.full((1, 1, 2, 2), np.inf), ["x", "infinite"]),
    (lambda: MaxPool2d(2), np.ones((0, 1, 2, 2)), ["x", "N >= 1"]),
], ids=["conv-rank", "conv-channels", "conv-small", "conv-nan", "max-small", "avg-inf",
        "pool-empty"])
def test_bad_input_is_refused_by_name(make, x, words):
    with pytest.raises(ValueError) as error:
        make().forward(x)
    for word in words:
        assert word in str(error.value)


@pytest.mark.parametrize("make, name", [
    (lambda rng: Conv2d(0, 2, 3, rng=rng), "in_channels"),
    (lambda rng: Conv2d(2, 2.0, 3, rng=rng), "out_channels"),
    (lambda rng: Conv2d(2, 2, (3, 0), rng=rng), "kernel_size"),
    (lambda rng: Conv2d(2, 2, 3, stride=0, rng=rng), "stride"),
    (lambda rng: Conv2d(2, 2, 3, padding=-1, rng=rng), "padding"),
    (lambda rng: Conv2d(2, 2, 3, padding=(1, 2, 3), rng=rng), "padding"),
    (lambda rng: Conv2d(2, 2, 3, rng=rng, dtype=np.int32), "dtype"),
    (lambda rng: Conv2d(2, 2, 3, rng=rng, init="uniform"), "init"),
    (lambda rng: MaxPool2d(0), "kernel_size"),
    (lambda rng: AvgPool2d(2, stride=(1, True)), "stride"),
    (lambda rng: Sequential(), "layers"),
])
def test_bad_settings_are_refused_by_name(make, name):
    with pytest.raises(ValueError, match=name):
        make(np.random.default_rng(0))


def test_functional_convolution_refuses_bad_filters_by_name():
    x = np.ones((2, 3, 4, 4))
    with pytest.raises(ValueError, match="W must be a 4-D"):
        conv2d_forward(x, np.ones((2, 3, 3)))
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        conv2d_forward(x, np.ones((2, 3, 3, 3)), np.ones(3))
    with pytest.raises(ValueError, match="W contains NaN"):
        conv2d_forward(x, np.full((2, 3, 3, 3), np.nan))
    with pytest.raises(ValueError, match="x has 3 channels"):
        conv2d_forward(x, np.ones((2, 4, 3, 3)))
    with pytest.raises(ValueError, match="x must hold real numbers"):
        conv2d_forward(x.astype(complex), np.ones((2, 3, 3, 3)))


def test_bad_gradients_are_refused_by_name():
    rng = np.random.default_rng(56)
    images = rng.standard_normal((2, 2, 4, 4))
    for layer, x in ((Conv2d(2, 3, 3, rng=rng), images), (MaxPool2d(2), images),
                     (AvgPool2d(2), images), (Flatten(), np.ones((2, 3, 2)))):
        with pytest.raises(RuntimeError, match="before forward"):
            layer.backward(np.ones(1))
        y = layer.forward(x)
        with pytest.raises(ValueError, match="dy must have"):
            layer.backward(np.ones(y.shape + (1,)))
    conv = Conv2d(2, 3, 3, rng=rng)
    conv.forward(np.ones((2, 2, 4, 4)))
    with pytest.raises(ValueError, match="dy contains NaN"):
        conv.backward(np.full((2, 3, 2, 2), np.nan))
    net = Sequential(Flatten(), Linear(4, 2, rng))
    with pytest.raises(RuntimeError, match="before forward"):
        net.backward(np.ones((3, 2)))
    net.forward(np.ones((3, 2, 2)))
    with pytest.raises(ValueError, match="dy must have"):
        net.backward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="dy contains NaN"):
        net.backward(np.full((3, 2), np.nan))


# --- a small convolutional network learns the cats ---------------------------------------------


def cat_images(rng, n):
    """``make_cats``' images as (N, C, H, W): its rows are (row, column, channel) pixels."""
    x, y = make_cats(rng, n)
    return x.reshape(n, 8, 8, 3).transpose(0, 3, 1, 2), y


def train_convnet(seed, steps=300, batch=32):
    """conv 3x3 -> BatchNorm2d -> ReLU -> 2x2 max pool -> linear, trained by SGD on 512 cats;
    returns the losses of every step and the network."""
    rng = np.random.default_rng(seed)
    x, y = cat_images(rng, 512)
    net = Sequential(Conv2d(3, 8, 3, padding=1, rng=rng), BatchNorm2d(8), ReLU(),
                     MaxPool2d(2), Flatten(), Linear(8 * 4 * 4, 2, rng))
    optimizer = SGD(net.params(), lr=0.05, momentum=0.9)
    batches = minibatch_indices(rng, len(x), batch)
    losses = [train_step(net, optimizer, x[i], y[i]) for i, _ in zip(batches, range(steps))]
    return np.array(losses), net


def test_small_convolutional_network_learns_the_cats_deterministically():
    losses, net = train_convnet(seed=0)
    start, end = losses[:10].mean(), losses[-20:].mean()
    assert end < 0.25 * start and end < 0.2, (start, end)
    x_test, y_test = cat_images(np.random.default_rng(1000), 256)
    assert (net.forward(x_test, training=False).argmax(axis=1) == y_test).mean() > 0.9
    again, _ = train_convnet(seed=0, steps=30)
    np.testing.assert_array_equal(again, losses[:30])
    other, _ = train_convnet(seed=1, steps=30)
    assert not np.array_equal(other, losses[:30])
