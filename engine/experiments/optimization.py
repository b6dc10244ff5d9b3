"""How batch norm changes optimization: Santurkar et al.'s gradient-based internal covariate
shift over training, the smoothness of the loss along the gradient (their Figure 4), and the
number of steps to a target loss over a range of learning rates (Bjorck et al. 2018).

Every experiment trains two ReLU networks from the same initial weights on the same
mini-batches, one plain and one with batch norm before each ReLU, on a spiral task
(``engine.experiments.twins.spiral_task``) small enough to run in about a second.
"""
from __future__ import annotations

import copy

import numpy as np

from engine.experiments.twins import (LOSS_WINDOW, SPIRAL_PARAMS, check_batch_fits, final_loss,
                                      spiral_twins, task_and_seeds)
from engine.losses import softmax_cross_entropy
from engine.measure import internal_covariate_shift, weight_gradients
from engine.optim import SGD
from engine.registry import Param, ParameterError, experiment
from engine.train import minibatch_indices, train_step

# A batch loss above this (the untrained loss is ln 3 = 1.1) means the run has blown up:
# stopping there keeps overflowing logits from ever reaching the loss.
DIVERGED_LOSS = 10.0


@experiment(
    "gradient_ics",
    params={**SPIRAL_PARAMS,
            "steps": Param(int, 200, 20, 2000, "SGD steps"),
            "every": Param(int, 25, 1, 500, "steps between two measurements"),
            "lr": Param(float, 0.1, 1e-4, 2.0, "learning rate (plain SGD, both networks)")},
    figures=("ics_over_training", "ics_by_layer"),
)
def gradient_ics(rng, depth, width, batch, turns, train_size, steps, every, lr):
    """Santurkar et al. (2018)'s internal covariate shift, with and without batch norm.

    Every ``every`` steps, on that step's mini-batch and before the update, each layer's
    weight gradient G is compared with G', the same gradient after all earlier layers take
    their gradient step (``engine.measure.internal_covariate_shift``): cosine(G, G') (1 = no
    shift) and ||G - G'||. The first layer is left out of the summaries (nothing before it
    moves). Plain SGD with the same ``lr`` as the measured step, so G' is where training
    really goes. ||G - G'|| also grows with the size of G, which differs between the two
    networks; ``rel_l2`` = ||G - G'|| / ||G|| compares the change with the gradient itself.

    Returns ``checkpoints`` (T,), ``layers`` (2..depth+1, the last is the output layer),
    ``plain_cosine``, ``bn_cosine``, ``plain_l2``, ``bn_l2``, ``plain_rel_l2``,
    ``bn_rel_l2`` (T, depth), the means over checkpoints and layers ``plain_mean_cosine``,
    ``bn_mean_cosine``, ``cosine_gain`` (bn minus plain), ``plain_mean_l2``, ``bn_mean_l2``,
    ``l2_ratio`` (bn over plain), ``plain_mean_rel_l2``, ``bn_mean_rel_l2``,
    ``rel_l2_ratio`` (bn over plain), the final training losses ``plain_loss``,
    ``bn_loss``, and ``lr``, ``depth``, ``steps``.
    """
    check_batch_fits(train_size, batch)
    x, y, init_seed, order_seed = task_and_seeds(rng, train_size, turns)
    checkpoints = np.arange(0, steps, every)
    result = {}
    for label, mlp in spiral_twins(init_seed, depth, width).items():
        optimizer = SGD(mlp.params(), lr=lr)
        batches = minibatch_indices(np.random.default_rng(order_seed), len(x), batch)
        cosine, l2, rel_l2, losses = [], [], [], np.empty(steps)
        for step in range(steps):
            rows = next(batches)
            if step % every == 0:
                shift = internal_covariate_shift(mlp, x[rows], y[rows], lr)
                norms = np.array([np.linalg.norm(g) for g in
                                  weight_gradients(copy.deepcopy(mlp), x[rows], y[rows])])
                cosine.append(shift["cosine"][1:])
                l2.append(shift["l2"][1:])
                rel_l2.append(shift["l2"][1:] / norms[1:])
            losses[step] = train_step(mlp, optimizer, x[rows], y[rows])
        result[f"{label}_cosine"] = np.array(cosine)
        result[f"{label}_l2"] = np.array(l2)
        result[f"{label}_rel_l2"] = np.array(rel_l2)
        result[f"{label}_mean_cosine"] = float(np.mean(cosine))
        result[f"{label}_mean_l2"] = float(np.mean(l2))
        result[f"{label}_mean_rel_l2"] = float(np.mean(rel_l2))
        result[f"{label}_loss"] = final_loss(losses)
    result.update({
        "checkpoints": checkpoints,
        "layers": np.arange(2, depth + 2),
        "cosine_gain": result["bn_mean_cosine"] - result["plain_mean_cosine"],
        "l2_ratio": result["bn_mean_l2"] / result["plain_mean_l2"],
        "rel_l2_ratio": result["bn_mean_rel_l2"] / result["plain_mean_rel_l2"],
        "lr": lr, "depth": depth, "steps": steps,
    })
    return result


