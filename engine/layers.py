"""Fully connected layer, nonlinearities and inverted dropout.

Each layer is a functional pair, ``*_forward(...) -> (out, cache)`` and
``*_backward(dout, cache) -> grads``, with a thin class on top that follows the engine's
layer interface: ``forward(x, training=True)``, ``backward(dy)``, ``params()``, ``grads()``.

Shapes: inputs are ``(batch, features)``. A ``Linear`` layer keeps its gradient arrays
between steps and overwrites them in ``backward``, so ``grads()`` always returns the same
arrays (an optimizer may hold on to them).

The forward functions and the layers refuse NaN/inf in their input. The functions'
``check=False`` and the classes' ``check_input = False`` skip that (the classes also skip
their shape checks) for callers that guarantee it, such as a network whose first layer
checked the data: each check is a pass over the array. The checks are at the end of the file;
column sums and the finiteness test come from ``engine.speed``.
"""
from __future__ import annotations

import math

import numpy as np

from engine.speed import all_finite, column_sums

INITS = ("he", "xavier", "glorot", "lecun", "gaussian")
DEFAULT_GAUSSIAN_STD = 0.01


def init_weights(rng: np.random.Generator, in_features: int, out_features: int, init: str = "he",
                 std: float | None = None, dtype=np.float64) -> np.ndarray:
    """A ``(in_features, out_features)`` weight matrix drawn from a zero-mean Gaussian.

    Standard deviations: ``"he"`` sqrt(2/fan_in) (for ReLU); ``"xavier"`` = ``"glorot"``
    sqrt(2/(fan_in+fan_out)); ``"lecun"`` sqrt(1/fan_in); ``"gaussian"`` the given ``std``
    (default 0.01) -- Ioffe & Szegedy's MNIST network has "weights initialized to small random
    Gaussian values" without a number, so the value is a parameter.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    if std is not None and init != "gaussian":
        raise ValueError(f"std is only used by init='gaussian', not init={init!r}")
    if init == "he":
        std = math.sqrt(2.0 / in_features)
    elif init in ("xavier", "glorot"):
        std = math.sqrt(2.0 / (in_features + out_features))
    elif init == "lecun":
        std = math.sqrt(1.0 / in_features)
    else:
        std = DEFAULT_GAUSSIAN_STD if std is None else float(std)
        if not (math.isfinite(std) and std > 0):
            raise ValueError(f"std must be a positive finite number, got {std!r}")
    return (rng.standard_normal((in_features, out_features)) * std).astype(dtype, copy=False)


# --- Linear: y = x W + b -------------------------------------------------------------------

def linear_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, check: bool = True):
    """``y = x @ W + b`` for ``x`` of shape (batch, in) and ``W`` (in, out); cache ``(x, W)``."""
    if check:
        require_2d("x", x, W.shape[0])
        require_finite("x", x)
    y = np.matmul(x, W)
    y += b
    return y, (x, W)


def linear_backward(dy: np.ndarray, cache, need_dx: bool = True, dW_out: np.ndarray | None = None,
                    db_out: np.ndarray | None = None, check: bool = True):
    """Gradients ``(dx, dW, db)`` of ``y = x W + b``; ``dx`` is None when not ``need_dx``.
    ``dW`` and ``db`` are written into ``dW_out`` and ``db_out`` when given (a layer's own
    gradient arrays, which then need no allocation). ``check``: refuse a ``dy`` of the wrong
    shape."""
    x, W = cache
    if check and dy.shape != (x.shape[0], W.shape[1]):
        raise ValueError(f"dy must have shape {(x.shape[0], W.shape[1])}, got {dy.shape}")
    dW = np.matmul(x.T, dy, out=dW_out)
    db = column_sums(dy, out=db_out)
    dx = np.matmul(dy, W.T) if need_dx else None
    return dx, dW, db


class Linear:
    """Fully connected layer with parameters ``"W"`` (in_features, out_features) and ``"b"``.

    ``init`` chooses the Gaussian initialization of ``W`` (see ``init_weights``); ``b`` starts at 0.
    ``check_input``: see the module docstring.
    """

    def __init__(self, in_features: int, out_features: int, rng: np.random.Generator,
                 init: str = "he", std: float | None = None, dtype=np.float64):
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.W = init_weights(rng, in_features, out_features, init, std, self.dtype)
        self.b = np.zeros(out_features, dtype=self.dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.check_input = True
        self._cache = None

    @property
    def in_features(self) -> int:
        return self.W.shape[0]

    @property
    def out_features(self) -> int:
        return self.W.shape[1]

    def forward(self, x, training: bool = True) -> np.ndarray:
        if self.check_input:
            x = as_float_array("x", x, self.dtype)
        y, self._cache = linear_forward(x, self.W, self.b, self.check_input)
        return y

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """Fill ``grads()`` and return dL/dx (None when ``need_dx`` is False, which saves a
        matrix product when x is the network's input)."""
        if self._cache is None:
            raise RuntimeError("Linear.backward called before forward")
        dx, _, _ = linear_backward(dy, self._cache, need_dx, self.dW, self.db, self.check_input)
        return dx

    def params(self) -> dict[str, np.ndarray]:
        return {"W": self.W, "b": self.b}

    def grads(self) -> dict[str, np.ndarray]:
        return {"W": self.dW, "b": self.db}

    def store_in(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Keep the parameters and their gradients in the given arrays (the keys and shapes
        of ``params()``), which take the current values; see ``engine.network.MLP``."""
        params["W"][...], params["b"][...] = self.W, self.b
        grads["W"][...], grads["b"][...] = self.dW, self.db
        self.W, self.b, self.dW, self.db = params["W"], params["b"], grads["W"], grads["b"]


# --- Nonlinearities --------------------------------------------------------------------------

def sigmoid_forward(x: np.ndarray, check: bool = True):
    """``1 / (1 + exp(-x))``, computed as ``(1 + tanh(x / 2)) / 2``: the same function, but
    it cannot overflow and takes four in-place passes; cache is the output."""
    if check:
        require_finite("x", x)
    y = np.multiply(x, 0.5)
    np.tanh(y, out=y)
    y *= 0.5
    y += 0.5
    return y, y


def sigmoid_backward(dy: np.ndarray, cache) -> np.ndarray:
    y = cache
    dx = np.subtract(1.0, y)
    dx *= y
    dx *= dy
    return dx


def tanh_forward(x: np.ndarray, check: bool = True):
    if check:
        require_finite("x", x)
    y = np.tanh(x)
    return y, y


def tanh_backward(dy: np.ndarray, cache) -> np.ndarray:
    y = cache
    return dy * (1.0 - y * y)


def relu_forward(x: np.ndarray, check: bool = True):
    if check:
        require_finite("x", x)
    positive = x > 0
    return x * positive, positive


def relu_backward(dy: np.ndarray, cache) -> np.ndarray:
    positive = cache
    return dy * positive


class _Activation:
    """A parameter-free elementwise layer built from a functional pair. ``check_input``: see
    the module docstring."""

    _forward = None
    _backward = None

    def __init__(self):
        self._cache = None
        self.check_input = True

    def forward(self, x, training: bool = True) -> np.ndarray:
        if self.check_input:
            x = np.asarray(x)
            require_2d("x", x)
        y, self._cache = type(self)._forward(x, self.check_input)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        if self.check_input and dy.shape != self._cache.shape:
            raise ValueError(f"dy must have shape {self._cache.shape}, got {dy.shape}")
        return type(self)._backward(dy, self._cache)

    def params(self) -> dict[str, np.ndarray]:
        return {}

    def grads(self) -> dict[str, np.ndarray]:
        return {}


class Sigmoid(_Activation):
    _forward = staticmethod(sigmoid_forward)
    _backward = staticmethod(sigmoid_backward)


class Tanh(_Activation):
    _forward = staticmethod(tanh_forward)
    _backward = staticmethod(tanh_backward)


class ReLU(_Activation):
    _forward = staticmethod(relu_forward)
    _backward = staticmethod(relu_backward)


ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


# --- Inverted dropout ------------------------------------------------------------------------

def check_dropout_p(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
        raise ValueError(f"p must be a number in [0, 1), got {p!r}")
    p = float(p)
    if not (0.0 <= p < 1.0):
        raise ValueError(f"p must be in [0, 1), got {p!r}")
    return p


def dropout_mask(rng: np.random.Generator, shape, p: float, dtype=np.float64) -> np.ndarray:
    """Keep each unit with probability ``1 - p``; kept units are scaled by ``1 / (1 - p)``
    so that the expectation of the output equals the input ("inverted" dropout)."""
    p = check_dropout_p(p)
    keep = rng.random(shape, dtype=np.dtype(dtype)) >= p
    return keep * np.asarray(1.0 / (1.0 - p), dtype=dtype)


def dropout_forward(x: np.ndarray, mask: np.ndarray, check: bool = True):
    """``x * mask`` for a mask from ``dropout_mask``; cache is the mask."""
    if check:
        require_finite("x", x)
    if mask.shape != x.shape:
        raise ValueError(f"mask must have the shape of x {x.shape}, got {mask.shape}")
    return x * mask, mask


def dropout_backward(dy: np.ndarray, cache) -> np.ndarray:
    mask = cache
    return dy * mask


class Dropout:
    """Inverted dropout with drop probability ``p``; the identity when ``training`` is False.

    Masks are drawn from ``rng``, so a seeded generator gives the same masks every run.
    ``check_input``: see the module docstring.
    """

    def __init__(self, p: float, rng: np.random.Generator):
        self.p = check_dropout_p(p)
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.rng = rng
        self.check_input = True
        self._mask = None

    def forward(self, x, training: bool = True) -> np.ndarray:
        if self.check_input:
            x = np.asarray(x)
            if x.dtype.kind != "f":
                x = as_float_array("x", x, np.float64)
            require_2d("x", x)
        if not training or self.p == 0.0:
            if self.check_input:
                require_finite("x", x)
            self._mask = None
            return x
        y, self._mask = dropout_forward(x, dropout_mask(self.rng, x.shape, self.p, x.dtype),
                                        self.check_input)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._mask is None:  # identity in the last forward
            return dy
        if self.check_input and dy.shape != self._mask.shape:
            raise ValueError(f"dy must have shape {self._mask.shape}, got {dy.shape}")
        return dropout_backward(dy, self._mask)

    def params(self) -> dict[str, np.ndarray]:
        return {}

    def grads(self) -> dict[str, np.ndarray]:
        return {}


# --- Input checks ----------------------------------------------------------------------------

def require_finite(name: str, a: np.ndarray) -> None:
    """Raise ValueError naming ``name`` if the floating-point array ``a`` holds a NaN or an
    infinity."""
    if not all_finite(a):
        raise ValueError(f"{name} contains NaN or infinite values")


def require_2d(name: str, a: np.ndarray, features: int | None = None) -> None:
    """Raise ValueError unless ``a`` is ``(batch, features)`` with a non-empty batch."""
    if a.ndim != 2 or a.shape[0] == 0:
        raise ValueError(f"{name} must have shape (batch, features) with batch >= 1, got {a.shape}")
    if features is not None and a.shape[1] != features:
        raise ValueError(f"{name} must have {features} features (columns), got shape {a.shape}")


def as_float_array(name: str, x, dtype) -> np.ndarray:
    """``x`` as an array of ``dtype`` (no copy when it already is one); refuses non-numbers."""
    try:
        return np.asarray(x, dtype=dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__}") from None
