"""Batch norm's backward pass: the input gradient checked by finite differences (engine,
correct formula, and the formula with the missing 1/m), its scale invariance (Ioffe &
Szegedy 2015, Section 3.3), and gradient norms through a deep network with and without it."""
from __future__ import annotations

import numpy as np

from engine.batchnorm import batchnorm_backward, batchnorm_forward
from engine.data import make_spirals
from engine.experiments.common import EPS, batch_sizes_between
from engine.experiments.twins import SPIRAL_CLASSES, SPIRAL_DIM
from engine.gradcheck import numeric_gradient
from engine.layers import linear_backward, linear_forward
from engine.losses import softmax_cross_entropy
from engine.measure import weight_gradient_norms
from engine.network import build_mlp
from engine.optim import SGD
from engine.registry import Param, ParameterError, experiment
from engine.train import train


def input_gradient_formula(dy, xhat, inv_std, gamma, missing_one_over_m=False):
    """dL/dx of batch norm written out, per column (m rows)::

        dL/dx_i = (1/sigma) (g_i - (1/m) sum_j g_j - xhat_i (1/m) sum_j g_j xhat_j),

    with g = dL/dxhat = gamma dL/dy. ``missing_one_over_m`` drops the last 1/m, as in the
    formula quoted in the forum thread."""
    g = dy * gamma
    m = g.shape[0]
    last = (g * xhat).sum(axis=0)
    if not missing_one_over_m:
        last = last / m
    return inv_std * (g - g.mean(axis=0) - xhat * last)


def error_vs_reference(a: np.ndarray, reference: np.ndarray) -> float:
    """||a - reference|| / ||reference|| (L2). Unlike a symmetric relative error, it keeps
    growing when ``a`` is many times too large, which is how the quoted formula fails."""
    return float(np.linalg.norm(a - reference) / np.linalg.norm(reference))


def largest_cosine(columns: np.ndarray, direction: np.ndarray) -> float:
    """The largest |cosine| between a column of ``columns`` and the same column of
    ``direction`` (broadcast: a (1, C) or (m, 1) direction is shared)."""
    direction = np.broadcast_to(direction, columns.shape)
    dots = np.abs((columns * direction).sum(axis=0))
    return float(np.max(dots / (np.linalg.norm(columns, axis=0)
                                 * np.linalg.norm(direction, axis=0))))


