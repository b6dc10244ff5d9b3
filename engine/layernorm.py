"""Per-sample normalizations: layer norm and group norm, with instance norm as a special case.

Batch norm normalizes each feature over the batch. These normalize each SAMPLE over a set of
its own values, so a sample's output does not depend on the rest of the batch, training and
eval mode compute the same thing, and there are no running statistics:

- layer norm (Ba, Kiros & Hinton 2016, arXiv 1607.06450): ``layernorm_forward`` /
  ``layernorm_backward`` and ``LayerNorm``, which follows ``torch.nn.LayerNorm``: the set is
  the trailing ``normalized_shape`` dimensions of x, and gamma, beta have that shape;
- group norm (Wu & He 2018, arXiv 1803.08494): ``groupnorm_forward`` / ``groupnorm_backward``
  and ``GroupNorm``, which follows ``torch.nn.GroupNorm``: x is (N, C, *), the C channels are
  cut into ``num_groups`` groups of consecutive channels, the set is one sample's group (all
  its positions), and gamma, beta are per channel. One group is layer norm over (C, *) with
  per-channel parameters; one channel per group (``GroupNorm(C, C)``) is instance norm
  (Ulyanov et al. 2016, arXiv 1607.08022).

Both view x as ``rows``, a 2-D array with one normalized set per row (layer norm:
``x.reshape(-1, prod(normalized_shape))``; group norm: ``x.reshape(N * num_groups, -1)``),
and then compute, in plain numpy::

    mean, var = rows.mean(axis=1, keepdims=True), rows.var(axis=1, keepdims=True)  # biased
    xhat = (rows - mean) / np.sqrt(var + eps)
    y = gamma * xhat + beta        # gamma, beta broadcast over x's shape, not over the rows
    dbeta, dgamma = sum of dy, sum of dy * xhat, over every axis but the parameters' own
    dxhat = dy * gamma
    dx = (dxhat - dxhat.mean(axis=1, keepdims=True)
          - xhat * (dxhat * xhat).mean(axis=1, keepdims=True)) / np.sqrt(var + eps)

Each forward returns ``(y, cache)``; each backward takes ``(dy, cache)`` and returns
``(dx, dgamma, dbeta)`` (``dgamma``/``dbeta`` are None without affine parameters). The
classes follow the engine's layer interface (see ``engine.batchnorm.BatchNorm1d``).

Speed: as in ``engine.batchnorm``, the work arrays (xhat, dxhat) live in a ``Workspace``
reused across calls of the same shape (the classes pass their own), since fresh arrays of a
few MB cost page faults; ``y`` and ``dx`` are fresh arrays, and a cache is valid until the
next forward call with the same workspace. Sums along rows are BLAS products with a vector
of ones, sums of products ``np.einsum`` calls, neither making a temporary array.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.checks import (as_float_input, check_dy, check_eps, check_float_dtype,
                           check_positive_int)
from engine.layers import require_finite
from engine.speed import Workspace, all_finite, ones

# ---------------------------------------------------------------------------------------------
# Layer norm.


def layernorm_forward(x, normalized_shape, gamma=None, beta=None, eps=1e-5,
                      workspace: Workspace | None = None):
    """Layer norm of x over its trailing ``normalized_shape`` dimensions (an int or a tuple),
    as ``torch.nn.functional.layer_norm``: each sample (each index of the leading dimensions,
    which may be none) is normalized by the mean and biased variance of its own values,
    then ``y = gamma * xhat + beta`` with gamma, beta of shape ``normalized_shape`` (or None).
    """
    shape = check_normalized_shape(normalized_shape)
    eps = check_eps(eps)
    x = as_float_input("x", x)
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"x must have shape (*, {', '.join(map(str, shape))}) to match "
                         f"normalized_shape {shape}, got {x.shape}")
    require_finite("x", x)
    gamma, beta = check_affine(gamma, beta, shape, x.dtype)
    features = math.prod(shape)
    rows = x.reshape(-1, features)
    # The parameters broadcast against the rows: one entry per column.
    view, sum_axes = rows.shape, (0,)
    return _normalize(rows, x.shape, view, sum_axes, gamma, beta, eps, workspace)


def layernorm_backward(dy, cache: RowNormCache):
    """Gradients ``(dx, dgamma, dbeta)`` of a ``layernorm_forward`` given ``dy = dL/dy``."""
    return _backward(dy, cache)


# ---------------------------------------------------------------------------------------------
# Group norm (and instance norm: one channel per group).


def groupnorm_forward(x, num_groups, gamma=None, beta=None, eps=1e-5,
                      workspace: Workspace | None = None):
    """Group norm of x of shape (N, C, *), as ``torch.nn.functional.group_norm``: the C
    channels form ``num_groups`` groups of C / num_groups consecutive channels, each group of
    each sample is normalized by the mean and biased variance of its values (over its channels
    and all positions), then ``y = gamma[c] * xhat + beta[c]`` per channel c (or no affine map
    when gamma, beta are None). ``num_groups = C`` is instance norm."""
    groups = check_positive_int("num_groups", num_groups)
    eps = check_eps(eps)
    x = as_float_input("x", x)
    if x.ndim < 2 or x.size == 0:
        raise ValueError(f"x must have shape (N, C, *) with no dimension 0, got {x.shape}")
    n, channels = x.shape[:2]
    if channels % groups:
        raise ValueError(f"x has {channels} channels, which num_groups = {groups} does not "
                         f"divide")
    require_finite("x", x)
    gamma, beta = check_affine(gamma, beta, (channels,), x.dtype)
    rows = x.reshape(n * groups, -1)
    # The parameters broadcast per channel: x viewed as (N, C, positions), gamma as (C, 1).
    view, sum_axes = (n, channels, rows.size // (n * channels)), (0, 2)
    return _normalize(rows, x.shape, view, sum_axes, gamma, beta, eps, workspace)


def groupnorm_backward(dy, cache: RowNormCache):
    """Gradients ``(dx, dgamma, dbeta)`` of a ``groupnorm_forward`` given ``dy = dL/dy``."""
    return _backward(dy, cache)


# ---------------------------------------------------------------------------------------------
# The shared core: normalize rows, then the affine map over x's own shape.


@dataclass(slots=True)
class RowNormCache:
    """What the backward pass needs: the normalized rows, each row's 1 / sqrt(var + eps), and
    how gamma broadcasts: x viewed as ``view`` meets gamma along the axes not in
    ``sum_axes`` (layer norm: (rows, features) and (0,); group norm: (N, C, positions) and
    (0, 2)), and its gradient sums over ``sum_axes``."""

    xhat: np.ndarray  # (rows, m): (x - mean) / sqrt(var + eps), one normalized set per row
    inv_std: np.ndarray  # (rows,)
    mean: np.ndarray  # (rows,) each set's mean
    var: np.ndarray  # (rows,) each set's biased variance
    gamma: np.ndarray | None  # in its own shape; None: no affine parameters
    x_shape: tuple[int, ...]
    view: tuple[int, ...]
    sum_axes: tuple[int, ...]
    workspace: Workspace  # holds xhat, valid until the next forward call with it

    def in_view(self, param: np.ndarray) -> np.ndarray:
        """``param`` (gamma's or beta's shape) reshaped to broadcast against ``view``."""
        shape = [1] * len(self.view)
        for axis, size in enumerate(self.view):
            if axis not in self.sum_axes:
                shape[axis] = size
        return param.reshape(shape)


def _normalize(rows, x_shape, view, sum_axes, gamma, beta, eps, workspace):
    ws = workspace if workspace is not None else Workspace()
    mean, var, xhat, inv_std = _standardize(rows, eps, ws)
    cache = RowNormCache(xhat, inv_std, mean, var, gamma, x_shape, view, sum_axes, ws)
    xhat_view = xhat.reshape(view)
    if gamma is None:
        y = xhat_view.copy()
    else:
        y = np.multiply(xhat_view, cache.in_view(gamma))
    if beta is not None:
        y += cache.in_view(beta)
    return y.reshape(x_shape), cache


def _standardize(rows: np.ndarray, eps: float, ws: Workspace):
    """Each row's mean, biased variance, xhat = (row - mean) / sqrt(var + eps) (in the
    workspace) and 1 / sqrt(var + eps). Two passes for the moments (mean, then squared
    deviations), as batch norm does; row sums are BLAS products with a vector of ones."""
    m = rows.shape[1]
    mean = _row_sums(rows) / m
    xhat = ws.array("xhat", rows.shape, rows.dtype)
    np.subtract(rows, mean[:, None], out=xhat)
    var = _row_dots(xhat, xhat) / m
    if not all_finite(var):
        bad = int(np.flatnonzero(~np.isfinite(var))[0])
        raise ValueError(f"x has values so large that their variance overflows in "
                         f"{rows.dtype} (normalized set {bad})")
    inv_std = 1.0 / np.sqrt(var + eps)
    xhat *= inv_std[:, None]
    return mean, var, xhat, inv_std


def _backward(dy, cache: RowNormCache):
    """The backward pass of both normalizations.

    Derivation (one row of m values; sigma = sqrt(var + eps), xhat = (x - mu) / sigma,
    dxhat = dL/dxhat = dy * gamma): it is batch norm's, with a row in place of a column
    (see ``engine.batchnorm``'s backward). Through mu and var,
        dx = dxhat / sigma + dvar * 2 (x - mu) / m + dmu / m
    with dvar = -sum(dxhat * xhat) / (2 sigma^2) and dmu = -sum(dxhat) / sigma (the term of
    dvar through mu vanishes since sum(x - mu) = 0), so
        dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sigma.
    gamma and beta act elementwise after the normalization: dgamma = sum(dy * xhat) and
    dbeta = sum(dy) over every axis that a parameter broadcasts along.
    """
    xhat, view = cache.xhat, cache.view
    dy = check_dy(dy, cache.x_shape).astype(xhat.dtype, copy=False)
    require_finite("dy", dy)
    dy_view = dy.reshape(view)
    if cache.gamma is None:
        dgamma = dbeta = None
        dxhat = dy_view.reshape(xhat.shape)
    else:
        letters, kept = _axes_letters(view, cache.sum_axes)
        shape = cache.gamma.shape
        dbeta = np.einsum(f"{letters}->{kept}", dy_view).reshape(shape)
        dgamma = np.einsum(f"{letters},{letters}->{kept}", dy_view,
                           xhat.reshape(view)).reshape(shape)
        dxhat = cache.workspace.array("dxhat", xhat.shape, xhat.dtype)
        np.multiply(dy_view, cache.in_view(cache.gamma), out=dxhat.reshape(view))
    m = xhat.shape[1]
    dx = np.multiply(xhat, (_row_dots(dxhat, xhat) / -m)[:, None])
    dx += dxhat
    dx -= (_row_sums(dxhat) / m)[:, None]
    dx *= cache.inv_std[:, None]
    return dx.reshape(cache.x_shape), dgamma, dbeta


def _row_sums(a: np.ndarray) -> np.ndarray:
    return np.matmul(a, ones(a.shape[1], a.dtype))


def _row_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum(a * b, axis=1) without a temporary."""
    return np.einsum("ij,ij->i", a, b)


def _axes_letters(view: tuple[int, ...], sum_axes: tuple[int, ...]) -> tuple[str, str]:
    """einsum letters for the axes of ``view`` and for those kept after summing over
    ``sum_axes`` (("ijk", "j") for a view of three axes summed over (0, 2))."""
    letters = "ijk"[:len(view)]
    return letters, "".join(letter for axis, letter in enumerate(letters)
                            if axis not in sum_axes)


# ---------------------------------------------------------------------------------------------
# Layer objects: forward(x, training) -> y, backward(dy) -> dx, params(), grads().


class _PerSampleNorm:
    """What the two layers share: parameters of ``param_shape``, their gradients, the last
    cache. ``training`` changes nothing: there are no batch statistics."""

    def __init__(self, param_shape, eps, affine, dtype):
        self.eps = check_eps(eps)
        self.dtype = check_float_dtype(dtype)
        if affine:
            self.gamma = np.ones(param_shape, self.dtype)
            self.beta = np.zeros(param_shape, self.dtype)
            self.dgamma = np.zeros(param_shape, self.dtype)
            self.dbeta = np.zeros(param_shape, self.dtype)
        else:
            self.gamma = self.beta = self.dgamma = self.dbeta = None
        self.check_input = True  # kept for the layer interface; these layers always check
        self._workspace = Workspace()
        self._cache: RowNormCache | None = None

    def backward(self, dy) -> np.ndarray:
        """dx for the last forward call; fills ``dgamma``/``dbeta`` in place."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        dx, dgamma, dbeta = _backward(dy, self._cache)
        if self.gamma is not None:
            self.dgamma[...] = dgamma
            self.dbeta[...] = dbeta
        return dx

    def params(self) -> dict[str, np.ndarray]:
        return {} if self.gamma is None else {"gamma": self.gamma, "beta": self.beta}

    def grads(self) -> dict[str, np.ndarray]:
        return {} if self.gamma is None else {"gamma": self.dgamma, "beta": self.dbeta}


class LayerNorm(_PerSampleNorm):
    """Layer norm with ``torch.nn.LayerNorm``'s semantics: x of shape (*, *normalized_shape),
    each sample normalized over its trailing ``normalized_shape`` values; ``gamma`` (starts
    at 1) and ``beta`` (starts at 0) have shape ``normalized_shape`` when
    ``elementwise_affine``."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, dtype=np.float64):
        self.normalized_shape = check_normalized_shape(normalized_shape)
        self.elementwise_affine = bool(elementwise_affine)
        super().__init__(self.normalized_shape, eps, self.elementwise_affine, dtype)

    def forward(self, x, training=True) -> np.ndarray:
        y, self._cache = layernorm_forward(as_float_input("x", x, self.dtype),
                                           self.normalized_shape, self.gamma, self.beta,
                                           self.eps, self._workspace)
        return y


class GroupNorm(_PerSampleNorm):
    """Group norm with ``torch.nn.GroupNorm``'s semantics: x of shape (N, num_channels, *),
    channels in ``num_groups`` groups of consecutive channels, each group of each sample
    normalized over its values; per-channel ``gamma`` (starts at 1) and ``beta`` (starts at 0)
    when ``affine``. ``GroupNorm(C, C)`` is instance norm, ``GroupNorm(1, C)`` layer norm over
    (C, *) with per-channel parameters."""

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=np.float64):
        self.num_groups = check_positive_int("num_groups", num_groups)
        self.num_channels = check_positive_int("num_channels", num_channels)
        if self.num_channels % self.num_groups:
            raise ValueError(f"num_channels ({self.num_channels}) must be divisible by "
                             f"num_groups ({self.num_groups})")
        self.affine = bool(affine)
        super().__init__((self.num_channels,), eps, self.affine, dtype)

    def forward(self, x, training=True) -> np.ndarray:
        x = as_float_input("x", x, self.dtype)
        if x.ndim >= 2 and x.shape[1] != self.num_channels:
            raise ValueError(f"x has {x.shape[1]} channels (axis 1) but num_channels is "
                             f"{self.num_channels}")
        y, self._cache = groupnorm_forward(x, self.num_groups, self.gamma, self.beta, self.eps,
                                           self._workspace)
        return y


# ---------------------------------------------------------------------------------------------
# Validation: every refusal names the parameter at fault.


def check_normalized_shape(normalized_shape) -> tuple[int, ...]:
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
        else normalized_shape
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    if not shape or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
                        for s in shape):
        raise ValueError(f"normalized_shape must be a positive int or a non-empty tuple of "
                         f"them, got {normalized_shape!r}")
    return tuple(int(s) for s in shape)


def check_affine(gamma, beta, shape: tuple[int, ...], dtype):
    """gamma and beta (each None or an array of ``shape``) as arrays of ``dtype``."""
    if (gamma is None) != (beta is None):
        raise ValueError("gamma and beta must both be given or both be None")
    checked = []
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p is not None:
            p = np.asarray(p, dtype=dtype)
            if p.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {p.shape}")
            require_finite(name, p)
        checked.append(p)
    return tuple(checked)