def _loss_and_gradient(mlp, x, y) -> tuple[float, np.ndarray]:
    """Training-mode loss and the gradient of all parameters as one flat vector."""
    loss, dlogits = softmax_cross_entropy(mlp.forward(x, training=True), y)
    mlp.backward(dlogits, need_dx=False)
    return loss, np.concatenate([g.ravel() for g in mlp.grads().values()])


def landscape_along_gradient(mlp, x, y, step_sizes: np.ndarray):
    """The loss and the gradient at theta - eta g for each eta in ``step_sizes``, where g is
    the gradient at theta, on one batch (Santurkar et al. 2018, Sec. 3.1, Figure 4).

    Works on a copy; returns ``losses`` (S + 1,), the first at eta = 0, ``gradient_changes``
    (S,) = ||grad(theta - eta g) - g||, and ||g||."""
    probe = copy.deepcopy(mlp)
    params = probe.params()
    start = {name: p.copy() for name, p in params.items()}
    loss0, g0 = _loss_and_gradient(probe, x, y)
    step = {name: g.copy() for name, g in probe.grads().items()}
    losses, changes = [loss0], []
    for eta in step_sizes:
        for name, p in params.items():
            np.subtract(start[name], eta * step[name], out=p)
        loss, g = _loss_and_gradient(probe, x, y)
        losses.append(loss)
        changes.append(float(np.linalg.norm(g - g0)))
    return np.array(losses), np.array(changes), float(np.linalg.norm(g0))


