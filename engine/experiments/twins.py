"""A plain network and its batch-norm twin, and what the experiments comparing them share.

To see what batch norm changes, an experiment trains two MLPs that differ in nothing else:
the same initial weights (drawn from one seed), then the same mini-batches and the same
optimizer. The "bn" twin has batch norm before each nonlinearity (gamma = 1, beta = 0).
The spiral task and its ReLU twins (``spiral_task``, ``spiral_twins``) serve several topics.
"""
from __future__ import annotations

import numpy as np

from engine.data import make_spirals
from engine.network import build_mlp
from engine.registry import Param, ParameterError

TWIN_NORMS = {"plain": None, "bn": "batch"}  # label -> build_mlp's norm
LOSS_WINDOW = 20  # batch losses averaged for "the loss" at a step (single ones are noisy)


def twin_network(label: str, init_seed: int, in_dim: int, classes: int, depth: int, width: int,
                 activation: str, init: str | None = None, init_std: float | None = None,
                 norm_kwargs: dict | None = None):
    """The ``label`` twin ("plain" or "bn") with its initial weights drawn from
    ``init_seed``: both twins built from one seed start from the same weights.
    ``norm_kwargs`` go to the "bn" twin's batch-norm layers."""
    norm = TWIN_NORMS[label]
    return build_mlp(np.random.default_rng(init_seed), in_dim, classes, depth, width,
                     activation=activation, norm=norm, init=init, init_std=init_std,
                     norm_kwargs=norm_kwargs if norm else None)


def twin_mlps(init_seed: int, in_dim: int, classes: int, depth: int, width: int,
              activation: str, init: str | None = None, init_std: float | None = None,
              norm_kwargs: dict | None = None) -> dict[str, object]:
    """{"plain": MLP, "bn": MLP}, both from ``twin_network`` with the same initial weights."""
    return {label: twin_network(label, init_seed, in_dim, classes, depth, width, activation,
                                init, init_std, norm_kwargs)
            for label in TWIN_NORMS}


def check_batch_fits(train_size: int, batch: int) -> None:
    if batch > train_size:
        raise ParameterError(f"batch = {batch} must be <= train_size = {train_size}")


def final_loss(losses: np.ndarray) -> float:
    """Mean of the last ``LOSS_WINDOW`` batch losses (single batches are noisy)."""
    return float(np.mean(losses[-LOSS_WINDOW:]))


# ---------------------------------------------------------------------------------------------
# The spiral task and its twins (engine.experiments.optimization and .affine).

SPIRAL_DIM, SPIRAL_CLASSES = 10, 3


def spiral_task(rng: np.random.Generator, n: int, turns: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` spiral points (3 classes in 10 dimensions), each feature standardized over the
    set, as the lecture's input normalization prescribes; the hidden layers are left alone."""
    x, y = make_spirals(rng, n, classes=SPIRAL_CLASSES, dim=SPIRAL_DIM, turns=turns)
    return (x - x.mean(axis=0)) / x.std(axis=0), y


def spiral_twins(init_seed: int, depth: int, width: int) -> dict[str, object]:
    """{"plain": MLP, "bn": MLP} for the spiral task (``twin_mlps``): ReLU networks with
    identical initial weights (He), the second with batch norm before each ReLU."""
    return twin_mlps(init_seed, SPIRAL_DIM, SPIRAL_CLASSES, depth, width, "relu")


def task_and_seeds(rng, train_size: int, turns: float):
    """The data and two seeds drawn from ``rng``: initial weights and mini-batch order, shared
    by both networks so that batch norm is the only difference between them."""
    x, y = spiral_task(rng, train_size, turns)
    init_seed, order_seed = (int(s) for s in rng.integers(2**63, size=2))
    return x, y, init_seed, order_seed


SPIRAL_PARAMS = {  # the parameters of the spiral task and its twins
    "depth": Param(int, 6, 2, 12, "hidden layers"),
    "width": Param(int, 32, 4, 256, "units per hidden layer"),
    "batch": Param(int, 64, 8, 512, "mini-batch size"),
    "turns": Param(float, 0.75, 0.25, 2.0, "turns of each spiral arm (more is harder)"),
    "train_size": Param(int, 2048, 256, 20000, "training points"),
}
