"""Batch norm over images (N, C, H, W): one mean and variance per channel, over N·H·W values.

This is ``engine.batchnorm``'s batch norm, unchanged, applied to x rearranged so that every
pixel of every image is a row and every channel a column::

    rows = x.transpose(0, 2, 3, 1).reshape(-1, C)        # (N * H * W, C)
    y_rows, cache = batchnorm_forward(rows, gamma, beta, eps)
    y = y_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)

so the statistics, the gradient (batch norm's derivation, m = N·H·W) and the running
averages (unbiased variance with n = N·H·W, as ``torch.nn.BatchNorm2d``) are the 1-d ones.
``batchnorm2d_forward`` / ``batchnorm2d_backward`` are the functional pair, ``BatchNorm2d``
the layer, a ``BatchNorm1d`` over those rows.

Layout: ``y`` and ``dx`` are views of the rows in (N, H, W, C) memory order, transposed to
(N, C, H, W): numpy computes with them as with any array, and a caller that needs C order
makes ``np.ascontiguousarray`` of them. An input already in that layout (such as the output
of this layer after an elementwise function) is rearranged without a copy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.batchnorm import BatchNorm1d, NormCache, batchnorm_backward, batchnorm_forward
from engine.checks import as_float_input, check_dy
from engine.speed import Workspace


def to_rows(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N * H * W, C): one row per pixel (a view when the memory allows)."""
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])


def from_rows(rows: np.ndarray, shape: tuple[int, int, int, int]) -> np.ndarray:
    """The inverse of ``to_rows`` for images of ``shape`` (N, C, H, W); a view."""
    n, c, h, w = shape
    return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)


@dataclass(slots=True)
class BatchNorm2dCache:
    """Batch norm's cache of the rows, and the images' shape."""

    rows: NormCache
    shape: tuple[int, int, int, int]

    @property
    def mean(self) -> np.ndarray:
        """(C,) each channel's batch mean (or the given mean in eval mode)."""
        return self.rows.mean

    @property
    def var(self) -> np.ndarray:
        """(C,) each channel's biased batch variance (or the given variance)."""
        return self.rows.var


def batchnorm2d_forward(x, gamma, beta, eps, mean=None, var=None,
                        workspace: Workspace | None = None):
    """Batch norm of (N, C, H, W) images per channel: ``batchnorm_forward`` of ``to_rows(x)``
    (training mode when ``mean`` and ``var`` are None: each channel's mean and biased
    variance over N·H·W values). Returns ``(y, cache)`` with y of x's shape."""
    x = check_images(x, None, batch_stats=mean is None)
    y, cache = batchnorm_forward(to_rows(x), gamma, beta, eps, mean, var, workspace)
    return from_rows(y, x.shape), BatchNorm2dCache(cache, x.shape)


def batchnorm2d_backward(dy, cache: BatchNorm2dCache):
    """Gradients ``(dx, dgamma, dbeta)`` of a ``batchnorm2d_forward`` given ``dy = dL/dy``."""
    dy = check_dy(dy, cache.shape)
    dx, dgamma, dbeta = batchnorm_backward(to_rows(dy), cache.rows)
    return from_rows(dx, cache.shape), dgamma, dbeta


class BatchNorm2d(BatchNorm1d):
    """Batch norm over (N, C, H, W) with ``torch.nn.BatchNorm2d``'s semantics: per channel,
    statistics over N·H·W values (biased variance to normalize, unbiased in ``running_var``),
    ``running_mean``/``running_var`` (start 0 and 1) moving by ``momentum``; eval mode uses
    them (or the batch's when ``track_running_stats`` is False). Same constructor and
    attributes as ``BatchNorm1d``, which it is, applied to ``to_rows(x)``."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float64):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)
        self._shape: tuple[int, int, int, int] | None = None

    def forward(self, x, training=True) -> np.ndarray:
        if self.check_input:
            x = check_images(x, self.num_features, training or not self.track_running_stats,
                             self.dtype)
        self._shape = x.shape
        return from_rows(super().forward(to_rows(x), training), x.shape)

    def backward(self, dy) -> np.ndarray:
        """dx for the last forward call; fills ``dgamma``/``dbeta`` in place."""
        if self._shape is None:
            raise RuntimeError("BatchNorm2d.backward called before forward")
        if self.check_input:
            dy = check_dy(dy, self._shape)
        return from_rows(super().backward(to_rows(dy)), self._shape)


def check_images(x, num_features: int | None, batch_stats: bool, dtype=None) -> np.ndarray:
    """``x`` as a floating (N, C, H, W) array with ``num_features`` channels; refuses, when
    statistics come from the batch, a single value per channel (N·H·W = 1: its variance is
    0). NaN and inf are refused by batch norm itself, naming the channel (column)."""
    x = as_float_input("x", x, dtype)
    if x.ndim != 4:
        raise ValueError(f"x must be a 4-D (N, C, H, W) array, got shape {x.shape}")
    n, c, h, w = x.shape
    if num_features is not None and c != num_features:
        raise ValueError(f"x has {c} channels (axis 1) but num_features is {num_features}")
    if n * h * w == 0:
        raise ValueError(f"x has no values per channel, got shape {x.shape}")
    if batch_stats and n * h * w < 2:
        raise ValueError(f"x has one value per channel (N·H·W = 1) in training mode: batch "
                         f"statistics need at least 2, got shape {x.shape}")
    return x