@experiment(
    "bn_backward_check",
    params={
        "batch": Param(int, 16, 4, 256, "batch size m of the headline comparison"),
        "max_batch": Param(int, 128, 4, 256, "largest batch size of the sweep (from 4)"),
        "features": Param(int, 8, 1, 16, "columns (units) normalized"),
        "mean": Param(float, 2.0, -100.0, 100.0, "mean of the inputs"),
        "scale": Param(float, 3.0, 0.01, 100.0, "standard deviation of the inputs"),
        "h": Param(float, 1e-6, 1e-9, 1e-3, "finite-difference step"),
    },
    figures=("formula_errors",),
)
def bn_backward_check(rng, batch, max_batch, features, mean, scale, h):
    """dL/dx of batch norm (training mode) against central finite differences.

    For each batch size m (powers of two from 4 to ``max_batch``, and ``batch``), inputs x
    (m, ``features``) ~ N(``mean``, ``scale``^2), random gamma and beta, and the loss
    L = sum(w * BN(x)) for a random w (so dL/dy = w). Three analytic gradients are compared
    with the numeric one by ``error_vs_reference``: the engine's ``batchnorm_backward``, the
    correct formula, and the formula quoted in the forum thread, whose last sum lacks its 1/m.

    Returns ``batch_sizes`` and, per size, ``engine_errors``, ``correct_errors``,
    ``quoted_errors``, and over all sizes ``max_engine_error``, ``max_correct_error``,
    ``min_quoted_error`` and ``quoted_growth`` (the quoted formula's error at the largest
    size over that at the smallest); at m = ``batch``: ``engine_error``, ``correct_error``,
    ``quoted_error``, ``quoted_vs_correct`` (the quoted formula's relative distance from the
    correct one), the largest |cosine| over columns between the engine's dx and the
    directions 1 and xhat (``engine_ones_cosine``, ``engine_xhat_cosine``: 0 when dx has no
    part that would only shift or only scale the batch) and between the quoted dx and xhat
    (``quoted_xhat_cosine``), and ``batch``. Then a batch of one example: its centred value
    is 0, so the normalized value is 0 (eps keeps the division defined) and the output is
    beta; ``single_correct_norm`` and ``single_quoted_norm`` are the largest |dL/dx| of the
    two formulas there (both 0), and ``engine_refuses_single`` says whether the engine's
    training-mode forward pass refuses that batch, as PyTorch's does.
    """
    sizes = batch_sizes_between(4, max_batch, (batch,))
    errors = {name: np.empty(len(sizes)) for name in ("engine", "correct", "quoted")}
    for i, m in enumerate(sizes):
        x = mean + scale * rng.standard_normal((m, features))
        gamma = rng.uniform(0.5, 2.0, features)
        beta = rng.standard_normal(features)
        w = rng.standard_normal((m, features))

        def loss(xv):
            return float(np.sum(batchnorm_forward(xv, gamma, beta, EPS)[0] * w))

        numeric = numeric_gradient(loss, x.copy(), h)
        _, cache = batchnorm_forward(x, gamma, beta, EPS)
        engine_dx, _, _ = batchnorm_backward(w, cache)
        xhat = cache.centered * cache.inv_std
        correct = input_gradient_formula(w, xhat, cache.inv_std, gamma)
        quoted = input_gradient_formula(w, xhat, cache.inv_std, gamma, missing_one_over_m=True)
        errors["engine"][i] = error_vs_reference(engine_dx, numeric)
        errors["correct"][i] = error_vs_reference(correct, numeric)
        errors["quoted"][i] = error_vs_reference(quoted, numeric)
        if m == batch:
            quoted_vs_correct = error_vs_reference(quoted, correct)
            # The correct dx has no component along 1 or xhat (batch norm's output does
            # not change when x is shifted or scaled); the quoted one over-removes xhat's.
            ones = np.ones((m, 1))
            alignment = {"engine_ones_cosine": largest_cosine(engine_dx, ones),
                         "engine_xhat_cosine": largest_cosine(engine_dx, xhat),
                         "quoted_xhat_cosine": largest_cosine(quoted, xhat)}
    at = int(np.flatnonzero(sizes == batch)[0])
    x1 = mean + scale * rng.standard_normal((1, features))
    gamma1, w1 = rng.uniform(0.5, 2.0, features), rng.standard_normal((1, features))
    xhat1 = x1 - x1.mean(axis=0)  # exactly 0
    inv_std1 = 1 / np.sqrt(xhat1.var(axis=0) + EPS)
    single = {name: float(np.abs(input_gradient_formula(w1, xhat1 * inv_std1, inv_std1, gamma1,
                                                        missing_one_over_m=quoted)).max())
              for name, quoted in (("single_correct_norm", False), ("single_quoted_norm", True))}
    try:
        batchnorm_forward(x1, gamma1, np.zeros(features), EPS)
        refuses = False
    except ValueError:
        refuses = True
    return {
        "batch_sizes": sizes,
        "engine_errors": errors["engine"],
        "correct_errors": errors["correct"],
        "quoted_errors": errors["quoted"],
        "max_engine_error": float(errors["engine"].max()),
        "max_correct_error": float(errors["correct"].max()),
        "min_quoted_error": float(errors["quoted"].min()),
        "quoted_growth": float(errors["quoted"][-1] / errors["quoted"][0]),
        "engine_error": float(errors["engine"][at]),
        "correct_error": float(errors["correct"][at]),
        "quoted_error": float(errors["quoted"][at]),
        "quoted_vs_correct": float(quoted_vs_correct),
        **alignment,
        **single,
        "engine_refuses_single": refuses,
        "batch": batch,
    }


