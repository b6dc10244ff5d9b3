"""Figures of ``engine.experiments.norms``: accuracy of batch, layer and group norm against
the batch size; how many independent values a channel's batch statistics are worth in a
convolutional layer; batch norm per channel or per position in a small convolutional
network."""
from __future__ import annotations

import numpy as np

from engine.registry import figure

NORM_STYLES = {  # field prefix: (label, colour, marker)
    "bn": ("batch norm", "tab:blue", "o"),
    "ln": ("layer norm", "tab:orange", "s"),
    "gn": ("group norm", "tab:green", "^"),
}


def _batch_axis(ax, sizes):
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(int(m)) for m in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training batch size")


@figure("norm_batch_size", "accuracy_by_batch")
def draw_accuracy_by_batch(result, fig):
    ax = fig.subplots()
    sizes = result["batch_sizes"]
    for prefix, (label, colour, marker) in NORM_STYLES.items():
        ax.plot(sizes, result[f"{prefix}_acc"], marker=marker, color=colour, label=label)
    ax.plot(sizes, result["bn_batch_mode_acc"], marker="o", linestyle=":", color="tab:blue",
            alpha=0.6, label="batch norm, test run in training-size batches")
    ax.axhline(1 / 3, color="gray", linestyle="--", linewidth=1, label="chance (3 classes)")
    _batch_axis(ax, sizes)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Spirals, MLP {result['depth']}×{result['width']}, "
                 f"{result['examples']} training examples at every batch size")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right")


@figure("channel_stat_noise", "effective_batch")
def draw_effective_batch(result, fig):
    ax = fig.subplots()
    layers = ("layer1", "layer2")
    positions = np.arange(len(layers))
    width = 0.27
    bars = (("position_size", "per position: over $N$ images", "tab:red"),
            ("channel_size", "per channel: measured", "tab:blue"),
            ("nominal", r"per channel: $N \cdot H \cdot W$ values", "tab:gray"))
    for k, (field, label, colour) in enumerate(bars):
        values = [result[f"{layer}_{field}"] for layer in layers]
        ax.bar(positions + (k - 1) * width, values, width, color=colour, label=label,
               alpha=0.5 if field == "nominal" else 1.0)
    ax.set_yscale("log", base=2)
    top = max(result[f"{layer}_nominal"] for layer in layers)
    ticks = [2 ** k for k in range(int(np.log2(top)) + 1)]
    ax.set_yticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    names = [f"layer {i + 1} ({result[f'{layer}_side']}×{result[f'{layer}_side']} maps)"
             for i, layer in enumerate(layers)]
    ax.set_xticks(positions, names)
    ax.set_ylabel("effective batch size of the batch mean\n(independent values it is worth)")
    ax.set_title(f"Batch of $N = {result['batch']}$ cats images, random 3×3 convolutions")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper left")


@figure("conv_norm_small_batch", "per_channel_vs_position")
def draw_per_channel_vs_position(result, fig):
    ax = fig.subplots()
    sizes = result["batch_sizes"]
    positions = np.arange(len(sizes))
    width = 0.38
    for k, (per, label, colour) in enumerate((
            ("channel", r"per channel (over $N \cdot H \cdot W$)", "tab:blue"),
            ("position", "per position (over $N$)", "tab:red"))):
        ax.bar(positions + (k - 0.5) * width, result[f"{per}_acc"], width, color=colour,
               label=label)
    ax.axhline(0.5, color="gray", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(positions, [f"batch {int(m)}" for m in sizes])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy (inference mode)")
    ax.set_title(f"Cats, conv net with batch norm, {result['examples']} training images seen")
    ax.legend(loc="lower right")