@experiment(
    "loss_smoothness",
    params={**SPIRAL_PARAMS,
            "depth": Param(int, 4, 2, 12, "hidden layers"),
            "steps": Param(int, 300, 20, 2000, "SGD steps"),
            "every": Param(int, 30, 1, 500, "steps between two measurements"),
            "lr": Param(float, 0.1, 1e-4, 2.0, "learning rate (plain SGD, both networks)"),
            "max_step": Param(float, 0.4, 0.01, 2.0, "largest step size eta along the gradient"),
            "n_steps": Param(int, 8, 2, 32, "step sizes from max_step / n_steps to max_step")},
    figures=("loss_landscape", "gradient_predictiveness"),
)
def loss_smoothness(rng, depth, width, batch, turns, train_size, steps, every, lr, max_step,
                    n_steps):
    """How smooth the loss is along the gradient, with and without batch norm (Santurkar et
    al. 2018, Figure 4, here on a small MLP).

    Both networks train with SGD at ``lr``. Every ``every`` steps, on that step's batch, the
    parameters are moved along the negative gradient by eta = max_step/n_steps ... max_step
    (the same etas for both networks) and the loss and gradient are recomputed:
    the loss range (max - min over eta, including eta = 0), the largest gradient change
    ||grad(theta - eta g) - g|| ("gradient predictiveness": small means the gradient
    predicts its neighbourhood), and the "effective beta-smoothness", the largest
    gradient change per unit of distance moved, max ||grad change|| / (eta ||g||).

    The loss range and the gradient change grow with the size of the gradient itself (the
    path is eta * g long); the beta-smoothness divides that size out, which is why it is the
    measure of smoothness proper (Santurkar et al.'s Sec. 3.1).

    Returns ``checkpoints`` (T,), ``step_sizes`` (S,), per network ``*_losses`` (T, S + 1),
    ``*_gradient_changes`` (T, S), ``*_loss_range``, ``*_max_gradient_change``,
    ``*_beta_smoothness``, ``*_gradient_norm`` (||g||) (T,), their means over training
    ``*_mean_loss_range``, ``*_mean_gradient_change``, ``*_mean_beta``,
    ``*_mean_gradient_norm``, the ratios plain / bn ``loss_range_ratio``,
    ``gradient_change_ratio``, ``beta_ratio``, ``gradient_norm_ratio``, the final training
    losses ``plain_loss``, ``bn_loss``, and ``lr``, ``max_step``.
    """
    check_batch_fits(train_size, batch)
    x, y, init_seed, order_seed = task_and_seeds(rng, train_size, turns)
    step_sizes = max_step * np.arange(1, n_steps + 1) / n_steps
    checkpoints = np.arange(0, steps, every)
    result = {}
    for label, mlp in spiral_twins(init_seed, depth, width).items():
        optimizer = SGD(mlp.params(), lr=lr)
        batches = minibatch_indices(np.random.default_rng(order_seed), len(x), batch)
        along, changes, betas, norms, losses = [], [], [], [], np.empty(steps)
        for step in range(steps):
            rows = next(batches)
            if step % every == 0:
                loss_path, change, norm = landscape_along_gradient(mlp, x[rows], y[rows],
                                                                   step_sizes)
                along.append(loss_path)
                changes.append(change)
                betas.append(np.max(change / (step_sizes * norm)))
                norms.append(norm)
            losses[step] = train_step(mlp, optimizer, x[rows], y[rows])
        along, changes = np.array(along), np.array(changes)
        loss_range = along.max(axis=1) - along.min(axis=1)
        result.update({
            f"{label}_losses": along,
            f"{label}_gradient_changes": changes,
            f"{label}_loss_range": loss_range,
            f"{label}_max_gradient_change": changes.max(axis=1),
            f"{label}_beta_smoothness": np.array(betas),
            f"{label}_gradient_norm": np.array(norms),
            f"{label}_mean_loss_range": float(loss_range.mean()),
            f"{label}_mean_gradient_change": float(changes.max(axis=1).mean()),
            f"{label}_mean_beta": float(np.mean(betas)),
            f"{label}_mean_gradient_norm": float(np.mean(norms)),
            f"{label}_loss": final_loss(losses),
        })
    result.update({
        "checkpoints": checkpoints,
        "step_sizes": step_sizes,
        "loss_range_ratio": result["plain_mean_loss_range"] / result["bn_mean_loss_range"],
        "gradient_change_ratio": (result["plain_mean_gradient_change"]
                                  / result["bn_mean_gradient_change"]),
        "beta_ratio": result["plain_mean_beta"] / result["bn_mean_beta"],
        "gradient_norm_ratio": (result["plain_mean_gradient_norm"]
                                / result["bn_mean_gradient_norm"]),
        "lr": lr, "max_step": max_step,
    })
    return result


def steps_to_target(mlp, x, y, order_seed: int, lr: float, batch: int, max_steps: int,
                    target: float) -> tuple[int, bool]:
    """SGD at ``lr`` until the mean of the last ``LOSS_WINDOW`` batch losses is below
    ``target``. Returns (steps taken, diverged): ``max_steps`` when the target was not
    reached; a batch loss above ``DIVERGED_LOSS`` stops the run as diverged."""
    optimizer = SGD(mlp.params(), lr=lr)
    batches = minibatch_indices(np.random.default_rng(order_seed), len(x), batch)
    recent = np.full(LOSS_WINDOW, np.inf)
    for step in range(max_steps):
        rows = next(batches)
        loss = train_step(mlp, optimizer, x[rows], y[rows])
        if not loss <= DIVERGED_LOSS:  # also catches NaN
            return max_steps, True
        recent[step % LOSS_WINDOW] = loss
        if recent.mean() < target:
            return step + 1, False
    return max_steps, False