SCALES = np.logspace(-1, 2, 7)  # 0.1 ... 100: far enough from eps for the invariance to hold


@experiment(
    "bn_scale_invariance",
    params={
        "batch": Param(int, 32, 2, 1024, "batch size"),
        "in_features": Param(int, 20, 1, 512, "inputs u of the linear layer"),
        "out_features": Param(int, 10, 1, 512, "units z = u W, batch-normalized"),
    },
    figures=("scale_invariance",),
)
def bn_scale_invariance(rng, batch, in_features, out_features):
    """Scale the weights W feeding batch norm by a (0.1 ... 100, ``scales``) and watch the
    backward pass (Ioffe & Szegedy 2015, Section 3.3: BN(Wu) = BN((aW)u)).

    Layer: z = u (aW), y = BN(z) with gamma = 1, beta = 0 and eps = 1e-5; loss
    L = sum(w * y) for a fixed random w. For each a, relative to a = 1: ``output_change``
    (largest change of y, relative to max |y|), ``dW_scaled`` = a ||dL/d(aW)|| / ||dL/dW||
    (1 means the gradient is 1/a times smaller), ``dz_scaled`` = a ||dL/dz|| / ||dL/dz at
    a=1|| (the gradient at batch norm's input, whose scale grew by a), ``du_change`` (the
    gradient reaching the layer's input u: relative change, and ``du_ratio`` =
    ||dL/du|| / ||dL/du at a = 1||), and, for the same layer
    without batch norm (y = z), ``plain_du_ratio`` = ||dL/du|| / ||dL/du at a = 1|| (= a).
    Also the worst cases over all a: ``max_output_change``, ``max_dW_deviation``
    (max |dW_scaled - 1|), ``max_dz_deviation``, ``max_du_change``.
    """
    u = rng.standard_normal((batch, in_features))
    W = rng.standard_normal((in_features, out_features)) / np.sqrt(in_features)
    b = np.zeros(out_features)
    w = rng.standard_normal((batch, out_features))

    def backward_at(a):
        z, lin_cache = linear_forward(u, a * W, b)
        y, bn_cache = batchnorm_forward(z, None, None, EPS)
        dz, _, _ = batchnorm_backward(w, bn_cache)
        du, dW, _ = linear_backward(dz, lin_cache)
        plain_du, _, _ = linear_backward(w, lin_cache)  # the same layer, y = z
        return y, dz, du, dW, plain_du

    y1, dz1, du1, dW1, plain_du1 = backward_at(1.0)
    rows = []
    for a in SCALES:
        y, dz, du, dW, plain_du = backward_at(a)
        rows.append((
            np.abs(y - y1).max() / np.abs(y1).max(),
            a * np.linalg.norm(dW) / np.linalg.norm(dW1),
            a * np.linalg.norm(dz) / np.linalg.norm(dz1),
            np.linalg.norm(du - du1) / np.linalg.norm(du1),
            np.linalg.norm(du) / np.linalg.norm(du1),
            np.linalg.norm(plain_du) / np.linalg.norm(plain_du1),
        ))
    output_change, dW_scaled, dz_scaled, du_change, du_ratio, plain_du_ratio = \
        map(np.array, zip(*rows))
    return {
        "scales": SCALES.copy(),
        "output_change": output_change,
        "dW_scaled": dW_scaled,
        "dz_scaled": dz_scaled,
        "du_change": du_change,
        "du_ratio": du_ratio,
        "plain_du_ratio": plain_du_ratio,
        "max_output_change": float(output_change.max()),
        "max_dW_deviation": float(np.abs(dW_scaled - 1).max()),
        "max_dz_deviation": float(np.abs(dz_scaled - 1).max()),
        "max_du_change": float(du_change.max()),
        "min_scale": float(SCALES[0]),
        "max_scale": float(SCALES[-1]),
    }


GAINS = np.array([0.5, 0.7, 1.0, 1.4, 2.0])  # multipliers of the He initialization


