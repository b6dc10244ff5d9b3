"""Batch norm's noise as a regularizer, against dropout, on a small task that overfits.

The networks compared start from the same initial weights and are mostly trained with the
full training set as their batch, so that the optimizer's own noise is the same (zero) for
all of them. What differs is the noise inside the network: none, dropout's, or batch
norm's computed over "ghost" batches (Hoffer et al. 2017, arXiv 1705.08741): the batch is
cut into chunks of ``ghost_batch`` examples and each chunk is normalized with its own
statistics, so the noise of the statistics is that of a mini-batch of that size while the
gradient is unchanged. Ordinary mini-batch training, which changes both noises at once, is
the comparison point.
"""
from __future__ import annotations

import numpy as np

from engine.data import make_cats
from engine.losses import softmax_cross_entropy
from engine.network import build_mlp
from engine.normalization import GhostBatchNorm1d
from engine.optim import SGD
from engine.registry import Param, ParameterError, experiment
from engine.train import accuracy, train

MOMENTUM = 0.9
CLASSES = 2  # cat or not


def overfitting_task(rng, train_size: int, test_size: int, image_noise: float):
    """Few noisy cat pictures to train on (half with coloured fur), many to test on; pixels
    standardized with the training set's statistics."""
    x, y = make_cats(rng, train_size + test_size, palette=0.5, noise=image_noise)
    x_train, y_train, x_test, y_test = x[:train_size], y[:train_size], x[train_size:], \
        y[train_size:]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test


