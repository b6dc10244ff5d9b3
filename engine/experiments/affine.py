"""Batch norm's gamma and beta: what sets a unit's distribution with and without batch norm,
and whether gradient descent uses gamma and beta to undo the normalization.

With batch norm, a unit's normalized pre-activation y = gamma * xhat + beta has, over the
batch, mean beta and standard deviation |gamma| (up to eps) whatever the earlier layers do;
without it, the mean and spread of z = u W + b depend on every earlier weight. Both
experiments use the spiral task and its twin networks (``spiral_twins``) of
``engine.experiments.twins``, as ``engine.experiments.optimization`` does.
"""
from __future__ import annotations

import copy

import numpy as np

from engine.experiments.twins import SPIRAL_PARAMS, check_batch_fits, final_loss, spiral_twins, \
    task_and_seeds
from engine.layers import linear_forward
from engine.losses import softmax_cross_entropy
from engine.measure import layer_of_parameter, weight_gradients
from engine.optim import SGD
from engine.registry import Param, ParameterError, experiment
from engine.train import minibatch_indices, train_step


def _gradients(mlp, x, y) -> dict[str, np.ndarray]:
    """dL/dp of every parameter on (x, y), computed on a copy (the model is left as it was)."""
    probe = copy.deepcopy(mlp)
    _, dlogits = softmax_cross_entropy(probe.forward(x, training=True), y)
    probe.backward(dlogits, need_dx=False)
    return {name: g.copy() for name, g in probe.grads().items()}


def preactivation_after_step(mlp, grads, lr: float, x, layer: int, moved) -> np.ndarray:
    """Hidden layer ``layer``'s pre-activation on ``x`` (training mode) after the layers whose
    index is in ``moved`` take the step p -= lr * dL/dp (0-based; the output layer is
    ``depth``), on a copy."""
    stepped = copy.deepcopy(mlp)
    depth = len(mlp.hidden)
    for name, p in stepped.params().items():
        if layer_of_parameter(name, depth) in moved:
            p -= lr * grads[name]
    stepped.forward(x, training=True)
    return stepped.preactivations[layer]


def moment_changes(before: np.ndarray, after: np.ndarray) -> tuple[float, float, float]:
    """How far a layer's units moved, averaged over units, each in units of its own spread
    before: |mean change| / std, |log(std after / std before)|, and the RMS change of the
    individual values / std (which also sees changes of shape and of which example sits
    where)."""
    std = before.std(axis=0)
    mean_shift = np.abs(after.mean(axis=0) - before.mean(axis=0)) / std
    spread = np.abs(np.log(after.std(axis=0) / std))
    values = np.sqrt(np.mean((after - before) ** 2, axis=0)) / std
    return float(mean_shift.mean()), float(spread.mean()), float(values.mean())


