"""Normalizing with the running averages during training, the naive way and Batch Renorm's
way, against batch norm at small batch sizes: the drift of the parameters the normalization
cancels (Ioffe & Szegedy 2015, Section 2), and the gap between training-mode and
inference-mode outputs (Ioffe 2017, arXiv 1702.03275)."""
from __future__ import annotations

import copy

import numpy as np

from engine.batchnorm import BatchRenorm1d, renorm_schedule
from engine.data import make_spirals, train_test_split
from engine.network import build_mlp
from engine.optim import SGD
from engine.experiments.common import parse_batch_sizes
from engine.registry import Param, ParameterError, experiment
from engine.train import accuracy, train

NORMS = ("batch", "running", "renorm")  # BatchNorm1d, RunningAverageBatchNorm1d, BatchRenorm1d
CLASSES = 3
DIVERGED = 1e10  # a parameter or statistic this large (or not finite) means the run blew up
ROUNDING = 1e-9  # a bias norm below this is rounding error (batch norm's biases get no gradient)


def renorm_schedule_callback(steps: int):
    """A training callback setting every ``BatchRenorm1d``'s r_max and d_max before each step
    with Ioffe's (2017) schedule, compressed to ``steps``: batch norm for the first 1/16 of
    them, d_max reaching 5 at 5/16 and r_max reaching 3 at half of them (the paper's 5k,
    25k and 40k steps, in the same proportions)."""
    r_max_steps = max(steps // 2, 3)
    d_max_steps = max(5 * steps // 16, 2)
    warmup_steps = min(steps // 16, d_max_steps - 1)

    def set_limits(step, loss, model):
        r_max, d_max = renorm_schedule(step + 1, warmup_steps, r_max_steps, d_max_steps)
        for block in model.hidden:
            if isinstance(block.norm, BatchRenorm1d):
                block.norm.r_max, block.norm.d_max = r_max, d_max

    return set_limits


def prenorm_bias_norm(model) -> float:
    """L2 norm of the biases of every hidden linear layer (the ones a normalization cancels)."""
    return float(np.sqrt(sum(np.sum(block.linear.b ** 2) for block in model.hidden)))


def _finite_or_nan(value: float) -> float:
    return float(value) if np.isfinite(value) else np.nan


def _blown_up(model) -> bool:
    arrays = list(model.params().values())
    for block in model.hidden:
        arrays += [getattr(block.norm, name) for name in ("running_mean", "running_var",
                                                          "running_std")
                   if getattr(block.norm, name, None) is not None]
    return any(not np.all(np.abs(a) < DIVERGED) for a in arrays)


def training_mode_disagreement(model, x: np.ndarray, batch: int, rng: np.random.Generator):
    """How differently ``model`` treats ``x`` in training mode (normalizing each mini-batch
    of ``batch`` rows, as during training) and in inference mode: the fraction of rows whose
    predicted class differs, and mean |logit difference| / mean |inference logit|. Training
    mode runs on a copy, so the model's running statistics are left as they were."""
    order = rng.permutation(len(x))[:len(x) // batch * batch]
    inference = model.forward(x[order], training=False)
    probe = copy.deepcopy(model)
    in_training = np.concatenate([probe.forward(x[order[i:i + batch]], training=True)
                                  for i in range(0, len(order), batch)])
    disagree = float(np.mean(in_training.argmax(axis=1) != inference.argmax(axis=1)))
    gap = float(np.abs(in_training - inference).mean() / np.abs(inference).mean())
    return disagree, gap


@experiment(
    "running_averages_in_training",
    params={
        "batch_sizes": Param(str, "4,8,32", doc="comma-separated batch sizes (1 to 4, "
                                                "increasing, each in [2, 256])"),
        "steps": Param(int, 500, 50, 5000, "SGD steps per training run"),
        "lr": Param(float, 0.05, 1e-4, 2.0, "learning rate"),
        "momentum": Param(float, 0.9, 0.0, 0.99, "SGD momentum"),
        "depth": Param(int, 2, 1, 6, "hidden layers"),
        "width": Param(int, 32, 4, 256, "units per hidden layer"),
        "n": Param(int, 2000, 200, 20000, "spiral points (a quarter held out for testing)"),
        "turns": Param(float, 1.0, 0.25, 3.0, "turns of each spiral arm (task difficulty)"),
        "record_every": Param(int, 10, 1, 500, "steps between two records of the curves"),
    },
    figures=("accuracy_by_batch", "bias_drift", "train_inference_gap"),
)
def running_averages_in_training(rng, batch_sizes, steps, lr, momentum, depth, width, n,
                                 turns, record_every):
    """Batch norm, the naive running-average variant and Batch Renorm, trained at several
    batch sizes m on the same spirals (``make_spirals``, 3 classes in 10 dimensions).

    One ReLU MLP (``depth`` x ``width``, normalization before each ReLU) per norm and m,
    from the same initial weights and with the same batch order: ``batch`` (BatchNorm1d),
    ``running`` (RunningAverageBatchNorm1d: normalizes with the exponential moving averages,
    momentum 0.1, and its gradient ignores that they follow the inputs) and ``renorm``
    (BatchRenorm1d, momentum 0.01, with ``renorm_schedule_callback``). Plain SGD with
    ``momentum`` at ``lr`` for ``steps`` steps. A run whose parameters or statistics blow
    up (not finite, or beyond 1e10) counts as diverged; once values overflow, the engine
    refuses them and the run stops there.

    Returns ``batch_sizes``, ``record_steps`` (T,) and, for each norm ``<norm>``, arrays
    over the batch sizes: ``acc_<norm>`` (test accuracy in inference mode; 0 for a diverged
    run), ``diverged_<norm>`` (bool), ``bias_<norm>`` (L2 norm of the hidden layers'
    biases, which every normalization here cancels, at the last finite record),
    ``bias_growth_<norm>`` (that norm over the one recorded halfway through training: how
    much the biases still grew in the second half; 1 where the halfway norm is rounding
    error, below ``ROUNDING``, or the run had diverged by then),
    ``disagree_<norm>`` and ``gap_<norm>`` (``training_mode_disagreement`` on the test set
    with batches of m; 1 and 0 for a diverged run); and curves of shape (batch sizes, T):
    ``bias_curve_<norm>`` and ``loss_curve_<norm>`` (mean training loss since the previous
    record), NaN where a value overflowed or after a divergence (for drawing; every
    per-batch-size summary is finite).
    Parameters are echoed (``steps``, ``lr``, ``depth``, ``width``).
    """
    sizes = parse_batch_sizes(batch_sizes)
    if record_every > steps:
        raise ParameterError(f"parameter 'record_every' = {record_every} must be <= steps "
                             f"= {steps}")
    data_rng, init_rng, probe_rng = rng.spawn(3)
    x, y = make_spirals(data_rng, n, classes=CLASSES, dim=10, turns=turns)
    x_train, y_train, x_test, y_test = train_test_split(data_rng, x, y)
    if len(x_train) < sizes[-1] or len(x_test) < sizes[-1]:
        raise ParameterError(f"parameter 'n' = {n} leaves fewer points than the largest "
                             f"batch size {sizes[-1]} in the training or test set")
    seeds = init_rng.integers(2**63, size=len(sizes))
    record_steps = np.arange(record_every - 1, steps, record_every)

    out = {}
    for norm in NORMS:
        acc, bias, growth, disagree, gap = (np.zeros(len(sizes)) for _ in range(5))
        diverged = np.zeros(len(sizes), dtype=bool)
        bias_curve, loss_curve = (np.full((len(sizes), len(record_steps)), np.nan)
                                  for _ in range(2))
        for i, (m, seed) in enumerate(zip(sizes, seeds)):
            run_rng = np.random.default_rng(seed)
            model = build_mlp(run_rng, x.shape[1], CLASSES, depth, width, "relu", norm=norm)
            optimizer = SGD(model.params(), lr, momentum=momentum)
            schedule = renorm_schedule_callback(steps) if norm == "renorm" else None
            initial_bias = prenorm_bias_norm(model)
            window = []

            def record(step, loss, model, i=i, window=window, schedule=schedule):
                if schedule is not None:
                    schedule(step, loss, model)
                window.append(loss)
                if (step + 1) % record_every == 0:
                    t = (step + 1) // record_every - 1
                    # A value that overflowed is not a measurement: NaN marks the blow-up.
                    loss_curve[i, t] = _finite_or_nan(np.mean(window))
                    bias_curve[i, t] = _finite_or_nan(prenorm_bias_norm(model))
                    window.clear()

            try:
                # Overflow is how a blow-up shows; it is detected below, not warned about.
                with np.errstate(over="ignore", invalid="ignore"):
                    train(model, optimizer, x_train, y_train, run_rng, steps, int(m),
                          callback=record)
            except ValueError:
                # The engine refuses NaN/inf with a ValueError; anything else is a real error.
                if not _blown_up(model):
                    raise
            diverged[i] = _blown_up(model)
            recorded = bias_curve[i][~np.isnan(bias_curve[i])]
            bias[i] = recorded[-1] if len(recorded) else initial_bias
            middle = bias_curve[i][(len(record_steps) - 1) // 2]
            # How much the biases grew over the second half of training (1: not at all).
            growth[i] = bias[i] / middle if np.isfinite(middle) and middle > ROUNDING else 1.0
            if diverged[i]:
                disagree[i] = 1.0
                continue
            acc[i] = accuracy(model, x_test, y_test)
            disagree[i], gap[i] = training_mode_disagreement(model, x_test, int(m), probe_rng)
        out.update({f"acc_{norm}": acc, f"diverged_{norm}": diverged, f"bias_{norm}": bias,
                    f"bias_growth_{norm}": growth,
                    f"disagree_{norm}": disagree, f"gap_{norm}": gap,
                    f"bias_curve_{norm}": bias_curve, f"loss_curve_{norm}": loss_curve})
    out.update({"batch_sizes": sizes, "record_steps": record_steps, "steps": steps, "lr": lr,
                "depth": depth, "width": width})
    return out
