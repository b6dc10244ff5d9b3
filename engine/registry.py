"""Named experiments that answers call, with typed, range-checked parameters.

An experiment is a plain function ``fn(rng, **params) -> dict`` that returns plain data:
Python numbers, bools, strings and numpy arrays, keyed by name. Figures are drawn
elsewhere (``engine.figures``) from that data, so computing never imports matplotlib.

This module only registers and finds: the ``experiment`` and ``figure`` decorators record
what is decorated, the ``find_*`` functions look among what has been registered so far. It
imports no experiment and no figure; ``engine.catalog`` imports the engine's own and is what
callers look experiments up in.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


class ParameterError(ValueError):
    """A parameter request that the experiment refuses; the message names the parameter.

    ``param`` is the parameter's name when one parameter alone is at fault (a form shows the
    message next to that field), ``given`` what was asked for, as it was written.
    """

    def __init__(self, message: str, param: str | None = None, given: Any = None):
        super().__init__(message)
        self.param = param
        self.given = given


class UnknownExperimentError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


MAX_SEED = 2**32 - 1  # numpy's legacy seeding limit; every caller accepts the same seeds


def check_seed(value: Any) -> int:
    """``value`` if it is a valid seed (an int in [0, MAX_SEED]); else ParameterError."""
    if type(value) is not int or not 0 <= value <= MAX_SEED:
        raise ParameterError(f"seed must be an integer in [0, {MAX_SEED}], got {value!r}",
                             param="seed", given=value)
    return value


@dataclass(frozen=True)
class Param:
    """One experiment parameter: its type, default, allowed range or choices, and meaning.

    ``check`` validates what type and range cannot say, e.g. a ``str`` parameter holding a
    list ("4,8,32"): it is called with the coerced value and raises ParameterError (or
    ValueError) for one the experiment would refuse, so that ``Experiment.resolve`` refuses it
    before anything is computed. An experiment whose module defines ``parse_<name>(text)``
    for a ``str`` parameter without a ``check`` gets that function as its check.
    """

    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    doc: str = ""
    choices: tuple | None = None
    check: Callable[[Any], Any] | None = None

    def describe_range(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.low is not None or self.high is not None:
            return f"[{self.low}, {self.high}]"
        return f"any {self.kind.__name__}"

    def describe_kind(self) -> str:
        """What a value must be, in a reader's words: "a whole number between 2 and 1000"."""
        if self.kind is bool:
            return "true or false"
        if self.choices is not None:
            return self.describe_range()
        what = {int: "a whole number", float: "a finite number", str: "text"}[self.kind]
        if self.low is not None and self.high is not None:
            return f"{what} between {self.low} and {self.high}"
        if self.low is not None:
            return f"{what} of at least {self.low}"
        if self.high is not None:
            return f"{what} of at most {self.high}"
        return what

    def coerce(self, name: str, value: Any) -> Any:
        """Convert ``value`` (possibly a string from a URL) to this type, or raise ParameterError."""
        given = value
        kind = self.kind
        try:
            if kind is bool:
                if isinstance(value, str):
                    lowered = value.strip().lower()
                    if lowered not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(value)
                    value = lowered in ("true", "1", "yes")
                elif not isinstance(value, (bool, np.bool_)):
                    raise ValueError(value)
                value = bool(value)
            elif kind is int:
                if isinstance(value, bool):
                    raise ValueError(value)
                if isinstance(value, str):
                    value = int(value.strip())
                elif isinstance(value, float):
                    if not value.is_integer():
                        raise ValueError(value)
                    value = int(value)
                else:
                    value = int(value)
            elif kind is float:
                if isinstance(value, bool):
                    raise ValueError(value)
                value = float(value.strip() if isinstance(value, str) else value)
                if not math.isfinite(value):  # nan and inf compare with no range: refused
                    raise ValueError(value)
            elif kind is str:
                if not isinstance(value, str):
                    raise ValueError(value)
            else:  # pragma: no cover - registration refuses other kinds
                raise ValueError(value)
        except (TypeError, ValueError, OverflowError):
            raise ParameterError(
                f"parameter '{name}' must be {self.describe_kind()}, got {given!r}",
                param=name, given=given) from None
        if self.choices is not None and value not in self.choices:
            raise ParameterError(
                f"parameter '{name}' = {value!r} is not allowed: {self.describe_range()}",
                param=name, given=given)
        if (self.low is not None and value < self.low) or (
            self.high is not None and value > self.high
        ):
            raise ParameterError(
                f"parameter '{name}' = {value!r} is outside its range {self.describe_range()}",
                param=name, given=given)
        if self.check is not None:
            try:
                self.check(value)
            except ParameterError as exc:
                raise ParameterError(str(exc), param=name, given=given) from None
            except (TypeError, ValueError) as exc:
                raise ParameterError(f"parameter '{name}' = {value!r} is not allowed: {exc}",
                                     param=name, given=given) from None
        return value


