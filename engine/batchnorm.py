"""Batch normalization over (N, C) arrays: functional forward/backward pairs and thin layer classes.

Three normalizations share one core:

- batch norm (Ioffe & Szegedy 2015): ``batchnorm_forward`` / ``batchnorm_backward`` and
  ``BatchNorm1d``, which follows ``torch.nn.BatchNorm1d`` exactly;
- Batch Renormalization (Ioffe 2017, arXiv 1702.03275): ``batchrenorm_forward`` /
  ``batchrenorm_backward``, ``BatchRenorm1d`` and ``renorm_schedule``;
- the naive variant that normalizes with running averages during training and ignores their
  dependence on the inputs in the gradient: ``running_average_batchnorm_forward`` /
  ``running_average_batchnorm_backward`` and ``RunningAverageBatchNorm1d``.

Each forward returns ``(y, cache)``; each backward takes ``(dy, cache)`` and returns
``(dx, dgamma, dbeta)`` (``dgamma``/``dbeta`` are None without affine parameters).

In plain numpy, batch norm's training-mode pass over m rows is::

    mean, var = x.mean(axis=0), x.var(axis=0)  # var biased
    xhat = (x - mean) / np.sqrt(var + eps)
    y = gamma * xhat + beta
    dbeta, dgamma = dy.sum(axis=0), (dy * xhat).sum(axis=0)
    dx = gamma / np.sqrt(var + eps) * (dy - dbeta / m - xhat * dgamma / m)

The file reads top down: the three functional pairs, the core they share (these formulas,
arranged to make few passes over the arrays, and the derivation of dx), the layer classes,
and last the validation of arguments.

Speed (``engine.speed``): a (256, 1024) array is 1-2 MB, and every fresh array of that size
costs page faults. The forward functions therefore accept a ``Workspace`` whose work arrays
are reused across calls of the same shape and dtype; the classes pass their own. Outputs
``y`` and ``dx`` are always fresh arrays, so callers may keep them. A cache refers to the
workspace's arrays and is valid until the next forward call with the same workspace. Column
sums are ``engine.speed.column_sums`` (one BLAS product) and the core works in place, each
step under the formula it computes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from engine.speed import Workspace, all_finite, column_dots, column_sums


# ---------------------------------------------------------------------------------------------
# Batch norm.


def batchnorm_forward(x, gamma, beta, eps, mean=None, var=None, workspace: Workspace | None = None):
    """Batch norm of an (N, C) array: ``y = gamma * (x - mean) / sqrt(var + eps) + beta``.

    Training mode (``mean`` and ``var`` None): the batch's mean and BIASED variance, and the
    gradient flows through them. Eval mode: the given statistics, treated as constants.
    ``gamma``/``beta`` may be None (no affine parameters). Returns ``(y, cache)``; the cache
    holds the batch statistics as ``cache.mean``/``cache.var``.
    """
    eps = _check_eps(eps)
    if (mean is None) != (var is None):
        raise ValueError("mean and var must both be given (eval mode) or both be None (training)")
    training = mean is None
    x = _check_batch(x, None, batch_stats=training)
    n_features, dtype = x.shape[1], x.dtype
    gamma, beta = _check_affine(gamma, beta, n_features, dtype)
    if not training:
        mean = _check_vector("mean", mean, n_features, dtype)
        var = _check_vector("var", var, n_features, dtype)
        if (var < 0).any():
            raise ValueError(f"var must be >= 0, got {var.min()!r}")
    ws = workspace if workspace is not None else Workspace()
    return _batchnorm(x, gamma, beta, eps, mean, var, ws)


def _batchnorm(x, gamma, beta, eps, mean, var, ws, check: bool = True):
    """``batchnorm_forward`` of checked arguments; ``check`` refuses NaN/inf in x."""
    training = mean is None
    if training:
        mean, var, centered = _batch_moments(x, ws, check)
    else:
        _column_sums("x", x, check)
        centered = _centered(x, mean, ws)
    return _normalize(centered, mean, var, _inv_std(var, eps), gamma, beta, None, None,
                      training)


def batchnorm_backward(dy, cache: NormCache):
    """Gradients ``(dx, dgamma, dbeta)`` of a ``batchnorm_forward`` given ``dy = dL/dy``."""
    return _backward(dy, cache)


# ---------------------------------------------------------------------------------------------
# Batch Renormalization.


def batchrenorm_forward(x, gamma, beta, eps, running_mean, running_std, r_max, d_max, momentum,
                        training=True, workspace: Workspace | None = None):
    """Batch Renormalization (Ioffe 2017, Algorithm 1) of an (N, C) array.

    Training: ``y = gamma * ((x - mu_B) / sigma_B * r + d) + beta`` with
    ``sigma_B = sqrt(var_B + eps)`` (biased variance), ``r = clip(sigma_B / sigma, 1/r_max, r_max)``
    and ``d = clip((mu_B - mu) / sigma, -d_max, d_max)`` from the moving averages ``mu``
    (``running_mean``) and ``sigma`` (``running_std``), which are then updated IN PLACE, as the
    paper does, after the output is computed: ``mu += momentum (mu_B - mu)``,
    ``sigma += momentum (sigma_B - sigma)``. r and d are constants for backprop.
    Eval: ``y = gamma * (x - mu) / sigma + beta``.
    With r_max = 1 and d_max = 0 training mode is exactly batch norm.
    """
    eps = _check_eps(eps)
    r_max, d_max = _check_r_max(r_max), _check_d_max(d_max)
    momentum = _check_momentum(momentum)
    x = _check_batch(x, None, batch_stats=training)
    n_features, dtype = x.shape[1], x.dtype
    gamma = None if gamma is None else _check_vector("gamma", gamma, n_features, dtype)
    beta = None if beta is None else _check_vector("beta", beta, n_features, dtype)
    mu = _check_vector("running_mean", running_mean, n_features, dtype)
    sigma = _check_vector("running_std", running_std, n_features, dtype)
    if (sigma <= 0).any():
        raise ValueError(f"running_std must be > 0, got {sigma.min()!r}")
    if training and (running_mean is not mu or running_std is not sigma):
        raise ValueError("running_mean and running_std must be arrays of x's dtype "
                         "(they are updated in place)")
    ws = workspace if workspace is not None else Workspace()
    if not training:
        _column_sums("x", x, check=True)
        centered = _centered(x, mu, ws)
        return _normalize(centered, mu.copy(), sigma * sigma - eps, 1.0 / sigma, gamma, beta,
                          None, None, False)
    mean, var, centered = _batch_moments(x, ws)
    inv_std = _inv_std(var, eps)
    sigma_batch = 1.0 / inv_std
    r = np.clip(sigma_batch / sigma, 1.0 / r_max, r_max)
    d = np.clip((mean - mu) / sigma, -d_max, d_max)
    result = _normalize(centered, mean, var, inv_std, gamma, beta, r, d, True)
    update_running_average(running_mean, mean, momentum)
    update_running_average(running_std, sigma_batch, momentum)
    return result


def batchrenorm_backward(dy, cache: NormCache):
    """Gradients ``(dx, dgamma, dbeta)`` of a ``batchrenorm_forward``; r and d are constants."""
    return _backward(dy, cache)


def renorm_schedule(step: int, warmup_steps: int = 5000, r_max_steps: int = 40000,
                    d_max_steps: int = 25000, r_max_final: float = 3.0,
                    d_max_final: float = 5.0) -> tuple[float, float]:
    """``(r_max, d_max)`` at training ``step``, following Ioffe (2017, Section 4): plain batch
    norm (r_max = 1, d_max = 0) for ``warmup_steps``, then linear ramps reaching
    ``r_max_final`` at ``r_max_steps`` and ``d_max_final`` at ``d_max_steps``, constant after.
    The defaults are the paper's (5k, 40k, 25k steps; 3 and 5)."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"step must be an int >= 0, got {step!r}")
    if not 0 <= warmup_steps < min(r_max_steps, d_max_steps):
        raise ValueError(
            f"warmup_steps must be >= 0 and below r_max_steps ({r_max_steps}) and "
            f"d_max_steps ({d_max_steps}), got {warmup_steps!r}"
        )
    _check_r_max(r_max_final)
    _check_d_max(d_max_final)

    def ramp(end: int) -> float:
        return min(max((step - warmup_steps) / (end - warmup_steps), 0.0), 1.0)

    return (1.0 + (r_max_final - 1.0) * ramp(r_max_steps), d_max_final * ramp(d_max_steps))


