"""How far a deep layer's inputs move when earlier layers change, with and without batch norm.

Five experiments on the "cats" pictures (``engine.data.make_cats``), each training or probing
a plain network and a batch-norm network (batch norm before every nonlinearity) that start
from the same weights and see the same mini-batches:

- ``sigmoid_input_drift``: Ioffe & Szegedy's Figure 1 (b, c): the 15th, 50th and 85th
  percentiles of one unit's input to its sigmoid in the last hidden layer, over training;
- ``first_layer_perturbation``: change the first layer's weights and follow the change
  through every later layer;
- ``drift_by_depth``: during training, how much of each layer's input change comes from
  the earlier layers, layer by layer, over the same training progress in both networks;
- ``moving_early_layers``: the later layers learn while the early layers move along a
  path chosen in advance;
- ``concurrent_updates``: during ordinary training, how much of the later layers'
  progress the early layers' simultaneous steps undo.

Every change of a layer's values is split by ``change_parts`` into the part that moves each
unit's mean and spread (which batch norm removes) and the part that moves individual
examples within an unchanged mean and spread (which it does not).
"""
from __future__ import annotations

import numpy as np

from engine.batchnorm import batchnorm_forward
from engine.data import make_cats
from engine.experiments.twins import (TWIN_NORMS, check_batch_fits, final_loss, twin_mlps,
                                      twin_network)
from engine.layers import linear_forward
from engine.losses import softmax_cross_entropy
from engine.measure import FIGURE1_PERCENTILES, layer_of_parameter
from engine.optim import SGD
from engine.registry import Param, ParameterError, experiment
from engine.train import minibatch_indices, train, train_step

CLASSES = 2  # cat or not
PROBE = 300  # pictures on which layers are measured (a fixed set, also one batch for norms)
# The "bn" twins keep no running averages: in inference mode they normalize with the statistics
# of the batch at hand, so measuring a probe set uses that set's own statistics and changes no
# state.
PROBE_NORM = {"track_running_stats": False}
ACTIVATION = Param(str, "tanh", doc="nonlinearity", choices=("tanh", "sigmoid", "relu"))
# The parameters of the training runs that are the same in every experiment that trains.
WIDTH = Param(int, 64, 8, 256, "units per hidden layer")
MINIBATCHES = {
    "batch": Param(int, 60, 8, 500, "mini-batch size"),
    "train_size": Param(int, 1200, 200, 10000, "training pictures"),
}


def cats_task(rng: np.random.Generator, n: int, standardize: bool):
    """``n`` cat pictures (black fur) and their labels. ``standardize`` scales every input
    feature to mean 0 and variance 1 over the set (the lecture's input normalization), so
    that the first layer sees centred data."""
    x, y = make_cats(rng, n)
    if standardize:
        x = (x - x.mean(axis=0)) / x.std(axis=0)
    return x, y


