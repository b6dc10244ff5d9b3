"""Normalization layers built on batch norm for experiments: ghost batch norm and a jittered norm.

- Ghost batch norm (Hoffer et al. 2017, arXiv 1705.08741): ``ghost_batchnorm_forward`` /
  ``ghost_batchnorm_backward`` and ``GhostBatchNorm1d``. The batch is cut into consecutive
  chunks of ``ghost_batch`` rows and each chunk is normalized with its own statistics, so the
  noise of the statistics is that of a mini-batch of that size.
- A jittered norm (the "noisy" batch norm of Santurkar et al. 2018, Section 2.1):
  ``jitter_forward`` / ``jitter_backward`` and ``JitteredNorm``, which gives a wrapped norm's
  output a fresh random affine map per unit at every training step.

As in ``engine.batchnorm``, each forward returns ``(y, cache)`` and each backward takes
``(dy, cache)``; the classes follow the engine's layer interface.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.batchnorm import (BatchNorm1d, NormCache, Workspace, batchnorm_backward,
                              batchnorm_forward, update_running_average)

# ---------------------------------------------------------------------------------------------
# Ghost batch norm.


@dataclass(slots=True)
class GhostCache:
    """What ``ghost_batchnorm_backward`` needs: the batch-norm cache of the rearranged
    ``(ghost_batch, chunks * C)`` array (see ``ghost_batchnorm_forward``) and the chunk count."""

    columns: NormCache
    chunks: int

    @property
    def chunk_means(self) -> np.ndarray:
        """(chunks, C): each chunk's mean."""
        return self.columns.mean.reshape(self.chunks, -1)

    @property
    def chunk_vars(self) -> np.ndarray:
        """(chunks, C): each chunk's biased variance."""
        return self.columns.var.reshape(self.chunks, -1)


def check_ghost_batch(ghost_batch) -> int:
    if isinstance(ghost_batch, bool) or not isinstance(ghost_batch, (int, np.integer)) \
            or ghost_batch < 2:
        raise ValueError(f"ghost_batch must be an integer >= 2, got {ghost_batch!r}")
    return int(ghost_batch)


def _to_columns(a: np.ndarray, ghost_batch: int, chunks: int) -> np.ndarray:
    # (chunks * g, C) -> (g, chunks * C): each column is one feature of one chunk, so a single
    # call of batch norm normalizes every chunk separately.
    return a.reshape(chunks, ghost_batch, -1).transpose(1, 0, 2).reshape(ghost_batch, -1)


def _from_columns(a: np.ndarray, ghost_batch: int, chunks: int) -> np.ndarray:
    return a.reshape(ghost_batch, chunks, -1).transpose(1, 0, 2).reshape(chunks * ghost_batch, -1)


def ghost_batchnorm_forward(x, gamma, beta, eps, ghost_batch: int,
                            workspace: Workspace | None = None):
    """Ghost batch norm of an (N, C) array, N a multiple of ``ghost_batch``: rows
    ``k g .. (k + 1) g - 1`` (chunk k) become ``gamma * (x - mean_k) / sqrt(var_k + eps) + beta``
    with chunk k's mean and biased variance, and the gradient flows through them.
    Returns ``(y, cache)``; ``cache.chunk_means`` and ``cache.chunk_vars`` are the statistics."""
    g = check_ghost_batch(ghost_batch)
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] % g:
        raise ValueError(f"x must be (N, C) with N a multiple of ghost_batch = {g}, "
                         f"got shape {x.shape}")
    chunks = x.shape[0] // g
    gamma, beta = (None if p is None else np.tile(p, chunks) for p in (gamma, beta))
    y, columns = batchnorm_forward(_to_columns(x, g, chunks), gamma, beta, eps,
                                   workspace=workspace)
    return _from_columns(y, g, chunks), GhostCache(columns, chunks)


