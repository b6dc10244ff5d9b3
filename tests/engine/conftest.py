"""Fixtures shared by the experiment tests (tests/engine/test_experiments_*.py).

Each of those modules declares ``REDUCED``: for every experiment it tests, the parameters
that make it run in well under a second (the rest are the experiment's defaults).
"""
from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np
import pytest

from engine.catalog import get_experiment


@pytest.fixture
def run(request):
    """``run(name, seed=0, **overrides)``: the result of the registered experiment ``name``
    at the test module's ``REDUCED[name]`` parameters with ``overrides``, validated as an
    answer's would be (a bad value raises ``ParameterError``)."""
    reduced = request.module.REDUCED

    def run_reduced(name: str, seed: int = 0, **overrides) -> dict:
        exp = get_experiment(name)
        return exp.run(exp.resolve({**reduced[name], **overrides}), seed)

    return run_reduced


@pytest.fixture
def assert_deterministic(run):
    """``assert_deterministic(name, seed, other_seed, varying=None)``: ``run(name, seed)``
    twice gives the same fields, bit for bit, and ``other_seed`` changes at least one of the
    fields ``varying`` selects: names, a predicate ``(key, value) -> bool``, or (None) any."""

    def check(name: str, seed: int, other_seed: int,
              varying: Collection[str] | Callable[[str, object], bool] | None = None) -> None:
        a, b, c = run(name, seed), run(name, seed), run(name, other_seed)
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        if varying is None:
            selected = list(a)
        elif callable(varying):
            selected = [key for key, value in a.items() if varying(key, value)]
        else:
            selected = list(varying)
        assert selected, "no field selected to compare across seeds"
        changed = [key for key in selected if not np.array_equal(a[key], c[key])]
        assert changed, f"seed {other_seed} changed none of {selected}"

    return check


def is_float_array(key: str, value: object) -> bool:
    """A ``varying`` predicate: the measured arrays (not echoed integer parameters)."""
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


@pytest.fixture
def float_arrays():
    """``is_float_array``, for ``assert_deterministic(..., varying=float_arrays)``."""
    return is_float_array