@experiment(
    "distribution_control",
    params={**SPIRAL_PARAMS,
            "layer": Param(int, 6, 1, 12, "the hidden layer watched (1 = first; <= depth)"),
            "steps": Param(int, 200, 20, 2000, "SGD steps"),
            "every": Param(int, 10, 1, 500, "steps between two measurements"),
            "lr": Param(float, 0.1, 1e-4, 2.0, "learning rate (plain SGD, both networks)")},
    figures=("step_change_sources", "moments_over_training"),
)
def distribution_control(rng, depth, width, batch, turns, train_size, layer, steps, every, lr):
    """Who moves a hidden layer's distribution: its own parameters or the earlier layers?

    A plain and a batch-norm ReLU network train side by side (same start, same batches).
    Every ``every`` steps, on that step's batch, hidden layer ``layer``'s pre-activations
    (the input of its ReLU; with batch norm, gamma * xhat + beta) are taken before the SGD
    step, after only the earlier layers take their step, and after the whole step. For each,
    ``moment_changes``: the mean shift and the log change of the spread of every unit (in
    units of its spread) and the RMS change of the values themselves. Then, over training,
    every unit's mean and spread at each measurement, and the check that with batch norm the
    mean is beta and the spread |gamma|.

    Returns ``checkpoints`` (T,); per network (``plain_``, ``bn_``) the per-step changes
    caused by the earlier layers ``*_earlier_mean``, ``*_earlier_spread``,
    ``*_earlier_values`` and by the whole step ``*_total_mean``, ``*_total_spread``,
    ``*_total_values`` (T,), their means over training (same names with ``_avg``), the
    unit moments ``*_unit_means``, ``*_unit_stds`` (T, width), ``*_std_drift`` (median over
    units of |log(std at the end / std at the start)|) and ``*_mean_drift`` (median |mean
    change| over training in units of the starting std), ``*_loss``; for batch norm
    ``beta_gap`` (largest |mean - beta| / |gamma|) and ``gamma_gap`` (largest
    |std / |gamma| - 1|); ``layer``, ``lr``, ``steps``.
    """
    check_batch_fits(train_size, batch)
    if layer > depth:
        raise ParameterError(f"layer = {layer} must be <= depth = {depth}")
    x, y, init_seed, order_seed = task_and_seeds(rng, train_size, turns)
    watched = layer - 1
    earlier = set(range(watched))
    everything = set(range(depth + 1))
    result = {}
    for label, mlp in spiral_twins(init_seed, depth, width).items():
        optimizer = SGD(mlp.params(), lr=lr)
        batches = minibatch_indices(np.random.default_rng(order_seed), len(x), batch)
        rows_of = {"earlier": [], "total": []}
        means, stds, beta_gap, gamma_gap = [], [], 0.0, 0.0
        losses = np.empty(steps)
        for step in range(steps):
            rows = next(batches)
            if step % every == 0:
                grads = _gradients(mlp, x[rows], y[rows])
                before = preactivation_after_step(mlp, grads, lr, x[rows], watched, set())
                for part, moved in (("earlier", earlier), ("total", everything)):
                    after = preactivation_after_step(mlp, grads, lr, x[rows], watched, moved)
                    rows_of[part].append(moment_changes(before, after))
                means.append(before.mean(axis=0))
                stds.append(before.std(axis=0))
                norm = mlp.hidden[watched].norm
                if norm is not None:
                    scale = np.abs(norm.gamma)
                    beta_gap = max(beta_gap, float(np.max(np.abs(means[-1] - norm.beta) / scale)))
                    gamma_gap = max(gamma_gap, float(np.max(np.abs(stds[-1] / scale - 1))))
            losses[step] = train_step(mlp, optimizer, x[rows], y[rows])
        means, stds = np.array(means), np.array(stds)
        for part, changes in rows_of.items():
            for column, name in zip(np.array(changes).T, ("mean", "spread", "values")):
                result[f"{label}_{part}_{name}"] = column
                result[f"{label}_{part}_{name}_avg"] = float(column.mean())
        result.update({
            f"{label}_unit_means": means,
            f"{label}_unit_stds": stds,
            f"{label}_std_drift": float(np.median(np.abs(np.log(stds[-1] / stds[0])))),
            f"{label}_mean_drift": float(np.median(np.abs(means[-1] - means[0]) / stds[0])),
            f"{label}_loss": final_loss(losses),
        })
        if label == "bn":
            result.update({"beta_gap": beta_gap, "gamma_gap": gamma_gap})
    result.update({"checkpoints": np.arange(0, steps, every), "layer": layer, "lr": lr,
                   "steps": steps})
    return result


def normalization_inputs(mlp) -> list[np.ndarray]:
    """Each hidden layer's z = u W + b (the input of its norm) from the last forward pass."""
    return [linear_forward(block.input, block.linear.W, block.linear.b)[0]
            for block in mlp.hidden]


def undo_error(mlp) -> float:
    """How far the batch-norm layers are from undoing themselves on the last forward batch:
    RMS(y - z) / std(z) per unit (0 when gamma = std_B(z) and beta = mean_B(z), i.e.
    y = z), averaged over the units of all hidden layers."""
    errors = []
    for z, y in zip(normalization_inputs(mlp), mlp.preactivations):
        errors.append(np.sqrt(np.mean((y - z) ** 2, axis=0)) / z.std(axis=0))
    return float(np.mean(errors))


def affine_vs_batch_statistics(mlp) -> dict[str, np.ndarray]:
    """Every unit's gamma, beta and the batch std and mean of its input z on the last forward
    batch, all hidden layers concatenated. Undoing the normalization needs gamma = sigma_B
    and beta = mu_B."""
    z = normalization_inputs(mlp)
    return {
        "gamma": np.concatenate([block.norm.gamma for block in mlp.hidden]),
        "beta": np.concatenate([block.norm.beta for block in mlp.hidden]),
        "sigma": np.concatenate([zi.std(axis=0) for zi in z]),
        "mu": np.concatenate([zi.mean(axis=0) for zi in z]),
    }


def undoing_summary(stats: dict[str, np.ndarray], tolerance: float = 0.1) -> dict[str, float]:
    """Median |log(|gamma| / sigma_B)|, median |beta - mu_B| / sigma_B, and the fraction of
    units within ``tolerance`` of undoing on both counts."""
    log_ratio = np.abs(np.log(np.abs(stats["gamma"]) / stats["sigma"]))
    shift = np.abs(stats["beta"] - stats["mu"]) / stats["sigma"]
    undone = (np.abs(np.abs(stats["gamma"]) / stats["sigma"] - 1) < tolerance) \
        & (shift < tolerance)
    return {"log_ratio": float(np.median(log_ratio)), "shift": float(np.median(shift)),
            "undone_fraction": float(np.mean(undone))}