@dataclass(frozen=True)
class Experiment:
    name: str
    fn: Callable[..., dict]
    params: dict[str, Param]
    doc: str
    figure_names: tuple[str, ...] = ()

    def resolve(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Full, validated parameters: defaults updated by ``overrides``."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            raise ParameterError(
                f"experiment '{self.name}' has no parameter '{unknown[0]}'"
                f" (it has: {', '.join(self.params) or 'none'})"
            )
        return {
            name: spec.coerce(name, overrides[name]) if name in overrides else spec.default
            for name, spec in self.params.items()
        }

    def run(self, params: dict[str, Any], seed: int) -> dict[str, Any]:
        """Run with already-resolved ``params`` and a fresh generator seeded by ``seed``."""
        rng = np.random.default_rng(seed)
        result = self.fn(rng, **params)
        if not isinstance(result, dict):
            raise TypeError(f"experiment '{self.name}' returned {type(result).__name__}, not dict")
        return result


_EXPERIMENTS: dict[str, Experiment] = {}
_DRAWERS: dict[tuple[str, str], Callable] = {}  # (experiment name, figure name) -> draw


def experiment(name: str, params: dict[str, Param] | None = None, figures: tuple[str, ...] = ()):
    """Register ``fn`` as experiment ``name`` offering the named ``figures``.

    Defaults must satisfy their own ranges. The figures are declared here, so answers can be
    checked against them without importing matplotlib; ``engine.figures`` draws them.
    """
    params = dict(params or {})

    def register(fn: Callable[..., dict]) -> Callable[..., dict]:
        if name in _EXPERIMENTS:
            raise ValueError(f"experiment '{name}' is registered twice")
        signature = inspect.signature(fn)
        expected = [p for p in signature.parameters if p != "rng"]
        if sorted(expected) != sorted(params):
            raise ValueError(
                f"experiment '{name}': function parameters {expected} do not match "
                f"declared parameters {list(params)}"
            )
        module = sys.modules.get(fn.__module__)
        for pname, spec in params.items():
            if spec.kind not in (int, float, bool, str):
                raise ValueError(f"experiment '{name}': parameter '{pname}' has kind {spec.kind}")
            parse = getattr(module, f"parse_{pname}", None)
            if spec.kind is str and spec.check is None and callable(parse):
                spec = params[pname] = dataclasses.replace(spec, check=parse)
            spec.coerce(pname, spec.default)
        exp = Experiment(name, fn, params, inspect.getdoc(fn) or "", tuple(figures))
        for experiment_name, figure_name in _DRAWERS:  # drawings registered before it
            if experiment_name == name:
                _check_declared(exp, figure_name)
        _EXPERIMENTS[name] = exp
        return fn

    return register


def figure(experiment_name: str, figure_name: str):
    """Register ``draw(result, fig)``, which draws a declared figure of ``experiment_name``
    onto a ``matplotlib.figure.Figure`` from the experiment's returned data.

    The experiment may be registered before or after its drawings; whichever comes second
    checks that the experiment declares the figure."""

    def register(draw: Callable) -> Callable:
        if (experiment_name, figure_name) in _DRAWERS:
            raise ValueError(f"figure '{figure_name}' of '{experiment_name}' is drawn twice")
        if experiment_name in _EXPERIMENTS:
            _check_declared(_EXPERIMENTS[experiment_name], figure_name)
        _DRAWERS[(experiment_name, figure_name)] = draw
        return draw

    return register


def _check_declared(exp: Experiment, figure_name: str) -> None:
    if figure_name not in exp.figure_names:
        raise ValueError(f"experiment '{exp.name}' declares no figure '{figure_name}'")


def find_experiment(name: str) -> Experiment:
    """The registered experiment ``name``; UnknownExperimentError naming the known ones."""
    try:
        return _EXPERIMENTS[name]
    except KeyError:
        raise UnknownExperimentError(
            f"unknown experiment '{name}' (known: {', '.join(sorted(_EXPERIMENTS))})"
        ) from None


def registered_experiments() -> dict[str, Experiment]:
    """Every experiment registered so far, by name, in registration order."""
    return dict(_EXPERIMENTS)


def find_drawer(experiment_name: str, figure_name: str) -> Callable:
    """The registered function drawing ``figure_name`` of ``experiment_name``."""
    find_experiment(experiment_name)
    try:
        return _DRAWERS[(experiment_name, figure_name)]
    except KeyError:
        raise UnknownExperimentError(
            f"experiment '{experiment_name}' has no drawn figure '{figure_name}'"
        ) from None
