"""Covariate shift between training and test data: networks trained on black cats and tested
on coloured ones (``engine.data.make_cats``), with and without batch norm, with the batch
norm statistics re-estimated on the test data (AdaBN, Li et al. 2016, arXiv 1603.04779),
with the hidden features' distribution deliberately shifted at random during training, and
with coloured cats mixed into the training data."""
from __future__ import annotations

import copy

import numpy as np

from engine.batchnorm import BatchNorm1d
from engine.data import make_cats
from engine.network import build_mlp
from engine.normalization import JitteredNorm
from engine.optim import SGD
from engine.registry import Param, ParameterError, experiment
from engine.train import accuracy, train

# Training variants, in the order of the result arrays: (name, norm, training palette,
# jittered hidden distributions).
VARIANTS = (
    ("plain", None, "black", False),
    ("bn", "batch", "black", False),
    ("jitter", "batch", "black", True),
    ("plain_mixed", None, "mixed", False),
    ("bn_mixed", "batch", "mixed", False),
)
SHOWN_EXAMPLES = 4  # pictures of each palette returned for the figure


def with_reestimated_statistics(model, x: np.ndarray):
    """AdaBN: a copy of ``model`` whose batch norm layers' running statistics are those of
    ``x`` (every layer's in turn, as ``x`` flows through the already re-normalized earlier
    layers). One training-mode pass over all of ``x`` with momentum 1 does exactly that;
    the weights are not touched."""
    adapted = copy.deepcopy(model)
    norms = [block.norm for block in adapted.hidden if isinstance(block.norm, BatchNorm1d)]
    if not norms:
        raise ValueError("with_reestimated_statistics needs a model with BatchNorm1d layers")
    for norm in norms:
        norm.momentum = 1.0
    adapted.forward(x, training=True)
    return adapted


def standardized_shift(reference: np.ndarray, shifted: np.ndarray):
    """Per column: |mean(shifted) - mean(reference)| / std(reference), i.e. how far the
    column's mean moved, in units of its spread on the reference data. Columns that are
    constant on the reference data (a dead unit) are left out. Returns the indices of the
    columns kept and their shifts."""
    spread = reference.std(axis=0)
    kept = np.flatnonzero(spread > 1e-8 * max(float(np.abs(reference).max()), 1.0))
    if not len(kept):
        raise ValueError("standardized_shift: every column is constant on the reference data")
    moved = np.abs(shifted.mean(axis=0) - reference.mean(axis=0))
    return kept, moved[kept] / spread[kept]


def _train_variant(seed, x, y, norm, jitter, depth, width, steps, batch, lr, jitter_shift,
                   jitter_scale):
    """A model trained with SGD (momentum 0.9) at ``lr``, then at lr/10 for the last third
    of the steps, so that the final weights are not those of one noisy step."""
    rng = np.random.default_rng(seed)
    model = build_mlp(rng, x.shape[1], 2, depth, width, "relu", norm=norm)
    if jitter:
        jitter_rng = rng.spawn(1)[0]
        for block in model.hidden:
            block.norm = JitteredNorm(block.norm, jitter_rng, jitter_shift, jitter_scale)
    optimizer = SGD(model.params(), lr, momentum=0.9)
    first = steps - steps // 3
    train(model, optimizer, x, y, rng, first, batch)
    optimizer.lr = lr / 10
    train(model, optimizer, x, y, rng, steps - first, batch)
    return model


def _unjittered(model):
    """The same model with plain norm layers (jitter only exists in training mode anyway)."""
    for block in model.hidden:
        if isinstance(block.norm, JitteredNorm):
            block.norm = block.norm.norm
    return model


def _preactivations(model, x):
    model.forward(x, training=False)
    return [z.copy() for z in model.preactivations]