# ---------------------------------------------------------------------------------------------
# The naive running-average variant.


def running_average_batchnorm_forward(x, gamma, beta, eps, running_mean, running_var, momentum,
                                      training=True, workspace: Workspace | None = None):
    """The naive variant: normalize with the running averages, even in training.

    ``y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta`` with the averages as
    they were BEFORE this batch; in training they are then updated IN PLACE from the batch
    (mean and unbiased variance, as ``BatchNorm1d`` does). So this step's output depends on x
    only through the affine map, and the gradient ``dx = dy * gamma / sqrt(running_var + eps)``
    is exact for this step; what it ignores is that the averages follow x over later steps,
    which is how the bias blow-up of Ioffe & Szegedy (2015, Section 2) arises.
    """
    eps = _check_eps(eps)
    momentum = _check_momentum(momentum)
    x = _check_batch(x, None, batch_stats=training)
    n_features, dtype = x.shape[1], x.dtype
    mean = _check_vector("running_mean", running_mean, n_features, dtype)
    var = _check_vector("running_var", running_var, n_features, dtype)
    if (var < 0).any():
        raise ValueError(f"running_var must be >= 0, got {var.min()!r}")
    if training and (running_mean is not mean or running_var is not var):
        raise ValueError("running_mean and running_var must be arrays of x's dtype "
                         "(they are updated in place)")
    ws = workspace if workspace is not None else Workspace()
    if training:
        batch_mean, batch_var, _ = _batch_moments(x, ws)
    y, cache = batchnorm_forward(x, gamma, beta, eps, mean.copy(), var.copy(), ws)
    if training:
        n = x.shape[0]
        update_running_average(running_mean, batch_mean, momentum)
        update_running_average(running_var, batch_var, momentum, n / (n - 1))  # unbiased
    return y, cache


