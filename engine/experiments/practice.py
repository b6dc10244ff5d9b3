"""Batch norm in practice: what changes between training and inference and what goes wrong
(forgetting inference mode, running statistics that lag behind the weights, batches that are
not like the training batches, fine-tuning with tiny batches), dropout together with batch
norm (the variance shift of Li, Chen, Hu & Yang 2019, arXiv 1801.05134), and batch norm
before or after the activation (with the bias that batch norm cancels).

The helpers below treat a trained ``MLP`` whose hidden blocks hold ``BatchNorm1d`` layers:
``batch_statistics_logits`` runs it as training mode would (each batch normalized with its
own statistics) without touching its running statistics, ``with_population_statistics``
gives a copy whose running statistics are recomputed from a data set with the current
weights ("precise" statistics, Wu & Johnson 2021, arXiv 2105.07576, Sec. 3), and
``FrozenStatistics`` wraps a batch-norm layer so that it normalizes with its running
statistics even in training (its gamma and beta still learn).
"""
from __future__ import annotations

import copy

import numpy as np

from engine.batchnorm import BatchNorm1d
from engine.data import make_cats, make_spirals
from engine.losses import softmax_cross_entropy
from engine.network import build_mlp
from engine.optim import SGD
from engine.registry import Param, ParameterError, experiment
from engine.train import accuracy, minibatch_indices, train, train_step

MOMENTUM = 0.9  # SGD momentum of every training run here
SPIRAL_CLASSES, SPIRAL_DIM = 3, 10
SPIRAL_DATA_PARAMS = {  # the spiral task of the experiments on spirals
    "n_train": Param(int, 2000, 200, 20000, "training points"),
    "n_test": Param(int, 1024, 256, 20000, "test points"),
    "turns": Param(float, 1.0, 0.25, 3.0, "turns of each spiral arm"),
}


# ---------------------------------------------------------------------------------------------
# Helpers.


def spiral_data(rng: np.random.Generator, n_train: int, n_test: int, turns: float):
    """Spiral points (3 classes in 10 dimensions) from one call, split into a training and a
    test set; features standardized with the training set's mean and spread."""
    x, y = make_spirals(rng, n_train + n_test, classes=SPIRAL_CLASSES, dim=SPIRAL_DIM,
                        turns=turns)
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test


def batch_norms(model) -> list[BatchNorm1d]:
    """The model's ``BatchNorm1d`` layers (inside a ``FrozenStatistics`` too), first to last."""
    norms = []
    for block in model.hidden:
        norm = block.norm.inner if isinstance(block.norm, FrozenStatistics) else block.norm
        if isinstance(norm, BatchNorm1d):
            norms.append(norm)
    return norms


