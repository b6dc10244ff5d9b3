"""Layers over images (N, C, H, W): 2-D convolution, max and average pooling, and Flatten.

The convolution of ``torch.nn.Conv2d`` (a cross-correlation, no kernel flip), in plain numpy
for a kernel of size (kh, kw), stride s and no padding::

    for i in range(OH):
        for j in range(OW):
            patch = x[:, :, i * s:i * s + kh, j * s:j * s + kw]     # (N, C, kh, kw)
            y[:, :, i, j] = np.einsum("nckl,ockl->no", patch, W) + b

Each output pixel is a product of one patch with every filter. Written as one matrix
product ("im2col"): the patches of an image, flattened to C·kh·kw numbers, are the columns
of ``cols`` (N, C·kh·kw, OH·OW), taken from the zero-padded input by ``_patches`` (one
vectorized copy per kernel offset (ki, kj): that entry of every patch at once); then
``y = W.reshape(O, -1) @ cols + b``, one matrix product per image. Backward, by the chain rule
through that product: ``dW = sum over images of dy @ cols.T``, ``db = sum of dy``,
``dcols = W.T @ dy``, and dx adds each patch's gradient back where the patch was taken
(``_add_patches``, again one step per kernel offset; patches overlap when the stride is
smaller than the kernel, so their gradients add up).

Pooling takes the same patches (windows) from the input: max pooling keeps each window's
largest value (the first one on ties, as PyTorch does) and sends the gradient to it;
average pooling takes the mean and spreads the gradient evenly.

Each layer is a functional pair ``*_forward(...) -> (y, cache)``, ``*_backward(dy, cache)``
and a class with the engine's layer interface (``forward(x, training=True)``,
``backward(dy)``, ``params()``, ``grads()``); ``check_input`` as in ``engine.layers``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.checks import as_float_input, check_dy, check_float_dtype, check_positive_int
from engine.layers import init_weights, require_finite


# ---------------------------------------------------------------------------------------------
# Patches: taking them (im2col) and adding gradients back where they were taken.


def _patches(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """Every kernel-sized window of x (N, C, H, W), ``stride`` apart, as an array
    (N, C, kh, kw, OH, OW): entry (ki, kj) of window (i, j) is pixel (i sh + ki, j sw + kj).
    One copy per kernel offset (ki, kj), each taking that entry of all windows at once."""
    (kh, kw), (sh, sw) = kernel, stride
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    patches = np.empty((n, c, kh, kw, oh, ow), x.dtype)
    for ki in range(kh):
        for kj in range(kw):
            patches[:, :, ki, kj] = x[:, :, ki:ki + sh * (oh - 1) + 1:sh,
                                      kj:kj + sw * (ow - 1) + 1:sw]
    return patches


def _add_patches(patches: np.ndarray, shape: tuple[int, ...], stride: tuple[int, int]
                 ) -> np.ndarray:
    """The reverse of ``_patches``: an array of ``shape`` (N, C, H, W) to which every
    window's values ``patches`` (N, C, kh, kw, OH, OW) are added where the window lies
    (windows overlap when the stride is smaller than the kernel)."""
    out = np.zeros(shape, patches.dtype)
    kh, kw, oh, ow = patches.shape[2:]
    sh, sw = stride
    for ki in range(kh):
        for kj in range(kw):
            out[:, :, ki:ki + sh * (oh - 1) + 1:sh, kj:kj + sw * (ow - 1) + 1:sw] += \
                patches[:, :, ki, kj]
    return out


# ---------------------------------------------------------------------------------------------
# Convolution.


@dataclass(slots=True)
class ConvCache:
    """What ``conv2d_backward`` needs: the patches as columns, the filters, the shapes."""

    cols: np.ndarray  # (N, C kh kw, OH OW)
    W: np.ndarray
    has_bias: bool
    x_shape: tuple[int, int, int, int]
    y_shape: tuple[int, int, int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


def conv2d_forward(x, W, b=None, stride=1, padding=0, check: bool = True):
    """``torch.nn.functional.conv2d(x, W, b, stride, padding)``: x (N, C, H, W), W
    (O, C, kh, kw), b (O,) or None; stride and padding an int or a pair. Returns ``(y, cache)``
    with y (N, O, OH, OW), OH = (H + 2 padding - kh) // stride + 1 (likewise OW). ``check``:
    refuse a wrong x (see ``check_images``), W or b."""
    stride, padding = pair("stride", stride, 1), pair("padding", padding, 0)
    if check:
        x = as_float_input("x", x)
        W = as_float_input("W", W, x.dtype)
        if W.ndim != 4:
            raise ValueError(f"W must be a 4-D (O, C, kh, kw) array, got shape {W.shape}")
        require_finite("W", W)
        if b is not None:
            b = as_float_input("b", b, x.dtype)
            if b.shape != W.shape[:1]:
                raise ValueError(f"b must have shape ({W.shape[0]},), got {b.shape}")
            require_finite("b", b)
        check_images("x", x, W.shape[1], W.shape[2:], padding)
    kh, kw = W.shape[2:]
    n, c = x.shape[:2]
    ph, pw = padding
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    patches = _patches(padded, (kh, kw), stride)  # (N, C, kh, kw, OH, OW)
    oh, ow = patches.shape[4:]
    cols = patches.reshape(n, c * kh * kw, oh * ow)
    filters = W.reshape(W.shape[0], -1)  # (O, C kh kw)
    y = np.matmul(filters, cols)  # (N, O, OH OW): one product per image
    if b is not None:
        y += b[:, None]
    y = y.reshape(n, W.shape[0], oh, ow)
    return y, ConvCache(cols, W, b is not None, x.shape, y.shape, stride, padding)


def conv2d_backward(dy, cache: ConvCache, need_dx: bool = True, check: bool = True):
    """Gradients ``(dx, dW, db)`` of a ``conv2d_forward``; ``dx`` is None when not
    ``need_dx`` (the input is the data), ``db`` None without a bias. ``check``: refuse a
    ``dy`` of the wrong shape or holding NaN/inf."""
    W, (n, o, oh, ow) = cache.W, cache.y_shape
    if check:
        dy = check_dy(dy, cache.y_shape)
        require_finite("dy", dy)
    dy_cols = dy.reshape(n, o, oh * ow)
    db = dy_cols.sum(axis=(0, 2)) if cache.has_bias else None
    dW = np.matmul(dy_cols, cache.cols.transpose(0, 2, 1)).sum(axis=0).reshape(W.shape)
    if not need_dx:
        return None, dW, db
    dcols = np.matmul(W.reshape(o, -1).T, dy_cols)  # (N, C kh kw, OH OW)
    _, c, h, w = cache.x_shape
    ph, pw = cache.padding
    patches = dcols.reshape(n, c, *W.shape[2:], oh, ow)
    dx = _add_patches(patches, (n, c, h + 2 * ph, w + 2 * pw), cache.stride)
    return dx[:, :, ph:ph + h, pw:pw + w], dW, db


class Conv2d:
    """2-D convolution with ``torch.nn.Conv2d``'s constructor and semantics: parameters
    ``"W"`` (out_channels, in_channels, kh, kw), PyTorch's weight layout, and ``"b"``
    (out_channels,) when ``bias``. ``W`` is drawn from ``rng`` as ``engine.layers.Linear``
    draws its weights (``init``, ``std``; fan-in in_channels·kh·kw), ``b`` starts at 0.
    ``check_input``: see ``engine.layers``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True,
                 *, rng: np.random.Generator, init: str = "he", std: float | None = None,
                 dtype=np.float64):
        in_channels = check_positive_int("in_channels", in_channels)
        out_channels = check_positive_int("out_channels", out_channels)
        self.kernel_size = pair("kernel_size", kernel_size, 1)
        self.stride = pair("stride", stride, 1)
        self.padding = pair("padding", padding, 0)
        self.dtype = check_float_dtype(dtype)
        fan_in = in_channels * math.prod(self.kernel_size)
        weights = init_weights(rng, fan_in, out_channels, init, std, self.dtype)
        self.W = np.ascontiguousarray(weights.T).reshape(out_channels, in_channels,
                                                         *self.kernel_size)
        self.dW = np.zeros_like(self.W)
        self.b = np.zeros(out_channels, self.dtype) if bias else None
        self.db = np.zeros_like(self.b) if bias else None
        self.check_input = True
        self._cache = None

    @property
    def in_channels(self) -> int:
        return self.W.shape[1]

    @property
    def out_channels(self) -> int:
        return self.W.shape[0]

    def forward(self, x, training: bool = True) -> np.ndarray:
        if self.check_input:
            x = as_float_input("x", x, self.dtype)
        y, self._cache = conv2d_forward(x, self.W, self.b, self.stride, self.padding,
                                        self.check_input)
        return y

    def backward(self, dy, need_dx: bool = True) -> np.ndarray | None:
        """Fill ``grads()`` and return dL/dx (None when ``need_dx`` is False)."""
        if self._cache is None:
            raise RuntimeError("Conv2d.backward called before forward")
        dx, dW, db = conv2d_backward(dy, self._cache, need_dx, self.check_input)
        self.dW[...] = dW
        if self.b is not None:
            self.db[...] = db
        return dx

    def params(self) -> dict[str, np.ndarray]:
        return {"W": self.W} if self.b is None else {"W": self.W, "b": self.b}

    def grads(self) -> dict[str, np.ndarray]:
        return {"W": self.dW} if self.b is None else {"W": self.dW, "b": self.db}


