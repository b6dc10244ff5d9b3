"""Figures of ``cats_covariate_shift``: the pictures, accuracy per training variant, and one
hidden unit's pre-activation on black and coloured cats."""
from __future__ import annotations

import numpy as np

from engine.registry import figure

BLACK, COLOUR, ADAPTED = "#444444", "tab:orange", "tab:green"


@figure("cats_covariate_shift", "cat_pictures")
def draw_cat_pictures(result, fig):
    rows = (("black", result["pictures_black"], result["labels_black"]),
            ("coloured", result["pictures_colour"], result["labels_colour"]))
    count = len(result["labels_black"])
    axes = fig.subplots(2, count)
    for row, (palette, pictures, labels) in enumerate(rows):
        for col in range(count):
            ax = axes[row, col]
            ax.imshow(pictures[col], interpolation="nearest", vmin=0.0, vmax=1.0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{palette}: {'cat' if labels[col] == 1 else 'not a cat'}")
    side = result["size"]
    fig.suptitle(f"Test pictures ({side}×{side} pixels): training uses the black ones only")


@figure("cats_covariate_shift", "accuracy_by_variant")
def draw_accuracy_by_variant(result, fig):
    variants = (
        # Short lines: six labels side by side fit a phone's width too.
        ("no BN", "plain", "plain"),
        ("BN", "bn", "bn"),
        ("BN +\nAdaBN", "adabn", "adabn"),
        ("BN +\njittered\nunits", "jitter", "jitter"),
        ("no BN,\nmixed\ndata", "plain_mixed", "plain_mixed"),
        ("BN,\nmixed\ndata", "bn_mixed", "bn_mixed"),
    )
    ax = fig.subplots()
    positions = np.arange(len(variants))
    black = [result[f"acc_black_{key}"] for _, key, _ in variants]
    colour = [result[f"acc_colour_{key}"] for _, key, _ in variants]
    ax.bar(positions - 0.2, black, 0.4, color=BLACK, label="black test cats")
    ax.bar(positions + 0.2, colour, 0.4, color=COLOUR, label="coloured test cats")
    for i, (_, _, runs) in enumerate(variants):
        values = result[f"colour_{runs}"]
        ax.plot(np.full(len(values), i + 0.2), values, "k.", markersize=4,
                label="one training run" if i == 0 else None)
    ax.axhline(0.5, color="gray", linestyle=":", label="chance")
    ax.set_xticks(positions, [label for label, _, _ in variants])
    ax.set_ylim(0.4, 1.02)
    ax.set_ylabel("test accuracy")
    ax.set_title("Trained on black cats (first four) or on a mix of black and coloured")
    fig.legend(loc="outside lower center", ncol=4)


@figure("cats_covariate_shift", "hidden_unit_shift")
def draw_hidden_unit_shift(result, fig):
    depth = result["unit_black"].shape[0]
    axes = np.atleast_1d(fig.subplots(1, depth, sharey=True))
    for layer, ax in enumerate(axes):
        values = [result["unit_black"][layer], result["unit_colour"][layer],
                  result["unit_adabn"][layer]]
        bins = np.linspace(min(v.min() for v in values), max(v.max() for v in values), 40)
        ax.hist(values[0], bins=bins, alpha=0.6, color=BLACK, label="black cats")
        ax.hist(values[1], bins=bins, alpha=0.6, color=COLOUR, label="coloured cats")
        ax.hist(values[2], bins=bins, histtype="step", linewidth=1.5, color=ADAPTED,
                label="coloured, AdaBN")
        ax.set_title(f"hidden layer {layer + 1}: mean shift "
                     f"{result['hidden_shift_bn'][layer]:.2f} std")
        ax.set_xlabel("pre-activation of a typical unit")
    axes[0].set_ylabel("test pictures")
    axes[0].legend()
    fig.suptitle("Batch-normalized network trained on black cats, inference mode")