def change_parts(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """How far a layer's values (examples x units) moved, split in two, relative to the
    layer's spread before.

    For each unit, the mean squared change over the examples splits exactly as
        mean((a - b)^2) = (mu_a - mu_b)^2 + (s_a - s_b)^2 + 2 s_a s_b (1 - corr(a, b)):
    the first two terms move the unit's distribution (mean and spread), the last one moves
    examples within it. Summed over units and divided by the sum of the units' variances
    before, the square roots are returned: ``(distribution, per_example)``, and
    hypot(distribution, per_example) is the RMS change over the RMS spread.
    """
    if before.shape != after.shape or before.ndim != 2:
        raise ValueError(f"before and after must be (examples, units) arrays of one shape, "
                         f"got {before.shape} and {after.shape}")
    mean_b, mean_a = before.mean(axis=0), after.mean(axis=0)
    std_b, std_a = before.std(axis=0), after.std(axis=0)
    scale = np.sum(std_b**2)
    if not scale > 0:
        raise ValueError("before has no spread: every unit is constant over the examples")
    covariance = np.mean((before - mean_b) * (after - mean_a), axis=0)
    distribution = np.sum((mean_a - mean_b) ** 2 + (std_a - std_b) ** 2)
    # >= 0 by Cauchy-Schwarz; clipped only against rounding
    per_example = max(float(np.sum(2 * (std_a * std_b - covariance))), 0.0)
    return float(np.sqrt(distribution / scale)), float(np.sqrt(per_example / scale))


def probe_layers(mlp, probe: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every hidden layer's pre-activation (the input of its nonlinearity) and output on
    ``probe``, in inference mode (copies)."""
    mlp.forward(probe, training=False)
    pre = [z.copy() for z in mlp.preactivations]
    outputs = [h.copy() for h in mlp.hidden_inputs[1:]]
    # The last block's output is not kept by the network; a fresh activation layer computes it
    # without touching the network's own backward caches.
    outputs.append(type(mlp.hidden[-1].activation)().forward(pre[-1]))
    return pre, outputs


def probe_loss(mlp, x: np.ndarray, y: np.ndarray) -> float:
    """The loss on (x, y) in inference mode (batch norm: the statistics of x)."""
    loss, _ = softmax_cross_entropy(mlp.forward(x, training=False), y)
    return loss


# ---------------------------------------------------------------------------------------------
# Ioffe & Szegedy's Figure 1 (b, c).


def last_layer_percentiles(mlp, probe: np.ndarray) -> np.ndarray:
    """(3, units): the 15th, 50th and 85th percentiles over ``probe`` of every unit's input to
    its nonlinearity in the last hidden layer."""
    mlp.forward(probe, training=False)
    return np.percentile(mlp.preactivations[-1], FIGURE1_PERCENTILES, axis=0)


def unit_drift(percentiles: np.ndarray) -> np.ndarray:
    """Per unit, how far its percentiles moved from the first to the last record, in units of
    its spread: mean over the percentiles of |P_last - P_first|, divided by the average over
    the records of (85th - 15th percentile). ``percentiles``: (records, 3, units)."""
    spread = (percentiles[:, -1] - percentiles[:, 0]).mean(axis=0)
    flat = np.flatnonzero(~(spread > 0))
    if flat.size:
        raise ValueError(f"unit {flat[0]} has no spread: its input is the same for every example")
    moved = np.abs(percentiles[-1] - percentiles[0]).mean(axis=0)
    return moved / spread


@experiment(
    "sigmoid_input_drift",
    params={
        "steps": Param(int, 1000, 100, 20000, "SGD steps"),
        "lr": Param(float, 0.2, 1e-3, 5.0, "learning rate (plain SGD, both networks)"),
        "init_std": Param(float, 0.3, 0.01, 2.0,
                          "standard deviation of the initial Gaussian weights"),
        "depth": Param(int, 3, 1, 6, "hidden layers"),
        "width": Param(int, 100, 10, 300, "sigmoid units per hidden layer"),
        "batch": Param(int, 60, 8, 500, "mini-batch size"),
        "train_size": Param(int, 1200, 200, 10000, "training pictures"),
        "every": Param(int, 25, 1, 1000, "steps between two records of the percentiles"),
        "unit": Param(int, 0, 0, 299, "the unit of the last hidden layer that is plotted"),
    },
    figures=("percentiles_over_training", "drift_of_every_unit"),
)
def sigmoid_input_drift(rng, steps, lr, init_std, depth, width, batch, train_size, every, unit):
    """Ioffe & Szegedy (2015), Figure 1 (b, c), on the cat pictures instead of MNIST (which
    is not available offline): ``depth`` hidden layers of ``width`` sigmoid units, weights
    from a small Gaussian, mini-batches of ``batch``, plain SGD; raw pixels in [0, 1] as
    inputs (MNIST's were binary images).

    Before training and every ``every`` steps, the 15th, 50th and 85th percentiles of every
    unit's input to its sigmoid in the last hidden layer (with batch norm: gamma xhat + beta)
    are taken over a fixed probe set of pictures. ``unit_drift`` measures how far each
    unit's percentiles moved from the start to the end of training, in units of its spread.

    Returns ``record_steps`` (R,), ``plain_percentiles``/``bn_percentiles`` (R, 3) of
    ``unit``, ``plain_unit_drift``/``bn_unit_drift`` (width,), their medians ``plain_drift``
    and ``bn_drift``, ``drift_ratio`` (plain over bn), ``units_calmer_with_bn`` (fraction of
    units whose drift is smaller with batch norm), ``plain_losses``/``bn_losses`` (per step),
    ``plain_loss``/``bn_loss`` (mean of the last batch losses), and the parameters.
    """
    check_batch_fits(train_size, batch)
    if unit >= width:
        raise ParameterError(f"unit = {unit} must be < width = {width}")
    x, y = cats_task(rng, train_size, standardize=False)
    probe = x[:PROBE]
    init_seed, order_seed = (int(s) for s in rng.integers(2**63, size=2))
    record_steps = np.unique(np.r_[np.arange(0, steps, every), steps])
    recorded_after = set(record_steps[1:].tolist())  # counts of steps taken
    result = {}
    for label, mlp in twin_mlps(init_seed, x.shape[1], CLASSES, depth, width, "sigmoid",
                                init="gaussian", init_std=init_std,
                                norm_kwargs=PROBE_NORM).items():
        records = [last_layer_percentiles(mlp, probe)]

        def record(step, loss, model, records=records):
            if step + 1 in recorded_after:
                records.append(last_layer_percentiles(model, probe))

        losses = train(mlp, SGD(mlp.params(), lr), x, y, np.random.default_rng(order_seed),
                       steps, batch, callback=record)
        percentiles = np.array(records)  # (R, 3, width)
        drift = unit_drift(percentiles)
        result.update({
            f"{label}_percentiles": percentiles[:, :, unit],
            f"{label}_unit_drift": drift,
            f"{label}_drift": float(np.median(drift)),
            f"{label}_losses": losses,
            f"{label}_loss": final_loss(losses),
        })
    result.update({
        "record_steps": record_steps,
        "drift_ratio": result["plain_drift"] / result["bn_drift"],
        "units_calmer_with_bn": float(np.mean(result["bn_unit_drift"]
                                              < result["plain_unit_drift"])),
        "steps": steps, "lr": lr, "init_std": init_std, "depth": depth, "width": width,
        "batch": batch, "unit": unit,
    })
    return result


# ---------------------------------------------------------------------------------------------
# Changing the first layer's weights.

PERTURBATIONS = ("random", "step", "scale")


def perturbation_direction(kind: str, mlp, probe: np.ndarray, probe_y: np.ndarray,
                           random_direction: np.ndarray) -> np.ndarray:
    """The direction in which the first layer's weights W1 are moved: ``random_direction``
    ("random"), a gradient-descent step on the probe set, -dL/dW1 ("step"), or W1 itself
    ("scale": every weight grows by the same factor)."""
    W = mlp.hidden[0].linear.W
    if kind == "random":
        return random_direction
    if kind == "scale":
        return W.copy()
    _, dlogits = softmax_cross_entropy(mlp.forward(probe, training=True), probe_y)
    mlp.backward(dlogits, need_dx=False)
    return -mlp.hidden[0].linear.dW.copy()


@experiment(
    "first_layer_perturbation",
    params={
        "depth": Param(int, 10, 2, 20, "hidden layers"),
        "width": Param(int, 100, 8, 300, "units per hidden layer"),
        "activation": ACTIVATION,
        "size": Param(float, 0.1, 1e-3, 2.0,
                      "size of the change of W1, relative to W1 (Frobenius norms)"),
        "standardize": Param(bool, True, doc="standardize the input features"),
        "train_steps": Param(int, 0, 0, 2000,
                             "SGD steps (batches of 60) before the change; 0: at initialization"),
        "lr": Param(float, 0.02, 1e-4, 1.0, "learning rate of those steps"),
    },
    figures=("change_by_depth", "last_layer_change"),
)
def first_layer_perturbation(rng, depth, width, activation, size, standardize, train_steps, lr):
    """Change the first layer's weights W1 by ``size`` times their norm and measure how every
    hidden layer's pre-activation (the input of its nonlinearity) and output move on a
    fixed probe set of pictures, without and with batch norm (same weights, same change).

    Three kinds of change (``PERTURBATIONS``): a random direction, one gradient-descent step
    (the change training makes; each network its own gradient), and a uniform rescaling
    (W1 -> (1 + size) W1). Each kind starts from the unchanged network. Every change of a
    layer is split by ``change_parts`` into its distribution part (units' means and
    spreads) and its per-example part. With batch norm the distribution part of the
    pre-activations is zero by construction (they are gamma xhat + beta); the measurement
    says how large the per-example part is, layer by layer.

    A layer's output (after the nonlinearity) is what the next layer's weights read: with
    batch norm its mean and spread are not pinned (tanh of a unit with a fixed mean and
    spread can still change its mean and spread), so it is split the same way.

    Returns ``layers`` (1..depth) and, for each network ``plain``/``bn`` and kind, arrays over
    the layers: ``{net}_{kind}_dist`` and ``{net}_{kind}_example`` (pre-activation parts),
    ``{net}_{kind}_total`` (their hypot), ``{net}_{kind}_out_dist`` and
    ``{net}_{kind}_out_example`` (the output's parts), ``{net}_{kind}_output`` (their hypot:
    RMS change of the output over its RMS spread); ``{net}_probe_loss`` (the loss on the
    probe set before the change, which says how far training got); and the parameters.
    """
    x, y = cats_task(rng, max(PROBE, 600), standardize)
    probe, probe_y = x[:PROBE], y[:PROBE]
    init_seed, order_seed, direction_seed = (int(s) for s in rng.integers(2**63, size=3))
    random_direction = None
    result = {}
    for label, mlp in twin_mlps(init_seed, x.shape[1], CLASSES, depth, width, activation,
                                norm_kwargs=PROBE_NORM).items():
        if train_steps:
            train(mlp, SGD(mlp.params(), lr), x, y, np.random.default_rng(order_seed),
                  train_steps, 60)
        W = mlp.hidden[0].linear.W
        if random_direction is None:  # the same random direction for both networks
            random_direction = np.random.default_rng(direction_seed).standard_normal(W.shape)
        W_before = W.copy()
        result[f"{label}_probe_loss"] = probe_loss(mlp, probe, probe_y)
        pre_before, out_before = probe_layers(mlp, probe)
        for kind in PERTURBATIONS:
            direction = perturbation_direction(kind, mlp, probe, probe_y, random_direction)
            W += size * np.linalg.norm(W_before) / np.linalg.norm(direction) * direction
            pre_after, out_after = probe_layers(mlp, probe)
            W[...] = W_before
            parts = np.array([change_parts(b, a) for b, a in zip(pre_before, pre_after)])
            outputs = np.array([change_parts(b, a) for b, a in zip(out_before, out_after)])
            result.update({
                f"{label}_{kind}_dist": parts[:, 0],
                f"{label}_{kind}_example": parts[:, 1],
                f"{label}_{kind}_total": np.hypot(parts[:, 0], parts[:, 1]),
                f"{label}_{kind}_output": np.hypot(outputs[:, 0], outputs[:, 1]),
                f"{label}_{kind}_out_dist": outputs[:, 0],
                f"{label}_{kind}_out_example": outputs[:, 1],
            })
    result.update({"layers": np.arange(1, depth + 1), "depth": depth, "width": width,
                   "size": size, "activation": activation, "standardize": standardize,
                   "train_steps": train_steps})
    return result


# ---------------------------------------------------------------------------------------------
# During training: how much of each layer's input change comes from the earlier layers.


def layer_parameters(mlp) -> list[dict[str, np.ndarray]]:
    """Copies of each hidden layer's W, b and (with batch norm) gamma, beta."""
    frozen = []
    for block in mlp.hidden:
        params = {"W": block.linear.W.copy(), "b": block.linear.b.copy()}
        if block.norm is not None:
            params.update(gamma=block.norm.gamma.copy(), beta=block.norm.beta.copy())
        frozen.append(params)
    return frozen


def preactivation_with(params: dict[str, np.ndarray], block, inputs: np.ndarray) -> np.ndarray:
    """What ``block``'s pre-activation would be on ``inputs`` with the parameters ``params``
    (a ``layer_parameters`` entry); batch norm uses the statistics of ``inputs``."""
    z, _ = linear_forward(inputs, params["W"], params["b"])
    if block.norm is None:
        return z
    y, _ = batchnorm_forward(z, params["gamma"], params["beta"], block.norm.eps)
    return y


def shift_from_earlier_layers(mlp, earlier_params, earlier_pre, probe) -> np.ndarray:
    """(layers, 2): for each hidden layer, ``change_parts`` between its pre-activation at the
    earlier checkpoint and what it is now with ITS OWN parameters still at the checkpoint:
    only the layers below have moved, so this is the shift of its inputs that it would have
    to adapt to."""
    mlp.forward(probe, training=False)
    rows = []
    for block, params, before, inputs in zip(mlp.hidden, earlier_params, earlier_pre,
                                             mlp.hidden_inputs):
        rows.append(change_parts(before, preactivation_with(params, block, inputs)))
    return np.array(rows)


class Checkpoint:
    """Every hidden layer's pre-activation on the probe set and a copy of its parameters, at
    one moment of training."""

    def __init__(self, mlp, probe: np.ndarray, step: int):
        mlp.forward(probe, training=False)
        self.pre = [z.copy() for z in mlp.preactivations]
        self.params = layer_parameters(mlp)
        self.step = step


def train_between_losses(mlp, lr: float, x, y, probe, probe_y, order_seed: int, batch: int,
                         loss_from: float, loss_to: float, max_steps: int):
    """Plain SGD on ``mlp`` until its probe loss first falls to ``loss_to``; returns the
    ``Checkpoint`` taken when it first fell to ``loss_from`` (step 0 if it starts there) and
    the number of steps taken. The probe loss is evaluated after every step. Raises
    RuntimeError when ``loss_to`` is not reached within ``max_steps`` steps."""
    optimizer = SGD(mlp.params(), lr)
    batches = minibatch_indices(np.random.default_rng(order_seed), len(x), batch)
    start = Checkpoint(mlp, probe, 0) if probe_loss(mlp, probe, probe_y) <= loss_from else None
    for step in range(1, max_steps + 1):
        rows = next(batches)
        train_step(mlp, optimizer, x[rows], y[rows])
        loss = probe_loss(mlp, probe, probe_y)
        if start is None and loss <= loss_from:
            start = Checkpoint(mlp, probe, step)
        elif start is not None and loss <= loss_to:
            return start, step
    raise RuntimeError(f"the probe loss did not fall to loss_to = {loss_to} within "
                       f"max_steps = {max_steps} steps (lr = {lr})")


@experiment(
    "drift_by_depth",
    params={
        "depth": Param(int, 8, 2, 16, "hidden layers"),
        "width": WIDTH,
        "activation": ACTIVATION,
        "standardize": Param(bool, False, doc="standardize the input features"),
        "lr": Param(float, 0.02, 1e-4, 1.0, "learning rate (plain SGD, both networks)"),
        "loss_from": Param(float, 0.6, 1e-3, 5.0,
                           "probe loss at which the measured stretch of training starts"),
        "loss_to": Param(float, 0.3, 1e-4, 5.0,
                         "probe loss at which it ends (below loss_from)"),
        "max_steps": Param(int, 1000, 10, 20000,
                           "SGD steps allowed to reach loss_to (else the run fails)"),
        **MINIBATCHES,
    },
    figures=("drift_by_depth",),
)
def drift_by_depth(rng, depth, width, activation, standardize, lr, loss_from, loss_to,
                   max_steps, batch, train_size):
    """Layer by layer, how far a layer's inputs move because of the layers below it while the
    network makes a given amount of progress, without and with batch norm.

    The two networks learn at different speeds, so a shift per step would compare networks
    at different stages of learning. Here each network is measured over the same progress:
    from the moment its loss on a fixed probe set first falls to ``loss_from`` (checkpoint)
    to the moment it first falls to ``loss_to``, however many steps each takes. At the end,
    each hidden layer's pre-activation on the probe set is recomputed with ITS OWN
    parameters held at the checkpoint (``shift_from_earlier_layers``): the difference from
    the checkpoint is caused by the layers below alone, the internal covariate shift that
    this layer would have to adapt to. It is split by ``change_parts`` into the
    distribution part and the per-example part. The first layer's input is the data, so it
    never moves.

    Returns ``layers`` (1..depth); per network ``plain``/``bn``: ``{net}_dist``,
    ``{net}_example``, ``{net}_total`` (depth,), ``{net}_step_from``, ``{net}_step_to``
    and ``{net}_steps`` (steps between the two); the growth with depth (last layer over
    layer 2) ``plain_dist_growth``, ``plain_example_growth``, ``plain_total_growth``,
    ``bn_example_growth``, ``bn_total_growth``; and the parameters. Requires depth >= 2.
    """
    check_batch_fits(train_size, batch)
    if not loss_to < loss_from:
        raise ParameterError(f"loss_to = {loss_to} must be below loss_from = {loss_from}")
    x, y = cats_task(rng, train_size, standardize)
    probe, probe_y = x[:PROBE], y[:PROBE]
    init_seed, order_seed = (int(s) for s in rng.integers(2**63, size=2))
    result = {}
    for label, mlp in twin_mlps(init_seed, x.shape[1], CLASSES, depth, width, activation,
                                norm_kwargs=PROBE_NORM).items():
        start, end = train_between_losses(mlp, lr, x, y, probe, probe_y, order_seed, batch,
                                          loss_from, loss_to, max_steps)
        shift = shift_from_earlier_layers(mlp, start.params, start.pre, probe)
        result.update({
            f"{label}_dist": shift[:, 0],
            f"{label}_example": shift[:, 1],
            f"{label}_total": np.hypot(shift[:, 0], shift[:, 1]),
            f"{label}_step_from": start.step,
            f"{label}_step_to": end,
            f"{label}_steps": end - start.step,
        })
    # Growth from layer 2 (the first whose input can move) to the last; batch norm's
    # distribution part is zero up to eps, so it has no meaningful growth.
    for key in ("plain_dist", "plain_example", "plain_total", "bn_example", "bn_total"):
        result[f"{key}_growth"] = float(result[key][-1] / result[key][1])
    result.update({"layers": np.arange(1, depth + 1), "depth": depth, "lr": lr,
                   "loss_from": loss_from, "loss_to": loss_to, "activation": activation,
                   "standardize": standardize})
    return result


# ---------------------------------------------------------------------------------------------
# The later layers learn while the early layers keep moving.

DRIFTS = ("static", "affine", "random")


class EarlyLayerDrift:
    """Moves the first ``early`` hidden layers' weights along a fixed path as training goes
    on, from their initial values (fraction 0) to the full change (fraction 1).

    "affine": every unit's pre-activation z is replaced by a z + c, with a = exp(size g) and
    c = size h s (g, h standard normal per unit, s the unit's initial spread): the units'
    means and spreads shift, as the lecture's hidden units "shift around". "random": the
    weights move in a random direction, W0 + size |W0| D / |D|, which changes which
    example gets which value as well. "static": nothing moves.
    """

    def __init__(self, kind: str, mlp, early: int, size: float, probe: np.ndarray,
                 rng: np.random.Generator):
        self.kind, self.size = kind, size
        self.layers = [block.linear for block in mlp.hidden[:early]]
        self.W0 = [layer.W.copy() for layer in self.layers]
        self.b0 = [layer.b.copy() for layer in self.layers]
        mlp.forward(probe, training=False)
        spreads = [linear_forward(u, W, b)[0].std(axis=0)
                   for u, W, b in zip(mlp.hidden_inputs, self.W0, self.b0)]
        # Drawn for every kind, so that all conditions share the generator's later draws.
        self.log_scales = [rng.standard_normal(W.shape[1]) for W in self.W0]
        self.shifts = [rng.standard_normal(W.shape[1]) * s for W, s in zip(self.W0, spreads)]
        self.directions = [rng.standard_normal(W.shape) for W in self.W0]

    def move_to(self, fraction: float) -> None:
        if self.kind == "static":
            return
        amount = self.size * fraction
        for i, layer in enumerate(self.layers):
            if self.kind == "affine":
                a = np.exp(amount * self.log_scales[i])
                layer.W[...] = self.W0[i] * a
                layer.b[...] = self.b0[i] * a + amount * self.shifts[i]
            else:
                d = self.directions[i]
                layer.W[...] = self.W0[i] + amount * np.linalg.norm(self.W0[i]) \
                    / np.linalg.norm(d) * d


@experiment(
    "moving_early_layers",
    params={
        "depth": Param(int, 6, 2, 12, "hidden layers"),
        "early": Param(int, 3, 1, 11, "early hidden layers that move instead of learning"),
        "width": WIDTH,
        "activation": ACTIVATION,
        "size": Param(float, 1.0, 0.0, 3.0, "how far the early layers move by the end"),
        "standardize": Param(bool, True, doc="standardize the input features"),
        "lr": Param(float, 0.05, 1e-4, 1.0, "learning rate of the later layers (plain SGD)"),
        "steps": Param(int, 300, 20, 5000, "SGD steps"),
        **MINIBATCHES,
    },
    figures=("later_layers_learning",),
)
def moving_early_layers(rng, depth, early, width, activation, size, standardize, lr, steps,
                        batch, train_size):
    """Coupling between early and later layers: only the later layers learn (SGD on the
    hidden layers after the first ``early`` ones and on the output layer) while the early
    layers' weights move along a fixed path (``EarlyLayerDrift``: "static", "affine" or
    "random"), without and with batch norm. Same initial weights, same mini-batches and the
    same paths for both networks.

    If what the later layers have to do did not depend on the early layers, the moving
    early layers would cost nothing. The cost is measured on a probe set at the end, as the
    fraction of the static run's learning progress that is lost:
    (loss_moving - loss_static) / (loss_initial - loss_static).

    Returns, per network ``plain``/``bn``: ``{net}_initial_loss``, ``{net}_{drift}_loss``
    (final probe loss), ``{net}_{drift}_losses`` (batch losses per step),
    ``{net}_affine_lost``/``{net}_random_lost`` (fraction of progress lost),
    ``{net}_affine_excess``/``{net}_random_excess`` (batch loss above the static run's on
    the same batches, averaged over the second half of training); and the parameters.
    """
    check_batch_fits(train_size, batch)
    if early >= depth:
        raise ParameterError(f"early = {early} must be < depth = {depth}: some hidden layers "
                             f"must learn")
    x, y = cats_task(rng, train_size, standardize)
    probe, probe_y = x[:PROBE], y[:PROBE]
    init_seed, order_seed, drift_seed = (int(s) for s in rng.integers(2**63, size=3))
    result = {}
    for label in TWIN_NORMS:
        for kind in DRIFTS:
            mlp = twin_network(label, init_seed, x.shape[1], CLASSES, depth, width, activation,
                               norm_kwargs=PROBE_NORM)
            drift = EarlyLayerDrift(kind, mlp, early, size, probe,
                                    np.random.default_rng(drift_seed))
            learning = {name: p for name, p in mlp.params().items()
                        if layer_of_parameter(name, depth) >= early}
            optimizer = SGD(learning, lr)
            batches = minibatch_indices(np.random.default_rng(order_seed), len(x), batch)
            result[f"{label}_initial_loss"] = probe_loss(mlp, probe, probe_y)
            losses = np.empty(steps)
            for step in range(steps):
                drift.move_to((step + 1) / steps)
                rows = next(batches)
                losses[step], dlogits = softmax_cross_entropy(
                    mlp.forward(x[rows], training=True), y[rows])
                mlp.backward(dlogits, need_dx=False)
                grads = mlp.grads()
                optimizer.step({name: grads[name] for name in learning})
            result[f"{label}_{kind}_losses"] = losses
            result[f"{label}_{kind}_loss"] = probe_loss(mlp, probe, probe_y)
        progress = result[f"{label}_initial_loss"] - result[f"{label}_static_loss"]
        static_late = result[f"{label}_static_losses"][steps // 2:]
        for kind in DRIFTS[1:]:
            result[f"{label}_{kind}_lost"] = \
                (result[f"{label}_{kind}_loss"] - result[f"{label}_static_loss"]) / progress
            # Same batches in every run, so the batch losses can be compared step by step,
            # which is far less noisy than one final loss.
            result[f"{label}_{kind}_excess"] = float(np.mean(
                result[f"{label}_{kind}_losses"][steps // 2:] - static_late))
    result.update({"depth": depth, "early": early, "size": size, "steps": steps, "lr": lr,
                   "activation": activation, "standardize": standardize})
    return result


# ---------------------------------------------------------------------------------------------
# During ordinary training: how much of the later layers' learning the earlier layers' own
# concurrent updates undo.


def step_interaction(mlp, params: dict[str, np.ndarray], early: list[str], late: list[str],
                     x: np.ndarray, y: np.ndarray, lr: float) -> tuple[float, float, float, float]:
    """One plain SGD step on the batch (x, y), taken by all parameters at once as usual, and
    the batch loss at the four corners of that step: (L00, L01, L10, L11), where the first
    index says whether the ``early`` parameters have taken their step and the second whether
    the ``late`` ones have. Every loss is computed in training mode on the same batch (batch
    norm: its statistics). On return the model has taken the whole step (L11)."""
    before, dlogits = softmax_cross_entropy(mlp.forward(x, training=True), y)
    mlp.backward(dlogits, need_dx=False)
    grads = mlp.grads()
    update = {name: -lr * grads[name] for name in early + late}

    def move(names, sign=1.0):
        for name in names:
            params[name] += sign * update[name]

    def batch_loss():
        return softmax_cross_entropy(mlp.forward(x, training=True), y)[0]

    move(late)
    late_only = batch_loss()
    move(early)
    both = batch_loss()
    move(late, -1.0)
    early_only = batch_loss()
    move(late)
    return before, late_only, early_only, both


@experiment(
    "concurrent_updates",
    params={
        "depth": Param(int, 6, 2, 12, "hidden layers"),
        "early": Param(int, 3, 1, 11, "hidden layers counted as early (the rest and the "
                                      "output layer are the later layers)"),
        "width": WIDTH,
        "activation": ACTIVATION,
        "standardize": Param(bool, True, doc="standardize the input features"),
        "lr": Param(float, 0.02, 1e-4, 1.0, "learning rate (plain SGD, both networks)"),
        "steps": Param(int, 100, 10, 5000, "SGD steps"),
        **MINIBATCHES,
    },
    figures=("later_layers_progress",),
)
def concurrent_updates(rng, depth, early, width, activation, standardize, lr, steps, batch,
                       train_size):
    """Coupling between early and later layers during ordinary training: every layer learns
    (plain SGD, all parameters step at once), without and with batch norm, from the same
    initial weights on the same mini-batches.

    At every step, on that step's batch (``step_interaction``), the later layers' step is
    evaluated twice: what it gains with the early layers standing still,
    ``late_gain = L00 - L01``, and what it gains when the early layers take their own step at
    the same time, as they do in training, ``late_gain_moved = L10 - L11``. If what the
    later layers have to do did not depend on the early layers (a loss that is a sum of an
    early part and a late part), the two would be equal. The coupling is the fraction of
    the later layers' progress that the early layers' concurrent steps undo, summed over
    the run: sum(late_gain - late_gain_moved) / sum(late_gain); a negative value would mean
    that the early steps help the later ones.

    Returns, per network ``plain``/``bn``: ``{net}_losses`` (batch loss before each step),
    ``{net}_late_gain``, ``{net}_late_gain_moved``, ``{net}_early_gain`` (L00 - L10) per
    step, ``{net}_coupling``, ``{net}_loss`` (mean of the last batch losses); and the
    parameters.
    """
    check_batch_fits(train_size, batch)
    if early >= depth:
        raise ParameterError(f"early = {early} must be < depth = {depth}: some hidden layers "
                             f"must be later layers")
    x, y = cats_task(rng, train_size, standardize)
    init_seed, order_seed = (int(s) for s in rng.integers(2**63, size=2))
    result = {}
    for label, mlp in twin_mlps(init_seed, x.shape[1], CLASSES, depth, width, activation,
                                norm_kwargs=PROBE_NORM).items():
        params = mlp.params()
        early_names = [n for n in params if layer_of_parameter(n, depth) < early]
        late_names = [n for n in params if layer_of_parameter(n, depth) >= early]
        batches = minibatch_indices(np.random.default_rng(order_seed), len(x), batch)
        corners = np.empty((steps, 4))
        for step in range(steps):
            rows = next(batches)
            corners[step] = step_interaction(mlp, params, early_names, late_names, x[rows],
                                             y[rows], lr)
        late_gain = corners[:, 0] - corners[:, 1]
        late_gain_moved = corners[:, 2] - corners[:, 3]
        if not late_gain.sum() > 0:
            raise RuntimeError(f"the later layers' steps made no progress ({label} network)")
        result.update({
            f"{label}_losses": corners[:, 0],
            f"{label}_late_gain": late_gain,
            f"{label}_late_gain_moved": late_gain_moved,
            f"{label}_early_gain": corners[:, 0] - corners[:, 2],
            f"{label}_coupling": float((late_gain - late_gain_moved).sum() / late_gain.sum()),
            f"{label}_loss": final_loss(corners[:, 0]),
        })
    result.update({"depth": depth, "early": early, "width": width, "lr": lr, "steps": steps,
                   "activation": activation, "standardize": standardize})
    return result