# ---------------------------------------------------------------------------------------------
# Pooling (no padding, windows dropped at the edge as PyTorch's default ceil_mode=False).


def maxpool2d_forward(x, kernel_size, stride=None, check: bool = True):
    """``torch.nn.functional.max_pool2d(x, kernel_size, stride)``: the largest value of each
    window (stride defaults to the kernel size). Cache: which entry of each window it was."""
    kernel, stride = _pool_settings(kernel_size, stride)
    if check:
        x = as_float_input("x", x)
        check_images("x", x, None, kernel)
    patches = _patches(x, kernel, stride)
    n, c, kh, kw, oh, ow = patches.shape
    flat = patches.reshape(n, c, kh * kw, oh, ow)
    argmax = flat.argmax(axis=2)  # the first largest entry, as PyTorch takes
    y = np.take_along_axis(flat, argmax[:, :, None], axis=2)[:, :, 0]
    return y, (argmax, x.shape, kernel, stride)


def maxpool2d_backward(dy, cache) -> np.ndarray:
    """dx of a ``maxpool2d_forward``: each window's dy goes to its largest entry."""
    argmax, x_shape, kernel, stride = cache
    dy = check_dy(dy, argmax.shape)
    offsets = np.arange(kernel[0] * kernel[1]).reshape(kernel)
    # patches[n, c, ki, kj, i, j] = dy[n, c, i, j] where (ki, kj) was the window's maximum
    patches = (argmax[:, :, None, None] == offsets[:, :, None, None]) * dy[:, :, None, None]
    return _add_patches(patches, x_shape, stride)