def start_as_plain(bn_mlp, plain_mlp, x) -> None:
    """Set every gamma to sqrt(var(z) + eps) and beta to mean(z), with z the plain network's
    pre-activations on ``x`` (same weights): on ``x`` as one batch, every batch-norm layer
    then returns its input unchanged and the two networks compute the same function."""
    plain_mlp.forward(x, training=True)
    for block, z in zip(bn_mlp.hidden, plain_mlp.preactivations):
        block.norm.gamma[...] = np.sqrt(z.var(axis=0) + block.norm.eps)
        block.norm.beta[...] = z.mean(axis=0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def scale_normalized_weights(mlp, gain: float) -> None:
    """Multiply the weights and bias of every hidden linear layer (those feeding batch norm)
    by ``gain``; the output layer, which no norm follows, keeps its own. Each z = u W + b is
    multiplied by ``gain``, and so are its batch mean and std: BN(gain * z) = BN(z) (up to
    eps, Ioffe & Szegedy 2015, Sec. 3.3), so the network computes the same function."""
    for block in mlp.hidden:
        block.linear.W *= gain
        block.linear.b *= gain


@experiment(
    "gamma_beta_undo",
    params={**SPIRAL_PARAMS,
            "depth": Param(int, 4, 1, 12, "hidden layers"),
            "steps": Param(int, 300, 20, 2000, "SGD steps"),
            "every": Param(int, 15, 1, 500, "steps between two measurements"),
            "lr": Param(float, 0.1, 1e-4, 2.0, "learning rate (plain SGD, all networks)"),
            "probe": Param(int, 512, 16, 20000, "training points on which mu_B and sigma_B "
                                                "are measured"),
            "gain": Param(float, 10.0, 2.0, 100.0, "factor on the weights feeding batch norm "
                                                   "in the 'scaled' network")},
    figures=("gamma_vs_sigma", "undo_over_training"),
)
def gamma_beta_undo(rng, depth, width, batch, turns, train_size, steps, every, lr, probe, gain):
    """Does gradient descent use gamma and beta to cancel batch norm?

    Undoing the normalization of a unit means gamma = sigma_B and beta = mu_B (the batch std
    and mean of its input z), so that y = z (Ioffe & Szegedy 2015, Sec. 3). Four ReLU
    networks with the same weights train on the same batches: ``plain`` (no batch norm),
    ``bn`` (batch norm, gamma = 1 and beta = 0 at the start), ``undone``: batch norm
    started exactly at the undoing point (``start_as_plain``), so it computes the same
    function as ``plain`` at step 0, and ``scaled``: ``bn`` with the weights feeding batch
    norm multiplied by ``gain`` (``scale_normalized_weights``), the same function as ``bn``
    with every sigma_B ``gain`` times larger. If gradient descent pulled gamma towards
    sigma_B, the scaled network's gammas would grow ``gain`` times larger than ``bn``'s.
    Every ``every`` steps, on a fixed ``probe`` set of training points: ``undo_error`` of
    ``bn`` and ``undone`` (0 = undone) and the gap between the outputs of ``undone`` and
    ``plain`` (RMS logit difference / std of plain's logits).

    Returns ``checkpoints``; ``bn_undo_error``, ``undone_undo_error``, ``output_gap`` (T,);
    per-step batch losses ``plain_losses``, ``bn_losses``, ``undone_losses``,
    ``scaled_losses`` and final losses ``*_loss``; at the start, ``start_output_gap`` (on the
    whole training set as one batch, where ``undone`` and ``plain`` compute the same
    function), ``start_gradient_cosine`` (depth + 1, cosine between plain's and undone's
    dL/dW per linear layer, the output layer last) with ``start_min_gradient_cosine`` over
    the hidden layers, ``scaled_start_output_gap`` (``scaled`` against ``bn``, largest
    |difference| / largest |logit|) and ``scaled_start_gamma_gradient_gap`` (their dL/dgamma,
    relative L2 difference); after training, for ``bn``, ``undone`` and ``scaled``, every
    unit's ``*_gamma``, ``*_beta``, ``*_sigma``, ``*_mu`` and ``undoing_summary`` as
    ``*_log_ratio``, ``*_shift``, ``*_undone_fraction``; ``bn_start_undo_error``,
    ``bn_final_undo_error``, ``bn_undo_closed`` (1 - final / start: the fraction of its
    distance from undoing that ``bn`` closed), ``undone_start_undo_error`` (on the probe
    batch, whose statistics differ slightly from the whole set's),
    ``undone_final_undo_error``, ``final_output_gap``; ``sigma_log_ratio`` and
    ``gamma_log_ratio`` (medians over units of log(scaled / bn) of sigma_B and of |gamma|)
    and ``gamma_tracking`` = gamma_log_ratio / sigma_log_ratio (1 if gamma followed sigma_B,
    0 if it ignored it); ``lr``, ``steps``, ``gain``.
    """
    check_batch_fits(train_size, batch)
    if probe > train_size:
        raise ParameterError(f"probe = {probe} must be <= train_size = {train_size}")
    x, y, init_seed, order_seed = task_and_seeds(rng, train_size, turns)
    nets = spiral_twins(init_seed, depth, width)
    nets["undone"] = spiral_twins(init_seed, depth, width)["bn"]
    nets["scaled"] = spiral_twins(init_seed, depth, width)["bn"]
    start_as_plain(nets["undone"], nets["plain"], x)
    scale_normalized_weights(nets["scaled"], gain)
    plain_logits = nets["plain"].forward(x, training=True)
    gap = nets["undone"].forward(x, training=True) - plain_logits
    start = {label: _gradients(nets[label], x, y) for label in ("bn", "scaled")}
    bn_logits = nets["bn"].forward(x, training=True)
    scaled_gap = nets["scaled"].forward(x, training=True) - bn_logits
    gamma_grads = {label: np.concatenate([g for name, g in grads.items()
                                          if name.endswith("norm.gamma")])
                   for label, grads in start.items()}
    result = {
        "start_output_gap": float(np.sqrt(np.mean(gap**2)) / plain_logits.std()),
        "start_gradient_cosine": np.array([
            cosine(a, b) for a, b in zip(weight_gradients(copy.deepcopy(nets["plain"]), x, y),
                                         weight_gradients(copy.deepcopy(nets["undone"]), x, y))]),
        "scaled_start_output_gap": float(np.abs(scaled_gap).max() / np.abs(bn_logits).max()),
        "scaled_start_gamma_gradient_gap": float(
            np.linalg.norm(gamma_grads["scaled"] - gamma_grads["bn"])
            / np.linalg.norm(gamma_grads["bn"])),
    }
    result["start_min_gradient_cosine"] = float(result["start_gradient_cosine"][:-1].min())

    optimizers = {label: SGD(mlp.params(), lr=lr) for label, mlp in nets.items()}
    batches = minibatch_indices(np.random.default_rng(order_seed), len(x), batch)
    losses = {label: np.empty(steps) for label in nets}
    undo = {"bn": [], "undone": []}
    output_gap = []
    probe_x = x[:probe]
    for step in range(steps):
        rows = next(batches)
        if step % every == 0:
            logits = {label: nets[label].forward(probe_x, training=True)
                      for label in ("plain", "undone")}
            for label in undo:
                nets[label].forward(probe_x, training=True)
                undo[label].append(undo_error(nets[label]))
            difference = logits["undone"] - logits["plain"]
            output_gap.append(np.sqrt(np.mean(difference**2)) / logits["plain"].std())
        for label, mlp in nets.items():
            losses[label][step] = train_step(mlp, optimizers[label], x[rows], y[rows])
    for label in nets:
        result[f"{label}_losses"] = losses[label]
        result[f"{label}_loss"] = final_loss(losses[label])
    stats = {}
    for label in ("bn", "undone", "scaled"):
        nets[label].forward(probe_x, training=True)
        stats[label] = affine_vs_batch_statistics(nets[label])
        result.update({f"{label}_{name}": value for name, value in stats[label].items()})
        result.update({f"{label}_{name}": value
                       for name, value in undoing_summary(stats[label]).items()})
    for label in undo:
        result[f"{label}_undo_error"] = np.array(undo[label])
        result[f"{label}_start_undo_error"] = undo[label][0]
        result[f"{label}_final_undo_error"] = undo[label][-1]
    sigma_log_ratio = float(np.median(np.log(stats["scaled"]["sigma"] / stats["bn"]["sigma"])))
    gamma_log_ratio = float(np.median(np.log(np.abs(stats["scaled"]["gamma"])
                                             / np.abs(stats["bn"]["gamma"]))))
    result.update({"checkpoints": np.arange(0, steps, every),
                   "bn_undo_closed": 1 - undo["bn"][-1] / undo["bn"][0],
                   "output_gap": np.array(output_gap), "final_output_gap": output_gap[-1],
                   "sigma_log_ratio": sigma_log_ratio, "gamma_log_ratio": gamma_log_ratio,
                   "gamma_tracking": gamma_log_ratio / sigma_log_ratio,
                   "lr": lr, "steps": steps, "gain": gain})
    return result
