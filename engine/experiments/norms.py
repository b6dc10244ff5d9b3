"""Batch norm next to the per-sample normalizations (layer norm, group norm, instance norm),
and batch norm in convolutional layers (statistics per channel over N·H·W values).

What each normalization averages over, for activations x of shape (N, C) or (N, C, H, W):

- batch norm: per feature (per channel), over the N examples (and the H·W positions);
- layer norm: per example, over its C features (C·H·W values);
- group norm: per example and group of C / G channels (G = 1: layer norm over (C, H, W);
  G = C: instance norm).

The experiments: ``norm_batch_size`` trains the same small MLP with each normalization at
several batch sizes; ``batch_dependence`` checks, by construction, which outputs depend on
the rest of the batch; ``channel_stat_noise`` measures how noisy a channel's batch mean is
when it is taken over N·H·W values rather than N; ``conv_norm_small_batch`` trains a small
convolutional network on the cats images with batch norm per channel or per position.
"""
from __future__ import annotations

import numpy as np

from engine.batchnorm import BatchNorm1d
from engine.batchnorm2d import BatchNorm2d
from engine.conv import Conv2d, Flatten, MaxPool2d, conv2d_forward
from engine.data import make_cats
from engine.experiments.common import parse_batch_sizes
from engine.experiments.twins import SPIRAL_CLASSES, SPIRAL_DIM, spiral_task
from engine.layernorm import GroupNorm, LayerNorm
from engine.layers import Linear, ReLU, init_weights
from engine.optim import SGD
from engine.registry import Param, ParameterError, experiment
from engine.sequential import Sequential
from engine.train import accuracy, minibatch_indices, train_step

NORMS = ("bn", "ln", "gn")  # the normalizations the MLP experiment compares
MOMENTUM = 0.9  # SGD momentum of every training run here
REFERENCE_BATCH = 32  # the learning rate given is the one at this batch size (linear scaling)
CAT_SIZE = 8  # pixels per side of the cats images
CAT_CHANNELS = 3


# ---------------------------------------------------------------------------------------------
# Networks.


def norm_layer(kind: str, features: int, groups: int):
    """The normalization ``kind`` ("bn", "ln", "gn") for ``features`` units or channels, with
    gamma = 1 and beta = 0: BatchNorm1d, LayerNorm or GroupNorm(groups, features)."""
    if kind == "bn":
        return BatchNorm1d(features)
    if kind == "ln":
        return LayerNorm(features)
    return GroupNorm(groups, features)


def normalized_mlp(rng: np.random.Generator, kind: str, depth: int, width: int, groups: int):
    """A ReLU MLP for the spiral task, ``kind`` normalization before each ReLU (He init)."""
    layers, fan_in = [], SPIRAL_DIM
    for _ in range(depth):
        layers += [Linear(fan_in, width, rng, init="he"), norm_layer(kind, width, groups), ReLU()]
        fan_in = width
    layers.append(Linear(fan_in, SPIRAL_CLASSES, rng, init="he"))
    return Sequential(*layers)


class PositionBatchNorm(BatchNorm1d):
    """Batch norm of (N, C, H, W) images with a mean, a variance, a gamma and a beta for every
    channel AND position: ``BatchNorm1d`` over the C·H·W values of each image as features,
    so each statistic is taken over the N images only (the convolutional property of Ioffe
    & Szegedy 2015, Sec. 3.2, dropped)."""

    def __init__(self, channels: int, height: int, width: int):
        super().__init__(channels * height * width)
        self._shape: tuple[int, ...] | None = None

    def forward(self, x, training=True):
        self._shape = x.shape
        return super().forward(x.reshape(len(x), -1), training).reshape(x.shape)

    def backward(self, dy):
        return super().backward(dy.reshape(len(dy), -1)).reshape(self._shape)