def ghost_batchnorm_backward(dy, cache: GhostCache):
    """Gradients ``(dx, dgamma, dbeta)`` of a ``ghost_batchnorm_forward`` given ``dy = dL/dy``;
    gamma and beta are shared by the chunks, so their gradients are summed over them."""
    g, chunks = cache.columns.centered.shape[0], cache.chunks
    shape = (chunks * g, cache.columns.centered.shape[1] // chunks)
    dy = np.asarray(dy)
    if dy.shape != shape:
        raise ValueError(f"dy must have the forward output's shape {shape}, got {dy.shape}")
    dx, dgamma, dbeta = batchnorm_backward(_to_columns(dy, g, chunks), cache.columns)
    if dgamma is not None:
        dgamma, dbeta = dgamma.reshape(chunks, -1).sum(axis=0), dbeta.reshape(chunks, -1).sum(axis=0)
    return _from_columns(dx, g, chunks), dgamma, dbeta


class GhostBatchNorm1d(BatchNorm1d):
    """Batch norm whose training-mode statistics come from consecutive chunks of
    ``ghost_batch`` rows (``ghost_batchnorm_forward``); eval mode and batches no larger than a
    chunk behave exactly like ``BatchNorm1d``. The running averages move once per batch, by
    the average of the chunks' means and unbiased variances."""

    def __init__(self, num_features, ghost_batch: int, **kwargs):
        super().__init__(num_features, **kwargs)
        self.ghost_batch = check_ghost_batch(ghost_batch)

    def forward(self, x, training=True) -> np.ndarray:
        x = np.asarray(x, dtype=self.dtype)
        g = self.ghost_batch
        if not training or x.shape[0] <= g:
            return super().forward(x, training)
        y, self._cache = ghost_batchnorm_forward(x, self.gamma, self.beta, self.eps, g,
                                                 self._workspace)
        if self.track_running_stats:
            update_running_average(self.running_mean, self._cache.chunk_means.mean(axis=0),
                                   self.momentum)
            update_running_average(self.running_var,
                                   self._cache.chunk_vars.mean(axis=0) * (g / (g - 1)),
                                   self.momentum)
            self.num_batches_tracked += 1
        return y

    def backward(self, dy) -> np.ndarray:
        if not isinstance(self._cache, GhostCache):
            return super().backward(dy)
        dx, dgamma, dbeta = ghost_batchnorm_backward(dy, self._cache)
        if self.affine:
            self.dgamma[...] = dgamma
            self.dbeta[...] = dbeta
        return dx


# ---------------------------------------------------------------------------------------------
# A norm whose output distribution moves at random during training.


def draw_jitter(rng: np.random.Generator, units: int, shift: float, log_scale: float):
    """A random affine map per unit, ``(s, t)``: ``log s`` uniform in
    [-log_scale, log_scale], then ``t`` uniform in [-shift, shift]."""
    s = np.exp(rng.uniform(-log_scale, log_scale, units))
    t = rng.uniform(-shift, shift, units)
    return s, t


def jitter_forward(y: np.ndarray, s: np.ndarray, t: np.ndarray):
    """``y * s + t`` per unit (column); cache is ``s``."""
    return y * s + t, s


def jitter_backward(dout: np.ndarray, cache) -> np.ndarray:
    s = cache
    return dout * s


class JitteredNorm:
    """A norm layer whose output, in training mode only, gets a fresh random affine map per
    unit at every step (``draw_jitter`` with ``log_scale = log(scale)``, then
    ``jitter_forward``): the "noisy" batch norm of Santurkar et al. 2018, Section 2.1, with one
    draw per unit and step. The next layer thus sees its input distribution move at random all
    through training. Inference mode is the wrapped norm ``norm``."""

    def __init__(self, norm, rng: np.random.Generator, shift: float, scale: float):
        self.norm = norm
        self.rng = rng
        self.shift = shift
        self.log_scale = np.log(scale)
        self._s = None

    def forward(self, x, training=True):
        y = self.norm.forward(x, training)
        if not training:
            self._s = None
            return y
        s, t = draw_jitter(self.rng, y.shape[1], self.shift, self.log_scale)
        y, self._s = jitter_forward(y, s, t)
        return y

    def backward(self, dy):
        if self._s is None:
            raise RuntimeError("JitteredNorm.backward needs a forward pass in training mode")
        return self.norm.backward(jitter_backward(dy, self._s))

    def params(self):
        return self.norm.params()

    def grads(self):
        return self.norm.grads()