def running_average_batchnorm_backward(dy, cache: NormCache):
    """Gradients ``(dx, dgamma, dbeta)`` of the naive variant: the averages are constants."""
    return _backward(dy, cache)


# ---------------------------------------------------------------------------------------------
# The shared core: the formulas of all three.


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~10 us per call
class NormCache:
    """What a backward pass needs from its forward pass.

    The output was ``y = xhat * (gamma * r) + (gamma * d + beta)`` with
    ``xhat = (x - mean) * inv_std``; batch norm has ``r = 1, d = 0``. The cache keeps
    ``x - mean`` rather than xhat: scaling it would cost a pass over the array, and every
    use of xhat is a column sum or a per-column scaling anyway.
    """

    centered: np.ndarray  # (N, C) x - mean, lives in the workspace
    inv_std: np.ndarray  # (C,) 1 / sqrt(var + eps)
    scale: np.ndarray  # (C,) gamma * r * inv_std, the factor from x - mean to the output
    gamma: np.ndarray | None  # None: no affine parameters
    r: np.ndarray | None  # Batch Renorm's correction (constant in backprop); None means 1
    d: np.ndarray | None  # None means 0
    batch_stats: bool  # mean and var were computed from x, so the gradient flows through them
    mean: np.ndarray  # (C,) the statistics used (the batch's when batch_stats)
    var: np.ndarray  # (C,) biased


def _centered(x: np.ndarray, mean: np.ndarray, ws: Workspace) -> np.ndarray:
    """x - mean in the workspace's "centered" array."""
    centered = ws.array("centered", x.shape, x.dtype)
    np.subtract(x, mean, out=centered)
    return centered