def _gradient_norms(mlp, x, y) -> np.ndarray:
    """||dL/dW|| of every linear layer after one forward/backward pass in training mode."""
    _, dlogits = softmax_cross_entropy(mlp.forward(x, training=True), y)
    mlp.backward(dlogits, need_dx=False)
    return weight_gradient_norms(mlp)


def _scale_weights(mlp, gain: float) -> None:
    for name, p in mlp.params().items():
        if name.endswith(".W"):
            p *= gain


@experiment(
    "depth_gradient_norms",
    params={
        "depth": Param(int, 20, 2, 50, "hidden layers (no skip connections)"),
        "width": Param(int, 64, 4, 512, "units per hidden layer"),
        "batch": Param(int, 64, 4, 512, "batch size"),
        "steps": Param(int, 100, 0, 2000, "SGD steps before the second measurement"),
        "lr": Param(float, 0.02, 1e-4, 1.0, "learning rate (momentum 0.9)"),
        "train_size": Param(int, 2048, 64, 20000, "spiral points to train on"),
    },
    figures=("gradient_norms_by_layer", "gradient_norms_by_gain"),
)
def depth_gradient_norms(rng, depth, width, batch, steps, lr, train_size):
    """Per-layer weight-gradient norms ||dL/dW_l|| of a deep ReLU MLP without skip
    connections, without and with batch norm (before each ReLU), on the spiral task.

    Both networks start from the same He-initialized weights. Gradients are measured on one
    fixed batch at initialization and again after ``steps`` SGD steps (momentum 0.9).
    ``first_to_last_*`` is the first hidden layer's gradient norm over the last hidden
    layer's: far above 1 means gradients grow towards the input (explode), far below 1
    that they vanish. Then, at initialization, all weights are multiplied by a gain (0.5 ...
    2, ``gains``): ``plain_by_gain``/``bn_by_gain`` hold the first layer's gradient norm for
    each gain, relative to gain 1. Without batch norm it moves like gain^(depth - 1) (ReLU
    is positively homogeneous); with it, it hardly moves: each normalized layer cancels its
    weights' scale, and the first layer's 1/gain is cancelled by the unnormalized output
    layer's gain.

    Returns ``layers`` (1..depth+1, the last is the output layer), ``plain_init``,
    ``plain_trained``, ``bn_init``, ``bn_trained`` (per layer), the four
    ``first_to_last_*`` ratios, ``gains``, ``plain_by_gain``, ``bn_by_gain``, and
    ``depth``.
    """
    if train_size < batch:
        raise ParameterError(f"train_size = {train_size} must be >= batch = {batch}")
    x, y = make_spirals(rng, train_size, classes=SPIRAL_CLASSES, dim=SPIRAL_DIM)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    probe_x, probe_y = x[:batch], y[:batch]
    init_seed, order_seed = rng.integers(2**63, size=2)

    def network(norm, gain=1.0):
        mlp = build_mlp(np.random.default_rng(init_seed), SPIRAL_DIM, SPIRAL_CLASSES, depth,
                        width, activation="relu", norm=norm)
        _scale_weights(mlp, gain)
        return mlp

    result = {}
    for label, norm in (("plain", None), ("bn", "batch")):
        mlp = network(norm)
        init = _gradient_norms(mlp, probe_x, probe_y)
        train(mlp, SGD(mlp.params(), lr=lr, momentum=0.9), x, y,
              np.random.default_rng(order_seed), steps, batch)
        trained = _gradient_norms(mlp, probe_x, probe_y)
        by_gain = np.array([_gradient_norms(network(norm, g), probe_x, probe_y)[0]
                            for g in GAINS])
        result.update({
            f"{label}_init": init,
            f"{label}_trained": trained,
            f"first_to_last_{label}_init": float(init[0] / init[depth - 1]),
            f"first_to_last_{label}_trained": float(trained[0] / trained[depth - 1]),
            f"{label}_by_gain": by_gain / by_gain[GAINS == 1.0][0],
        })
    result.update({"layers": np.arange(1, depth + 2), "gains": GAINS.copy(), "depth": depth,
                   "steps": steps})
    return result