def train_network(init_seed, order_seed, task, width, depth, epochs, lr, norm=None,
                  ghost_batch=None, dropout=0.0, batch=None):
    """An MLP trained by SGD (momentum 0.9) on ``task`` for ``epochs`` passes over the
    training set, with mini-batches of ``batch`` rows (None: the whole set, one step per
    epoch). The same ``init_seed`` gives the same initial weights whatever the norm or
    dropout. ``ghost_batch`` replaces every batch norm by a ``GhostBatchNorm1d`` with
    chunks of that size."""
    x_train, y_train, _, _ = task
    batch = len(x_train) if batch is None else batch
    mlp = build_mlp(np.random.default_rng(init_seed), x_train.shape[1], CLASSES, depth, width,
                    norm=norm, dropout=dropout)
    if ghost_batch is not None:
        for block in mlp.hidden:
            block.norm = GhostBatchNorm1d(width, ghost_batch, dtype=mlp.dtype)
    train(mlp, SGD(mlp.params(), lr=lr, momentum=MOMENTUM), x_train, y_train,
          np.random.default_rng(order_seed), epochs * (len(x_train) // batch), batch)
    return mlp


def evaluate(mlp, task) -> dict[str, float]:
    x_train, y_train, x_test, y_test = task
    test_loss, _ = softmax_cross_entropy(mlp.forward(x_test, training=False), y_test)
    return {"train_acc": accuracy(mlp, x_train, y_train),
            "test_acc": accuracy(mlp, x_test, y_test), "test_loss": test_loss}


def noise_variants(dropout_p: float, ghost_batch: int) -> dict[str, dict]:
    """``train_network`` options of the four full-batch networks both experiments compare: no
    noise (``plain``), dropout, batch norm over the whole batch (``bn``: normalization without
    noise) and batch norm over ghost batches (``ghost``: batch norm's noise)."""
    return {
        "plain": {},
        "dropout": {"dropout": dropout_p},
        "bn": {"norm": "batch"},
        "ghost": {"norm": "batch", "ghost_batch": ghost_batch},
    }


def _check_ghosts(train_size: int, **ghosts: int) -> None:
    for name, size in ghosts.items():
        if size >= train_size or train_size % size:
            raise ParameterError(f"{name} = {size} must divide train_size = {train_size} "
                                 f"and be smaller than it")


TASK_PARAMS = {
    "train_size": Param(int, 256, 64, 4096,
                        "training pictures (the batch of every full-batch step)"),
    "test_size": Param(int, 2000, 200, 20000, "test pictures"),
    "image_noise": Param(float, 0.1, 0.0, 0.5, "per-pixel noise of the pictures"),
    "width": Param(int, 128, 8, 1024, "units per hidden layer"),
    "depth": Param(int, 2, 1, 6, "hidden layers"),
    "epochs": Param(int, 60, 1, 1000, "passes over the training set (full-batch: steps)"),
    "lr": Param(float, 0.05, 1e-4, 1.0, "learning rate (momentum 0.9)"),
    "dropout_p": Param(float, 0.5, 0.05, 0.9, "drop probability of the dropout network"),
}


@experiment(
    "bn_noise_regularization",
    params={
        **TASK_PARAMS,
        "ghost_batch": Param(int, 64, 2, 4096,
                             "batch norm's noise of a mini-batch this big; also the mini-batch"
                             " of the mini-batch runs"),
        "small_ghost_batch": Param(int, 16, 2, 4096, "a noisier ghost batch"),
    },
    figures=("test_accuracy",),
)
def bn_noise_regularization(rng, train_size, test_size, image_noise, width, depth, epochs, lr,
                            dropout_p, ghost_batch, small_ghost_batch):
    """How much batch norm's noise regularizes, against dropout, with the optimizer's noise
    held fixed (full-batch SGD, same initial weights), and how that compares with simply
    training on mini-batches.

    Seven networks on the same small, noisy cat-picture task. Full-batch: ``plain`` (no
    normalization, no dropout), ``dropout`` (drop probability ``dropout_p`` after each
    hidden layer), ``bn`` (batch norm over the whole training set: normalization without
    noise), ``ghost`` (batch norm with the statistics of chunks of ``ghost_batch``: the
    noise of a mini-batch of that size) and ``small_ghost`` (chunks of
    ``small_ghost_batch``). Mini-batches of ``ghost_batch`` for the same number of epochs:
    ``plain_mini`` and ``bn_mini`` (batch norm's noise and the optimizer's noise together).

    Returns, for each network name N: ``N_train_acc``, ``N_test_acc``, ``N_test_loss``;
    the effects on test accuracy: ``dropout_gain`` (dropout - plain), ``noise_gain``
    (ghost - bn: batch norm's noise at ``ghost_batch``), ``small_noise_gain``
    (small_ghost - bn), ``normalization_gain`` (bn - plain), ``bn_mini_gain``
    (bn_mini - bn) and ``plain_mini_gain`` (plain_mini - plain); and the sizes.
    """
    _check_ghosts(train_size, ghost_batch=ghost_batch, small_ghost_batch=small_ghost_batch)
    task = overfitting_task(rng, train_size, test_size, image_noise)
    init_seed, order_seed = rng.integers(2**63, size=2)
    variants = {
        **noise_variants(dropout_p, ghost_batch),
        "small_ghost": {"norm": "batch", "ghost_batch": small_ghost_batch},
        "plain_mini": {"batch": ghost_batch},
        "bn_mini": {"norm": "batch", "batch": ghost_batch},
    }
    result = {}
    for name, options in variants.items():
        mlp = train_network(init_seed, order_seed, task, width, depth, epochs, lr, **options)
        for key, value in evaluate(mlp, task).items():
            result[f"{name}_{key}"] = value
    result.update({
        "dropout_gain": result["dropout_test_acc"] - result["plain_test_acc"],
        "noise_gain": result["ghost_test_acc"] - result["bn_test_acc"],
        "small_noise_gain": result["small_ghost_test_acc"] - result["bn_test_acc"],
        "normalization_gain": result["bn_test_acc"] - result["plain_test_acc"],
        "bn_mini_gain": result["bn_mini_test_acc"] - result["bn_test_acc"],
        "plain_mini_gain": result["plain_mini_test_acc"] - result["plain_test_acc"],
        "ghost_batch": ghost_batch,
        "small_ghost_batch": small_ghost_batch,
        "train_size": train_size,
    })
    return result


def unit_ablation_effects(mlp, x: np.ndarray, y: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What removing each unit of the last hidden layer (setting its output to 0) does to
    the two-class decision margin m = logit_1 - logit_0 on inputs ``x`` with labels ``y``
    (inference mode).

    The output layer is linear, so removing unit j changes the margin by exactly
    -h_j (W_j1 - W_j0); no extra forward pass is needed. Returns per unit the mean |change|
    relative to the mean |margin|, the fraction of inputs whose prediction flips, and the
    accuracy lost (accuracy with every unit minus accuracy without unit j)."""
    h = x
    for block in mlp.hidden:
        h = block.forward(h, training=False)
    W, b = mlp.out.linear.W, mlp.out.linear.b
    margin = h @ (W[:, 1] - W[:, 0]) + (b[1] - b[0])
    change = -h * (W[:, 1] - W[:, 0])  # (inputs, units)
    effect = np.abs(change).mean(axis=0) / np.abs(margin).mean()
    removed = margin[:, None] + change > 0
    flips = (removed != (margin[:, None] > 0)).mean(axis=0)
    accuracy_drop = np.mean((margin > 0) == y) - (removed == y[:, None]).mean(axis=0)
    return effect, flips, accuracy_drop


@experiment(
    "unit_reliance",
    params={
        **TASK_PARAMS,
        "ghost_batch": Param(int, 64, 2, 4096, "batch norm's noise of a mini-batch this big"),
    },
    figures=("unit_effects",),
)
def unit_reliance(rng, train_size, test_size, image_noise, width, depth, epochs, lr, dropout_p,
                  ghost_batch):
    """How much a trained network's output relies on any single hidden unit, for networks
    trained without noise (``plain``), with dropout (``dropout``), with batch norm over the
    whole batch (``bn``: normalization without noise) and with batch norm over ghost batches
    of ``ghost_batch`` (``ghost``: batch norm's noise). Same task, initial weights and
    full-batch SGD as in ``bn_noise_regularization``.

    Each unit of the last hidden layer is removed in turn (``unit_ablation_effects``) on
    the test pictures. Returns, for each network N: ``N_effects`` (per-unit effect on the
    margin, sorted, largest first), ``N_top_effect`` (the largest), ``N_top_flips`` (the
    largest fraction of test predictions one unit's removal flips), ``N_top_acc_drop`` (the
    most test accuracy one unit's removal costs), ``N_test_acc``; and ``ghost_batch``,
    ``width``.
    """
    _check_ghosts(train_size, ghost_batch=ghost_batch)
    task = overfitting_task(rng, train_size, test_size, image_noise)
    init_seed, order_seed = rng.integers(2**63, size=2)
    variants = noise_variants(dropout_p, ghost_batch)
    result = {}
    for name, options in variants.items():
        mlp = train_network(init_seed, order_seed, task, width, depth, epochs, lr, **options)
        effect, flips, accuracy_drop = unit_ablation_effects(mlp, task[2], task[3])
        result.update({
            f"{name}_effects": np.sort(effect)[::-1],
            f"{name}_top_effect": float(effect.max()),
            f"{name}_top_flips": float(flips.max()),
            f"{name}_top_acc_drop": float(accuracy_drop.max()),
            f"{name}_test_acc": evaluate(mlp, task)["test_acc"],
        })
    result.update({"ghost_batch": ghost_batch, "width": width})
    return result
