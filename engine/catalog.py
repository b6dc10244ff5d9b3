"""The engine's experiments and their drawings: what the service looks experiments up in.

Importing this module imports every experiment module, which registers them in
``engine.registry`` (numpy only, never matplotlib). ``drawer`` imports the figure modules
on first use. The lookups also see experiments and drawings registered at run
time, e.g. by tests, through ``engine.registry``'s decorators.
"""
from __future__ import annotations

import importlib
from typing import Callable

from engine.experiments import noise  # noqa: F401  (importing a module registers its experiments)
from engine.experiments import backward  # noqa: F401
from engine.experiments import optimization  # noqa: F401
from engine.experiments import regularization  # noqa: F401
from engine.experiments import affine  # noqa: F401
from engine.experiments import shift  # noqa: F401
from engine.experiments import running  # noqa: F401
from engine.experiments import drift  # noqa: F401
from engine.experiments import practice  # noqa: F401
from engine.experiments import norms  # noqa: F401
from engine.registry import Experiment, find_drawer, find_experiment, registered_experiments

FIGURE_MODULES = tuple(f"engine.figures.{topic}" for topic in (
    "noise", "backward", "regularization", "optimization", "affine", "shift", "running", "drift",
    "practice", "norms"))


def get_experiment(name: str) -> Experiment:
    """Experiment ``name``; UnknownExperimentError ("unknown experiment 'x' (known: ...)")."""
    return find_experiment(name)


def experiments() -> dict[str, Experiment]:
    """Every experiment by name."""
    return registered_experiments()


def drawer(experiment_name: str, figure_name: str) -> Callable:
    """The function ``draw(result, fig)`` that draws ``figure_name`` of ``experiment_name`` on a
    matplotlib figure (the first call imports the figure modules); UnknownExperimentError if
    there is none."""
    for module in FIGURE_MODULES:
        importlib.import_module(module)
    return find_drawer(experiment_name, figure_name)