def cat_convnet(rng: np.random.Generator, per: str, channels: int):
    """conv 3x3 -> batch norm -> ReLU -> 2x2 max pool, twice, then a linear layer to 2 logits,
    for 8x8 cats images. ``per``: "channel" (BatchNorm2d: statistics over N·H·W) or
    "position" (``PositionBatchNorm``: over N)."""
    def norm(size):
        if per == "channel":
            return BatchNorm2d(channels)
        return PositionBatchNorm(channels, size, size)
    half, quarter = CAT_SIZE // 2, CAT_SIZE // 4
    return Sequential(Conv2d(CAT_CHANNELS, channels, 3, padding=1, rng=rng), norm(CAT_SIZE),
                      ReLU(), MaxPool2d(2),
                      Conv2d(channels, channels, 3, padding=1, rng=rng), norm(half), ReLU(),
                      MaxPool2d(2), Flatten(), Linear(channels * quarter * quarter, 2, rng))


def cat_images(rng: np.random.Generator, n: int, palette) -> tuple[np.ndarray, np.ndarray]:
    """``make_cats``' pictures as (N, 3, 8, 8) images (its rows are (row, column, channel)
    pixels) and their labels."""
    x, y = make_cats(rng, n, palette=palette, size=CAT_SIZE)
    return np.ascontiguousarray(x.reshape(n, CAT_SIZE, CAT_SIZE, CAT_CHANNELS)
                                .transpose(0, 3, 1, 2)), y


