"""Stochastic gradient descent with momentum and weight decay, updating parameters in place."""
from __future__ import annotations

import math

import numpy as np

from engine.speed import consecutive, flat_view, runs


def decays(name: str) -> bool:
    """Whether weight decay applies to the parameter called ``name``: only weight matrices
    (last name component "W"). Biases and the norm layers' gamma and beta are not decayed:
    shrinking beta or gamma towards 0 is not a regularization of the function's complexity,
    and it would fight the normalization's freedom to set the scale."""
    return name.rsplit(".", 1)[-1] == "W"


def sgd_update(p: np.ndarray, g: np.ndarray, v: np.ndarray, lr: float, momentum: float,
               weight_decay: float, scratch: np.ndarray) -> None:
    """One step of the parameters ``p`` from their gradient ``g``, in place::

        d = g + weight_decay * p
        v = momentum * v + d               (v, the velocity, is updated in place)
        p -= lr * v                        (p -= lr * d when momentum is 0)

    ``scratch``, an array like ``p``, holds the intermediate results (no temporaries)."""
    d = g
    if weight_decay:
        np.multiply(p, weight_decay, out=scratch)
        scratch += g
        d = scratch
    if momentum:
        v *= momentum
        v += d
        d = v
    np.multiply(d, lr, out=scratch)
    p -= scratch


class SGD:
    """SGD as in ``torch.optim.SGD`` (no dampening, no Nesterov)::

        d = grad + weight_decay * p        (weight_decay only for weight matrices, see decays)
        v = momentum * v + d               (v = d on the first step)
        p -= lr * v                        (p -= lr * d when momentum is 0)

    ``params`` maps names to arrays that are updated in place (``sgd_update``), so layers
    that own them see the new values. ``lr`` may be changed between steps (schedules).

    Speed: each of these lines is a numpy call, which costs about a microsecond however small
    the array. Parameters that lie one after the other in a single array (``MLP`` keeps all
    of its parameters in one array, and their gradients in another) are therefore updated
    as one flat array (a ``_Slot``, found by ``engine.speed.runs``), a few calls for all of
    them rather than a few per parameter.
    """

    def __init__(self, params: dict[str, np.ndarray], lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        if not isinstance(params, dict) or not params:
            raise ValueError("params must be a non-empty dict of name -> array")
        for name, value, low, high in (("lr", lr, 0.0, math.inf),
                                       ("momentum", momentum, 0.0, 1.0),
                                       ("weight_decay", weight_decay, 0.0, math.inf)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
                    or not math.isfinite(value) or not low <= value < high:
                raise ValueError(f"{name} must be a number in [{low}, {high}), got {value!r}")
        for name, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
                raise ValueError(f"params[{name!r}] must be a floating-point numpy array")
        self.params = dict(params)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self._slots = [_Slot(names, [self.params[n] for n in names])
                       for names in runs(self.params, group=decays)]

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """Update every parameter in place from ``grads`` (same names and shapes)."""
        if grads.keys() != self.params.keys():
            missing = sorted(set(self.params) - set(grads))
            extra = sorted(set(grads) - set(self.params))
            raise ValueError(f"grads must have the keys of params; missing {missing}, "
                             f"unexpected {extra}")
        for slot in self._slots:
            sgd_update(slot.p, slot.gradient([grads[name] for name in slot.names]), slot.v,
                       self.lr, self.momentum, self.weight_decay if slot.decayed else 0.0,
                       slot.scratch)


class _Slot:
    """Parameters updated together: one parameter, or several lying one after the other in
    one array, seen through the flat view ``p``. Velocity starts at 0, so the first step
    gives v = d exactly, as in PyTorch; ``scratch`` keeps the step free of temporaries."""

    def __init__(self, names: list[str], arrays: list[np.ndarray]):
        self.names = names
        self.arrays = arrays
        self.p = arrays[0] if len(arrays) == 1 else flat_view(arrays)
        self.v = np.zeros_like(self.p)
        self.scratch = np.empty_like(self.p)
        self.decayed = decays(names[0])
        self._grads: list[np.ndarray] | None = None  # the gradient arrays seen last
        self._flat_grad: np.ndarray | None = None  # and their flat view, if they have one
        self._gathered: np.ndarray | None = None

    def gradient(self, grads: list[np.ndarray]) -> np.ndarray:
        """The gradients of the slot's parameters, shaped like ``p``: themselves or a flat view
        when they too lie one after the other in one array, otherwise a copy. A model
        usually hands over the same arrays every step, so their shapes and layout are
        checked only when they change."""
        if self._grads is None or any(g is not seen for g, seen in zip(grads, self._grads)):
            for name, g, p in zip(self.names, grads, self.arrays):
                if g.shape != p.shape:
                    raise ValueError(f"grads[{name!r}] has shape {g.shape}, params has {p.shape}")
            self._grads = grads
            if len(grads) == 1:
                self._flat_grad = grads[0]
            else:
                self._flat_grad = flat_view(grads) if consecutive(grads) else None
        if self._flat_grad is not None:
            return self._flat_grad
        if self._gathered is None:
            self._gathered = np.empty_like(self.p)
        return np.concatenate([g.reshape(-1) for g in grads], out=self._gathered)
