"""Argument checks shared by the layers of ``layernorm.py``, ``batchnorm2d.py`` and ``conv.py``:
every refusal is a ValueError naming the parameter at fault."""
from __future__ import annotations

import math

import numpy as np


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def check_eps(eps) -> float:
    if isinstance(eps, bool) or not (isinstance(eps, (int, float, np.floating))
                                     and math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    return float(eps)


def check_float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def as_float_input(name: str, x, dtype=None) -> np.ndarray:
    """``x`` as an array of ``dtype``, or when None of its own floating dtype (integers and
    booleans become float64); never copied when it already is one. Refuses complex numbers
    and objects rather than dropping or failing on them later."""
    try:
        x = np.asarray(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__}") from None
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if dtype is None:
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
    return x.astype(dtype, copy=False)


def check_dy(dy, shape: tuple[int, ...]) -> np.ndarray:
    """``dy`` as an array, refused unless it has the forward output's ``shape``."""
    dy = np.asarray(dy)
    if dy.shape != tuple(shape):
        raise ValueError(f"dy must have the forward output's shape {tuple(shape)}, "
                         f"got {dy.shape}")
    return dy
