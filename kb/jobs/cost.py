"""What a rerun would cost, estimated from its parameters before anything is computed.

A rerun whose estimate is beyond the time limit is refused up front, with how long it would
take and what to change, rather than run for the whole limit and then fail.

The estimate scales the time the demonstration took at its own settings (measured on this
machine, stored with its cached result) by how its parameters grew. The experiments are
mostly training loops, so their integer parameters fall in a few kinds, known by name:

- ``ITERATIONS`` (steps, epochs, trials, ...) and ``BATCH`` sizes multiply the training time;
- ``NETWORK`` sizes (channels, features) multiply everything, ``SQUARED`` ones (width,
  depth, pixels per side) by their square;
- ``DATA`` sizes (training, test and probe sets) each add work of their own, on the network.

cost = own seconds × network × max(iterations × batch, each data size): at the own settings
the time is split between these terms, and the largest factor bounds their weighted sum, so
the estimate errs on the high side. ``FREE`` parameters do not change the cost much (what is recorded, which
layer is watched). Every integer parameter of every experiment is of one kind: a test checks
that a new experiment's parameters are classified here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

ITERATIONS = {"steps", "max_steps", "epochs", "trials", "train_steps", "pretrain_steps",
              "finetune_steps", "repeats", "n_lrs", "n_steps", "examples"}
BATCH = {"batch", "pretrain_batch", "finetune_batch", "max_batch", "large_batch"}
NETWORK = {"channels", "features", "in_features", "out_features"}
# Units per layer (weights: width × width), pixels per side, and depth: measured, a network
# twice as deep took more than four times as long (layers are measured against each other).
SQUARED = {"width", "size", "depth"}
DATA = {"train_size", "test_size", "n_train", "n_test", "probe", "pool", "n", "finetune_size"}
FREE = {"every", "record_every", "unit", "layer", "early", "groups", "min_batch",
        "small_batch", "ghost_batch", "small_ghost_batch"}
KINDS = ITERATIONS | BATCH | NETWORK | SQUARED | DATA | FREE


@dataclass(frozen=True)
class Estimate:
    seconds: float
    grown: tuple[tuple[str, float], ...]  # (parameter, factor on the time), largest first


def _factor(name: str, own: Any, new: Any) -> float:
    if not (isinstance(own, int) and isinstance(new, int)) or isinstance(own, bool) \
            or own <= 0 or new <= 0:
        return 1.0
    return (new / own) ** (2 if name in SQUARED else 1)


def estimate(own_params: Mapping[str, Any], own_seconds: float,
             params: Mapping[str, Any]) -> Estimate:
    """The seconds an experiment would take with ``params``, given that it took
    ``own_seconds`` with ``own_params``."""
    factors = {name: _factor(name, own_params.get(name), value)
               for name, value in params.items() if name in KINDS - FREE}

    def product(kind: set[str]) -> float:
        return math.prod(f for name, f in factors.items() if name in kind)

    training = product(ITERATIONS) * product(BATCH)
    data = max((f for name, f in factors.items() if name in DATA), default=1.0)
    seconds = own_seconds * product(NETWORK | SQUARED) * max(training, data)
    counted = {name: f for name, f in factors.items()
               if name in NETWORK | SQUARED or (name in DATA if data > training else
                                               name in ITERATIONS | BATCH)}
    grown = tuple(sorted(((n, f) for n, f in counted.items() if f > 1),
                         key=lambda item: -item[1]))
    return Estimate(seconds, grown)


def suggestion(estimate_: Estimate, params: Mapping[str, Any], own_params: Mapping[str, Any],
               budget: float) -> tuple[str, int] | None:
    """A value of the parameter that grew most that would bring the estimate within
    ``budget`` seconds, the others unchanged; None if that is below its own value."""
    if not estimate_.grown:
        return None
    name, _ = estimate_.grown[0]
    shrink = (budget / estimate_.seconds) ** (0.5 if name in SQUARED else 1.0)
    value = int(params[name] * shrink)
    return (name, value) if value >= own_params.get(name, 0) else None


def duration(seconds: float) -> str:
    """``seconds`` as a reader says it: "0.11 s", "40 s", "3 min", "2 h"."""
    if seconds < 10:
        return f"{seconds:.2g} s"
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{round(seconds / 3600)} h"