@experiment(
    "cats_covariate_shift",
    params={
        "n_train": Param(int, 1000, 100, 4000, "training pictures in each training set"),
        "n_test": Param(int, 1000, 100, 4000, "test pictures of each palette"),
        "size": Param(int, 8, 6, 16, "picture side in pixels (inputs: size * size * 3)"),
        "mixed_fraction": Param(float, 0.5, 0.05, 1.0,
                                "fraction of coloured cats in the mixed training set"),
        "depth": Param(int, 2, 1, 4, "hidden layers"),
        "width": Param(int, 64, 8, 256, "units per hidden layer"),
        "steps": Param(int, 300, 30, 5000, "SGD steps per training run"),
        "batch": Param(int, 64, 8, 256, "mini-batch size"),
        "lr": Param(float, 0.02, 1e-4, 0.2, "learning rate (the same for every variant)"),
        "repeats": Param(int, 3, 1, 8, "training runs per variant (fresh initializations); "
                                       "accuracies are averaged over them"),
        "jitter_shift": Param(float, 2.0, 0.0, 10.0,
                              "largest random shift of a hidden unit's distribution"),
        "jitter_scale": Param(float, 3.0, 1.0, 10.0,
                              "largest random factor on a hidden unit's spread"),
    },
    figures=("cat_pictures", "accuracy_by_variant", "hidden_unit_shift"),
)
def cats_covariate_shift(rng, n_train, n_test, size, mixed_fraction, depth, width, steps,
                         batch, lr, repeats, jitter_shift, jitter_scale):
    """Black cats for training, coloured cats for testing: what batch norm does and does not do.

    Data (``make_cats``, label = cat or ear-less blob): ``n_train`` black pictures, ``n_train``
    mixed pictures (a ``mixed_fraction`` of them coloured), and ``n_test`` black and
    ``n_test`` coloured test pictures. Variants, each trained ``repeats`` times with the same
    initial weights and batch order across variants (ReLU MLP, ``depth`` x ``width``):
    ``plain`` (no norm) and ``bn`` (batch norm before each ReLU) on black cats; ``jitter``,
    batch norm on black cats with each hidden unit's distribution shifted and rescaled at
    random at every step (``JitteredNorm``); ``plain_mixed`` and ``bn_mixed`` on the mixed set.

    Returns, averaged over the repeats: ``acc_black_<variant>`` and ``acc_colour_<variant>``
    (test accuracy, inference mode, batch norm with its running statistics from training);
    ``acc_colour_adabn`` and ``acc_black_adabn`` (the ``bn`` models with their statistics
    re-estimated on the coloured, resp. black, test set) and ``acc_colour_bn_mixed_adabn``;
    the per-repeat coloured accuracies ``colour_<variant>`` and ``colour_adabn``
    (arrays); ``gap_<variant>`` = black minus coloured accuracy, and ``gap_adabn``.
    Shift of the inputs and hidden units between black and coloured test pictures, as the
    mean over units of |mean difference| / black std (``standardized_shift``):
    ``input_shift`` (pixels), ``hidden_shift_plain``, ``hidden_shift_bn`` (per hidden
    layer, inference mode) and ``hidden_shift_adabn`` (the adapted model on coloured
    pictures against the ``bn`` model on black ones: by construction the adapted model's
    units have on coloured cats the mean the running averages give them on the data they
    were collected on, so what is left is the running averages' own error on black cats);
    ``hidden_shift_null_plain`` and ``hidden_shift_null_bn``, the same measure between two
    independent samples of black test cats (the measure's noise floor). For the figure: the
    pre-activation of the median-shift unit of each layer of the first ``bn`` model
    (``unit_black``, ``unit_colour``, ``unit_adabn``, shape (depth, n_test)), and a few
    pictures (``pictures_black``, ``pictures_colour``, with ``labels_black``,
    ``labels_colour``). Parameters are echoed.
    """
    if batch > n_train:
        raise ParameterError(f"parameter 'batch' = {batch} must be <= n_train = {n_train}")
    data_rng, train_rng = rng.spawn(2)
    x_black, y_black = make_cats(data_rng, n_train, "black", size=size)
    x_mixed, y_mixed = make_cats(data_rng, n_train, mixed_fraction, size=size)
    xt_black, yt_black = make_cats(data_rng, n_test, "black", size=size)
    xt_colour, yt_colour = make_cats(data_rng, n_test, "colour", size=size)
    # A second sample of black test cats: how far the shift measure moves between two samples
    # of the same distribution (its noise floor).
    xt_black2, _ = make_cats(data_rng, n_test, "black", size=size)
    training_sets = {"black": (x_black, y_black), "mixed": (x_mixed, y_mixed)}
    seeds = train_rng.integers(2**63, size=repeats)

    acc_black = {name: np.empty(repeats) for name, *_ in VARIANTS}
    acc_colour = {name: np.empty(repeats) for name, *_ in VARIANTS}
    adabn_colour, adabn_black, mixed_adabn_colour = (np.empty(repeats) for _ in range(3))
    shift_plain, shift_bn, shift_adabn = (np.zeros(depth) for _ in range(3))
    null_plain, null_bn = np.zeros(depth), np.zeros(depth)
    unit_black, unit_colour, unit_adabn = (np.empty((depth, n_test)) for _ in range(3))
    for r, seed in enumerate(seeds):
        models = {}
        for name, norm, palette, jitter in VARIANTS:
            x, y = training_sets[palette]
            model = _unjittered(_train_variant(seed, x, y, norm, jitter, depth, width, steps,
                                               batch, lr, jitter_shift, jitter_scale))
            acc_black[name][r] = accuracy(model, xt_black, yt_black)
            acc_colour[name][r] = accuracy(model, xt_colour, yt_colour)
            models[name] = model
        adapted = with_reestimated_statistics(models["bn"], xt_colour)
        adabn_colour[r] = accuracy(adapted, xt_colour, yt_colour)
        adabn_black[r] = accuracy(with_reestimated_statistics(models["bn"], xt_black),
                                  xt_black, yt_black)
        mixed_adabn_colour[r] = accuracy(
            with_reestimated_statistics(models["bn_mixed"], xt_colour), xt_colour, yt_colour)

        z_plain = zip(_preactivations(models["plain"], xt_black),
                      _preactivations(models["plain"], xt_colour),
                      _preactivations(models["plain"], xt_black2))
        z_bn_black = _preactivations(models["bn"], xt_black)
        z_bn_colour = _preactivations(models["bn"], xt_colour)
        z_bn_black2 = _preactivations(models["bn"], xt_black2)
        z_adabn = _preactivations(adapted, xt_colour)
        for layer, (black, colour, black2) in enumerate(z_plain):
            shift_plain[layer] += standardized_shift(black, colour)[1].mean() / repeats
            null_plain[layer] += standardized_shift(black, black2)[1].mean() / repeats
            null_bn[layer] += standardized_shift(z_bn_black[layer],
                                                 z_bn_black2[layer])[1].mean() / repeats
            units, per_unit = standardized_shift(z_bn_black[layer], z_bn_colour[layer])
            shift_bn[layer] += per_unit.mean() / repeats
            shift_adabn[layer] += standardized_shift(z_bn_black[layer],
                                                     z_adabn[layer])[1].mean() / repeats
            if r == 0:
                # The unit whose shift is the median of its layer: typical, not the extreme.
                unit = units[np.argsort(per_unit)[len(per_unit) // 2]]
                unit_black[layer] = z_bn_black[layer][:, unit]
                unit_colour[layer] = z_bn_colour[layer][:, unit]
                unit_adabn[layer] = z_adabn[layer][:, unit]

    result = {}
    for name, *_ in VARIANTS:
        result[f"acc_black_{name}"] = float(acc_black[name].mean())
        result[f"acc_colour_{name}"] = float(acc_colour[name].mean())
        result[f"colour_{name}"] = acc_colour[name]
        result[f"gap_{name}"] = float(acc_black[name].mean() - acc_colour[name].mean())
    result.update({
        "acc_colour_adabn": float(adabn_colour.mean()),
        "acc_black_adabn": float(adabn_black.mean()),
        "acc_colour_bn_mixed_adabn": float(mixed_adabn_colour.mean()),
        "colour_adabn": adabn_colour,
        "gap_adabn": float(acc_black["bn"].mean() - adabn_colour.mean()),
        "input_shift": float(standardized_shift(xt_black, xt_colour)[1].mean()),
        "hidden_shift_plain": shift_plain,
        "hidden_shift_bn": shift_bn,
        "hidden_shift_adabn": shift_adabn,
        "hidden_shift_null_plain": null_plain,
        "hidden_shift_null_bn": null_bn,
        "unit_black": unit_black,
        "unit_colour": unit_colour,
        "unit_adabn": unit_adabn,
        "pictures_black": xt_black[:SHOWN_EXAMPLES].reshape(-1, size, size, 3),
        "pictures_colour": xt_colour[:SHOWN_EXAMPLES].reshape(-1, size, size, 3),
        "labels_black": yt_black[:SHOWN_EXAMPLES],
        "labels_colour": yt_colour[:SHOWN_EXAMPLES],
        "n_train": n_train, "n_test": n_test, "size": size, "mixed_fraction": mixed_fraction,
        "depth": depth, "width": width, "steps": steps, "batch": batch, "lr": lr,
        "repeats": repeats, "jitter_shift": jitter_shift, "jitter_scale": jitter_scale,
    })
    return result
