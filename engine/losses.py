"""Losses that return ``(loss, gradient w.r.t. their input)``, averaged over the batch."""
from __future__ import annotations

import numpy as np

from engine.layers import require_2d, require_finite, sigmoid_forward
from engine.speed import ones


def check_labels(y, n: int, classes: int) -> np.ndarray:
    """``y`` as an integer array of length ``n`` with values in [0, classes), or ValueError."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match the batch, got {y.shape}")
    if y.dtype.kind not in "iub":
        if y.dtype.kind != "f" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
        y = y.astype(np.int64)
    if n and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"y must hold labels in [0, {classes - 1}], got values in "
                         f"[{y.min()}, {y.max()}]")
    return y


def softmax_cross_entropy(logits: np.ndarray, y) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of softmax(logits) against integer labels ``y``.

    ``logits``: (batch, classes); ``y``: (batch,) labels in [0, classes). Returns the loss
    (a Python float) and dL/dlogits = (softmax - onehot) / batch. Subtracting the row maximum
    keeps exp from overflowing.
    """
    logits = np.asarray(logits)
    require_2d("logits", logits)
    require_finite("logits", logits)
    n, classes = logits.shape
    y = check_labels(y, n, classes)
    picked = np.arange(n) * classes + y  # flat indices of the true classes' logits
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    sums = exp @ ones(classes, exp.dtype)
    loss = float((np.add.reduce(np.log(sums)) - np.add.reduce(shifted.take(picked))) / n)
    dlogits = exp
    dlogits /= sums[:, None] * n
    dlogits.reshape(-1)[picked] -= 1.0 / n
    return loss, dlogits


def logistic_loss(z: np.ndarray, y) -> tuple[float, np.ndarray]:
    """Mean binary cross-entropy of sigmoid(z) against labels ``y`` in {0, 1}.

    ``z``: (batch,) or (batch, 1) scores; ``y``: (batch,). Returns the loss and dL/dz
    (same shape as ``z``) = (sigmoid(z) - y) / batch. Uses
    log(1 + exp(z)) - y z = max(z, 0) + log1p(exp(-|z|)) - y z, which never overflows.
    """
    z = np.asarray(z)
    if z.ndim == 2 and z.shape[1] == 1:
        flat = z[:, 0]
    elif z.ndim == 1:
        flat = z
    else:
        raise ValueError(f"z must have shape (batch,) or (batch, 1), got {z.shape}")
    if flat.shape[0] == 0:
        raise ValueError("z must hold at least one score")
    require_finite("z", flat)
    y = check_labels(y, flat.shape[0], 2).astype(flat.dtype)
    n = flat.shape[0]
    loss = float(np.mean(np.maximum(flat, 0) + np.log1p(np.exp(-np.abs(flat))) - y * flat))
    probability, _ = sigmoid_forward(flat)
    dz = (probability - y) / n
    return loss, dz.reshape(z.shape)