def avgpool2d_forward(x, kernel_size, stride=None, check: bool = True):
    """``torch.nn.functional.avg_pool2d(x, kernel_size, stride)``: each window's mean."""
    kernel, stride = _pool_settings(kernel_size, stride)
    if check:
        x = as_float_input("x", x)
        check_images("x", x, None, kernel)
    y = _patches(x, kernel, stride).mean(axis=(2, 3))
    return y, (y.shape, x.shape, kernel, stride)


def avgpool2d_backward(dy, cache) -> np.ndarray:
    """dx of an ``avgpool2d_forward``: each window's dy spread evenly over its entries."""
    y_shape, x_shape, kernel, stride = cache
    dy = check_dy(dy, y_shape)
    share = dy / (kernel[0] * kernel[1])
    n, c, oh, ow = y_shape
    patches = np.broadcast_to(share[:, :, None, None], (n, c, *kernel, oh, ow))
    return _add_patches(patches, x_shape, stride)


class _Pool2d:
    """A pooling layer (no parameters) from a functional pair."""

    _forward = None
    _backward = None

    def __init__(self, kernel_size, stride=None):
        self.kernel_size, self.stride = _pool_settings(kernel_size, stride)
        self.check_input = True
        self._cache = None

    def forward(self, x, training: bool = True) -> np.ndarray:
        y, self._cache = type(self)._forward(x, self.kernel_size, self.stride,
                                             self.check_input)
        return y

    def backward(self, dy) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return type(self)._backward(dy, self._cache)

    def params(self) -> dict[str, np.ndarray]:
        return {}

    def grads(self) -> dict[str, np.ndarray]:
        return {}