@experiment(
    "lr_steps_to_target",
    params={**SPIRAL_PARAMS,
            "depth": Param(int, 4, 2, 12, "hidden layers"),
            "max_steps": Param(int, 300, 20, 5000, "SGD steps before a run is given up"),
            "target": Param(float, 0.4, 0.01, 1.0,
                            "target training loss (mean of the last 20 batch losses)"),
            "min_lr": Param(float, 0.02, 1e-4, 10.0, "smallest learning rate"),
            "max_lr": Param(float, 10.0, 1e-4, 10.0, "largest learning rate"),
            "n_lrs": Param(int, 10, 2, 12, "learning rates, log-spaced")},
    figures=("steps_vs_lr",),
)
def lr_steps_to_target(rng, depth, width, batch, turns, train_size, max_steps, target, min_lr,
                       max_lr, n_lrs):
    """Steps of plain SGD to reach a target training loss, with and without batch norm, at
    ``n_lrs`` learning rates from ``min_lr`` to ``max_lr`` (log-spaced).

    Each run starts from the same initial weights and sees the same mini-batches. A run that
    misses the target within ``max_steps`` counts ``max_steps`` (so speed-ups computed from
    it are lower bounds); one whose batch loss exceeds 10 has diverged.

    Returns ``lrs`` and per network ``*_steps`` (int), ``*_reached``, ``*_diverged`` (bool),
    ``*_best_steps`` (fewest steps over the learning rates), ``*_best_lr``, ``*_max_lr``
    (largest learning rate that reached the target, 0 if none), ``*_any_reached``; then
    ``speedup`` = plain_best_steps / bn_best_steps, ``lr_range_ratio`` = bn_max_lr /
    plain_max_lr (0 when the plain network never reached the target), ``best_lr_ratio`` =
    bn_best_lr / plain_best_lr, ``bn_steps_at_plain_best_lr``, ``same_lr_speedup`` (plain
    over bn at the plain network's best learning rate) and ``lr_gain`` (bn's steps at that
    rate over its fewest: what batch norm gains by moving to its own best rate), so that
    ``speedup`` = ``same_lr_speedup`` * ``lr_gain``; ``bn_reached_largest_lr`` (the grid may
    end before batch norm's largest usable rate), and ``target``, ``max_steps``.
    """
    check_batch_fits(train_size, batch)
    if min_lr >= max_lr:
        raise ParameterError(f"min_lr = {min_lr} must be < max_lr = {max_lr}")
    x, y, init_seed, order_seed = task_and_seeds(rng, train_size, turns)
    lrs = np.geomspace(min_lr, max_lr, n_lrs)
    result = {}
    for label in ("plain", "bn"):
        steps, diverged = np.empty(n_lrs, dtype=np.int64), np.empty(n_lrs, dtype=bool)
        for i, lr in enumerate(lrs):
            mlp = spiral_twins(init_seed, depth, width)[label]
            steps[i], diverged[i] = steps_to_target(mlp, x, y, order_seed, float(lr), batch,
                                                    max_steps, target)
        reached = (steps < max_steps) & ~diverged
        best = int(np.argmin(steps))
        result.update({
            f"{label}_steps": steps,
            f"{label}_reached": reached,
            f"{label}_diverged": diverged,
            f"{label}_best_steps": int(steps[best]),
            f"{label}_best_lr": float(lrs[best]),
            f"{label}_max_lr": float(lrs[reached].max()) if reached.any() else 0.0,
            f"{label}_any_reached": bool(reached.any()),
        })
    plain_best = int(np.argmin(result["plain_steps"]))
    result.update({
        "lrs": lrs,
        "speedup": result["plain_best_steps"] / result["bn_best_steps"],
        "lr_range_ratio": (result["bn_max_lr"] / result["plain_max_lr"]
                           if result["plain_any_reached"] else 0.0),
        "best_lr_ratio": result["bn_best_lr"] / result["plain_best_lr"],
        "bn_steps_at_plain_best_lr": int(result["bn_steps"][plain_best]),
        "same_lr_speedup": float(result["plain_steps"][plain_best]
                                 / result["bn_steps"][plain_best]),
        "lr_gain": float(result["bn_steps"][plain_best] / result["bn_best_steps"]),
        "bn_reached_largest_lr": bool(result["bn_reached"][-1]),
        "target": target, "max_steps": max_steps,
    })
    return result