def train_for_examples(net, x, y, batch: int, examples: int, lr: float, order_seed: int) -> None:
    """SGD with momentum over ``examples`` training examples (``examples // batch`` steps) at
    learning rate ``lr * batch / REFERENCE_BATCH`` (the linear scaling rule that Wu & He 2018,
    Sec. 4.1, use across batch sizes), batches drawn from ``order_seed``."""
    optimizer = SGD(net.params(), lr=lr * batch / REFERENCE_BATCH, momentum=MOMENTUM)
    batches = minibatch_indices(np.random.default_rng(order_seed), len(x), batch)
    for _, rows in zip(range(examples // batch), batches):
        train_step(net, optimizer, x[rows], y[rows])


def schedule_params(batch_sizes: str, examples: int, lr: float) -> dict[str, Param]:
    """The parameters of ``train_for_examples``' schedule, with these defaults."""
    return {
        "batch_sizes": Param(str, batch_sizes, doc="training batch sizes (1 to 4, from 2)"),
        "examples": Param(int, examples, 64, 65536,
                          "training examples seen at every batch size (steps = examples / batch)"),
        "lr": Param(float, lr, 1e-4, 2.0,
                    "learning rate at batch 32, scaled in proportion to the batch (momentum 0.9)"),
    }


def batch_mode_accuracy(net, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    """Accuracy when ``x`` is run in training mode, ``batch`` consecutive rows at a time (the
    statistics batch norm trained with: each batch normalized by its own mean and variance).
    Moves the network's running statistics: call it after every inference-mode measurement."""
    rows = len(x) - len(x) % batch
    hits = [net.forward(x[i:i + batch], training=True).argmax(axis=1) == y[i:i + batch]
            for i in range(0, rows, batch)]
    return float(np.mean(np.concatenate(hits)))


def two_seeds(rng: np.random.Generator) -> tuple[int, int]:
    """Seeds of the initial weights and of the batch order, shared by every network of a run."""
    return tuple(int(s) for s in rng.integers(2**63, size=2))


# ---------------------------------------------------------------------------------------------
# Batch norm, layer norm and group norm against the batch size.


@experiment(
    "norm_batch_size",
    params={
        **schedule_params("2,4,16,64", 3072, 0.2),
        "depth": Param(int, 3, 1, 8, "hidden layers"),
        "width": Param(int, 32, 4, 128, "units per hidden layer"),
        "groups": Param(int, 4, 1, 128, "groups of group norm (it must divide width)"),
        "train_size": Param(int, 1024, 128, 20000, "training points"),
        "test_size": Param(int, 1000, 128, 20000, "test points"),
        "turns": Param(float, 0.75, 0.25, 2.0, "turns of each spiral arm (more is harder)"),
    },
    figures=("accuracy_by_batch",),
)
def norm_batch_size(rng, batch_sizes, depth, width, groups, examples, lr, train_size, test_size,
                    turns):
    """The same ReLU MLP with batch norm ("bn"), layer norm ("ln") or group norm ("gn") before
    each ReLU, trained on the spiral task at each batch size in ``batch_sizes``.

    Every network starts from the same weights (drawn from one seed; the normalizations start
    at gamma = 1, beta = 0) and sees the same number of training examples in the same order,
    with the learning rate scaled in proportion to the batch (Wu & He 2018's protocol). Test
    accuracy is measured in inference mode (batch norm with its running statistics).
    Batch norm's network is also run on the test set in training mode, in batches of its own
    training size (``bn_batch_mode_acc``): the statistics it was trained with.

    Returns ``batch_sizes``; ``bn_acc``, ``ln_acc``, ``gn_acc`` (test accuracy per batch size);
    ``bn_batch_mode_acc``; ``steps`` per batch size; ``momentum``; the parameters.
    """
    sizes = parse_batch_sizes(batch_sizes)
    if width % groups:
        raise ParameterError(f"groups = {groups} must divide width = {width}")
    if sizes[-1] > train_size:
        raise ParameterError(f"batch {sizes[-1]} must be <= train_size = {train_size}")
    x, y = spiral_task(rng, train_size + test_size, turns)
    x_train, y_train, x_test, y_test = x[:train_size], y[:train_size], x[train_size:], \
        y[train_size:]
    init_seed, order_seed = two_seeds(rng)
    acc = {kind: np.empty(len(sizes)) for kind in NORMS}
    batch_mode = np.empty(len(sizes))
    for i, batch in enumerate(sizes):
        for kind in NORMS:
            net = normalized_mlp(np.random.default_rng(init_seed), kind, depth, width, groups)
            train_for_examples(net, x_train, y_train, int(batch), examples, lr, order_seed)
            acc[kind][i] = accuracy(net, x_test, y_test)
            if kind == "bn":
                batch_mode[i] = batch_mode_accuracy(net, x_test, y_test, int(batch))
    return {
        "batch_sizes": sizes, "bn_acc": acc["bn"], "ln_acc": acc["ln"], "gn_acc": acc["gn"],
        "bn_batch_mode_acc": batch_mode, "steps": examples // sizes, "momentum": MOMENTUM,
        "depth": depth, "width": width, "groups": groups, "examples": examples, "lr": lr,
        "train_size": train_size, "test_size": test_size,
    }


# ---------------------------------------------------------------------------------------------
# What depends on the rest of the batch (by construction).


@experiment(
    "batch_dependence",
    params={
        "batch": Param(int, 16, 3, 1024, "examples in a batch"),
        "features": Param(int, 32, 4, 1024, "features of a layer (channels of the images)"),
        "groups": Param(int, 4, 1, 1024, "groups of group norm (it must divide features)"),
        "size": Param(int, 6, 2, 32, "pixels per side of the images"),
    },
)
def batch_dependence(rng, batch, features, groups, size):
    """One example's normalized values inside two batches that share only that example.

    Activations (Gaussian, each feature with its own mean and scale) of a batch A and of a
    batch B whose example 0 is A's example 0 and whose other examples are fresh. For each
    normalization (training mode), the largest change of example 0's output between A and
    B: ``bn_change`` (batch norm, features), ``ln_change`` (layer norm), ``gn_change``
    (group norm), and over images (N, C, H, W): ``bn2d_change`` (BatchNorm2d),
    ``gn2d_change``, ``in2d_change`` (instance norm, GroupNorm(C, C)). ``ln_mode_diff``,
    ``gn_mode_diff``: the largest difference between training and inference mode (there are
    no running statistics). ``ln_single_diff``: example 0 normalized alone against inside A.
    For a batch of two, whose batch-normalized values are +-|d| / sqrt(d^2 + eps) with d half
    the difference of the two values (+-1 unless the two are within about sqrt(eps)):
    ``bn_pair_formula_dev``, the largest deviation from that formula; ``bn_pair_near_one``,
    the fraction of normalized values within 0.01 of +1 or -1; ``ln_pair_max_abs``, the
    largest layer-normalized value of the same pair.
    ``bn_refuses_one``: batch norm in training mode refuses a batch of one.
    """
    if features % groups:
        raise ParameterError(f"groups = {groups} must divide features = {features}")
    centre = rng.normal(0.0, 3.0, features)
    scale = np.exp(rng.normal(0.0, 1.0, features))
    a = centre + scale * rng.normal(size=(batch, features))
    b = centre + scale * rng.normal(size=(batch, features))
    b[0] = a[0]

    def change(layer, first, second):
        return float(np.max(np.abs(layer.forward(first)[0] - layer.forward(second)[0])))

    ln, gn = LayerNorm(features), GroupNorm(groups, features)
    image_centre = centre[:, None, None]
    images_a = image_centre + rng.normal(size=(batch, features, size, size))
    images_b = image_centre + rng.normal(size=(batch, features, size, size))
    images_b[0] = images_a[0]
    pair = a[:2]
    bn_pair = BatchNorm1d(features).forward(pair)
    half = np.abs(pair[0] - pair[1]) / 2
    try:
        BatchNorm1d(features).forward(a[:1])
        refuses_one = False
    except ValueError:
        refuses_one = True
    return {
        "bn_change": change(BatchNorm1d(features), a, b),
        "ln_change": change(ln, a, b),
        "gn_change": change(gn, a, b),
        "bn2d_change": change(BatchNorm2d(features), images_a, images_b),
        "gn2d_change": change(GroupNorm(groups, features), images_a, images_b),
        "in2d_change": change(GroupNorm(features, features), images_a, images_b),
        "ln_mode_diff": float(np.max(np.abs(ln.forward(a, training=True)
                                            - ln.forward(a, training=False)))),
        "gn_mode_diff": float(np.max(np.abs(gn.forward(a, training=True)
                                            - gn.forward(a, training=False)))),
        "ln_single_diff": float(np.max(np.abs(ln.forward(a[:1])[0] - ln.forward(a)[0]))),
        "bn_pair_formula_dev": float(np.max(np.abs(np.abs(bn_pair) - half / np.sqrt(
            half ** 2 + BatchNorm1d(features).eps)))),
        "bn_pair_near_one": float(np.mean(np.abs(np.abs(bn_pair) - 1.0) < 0.01)),
        "ln_pair_max_abs": float(np.max(np.abs(ln.forward(pair)))),
        "bn_refuses_one": refuses_one,
        "batch": batch, "features": features, "groups": groups, "size": size,
    }


@experiment(
    "conv_bn_identities",
    params={
        "batch": Param(int, 4, 2, 256, "images in the batch (N)"),
        "channels": Param(int, 8, 1, 64, "channels (C)"),
        "size": Param(int, 6, 2, 32, "pixels per side (H = W)"),
    },
)
def conv_bn_identities(rng, batch, channels, size):
    """What batch norm computes on (N, C, H, W) activations, checked against its definition.

    Activations with a mean and scale of their own per channel. ``formula_diff``: largest
    difference between ``BatchNorm2d`` (training mode) and (x - mean) / sqrt(var + eps) with
    each channel's mean and biased variance over the N·H·W values, written out in numpy;
    ``channel_mean_max``: the largest |mean| of an output channel over (N, H, W);
    ``channel_var_dev``: the largest difference between an output channel's variance and
    var / (var + eps). ``shared_value_diff``: two entries of one channel holding the same
    value, in different images and positions, get outputs this far apart (0: the same
    feature is normalized the same way everywhere, Ioffe & Szegedy's convolutional
    property); ``position_shared_value_diff``: the same with batch norm per position.
    ``single_vs_instance``: batch norm (training mode) of a batch of one image against
    instance norm (GroupNorm(C, C)) of it. ``params_channel``, ``params_position``: the
    number of gammas and betas per channel (2 C) and per position (2 C·H·W).
    """
    centre = rng.normal(0.0, 3.0, channels)[:, None, None]
    scale = np.exp(rng.normal(0.0, 1.0, channels))[:, None, None]
    x = centre + scale * rng.normal(size=(batch, channels, size, size))
    x[1, :, size - 1, size - 2] = x[0, :, 0, 0]  # the same value in two places per channel
    y = BatchNorm2d(channels).forward(x)
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    by_hand = (x - mean) / np.sqrt(var + BatchNorm2d(channels).eps)
    out_var = y.var(axis=(0, 2, 3))
    expected_var = var.ravel() / (var.ravel() + BatchNorm2d(channels).eps)
    by_position = PositionBatchNorm(channels, size, size).forward(x)
    single = x[:1]
    return {
        "formula_diff": float(np.max(np.abs(y - by_hand))),
        "channel_mean_max": float(np.max(np.abs(y.mean(axis=(0, 2, 3))))),
        "channel_var_dev": float(np.max(np.abs(out_var - expected_var))),
        "shared_value_diff": float(np.max(np.abs(y[1, :, size - 1, size - 2] - y[0, :, 0, 0]))),
        "position_shared_value_diff": float(np.max(np.abs(
            by_position[1, :, size - 1, size - 2] - by_position[0, :, 0, 0]))),
        "single_vs_instance": float(np.max(np.abs(
            BatchNorm2d(channels).forward(single) - GroupNorm(channels, channels).forward(single)))),
        "params_channel": 2 * channels, "params_position": 2 * channels * size * size,
        "batch": batch, "channels": channels, "size": size,
    }


# ---------------------------------------------------------------------------------------------
# Batch norm in a convolutional layer: how noisy is a channel's batch mean?


def effective_sizes(maps: np.ndarray, batch: int, trials: int,
                    rng: np.random.Generator) -> tuple[float, float]:
    """For feature maps (P, C, H, W) of a pool of P images: draw ``trials`` batches of
    ``batch`` images and return the effective batch sizes of two batch means: (1) a channel's
    mean over the N·H·W values of the batch, (2) the mean over the N images at one position.
    The effective size of a mean is the variance of the values it averages over the variance
    of the mean across batches (an average of m independent values has m), here pooled over
    channels (and positions): sum of the values' variances / sum of the means' variances."""
    pool = len(maps)
    idx = np.stack([rng.choice(pool, batch, replace=False) for _ in range(trials)])
    channel_means = maps.mean(axis=(2, 3))[idx].mean(axis=1)  # (trials, C)
    channel_var = maps.transpose(1, 0, 2, 3).reshape(maps.shape[1], -1).var(axis=1)
    per_channel = channel_var.sum() / channel_means.var(axis=0, ddof=1).sum()
    position_means = maps[idx].mean(axis=1)  # (trials, C, H, W)
    per_position = maps.var(axis=0).sum() / position_means.var(axis=0, ddof=1).sum()
    return float(per_channel), float(per_position)


@experiment(
    "channel_stat_noise",
    params={
        "batch": Param(int, 4, 2, 256, "images in a mini-batch (N)"),
        "channels": Param(int, 8, 1, 64, "filters of each convolution"),
        "pool": Param(int, 1024, 64, 8192, "images the population statistics come from"),
        "trials": Param(int, 500, 50, 5000, "mini-batches drawn"),
        "palette": Param(float, 0.5, 0.0, 1.0, "fraction of cats with coloured fur"),
    },
    figures=("effective_batch",),
)
def channel_stat_noise(rng, batch, channels, pool, trials, palette):
    """How many independent values a channel's batch statistics are worth in a convolutional
    network at initialization.

    A pool of cats images goes through conv 3x3 (He init, padding 1) -> the feature maps
    batch norm would normalize in layer 1 (8x8), then ReLU -> 2x2 max pool -> conv 3x3 ->
    layer 2's maps (4x4). For each layer, ``trials`` mini-batches of ``batch`` images are
    drawn from the pool; the effective batch size of a statistic is the population variance
    of the values over the variance of the statistic across mini-batches (m for m
    independent values). Batch norm per channel takes its mean over N·H·W values
    (``*_channel_size``); per position (BatchNorm1d over the flattened maps) over N
    (``*_position_size``, which should be N: images are independent). ``*_nominal`` is
    N·H·W, Ioffe & Szegedy's "effective mini-batch" m·p·q; ``*_per_image`` is
    ``*_channel_size / N``: the number of independent values one image's H·W positions are
    worth. Layers are ``layer1`` and ``layer2``; also the maps' side lengths.
    """
    if batch > pool:
        raise ParameterError(f"batch = {batch} must be <= pool = {pool}")
    x, _ = cat_images(rng, pool, palette)
    x = x - x.mean(axis=(0, 2, 3), keepdims=True)  # inputs centred per colour channel
    w1 = init_weights(rng, CAT_CHANNELS * 9, channels).T.reshape(channels, CAT_CHANNELS, 3, 3)
    w2 = init_weights(rng, channels * 9, channels).T.reshape(channels, channels, 3, 3)
    maps1, _ = conv2d_forward(x, w1, None, padding=1)
    h = np.maximum(maps1, 0.0)
    h = h.reshape(pool, channels, CAT_SIZE // 2, 2, CAT_SIZE // 2, 2).max(axis=(3, 5))
    maps2, _ = conv2d_forward(h, w2, None, padding=1)
    result = {"batch": batch, "channels": channels, "pool": pool, "trials": trials}
    for name, maps in (("layer1", maps1), ("layer2", maps2)):
        per_channel, per_position = effective_sizes(maps, batch, trials, rng)
        side = maps.shape[2]
        result.update({
            f"{name}_side": side,
            f"{name}_nominal": batch * side * side,
            f"{name}_channel_size": per_channel,
            f"{name}_position_size": per_position,
            f"{name}_per_image": per_channel / batch,
        })
    return result


# ---------------------------------------------------------------------------------------------
# Batch norm per channel or per position in a small convolutional network.


@experiment(
    "conv_norm_small_batch",
    params={
        **schedule_params("2,16", 2048, 0.1),
        "channels": Param(int, 8, 2, 32, "filters of each convolution"),
        "train_size": Param(int, 512, 64, 8192, "training images"),
        "test_size": Param(int, 1000, 64, 8192, "test images"),
        "palette": Param(float, 0.5, 0.0, 1.0, "fraction of cats with coloured fur"),
    },
    figures=("per_channel_vs_position",),
)
def conv_norm_small_batch(rng, batch_sizes, channels, examples, lr, train_size, test_size,
                          palette):
    """A small convolutional network on the cats images (conv-BN-ReLU-pool twice, then a
    linear layer) with batch norm per channel (``BatchNorm2d``, statistics over N·H·W values)
    or per position (``PositionBatchNorm``, over the N images), trained at each batch size
    from the same initial weights on the same examples (learning rate scaled with the batch).

    Returns ``batch_sizes``; ``channel_acc``, ``position_acc`` (test accuracy in inference
    mode) and ``channel_batch_mode_acc``, ``position_batch_mode_acc`` (the test set run in
    training mode in batches of the training size); ``steps``; ``momentum``; the parameters.
    """
    sizes = parse_batch_sizes(batch_sizes)
    if sizes[-1] > train_size:
        raise ParameterError(f"batch {sizes[-1]} must be <= train_size = {train_size}")
    x_train, y_train = cat_images(rng, train_size, palette)
    x_test, y_test = cat_images(rng, test_size, palette)
    init_seed, order_seed = two_seeds(rng)
    result = {"batch_sizes": sizes, "steps": examples // sizes, "momentum": MOMENTUM,
              "channels": channels,
              "examples": examples, "lr": lr, "train_size": train_size, "test_size": test_size}
    for per in ("channel", "position"):
        acc, batch_mode = np.empty(len(sizes)), np.empty(len(sizes))
        for i, batch in enumerate(sizes):
            net = cat_convnet(np.random.default_rng(init_seed), per, channels)
            train_for_examples(net, x_train, y_train, int(batch), examples, lr, order_seed)
            acc[i] = accuracy(net, x_test, y_test)
            batch_mode[i] = batch_mode_accuracy(net, x_test, y_test, int(batch))
        result[f"{per}_acc"], result[f"{per}_batch_mode_acc"] = acc, batch_mode
    return result
