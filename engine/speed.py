"""Speed machinery, kept apart from the math it serves.

``engine.layers``, ``engine.batchnorm``, ``engine.network`` and ``engine.optim`` hold the math;
what makes it fast lives here:

- ``column_sums`` (with the cached ``ones`` vector) and ``column_dots``: sums over a batch as
  one BLAS product, about twice as fast as ``a.sum(axis=0)``, and sums of products without
  an (N, C) temporary. They are the engine's way of summing over a batch, used by every path.
- ``all_finite``: a NaN/infinity test as one BLAS dot product.
- ``Workspace``: work arrays reused across calls of the same shape, since a fresh array of
  1-2 MB costs page faults.
- ``store_contiguously``: a network's parameters in one array, and their gradients in
  another; ``runs``, ``consecutive`` and ``flat_view`` find parameters lying one after the
  other in one array, which an optimizer then updates as one flat array, a few numpy calls
  for all of them rather than a few per parameter.

None of it changes a bit of a result; the engine's tests compare each against the plain path
(a reused workspace against fresh arrays, a network's single array against a copy's separate
arrays, SGD over flat runs against SGD per parameter).
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable

import numpy as np

# ---------------------------------------------------------------------------------------------
# Sums over a batch, and finiteness.


@functools.lru_cache(maxsize=64)
def ones(n: int, dtype: np.dtype) -> np.ndarray:
    """A read-only vector of n ones: ``ones(len(a), a.dtype) @ a`` sums the columns of ``a``
    as one BLAS product, about twice as fast as np.add.reduce along axis 0."""
    vector = np.ones(n, dtype)
    vector.flags.writeable = False
    return vector


def column_sums(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``sum(a, axis=0)`` of an (N, C) array as the product ``ones @ a`` (into ``out`` if given)."""
    return np.matmul(ones(len(a), a.dtype), a, out=out)


def column_dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """sum(a * b, axis=0) without an (N, C) temporary (overflow gives inf, no warning)."""
    return np.einsum("ij,ij->j", a, b)


def all_finite(a: np.ndarray) -> bool:
    """Whether the floating-point array ``a`` holds no NaN and no infinity."""
    # A NaN or an infinity makes the sum of squares non-finite, and BLAS computes it faster
    # than any elementwise test; it can also overflow on large finite values, hence the
    # exact second test.
    flat = a.reshape(-1)
    return math.isfinite(np.dot(flat, flat)) or bool(np.isfinite(a).all())


# ---------------------------------------------------------------------------------------------
# Reused work arrays.


class Workspace:
    """Preallocated work arrays, reused across calls with the same name, shape and dtype
    (one set per distinct batch shape, e.g. full batches and a smaller last one)."""

    def __init__(self) -> None:
        self._arrays: dict[tuple, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        key = (name, shape, np.dtype(dtype))
        found = self._arrays.get(key)
        if found is None:
            found = self._arrays[key] = np.empty(shape, dtype)
        return found


# ---------------------------------------------------------------------------------------------
# Parameters in one array.


def store_contiguously(layers: Iterable, dtype: np.dtype, first: Callable[[str], bool]) -> None:
    """Move the parameters and gradients of the ``layers`` that support it (``store_in``, and
    every parameter of ``dtype``) into one array each, laid out alike; the parameters whose
    name satisfies ``first`` come first, in layer order, then the others."""
    layers = [layer for layer in layers if hasattr(layer, "store_in")
              and all(p.dtype == dtype for p in layer.params().values())]
    entries = [(layer, key, p.shape) for layer in layers for key, p in layer.params().items()]
    entries.sort(key=lambda entry: not first(entry[1]))  # stable: layer order kept
    size = sum(math.prod(shape) for _, _, shape in entries)
    param_store, grad_store = np.empty(size, dtype), np.empty(size, dtype)
    views = {layer: ({}, {}) for layer in layers}
    start = 0
    for layer, key, shape in entries:
        span = slice(start, start + math.prod(shape))
        params, grads = views[layer]
        params[key] = param_store[span].reshape(shape)
        grads[key] = grad_store[span].reshape(shape)
        start = span.stop
    for layer, (params, grads) in views.items():
        layer.store_in(params, grads)


def runs(params: dict[str, np.ndarray], group: Callable[[str], bool]) -> list[list[str]]:
    """The names of ``params`` grouped into runs of arrays that lie one after the other in one
    array, each run of one ``group`` value; other arrays are runs of one."""
    by_address = sorted(params, key=lambda name: _address(params[name]))
    found: list[list[str]] = []
    for name in by_address:
        if found and group(found[-1][-1]) == group(name) \
                and consecutive([params[found[-1][-1]], params[name]]):
            found[-1].append(name)
        else:
            found.append([name])
    return found


def consecutive(arrays: list[np.ndarray]) -> bool:
    """Whether ``arrays`` are C-contiguous pieces of one C-contiguous array, in this order and
    without gaps, so that one flat view covers exactly them."""
    owner = _owner(arrays[0])
    if not owner.flags.c_contiguous:
        return False
    end = None
    for a in arrays:
        if not (a.flags.c_contiguous and a.dtype == owner.dtype and _owner(a) is owner) \
                or (end is not None and _address(a) != end):
            return False
        end = _address(a) + a.nbytes
    return True


def flat_view(arrays: list[np.ndarray]) -> np.ndarray:
    """One flat array viewing the memory of ``arrays`` (``consecutive`` must hold)."""
    owner = _owner(arrays[0])
    start = (_address(arrays[0]) - _address(owner)) // owner.itemsize
    return owner.reshape(-1)[start:start + sum(a.size for a in arrays)]


def _address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def _owner(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a