def _batch_moments(x: np.ndarray, ws: Workspace, check: bool = True
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batch mean, biased variance, and x - mean (in the workspace); ``check`` refuses NaN/inf
    in x. A variance that overflows is refused either way: it would silently zero a column.

    Two passes (mean, then squared deviations) rather than E[x^2] - E[x]^2, which loses
    precision when |mean| >> std."""
    n = x.shape[0]
    mean = _column_sums("x", x, check)
    mean /= n
    centered = _centered(x, mean, ws)
    var = column_dots(centered, centered)
    var /= n
    if not all_finite(var):
        raise ValueError(f"x has NaN/inf or values so large that their variance overflows "
                         f"in {x.dtype} (column {_first_bad(var)})")
    return mean, var, centered


def _inv_std(var: np.ndarray, eps: float) -> np.ndarray:
    inv_std = var + eps
    np.sqrt(inv_std, out=inv_std)
    np.reciprocal(inv_std, out=inv_std)
    return inv_std


def _normalize(centered, mean, var, inv_std, gamma, beta, r, d, batch_stats):
    """Finish a forward pass from ``centered`` = x - mean: y = gamma * (xhat r + d) + beta,
    i.e. y = centered * (gamma r inv_std) + (gamma d + beta), as a fresh array."""
    scale = inv_std if gamma is None else inv_std * gamma
    if r is not None:
        scale = scale * r
    shift = None if d is None else (d if gamma is None else gamma * d)
    if beta is not None:
        shift = beta if shift is None else shift + beta
    y = np.multiply(centered, scale)
    if shift is not None:
        y += shift
    return y, NormCache(centered, inv_std, scale, gamma, r, d, batch_stats, mean, var)


def _backward(dy, cache: NormCache, check: bool = True):
    """The one backward pass of every normalization here; ``check`` refuses a ``dy`` of the
    wrong shape or holding NaN/inf.

    Derivation (per column; m rows, sigma = sqrt(var + eps), xhat = (x - mu) / sigma,
    g = gamma * r the effective scale, dxhat = dy * g): when mu and var come from the batch,
        dvar = sum(dxhat * (x - mu)) * (-1/2) sigma^-3,  dmu = -sum(dxhat) / sigma
        (the dvar * d(var)/d(mu) term vanishes because sum(x - mu) = 0), so
        dx = dxhat / sigma + dvar * 2 (x - mu) / m + dmu / m
           = (1/m) (1/sigma) (m dxhat - sum(dxhat) - xhat sum(dxhat * xhat)).
    With sum(dxhat) = g sum(dy) = g dbeta and sum(dxhat * xhat) = g sum(dy * xhat) this is
        dx = (g / sigma) (dy - dbeta / m - (x - mu) sum(dy * xhat) / (m sigma)).
    When the statistics are constants (eval mode, the naive variant), dx = dy * g / sigma.
    r and d are constants too (Batch Renorm's stop-gradient): dgamma = sum(dy * (xhat r + d)).
    """
    centered, inv_std = cache.centered, cache.inv_std
    if check:
        dy = _as_dtype(dy, centered.dtype)
        if dy.shape != centered.shape:
            raise ValueError(
                f"dy must have the forward output's shape {centered.shape}, got {dy.shape}")
    m = centered.shape[0]

    dbeta = _column_sums("dy", dy, check)
    if cache.batch_stats or cache.gamma is not None:
        sum_dy_xhat = column_dots(dy, centered)
        sum_dy_xhat *= inv_std

    if cache.batch_stats:
        # dx = (g / sigma) * (dy + (x - mu) * p + q) with p = -sum(dy * xhat) / (m sigma) and
        # q = -dbeta / m: four passes, in place in the output, no other (N, C) array.
        dx = np.multiply(centered, inv_std * sum_dy_xhat / -m)
        dx += dy
        dx -= dbeta / m
        dx *= cache.scale
    else:
        dx = np.multiply(dy, cache.scale)

    if cache.gamma is None:
        return dx, None, None
    dgamma = sum_dy_xhat if cache.r is None else sum_dy_xhat * cache.r
    if cache.d is not None:
        dgamma += cache.d * dbeta
    return dx, dgamma, dbeta


def update_running_average(running: np.ndarray, batch_value: np.ndarray, momentum: float,
                           factor: float = 1.0) -> None:
    """running = (1 - momentum) * running + momentum * factor * batch_value, in place."""
    running *= 1.0 - momentum
    running += (momentum * factor) * batch_value


# ---------------------------------------------------------------------------------------------
# Layer objects: forward(x, training) -> y, backward(dy) -> dx, params(), grads().


class _Normalization1d:
    """What the three layers share: parameters, gradients, workspace, last cache.

    ``check_input`` (True unless a caller sets it): refuse an x or dy of the wrong shape or
    holding NaN/inf. A network that guarantees them, because they come from its own checked
    layers, turns it off to save the passes (``engine.network.HiddenBlock``); Batch Renorm's
    and the naive variant's functional cores check x anyway.
    """

    def __init__(self, num_features, eps, momentum, affine, dtype):
        self.num_features = _check_num_features(num_features)
        self.eps = _check_eps(eps)
        self.momentum = _check_momentum(momentum)
        self.affine = bool(affine)
        self.dtype = np.dtype(dtype)
        if not np.issubdtype(self.dtype, np.floating):
            raise ValueError(f"dtype must be a floating type, got {self.dtype}")
        if self.affine:
            self.gamma = np.ones(self.num_features, self.dtype)
            self.beta = np.zeros(self.num_features, self.dtype)
            self.dgamma = np.zeros(self.num_features, self.dtype)
            self.dbeta = np.zeros(self.num_features, self.dtype)
        else:
            self.gamma = self.beta = self.dgamma = self.dbeta = None
        self.num_batches_tracked = 0
        self.check_input = True
        self._workspace = Workspace()
        self._cache: NormCache | None = None

    def _input(self, x, batch_stats: bool) -> np.ndarray:
        return _check_batch(x, self.num_features, batch_stats, dtype=self.dtype)

    def backward(self, dy) -> np.ndarray:
        """dx for the last forward call; fills ``dgamma``/``dbeta`` in place."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        dx, dgamma, dbeta = _backward(dy, self._cache, self.check_input)
        if self.affine:
            self.dgamma[...] = dgamma
            self.dbeta[...] = dbeta
        return dx

    def params(self) -> dict[str, np.ndarray]:
        return {"gamma": self.gamma, "beta": self.beta} if self.affine else {}

    def grads(self) -> dict[str, np.ndarray]:
        return {"gamma": self.dgamma, "beta": self.dbeta} if self.affine else {}

    def store_in(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Keep the parameters and their gradients in the given arrays (the keys and shapes
        of ``params()``), which take the current values; see ``engine.network.MLP``."""
        if not self.affine:
            return
        params["gamma"][...], params["beta"][...] = self.gamma, self.beta
        grads["gamma"][...], grads["beta"][...] = self.dgamma, self.dbeta
        self.gamma, self.beta = params["gamma"], params["beta"]
        self.dgamma, self.dbeta = grads["gamma"], grads["beta"]


class BatchNorm1d(_Normalization1d):
    """Batch norm over (N, C) with ``torch.nn.BatchNorm1d``'s semantics.

    Training: batch mean and biased variance; ``running_mean``/``running_var`` (start 0 and 1)
    move by ``running = (1 - momentum) running + momentum batch`` using the UNBIASED variance.
    Eval: the running statistics, or the batch's when ``track_running_stats`` is False.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float64):
        super().__init__(num_features, eps, momentum, affine, dtype)
        self.track_running_stats = bool(track_running_stats)
        if self.track_running_stats:
            self.running_mean = np.zeros(self.num_features, self.dtype)
            self.running_var = np.ones(self.num_features, self.dtype)
        else:
            self.running_mean = self.running_var = None

    def forward(self, x, training=True) -> np.ndarray:
        batch_stats = training or not self.track_running_stats
        mean, var = (None, None) if batch_stats else (self.running_mean, self.running_var)
        if self.check_input:
            x = self._input(x, batch_stats)
            y, self._cache = batchnorm_forward(x, self.gamma, self.beta, self.eps, mean, var,
                                               self._workspace)
        else:
            y, self._cache = _batchnorm(x, self.gamma, self.beta, self.eps, mean, var,
                                        self._workspace, check=False)
        if training and self.track_running_stats:
            n = x.shape[0]
            update_running_average(self.running_mean, self._cache.mean, self.momentum)
            update_running_average(self.running_var, self._cache.var, self.momentum, n / (n - 1))
            self.num_batches_tracked += 1
        return y


class BatchRenorm1d(_Normalization1d):
    """Batch Renormalization (Ioffe 2017) over (N, C); see ``batchrenorm_forward``.

    Keeps the paper's moving averages ``running_mean`` (mu, starts 0) and ``running_std``
    (sigma = average of sqrt(var_B + eps), starts 1). ``r_max``/``d_max`` are writable
    (e.g. from ``renorm_schedule`` each step); at 1 and 0 training mode is batch norm.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.01, r_max=1.0, d_max=0.0,
                 affine=True, dtype=np.float64):
        super().__init__(num_features, eps, momentum, affine, dtype)
        self.r_max = r_max
        self.d_max = d_max
        self.running_mean = np.zeros(self.num_features, self.dtype)
        self.running_std = np.ones(self.num_features, self.dtype)

    @property
    def r_max(self) -> float:
        return self._r_max

    @r_max.setter
    def r_max(self, value: float) -> None:
        self._r_max = _check_r_max(value)

    @property
    def d_max(self) -> float:
        return self._d_max

    @d_max.setter
    def d_max(self, value: float) -> None:
        self._d_max = _check_d_max(value)

    def forward(self, x, training=True) -> np.ndarray:
        x = self._input(x, batch_stats=training)
        y, self._cache = batchrenorm_forward(
            x, self.gamma, self.beta, self.eps, self.running_mean, self.running_std,
            self.r_max, self.d_max, self.momentum, training, self._workspace)
        if training:
            self.num_batches_tracked += 1
        return y


class RunningAverageBatchNorm1d(_Normalization1d):
    """The naive variant (see ``running_average_batchnorm_forward``): normalizes with the
    running averages in training too, updating them from each batch after normalizing it,
    and backpropagates as if they did not depend on the inputs. Kept faithful on purpose: it
    lets a bias grow without bound while the loss stays put (Ioffe & Szegedy 2015, Sec. 2)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float64):
        super().__init__(num_features, eps, momentum, affine, dtype)
        self.running_mean = np.zeros(self.num_features, self.dtype)
        self.running_var = np.ones(self.num_features, self.dtype)

    def forward(self, x, training=True) -> np.ndarray:
        x = self._input(x, batch_stats=training)
        y, self._cache = running_average_batchnorm_forward(
            x, self.gamma, self.beta, self.eps, self.running_mean, self.running_var,
            self.momentum, training, self._workspace)
        if training:
            self.num_batches_tracked += 1
        return y


# ---------------------------------------------------------------------------------------------
# Validation: every refusal names the parameter at fault.


def _check_eps(eps: float) -> float:
    if not (isinstance(eps, (int, float, np.floating)) and math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    return float(eps)


def _check_momentum(momentum: float) -> float:
    if not (isinstance(momentum, (int, float, np.floating)) and 0 <= momentum <= 1):
        raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
    return float(momentum)


def _check_num_features(num_features: int) -> int:
    if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
            or num_features < 1:
        raise ValueError(f"num_features must be a positive int, got {num_features!r}")
    return int(num_features)


def _check_batch(x, num_features: int | None, batch_stats: bool, dtype=None) -> np.ndarray:
    """``x`` as a floating (N, C) array; refuses wrong shapes and, when statistics come from
    the batch, batches of one row (their variance is 0, so the output would be all beta)."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise ValueError(f"x must hold real numbers, got dtype {x.dtype}")
    x = _as_dtype(x, dtype if dtype is not None or x.dtype.kind == "f" else np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be a 2-D (N, C) array, got shape {x.shape}")
    if num_features is not None and x.shape[1] != num_features:
        raise ValueError(
            f"x has {x.shape[1]} features (columns) but num_features is {num_features}"
        )
    if x.shape[0] == 0:
        raise ValueError("x has no rows (batch size 0)")
    if batch_stats and x.shape[0] < 2:
        raise ValueError(
            "x has batch size 1 in training mode: batch statistics need at least 2 rows"
        )
    return x


def _as_dtype(a, dtype) -> np.ndarray:
    """``a`` as an array of ``dtype``, never copied when it already is one (np.asarray copies
    when handed an equal but distinct dtype object, e.g. a deep-copied one)."""
    a = np.asarray(a)
    return a if dtype is None or a.dtype == dtype else a.astype(dtype)


def _check_vector(name: str, v, size: int, dtype: np.dtype) -> np.ndarray:
    v = _as_dtype(v, dtype)
    if v.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{name} contains NaN or inf at index {_first_bad(v)}")
    return v


def _first_bad(v: np.ndarray) -> int:
    return int(np.flatnonzero(~np.isfinite(v))[0])


def _column_sums(name: str, a: np.ndarray, check: bool) -> np.ndarray:
    """Column sums of ``a``; when ``check``, refusing NaN/inf: a column sum is finite iff the
    column holds no NaN/inf (and does not overflow), so the check costs O(C), not another
    pass over ``a``."""
    if not check:
        return column_sums(a)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, by name
        sums = column_sums(a)
    if not all_finite(sums):
        raise ValueError(
            f"{name} contains NaN or inf (or values so large they overflow) "
            f"in column {_first_bad(sums)}"
        )
    return sums


def _check_affine(gamma, beta, n_features: int, dtype: np.dtype):
    return (None if gamma is None else _check_vector("gamma", gamma, n_features, dtype),
            None if beta is None else _check_vector("beta", beta, n_features, dtype))


def _check_r_max(r_max: float) -> float:
    if not (isinstance(r_max, (int, float, np.floating)) and 1 <= r_max < math.inf):
        raise ValueError(f"r_max must be a finite number >= 1, got {r_max!r}")
    return float(r_max)


def _check_d_max(d_max: float) -> float:
    if not (isinstance(d_max, (int, float, np.floating)) and 0 <= d_max < math.inf):
        raise ValueError(f"d_max must be a finite number >= 0, got {d_max!r}")
    return float(d_max)