def batch_statistics_logits(model, x: np.ndarray, batch: int) -> np.ndarray:
    """Logits of ``x`` cut into consecutive batches of ``batch`` rows (a number of rows that
    ``batch`` divides), each batch normalized with its own mean and biased variance (Ioffe &
    Szegedy 2015, Algorithm 1), as in training mode, but with dropout off and the running
    statistics left untouched. A batch of one row is allowed here: every unit's normalized
    value is then 0 and the batch-norm layer outputs beta, whatever the example."""
    if len(x) % batch:
        raise ValueError(f"batch = {batch} must divide the {len(x)} rows")
    h = x
    for block in model.hidden:
        z = block.linear.forward(h, training=False)
        if block.norm is not None:
            if block.norm_position != "before" or not isinstance(block.norm, BatchNorm1d):
                raise ValueError("batch_statistics_logits handles BatchNorm1d before the "
                                 "activation only")
            norm = block.norm
            grouped = z.reshape(len(x) // batch, batch, z.shape[1])
            centered = grouped - grouped.mean(axis=1, keepdims=True)
            variance = (centered ** 2).mean(axis=1, keepdims=True)
            z = (norm.gamma * centered / np.sqrt(variance + norm.eps)
                 + norm.beta).reshape(z.shape)
        h = block.activation.forward(z, training=False)
    return model.out.linear.forward(h, training=False)


def with_population_statistics(model, x: np.ndarray):
    """A copy of ``model`` whose batch-norm running statistics are the mean and unbiased
    variance of ``x`` at each layer, with the current weights and dropout off: layer by
    layer, each layer's statistics are those of its input as ``x`` flows in inference mode
    through the earlier layers, already re-normalized. The weights are not touched."""
    fresh = copy.deepcopy(model)
    if not batch_norms(fresh):
        raise ValueError("with_population_statistics needs a model with BatchNorm1d layers")
    h = x
    for block in fresh.hidden:
        block.dropout = None
        if isinstance(block.norm, FrozenStatistics):
            block.norm = block.norm.inner
        if isinstance(block.norm, BatchNorm1d):
            z = block.linear.forward(h, training=False)
            block.norm.running_mean[...] = z.mean(axis=0)
            block.norm.running_var[...] = z.var(axis=0, ddof=1)
        h = block.forward(h, training=False)
    return fresh


def bn_input_variances(model, x: np.ndarray) -> list[np.ndarray]:
    """Per batch-norm layer, the variance over ``x`` (unbiased, like the running variance)
    of each unit of the layer's input, in inference mode (running statistics, dropout off)."""
    variances = []
    h = x
    for block in model.hidden:
        z = block.linear.forward(h, training=False)
        if isinstance(block.norm, BatchNorm1d):
            variances.append(z.var(axis=0, ddof=1))
        h = block.forward(h, training=False)
    return variances


class FrozenStatistics:
    """A ``BatchNorm1d`` (``inner``) that normalizes with its running statistics in training
    too, and does not update them ("frozen" batch norm, as when fine-tuning with small
    batches). Its gamma and beta still get gradients (the inner layer's arrays)."""

    def __init__(self, inner: BatchNorm1d):
        self.inner = inner

    @property
    def check_input(self) -> bool:
        return self.inner.check_input

    @check_input.setter
    def check_input(self, value: bool) -> None:
        self.inner.check_input = value

    def forward(self, x, training: bool = True) -> np.ndarray:
        return self.inner.forward(x, training=False)

    def backward(self, dy) -> np.ndarray:
        return self.inner.backward(dy)

    def params(self) -> dict[str, np.ndarray]:
        return self.inner.params()

    def grads(self) -> dict[str, np.ndarray]:
        return self.inner.grads()


def freeze_statistics(model) -> None:
    """Wrap every batch-norm layer of ``model`` in ``FrozenStatistics``, in place."""
    for block in model.hidden:
        if isinstance(block.norm, BatchNorm1d):
            block.norm = FrozenStatistics(block.norm)


def _test_loss(model, x, y) -> float:
    return softmax_cross_entropy(model.forward(x, training=False), y)[0]


def parse_sizes(text: str, low: int = 1, high: int = 1024) -> np.ndarray:
    """``"1,4,64"`` -> array([1, 4, 64]): 1 to 8 increasing integers in [low, high]."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ParameterError(f"sizes must be comma-separated integers, got {text!r}") from None
    if not 1 <= len(sizes) <= 8 or any(not low <= m <= high for m in sizes) \
            or sorted(set(sizes)) != sizes:
        raise ParameterError(f"{text!r} must list 1 to 8 increasing sizes in [{low}, {high}]")
    return np.array(sizes, dtype=np.int64)


parse_eval_batches = parse_sizes


# ---------------------------------------------------------------------------------------------
# Training mode against inference mode.


@experiment(
    "inference_mode_pitfalls",
    params={
        "depth": Param(int, 3, 1, 8, "hidden layers (batch norm before each ReLU)"),
        "width": Param(int, 32, 4, 256, "units per hidden layer"),
        "batch": Param(int, 32, 4, 512, "training mini-batch"),
        "steps": Param(int, 400, 20, 5000, "SGD steps"),
        "lr": Param(float, 0.1, 1e-4, 2.0, "learning rate (momentum 0.9)"),
        "record_every": Param(int, 40, 1, 1000, "steps between two checkpoints"),
        "slow_momentum": Param(float, 0.01, 1e-4, 1.0,
                               "momentum of a second, slower running average (Keras's"
                               " default 0.99 is 0.01 in this convention)"),
        "eval_batches": Param(str, "1,2,4,16,64,256", doc="test batch sizes evaluated with "
                                                        "batch statistics"),
        **SPIRAL_DATA_PARAMS,
    },
    figures=("accuracy_by_mode", "statistics_lag"),
)
def inference_mode_pitfalls(rng, depth, width, batch, steps, lr, record_every, slow_momentum,
                            eval_batches, n_train, n_test, turns):
    """One ReLU MLP with batch norm before each ReLU (running statistics with PyTorch's
    momentum 0.1), trained by SGD with momentum on spirals, evaluated in the ways a test
    set can be run through it.

    At every checkpoint (each ``record_every`` steps) the test accuracy with (a) the running
    statistics (``ema``), (b) a second running average with ``slow_momentum``, fed the same
    batch statistics during the same training (training itself does not depend on the
    running statistics, so one run serves both), and (c) "precise" statistics recomputed
    on the whole training set with the checkpoint's weights (``precise``).

    After training: the test accuracy in training mode, each test batch of m rows normalized
    with its own statistics (``batch_statistics_logits``), for every m of ``eval_batches``,
    with the test set shuffled (``train_mode_acc``) and with it sorted by class
    (``sorted_acc``: the batches hold one class, or two at a boundary); the same with
    batches of m drawn from the training set (``train_set_batch_acc``); and, for batches of
    one, ``single_spread``: the largest difference between two test examples' logits
    (0: every example gets the same output).

    Returns the arrays above (``record_steps``, ``ema_acc``, ``slow_acc``, ``precise_acc``
    over checkpoints; ``eval_batches``, ``train_mode_acc``, ``sorted_acc``,
    ``train_set_batch_acc`` over m), the final ``ema_final``, ``slow_final``,
    ``precise_final``, ``ema_lag`` and ``slow_lag`` (per checkpoint, mean over the units of
    every layer of |running mean - precise mean| / precise std), ``majority``
    (the largest class's share of the test set) and echoes of the settings.
    """
    sizes = parse_sizes(eval_batches)
    if record_every > steps:
        raise ParameterError(f"record_every = {record_every} must be <= steps = {steps}")
    if batch > n_train or sizes[-1] > n_test:
        raise ParameterError("batch must fit the training set and every eval batch the "
                             "test set")
    data_rng, init_rng, order_rng, eval_rng = rng.spawn(4)
    x_train, y_train, x_test, y_test = spiral_data(data_rng, n_train, n_test, turns)
    model = build_mlp(init_rng, SPIRAL_DIM, SPIRAL_CLASSES, depth, width, norm="batch")
    norms = batch_norms(model)
    slow = [(np.zeros(width), np.ones(width)) for _ in norms]
    optimizer = SGD(model.params(), lr, momentum=MOMENTUM)
    record_steps = np.arange(record_every - 1, steps, record_every)
    ema_acc, slow_acc, precise_acc, ema_lag, slow_lag = (np.zeros(len(record_steps))
                                                         for _ in range(5))

    def lag(stats, precise_norms):
        gaps = [np.abs(mean - p.running_mean) / np.sqrt(p.running_var)
                for (mean, _), p in zip(stats, precise_norms)]
        return float(np.mean(np.concatenate(gaps)))

    def checkpoint(step, loss, model):
        for (mean, var), norm in zip(slow, norms):  # the slow average of the same batches
            cache = norm._cache
            m = batch
            mean *= 1 - slow_momentum
            mean += slow_momentum * cache.mean
            var *= 1 - slow_momentum
            var += slow_momentum * cache.var * m / (m - 1)
        if (step + 1) % record_every:
            return
        t = (step + 1) // record_every - 1
        precise = with_population_statistics(model, x_train)
        precise_norms = batch_norms(precise)
        ema_acc[t] = accuracy(model, x_test, y_test)
        precise_acc[t] = accuracy(precise, x_test, y_test)
        slow_model = copy.deepcopy(model)
        for (mean, var), norm in zip(slow, batch_norms(slow_model)):
            norm.running_mean[...], norm.running_var[...] = mean, var
        slow_acc[t] = accuracy(slow_model, x_test, y_test)
        ema_lag[t] = lag([(n.running_mean, n.running_var) for n in norms], precise_norms)
        slow_lag[t] = lag(slow, precise_norms)

    train(model, optimizer, x_train, y_train, order_rng, steps, batch, callback=checkpoint)

    shuffled = eval_rng.permutation(n_test)
    by_class = np.argsort(y_test, kind="stable")
    train_rows = eval_rng.permutation(n_train)[:n_test]
    train_mode_acc, sorted_acc, train_set_batch_acc = (np.zeros(len(sizes)) for _ in range(3))
    for i, m in enumerate(sizes):
        m = int(m)
        for target, rows, x, y in ((train_mode_acc, shuffled, x_test, y_test),
                                   (sorted_acc, by_class, x_test, y_test),
                                   (train_set_batch_acc, train_rows, x_train, y_train)):
            logits = batch_statistics_logits(model, x[rows], m)
            target[i] = float(np.mean(logits.argmax(axis=1) == y[rows]))
    single = batch_statistics_logits(model, x_test, 1)
    return {
        "record_steps": record_steps, "ema_acc": ema_acc, "slow_acc": slow_acc,
        "precise_acc": precise_acc, "ema_lag": ema_lag, "slow_lag": slow_lag,
        "ema_final": float(ema_acc[-1]), "slow_final": float(slow_acc[-1]),
        "precise_final": float(precise_acc[-1]),
        "eval_batches": sizes, "train_mode_acc": train_mode_acc, "sorted_acc": sorted_acc,
        "train_set_batch_acc": train_set_batch_acc,
        "single_spread": float(np.max(single.max(axis=0) - single.min(axis=0))),
        "majority": float(np.bincount(y_test).max() / n_test),
        "steps": steps, "lr": lr, "batch": batch, "depth": depth, "width": width,
        "slow_momentum": slow_momentum,
    }


# ---------------------------------------------------------------------------------------------
# Fine-tuning with tiny batches.

FINETUNE_MODES = ("batch", "batch_precise", "frozen", "refrozen")


def shifted_inputs(rng: np.random.Generator, x: np.ndarray, shift: float) -> np.ndarray:
    """``x`` seen through a different "sensor": each feature rescaled by a factor
    exp(shift * N(0, 1)) and moved by shift * N(0, 1) (the same for every row), so the rule
    that labels the points is unchanged but the input distribution is not (0: unchanged)."""
    scale = np.exp(shift * rng.standard_normal(x.shape[1]))
    offset = shift * rng.standard_normal(x.shape[1])
    return x * scale + offset


@experiment(
    "tiny_batch_finetuning",
    params={
        "depth": Param(int, 3, 1, 8, "hidden layers (batch norm before each ReLU)"),
        "width": Param(int, 32, 4, 256, "units per hidden layer"),
        "pretrain_steps": Param(int, 400, 20, 5000, "SGD steps on the first data set"),
        "pretrain_batch": Param(int, 32, 4, 512, "mini-batch while pretraining"),
        "lr": Param(float, 0.1, 1e-4, 2.0, "pretraining learning rate (momentum 0.9)"),
        "finetune_lr": Param(float, 0.01, 1e-4, 2.0, "fine-tuning learning rate"),
        "finetune_steps": Param(int, 300, 10, 5000, "SGD steps of fine-tuning"),
        "finetune_batch": Param(int, 2, 2, 256, "mini-batch while fine-tuning"),
        "finetune_size": Param(int, 64, 8, 4096, "labelled points of the second data set"),
        "shift": Param(float, 0.5, 0.0, 2.0, "how different the second data set's inputs are"
                                             " (shifted_inputs)"),
        **SPIRAL_DATA_PARAMS,  # the first data set's points; test points of the second
    },
    figures=("finetuning_accuracy",),
)
def tiny_batch_finetuning(rng, depth, width, pretrain_steps, pretrain_batch, lr, finetune_lr,
                          finetune_steps, finetune_batch, finetune_size, shift, n_train,
                          n_test, turns):
    """A ReLU MLP with batch norm before each ReLU, pretrained on spirals (mini-batches of
    ``pretrain_batch``), then fine-tuned on ``finetune_size`` points of the same spirals
    seen through ``shifted_inputs`` (a second data set: same rule, different input
    statistics) with mini-batches of ``finetune_batch``. Every fine-tuning run starts from
    the same pretrained network and sees the same batches.

    Ways of fine-tuning (test accuracy on the second data set, inference mode):
    ``batch`` (batch norm as in training: each tiny batch normalized with its own statistics,
    running statistics updated with momentum 0.1), ``batch_precise`` (the same network,
    its running statistics then recomputed on the fine-tuning set), ``frozen`` (batch norm
    normalizes with the pretraining running statistics throughout, gamma and beta still
    learn: ``FrozenStatistics``) and ``refrozen`` (the statistics first recomputed on the
    fine-tuning set with the pretrained weights, then frozen). Also ``pretrained_acc`` (no
    fine-tuning), ``adapted_acc`` (no fine-tuning, statistics recomputed on the fine-tuning
    set: AdaBN, Li et al. 2016) and ``pretrain_acc`` (the pretrained network on test points
    of the first data set).

    Returns ``<mode>_acc`` for each mode, those three, the gains ``frozen_gain`` (frozen -
    batch), ``refrozen_gain`` (refrozen - batch) and ``precise_gain`` (batch_precise -
    batch), and echoes of the settings.
    """
    if finetune_batch > finetune_size or pretrain_batch > n_train:
        raise ParameterError("a mini-batch must fit its data set")
    data_rng, init_rng, order_rng, shift_rng, ft_rng = rng.spawn(5)
    x, y = make_spirals(data_rng, n_train + finetune_size + 2 * n_test, classes=SPIRAL_CLASSES,
                        dim=SPIRAL_DIM, turns=turns)
    x = (x - x[:n_train].mean(axis=0)) / x[:n_train].std(axis=0)
    cut = np.cumsum([n_train, n_test, finetune_size])
    x_a, y_a = x[:cut[0]], y[:cut[0]]
    x_a_test, y_a_test = x[cut[0]:cut[1]], y[cut[0]:cut[1]]
    x_b_all = shifted_inputs(shift_rng, x[cut[1]:], shift)
    x_ft, y_ft = x_b_all[:finetune_size], y[cut[1]:cut[2]]
    x_b_test, y_b_test = x_b_all[finetune_size:], y[cut[2]:]

    pretrained = build_mlp(init_rng, SPIRAL_DIM, SPIRAL_CLASSES, depth, width, norm="batch")
    train(pretrained, SGD(pretrained.params(), lr, momentum=MOMENTUM), x_a, y_a, order_rng,
          pretrain_steps, pretrain_batch)
    order_seed = int(ft_rng.integers(2**63))

    def finetune(model):
        train(model, SGD(model.params(), finetune_lr, momentum=MOMENTUM), x_ft, y_ft,
              np.random.default_rng(order_seed), finetune_steps, finetune_batch)
        return model

    adapted = with_population_statistics(pretrained, x_ft)
    batch_model = finetune(copy.deepcopy(pretrained))
    frozen = copy.deepcopy(pretrained)
    freeze_statistics(frozen)
    refrozen = copy.deepcopy(adapted)
    freeze_statistics(refrozen)
    models = {"batch": batch_model,
              "batch_precise": with_population_statistics(batch_model, x_ft),
              "frozen": finetune(frozen), "refrozen": finetune(refrozen)}
    result = {f"{mode}_acc": accuracy(models[mode], x_b_test, y_b_test)
              for mode in FINETUNE_MODES}
    result.update({
        "pretrained_acc": accuracy(pretrained, x_b_test, y_b_test),
        "adapted_acc": accuracy(adapted, x_b_test, y_b_test),
        "pretrain_acc": accuracy(pretrained, x_a_test, y_a_test),
        "finetune_batch": finetune_batch, "finetune_size": finetune_size,
        "finetune_steps": finetune_steps, "shift": shift,
    })
    result["frozen_gain"] = result["frozen_acc"] - result["batch_acc"]
    result["refrozen_gain"] = result["refrozen_acc"] - result["batch_acc"]
    result["precise_gain"] = result["batch_precise_acc"] - result["batch_acc"]
    return result


# ---------------------------------------------------------------------------------------------
# Dropout with batch norm: the variance shift.

DROPOUT_PLACES = ("none", "before", "after")  # no dropout; before every BN; after the last BN


def cats_task(rng: np.random.Generator, train_size: int, test_size: int, image_noise: float):
    """Few noisy cat pictures to train on (half with coloured fur), many to test on; pixels
    standardized with the training set's statistics (a task small enough to overfit)."""
    x, y = make_cats(rng, train_size + test_size, palette=0.5, noise=image_noise)
    x_train, x_test = x[:train_size], x[train_size:]
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-8
    return (x_train - mean) / std, y[:train_size], (x_test - mean) / std, y[train_size:]


def dropout_network(init_seed: int, in_dim: int, depth: int, width: int, place: str,
                    p: float, plain: bool = False):
    """A ReLU MLP (2 classes) with batch norm before each ReLU (none if ``plain``) and
    dropout of probability ``p`` placed by ``place``: "none"; "before" (after every hidden
    block, so every dropout but the last feeds the next block's linear layer and batch norm,
    the order Li et al. 2019 find harmful); "after" (after the last hidden block only, where
    no batch norm follows). The same ``init_seed`` gives the same weights for every place."""
    model = build_mlp(np.random.default_rng(init_seed), in_dim, 2, depth, width,
                      norm=None if plain else "batch", dropout=0.0 if place == "none" else p)
    if place == "after":
        for block in model.hidden[:-1]:
            block.dropout = None
    return model


def training_mode_accuracy(model, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    """Accuracy on ``x`` in training mode, as the network was trained: consecutive batches of
    ``batch`` rows, each normalized with its own statistics, dropout on. Runs on a copy, so
    the running statistics are left as they were."""
    probe = copy.deepcopy(model)
    rows = len(x) // batch * batch
    logits = np.concatenate([probe.forward(x[i:i + batch], training=True)
                             for i in range(0, rows, batch)])
    return float(np.mean(logits.argmax(axis=1) == y[:rows]))


@experiment(
    "dropout_variance_shift",
    params={
        "p": Param(float, 0.5, 0.05, 0.9, "dropout's drop probability"),
        "depth": Param(int, 3, 2, 8, "hidden layers"),
        "width": Param(int, 64, 8, 512, "units per hidden layer"),
        "batch": Param(int, 32, 4, 256, "mini-batch"),
        "epochs": Param(int, 30, 1, 500, "passes over the training set"),
        "lr": Param(float, 0.05, 1e-4, 1.0, "learning rate (momentum 0.9)"),
        "train_size": Param(int, 256, 64, 4096, "training pictures"),
        "test_size": Param(int, 1000, 200, 20000, "test pictures"),
        "image_noise": Param(float, 0.1, 0.0, 0.5, "per-pixel noise of the pictures"),
    },
    figures=("variance_shift", "dropout_accuracy"),
)
def dropout_variance_shift(rng, p, depth, width, batch, epochs, lr, train_size, test_size,
                           image_noise):
    """Dropout before batch norm against dropout after it (Li, Chen, Hu & Yang 2019, arXiv
    1801.05134), on a small, noisy cat-picture task that a network of this size overfits.

    Networks from the same initial weights, trained by SGD (momentum 0.9) on the same
    mini-batches: batch norm before each ReLU with dropout placed as ``dropout_network``
    says ("none", "before", "after").

    The variance shift of unit j of a batch-norm layer: its running variance (accumulated
    in training, with dropout on) over the variance of its input on the test pictures in
    inference mode (dropout off), Li et al.'s "moving_var / real_var". ``<place>_shift``:
    per batch-norm layer after the first (the layers a dropout feeds in "before"), the
    geometric mean over its units; ``<place>_shift_all``: over all those units at once.
    ``<place>_acc``: test accuracy in inference mode; ``before_precise_acc``: the "before"
    network with its running statistics recomputed on the training set with dropout off
    (no variance shift left; weights unchanged); ``<place>_train_acc`` (training set,
    inference mode) and ``<place>_trainmode_acc`` (training set, training mode:
    ``training_mode_accuracy``). Also
    gains ``before_gain`` (before - none), ``after_gain`` (after - none),
    ``place_gain`` (after - before) and ``precise_gain`` (before_precise - before);
    ``retain_inverse`` = 1 / (1 - p), the shift of a unit's variance when a dropped-out unit's
    own values are zero-mean; and echoes of the settings.
    """
    x_train, y_train, x_test, y_test = cats_task(rng, train_size, test_size, image_noise)
    init_seed, order_seed = (int(s) for s in rng.integers(2**63, size=2))
    steps = epochs * (train_size // batch)
    result = {}

    def fit(model):
        train(model, SGD(model.params(), lr, momentum=MOMENTUM), x_train, y_train,
              np.random.default_rng(order_seed), steps, batch)
        return model

    for place in DROPOUT_PLACES:
        model = fit(dropout_network(init_seed, x_train.shape[1], depth, width, place, p))
        norms = batch_norms(model)
        test_var = bn_input_variances(model, x_test)
        ratios = [norm.running_var / var for norm, var in zip(norms[1:], test_var[1:])]
        result[f"{place}_shift"] = np.array([float(np.exp(np.mean(np.log(r))))
                                             for r in ratios])
        result[f"{place}_shift_all"] = float(np.exp(np.mean(np.log(np.concatenate(ratios)))))
        result[f"{place}_acc"] = accuracy(model, x_test, y_test)
        result[f"{place}_train_acc"] = accuracy(model, x_train, y_train)
        result[f"{place}_trainmode_acc"] = training_mode_accuracy(model, x_train, y_train, batch)
        if place == "before":
            precise = with_population_statistics(model, x_train)
            result["before_precise_acc"] = accuracy(precise, x_test, y_test)
            result["before_precise_shift_all"] = float(np.exp(np.mean(np.log(np.concatenate(
                [n.running_var / v for n, v in zip(batch_norms(precise)[1:],
                                                   bn_input_variances(precise, x_test)[1:])]
            )))))
    result.update({
        "before_gain": result["before_acc"] - result["none_acc"],
        "after_gain": result["after_acc"] - result["none_acc"],
        "place_gain": result["after_acc"] - result["before_acc"],
        "precise_gain": result["before_precise_acc"] - result["before_acc"],
        "retain_inverse": 1.0 / (1.0 - p),
        "p": p, "depth": depth, "width": width, "batch": batch, "steps": steps,
        "train_size": train_size,
    })
    return result


# ---------------------------------------------------------------------------------------------
# Batch norm before or after the activation; the bias that batch norm cancels.

POSITIONS = ("before", "after")


@experiment(
    "norm_position",
    params={
        "activation": Param(str, "relu", doc="nonlinearity", choices=("relu", "tanh")),
        "depth": Param(int, 4, 1, 10, "hidden layers"),
        "width": Param(int, 32, 4, 256, "units per hidden layer"),
        "batch": Param(int, 32, 4, 512, "mini-batch"),
        "steps": Param(int, 400, 20, 5000, "SGD steps (the fixed budget)"),
        "lr": Param(float, 0.1, 1e-4, 2.0, "learning rate (momentum 0.9)"),
        **SPIRAL_DATA_PARAMS,
    },
    figures=("position_curves",),
)
def norm_position(rng, activation, depth, width, batch, steps, lr, n_train, n_test, turns):
    """Batch norm before the activation (Ioffe & Szegedy 2015, Sec. 3.2: normalize
    x = Wu + b) against after it, in MLPs on spirals that differ in nothing else: same
    initial weights, same mini-batches, SGD with momentum 0.9 for ``steps`` steps.

    Returns, for each position P: ``P_acc`` (test accuracy, inference mode), ``P_loss``
    (mean training loss over the last 20 steps), ``P_test_loss``, ``P_curve`` (training loss
    averaged over each tenth of training); ``acc_diff`` (after - before), ``loss_diff``
    (after - before, final training loss) and ``test_loss_diff``; for scale, ``plain_acc``
    and ``plain_loss`` of the same network without batch norm (same weights and batches).

    The bias checks, on the "before" network: ``bias_grad`` (largest |gradient| of a hidden
    linear layer's bias feeding batch norm, over the training steps, relative to the
    largest |gradient| of its weights: zero up to rounding, since BN(z + c) = BN(z) for a
    per-unit constant c), ``shift_invariance`` (largest |BN(z + c) - BN(z)| on a training
    batch for a random c of size 10, relative to the output's size) and ``bias_twin_diff``
    (a twin whose hidden biases start at random values of size 1 instead of 0, trained on
    the same batches: the largest |difference| between its trained parameters, biases
    feeding batch norm aside, and the "before" network's, relative to each parameter's
    size; the biases never move and change nothing else). On the "after" network ``after_bias_grad``, the
    same ratio for the biases, which are not followed by batch norm there and do learn.
    """
    data_rng, init_rng, order_rng, bias_rng = rng.spawn(4)
    x_train, y_train, x_test, y_test = spiral_data(data_rng, n_train, n_test, turns)
    init_seed = int(init_rng.integers(2**63))
    order_seed = int(order_rng.integers(2**63))
    result = {}
    window = max(steps // 10, 1)

    def build(position):
        return build_mlp(np.random.default_rng(init_seed), SPIRAL_DIM, SPIRAL_CLASSES, depth,
                         width, activation=activation, norm="batch", norm_position=position)

    def bias_ratio_tracker(store):
        def track(step, loss, model):
            for block in model.hidden:
                grads = block.linear.grads()
                ratio = float(np.abs(grads["b"]).max() / np.abs(grads["W"]).max())
                store[0] = max(store[0], ratio)
        return track

    for position in POSITIONS:
        model = build(position)
        largest = [0.0]
        losses = train(model, SGD(model.params(), lr, momentum=MOMENTUM), x_train, y_train,
                       np.random.default_rng(order_seed), steps, batch,
                       callback=bias_ratio_tracker(largest))
        result[f"{position}_acc"] = accuracy(model, x_test, y_test)
        result[f"{position}_loss"] = float(np.mean(losses[-20:]))
        result[f"{position}_test_loss"] = _test_loss(model, x_test, y_test)
        result[f"{position}_curve"] = losses[:steps // window * window].reshape(-1, window) \
            .mean(axis=1)
        if position == "before":
            result["bias_grad"] = largest[0]
            trained_before = {name: value.copy() for name, value in model.params().items()}
        else:
            result["after_bias_grad"] = largest[0]

    plain = build_mlp(np.random.default_rng(init_seed), SPIRAL_DIM, SPIRAL_CLASSES, depth, width,
                      activation=activation)
    losses = train(plain, SGD(plain.params(), lr, momentum=MOMENTUM), x_train, y_train,
                   np.random.default_rng(order_seed), steps, batch)
    result["plain_acc"] = accuracy(plain, x_test, y_test)
    result["plain_loss"] = float(np.mean(losses[-20:]))

    # BN(z + c) = BN(z), on a training batch of the first layer's pre-activations.
    norm = BatchNorm1d(width)
    z = x_train[:batch] @ build("before").hidden[0].linear.W
    c = 10 * bias_rng.standard_normal(width)
    y0 = norm.forward(z, training=True)
    y1 = norm.forward(z + c, training=True)
    result["shift_invariance"] = float(np.abs(y1 - y0).max() / np.abs(y0).max())

    twin = build("before")
    for block in twin.hidden:
        block.linear.b[...] = bias_rng.standard_normal(width)
    train(twin, SGD(twin.params(), lr, momentum=MOMENTUM), x_train, y_train,
          np.random.default_rng(order_seed), steps, batch)
    result["bias_twin_diff"] = max(
        float(np.abs(value - trained_before[name]).max() / np.abs(trained_before[name]).max())
        for name, value in twin.params().items()
        if not (name.startswith("hidden") and name.endswith(".linear.b")))
    result.update({
        "acc_diff": result["after_acc"] - result["before_acc"],
        "loss_diff": result["after_loss"] - result["before_loss"],
        "test_loss_diff": result["after_test_loss"] - result["before_test_loss"],
        "curve_steps": (np.arange(len(result["before_curve"])) + 1) * window,
        "activation": activation, "depth": depth, "width": width, "steps": steps, "lr": lr,
        "batch": batch,
    })
    return result