class MaxPool2d(_Pool2d):
    """``torch.nn.MaxPool2d(kernel_size, stride=None)``: stride defaults to the kernel size."""

    _forward = staticmethod(maxpool2d_forward)
    _backward = staticmethod(maxpool2d_backward)


class AvgPool2d(_Pool2d):
    """``torch.nn.AvgPool2d(kernel_size, stride=None)``: stride defaults to the kernel size."""

    _forward = staticmethod(avgpool2d_forward)
    _backward = staticmethod(avgpool2d_backward)


class Flatten:
    """``torch.nn.Flatten()``: (N, *) -> (N, product of the rest), e.g. from images to a
    ``Linear`` layer; backward restores the shape."""

    def __init__(self):
        self.check_input = True
        self._shape = None

    def forward(self, x, training: bool = True) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 1:
            raise ValueError(f"x must have a batch axis, got shape {x.shape}")
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy) -> np.ndarray:
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        dy = check_dy(dy, (self._shape[0], math.prod(self._shape[1:])))
        return dy.reshape(self._shape)

    def params(self) -> dict[str, np.ndarray]:
        return {}

    def grads(self) -> dict[str, np.ndarray]:
        return {}


# ---------------------------------------------------------------------------------------------
# Validation: every refusal names the parameter at fault.


def pair(name: str, value, low: int) -> tuple[int, int]:
    """An int or a pair of ints, each >= ``low``, as a pair (PyTorch's ``_pair``)."""
    values = (value, value) if isinstance(value, (int, np.integer)) else value
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                               or v < low for v in values):
        raise ValueError(f"{name} must be an int >= {low} or a pair of them, got {value!r}")
    return int(values[0]), int(values[1])


def _pool_settings(kernel_size, stride) -> tuple[tuple[int, int], tuple[int, int]]:
    kernel = pair("kernel_size", kernel_size, 1)
    return kernel, kernel if stride is None else pair("stride", stride, 1)


def check_images(name: str, x: np.ndarray, channels: int | None, kernel: tuple[int, int],
                 padding: tuple[int, int] = (0, 0)) -> None:
    """Refuse unless ``x`` is a finite (N, C, H, W) array, N >= 1, with ``channels``
    channels (any if None), at least as large as ``kernel`` once padded."""
    if x.ndim != 4 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a 4-D (N, C, H, W) array with N >= 1, got shape "
                         f"{x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} has {x.shape[1]} channels (axis 1) but in_channels is "
                         f"{channels}")
    for axis, size, k, p in zip(("height", "width"), x.shape[2:], kernel, padding):
        if size + 2 * p < k:
            raise ValueError(f"{name}'s {axis} {size} (padded by {p}) is smaller than the "
                             f"kernel_size {k}")
    require_finite(name, x)

