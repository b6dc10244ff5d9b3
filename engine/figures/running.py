"""Figures of ``running_averages_in_training``: accuracy and the training/inference gap by
batch size, and the drift of the pre-normalization biases during training."""
from __future__ import annotations

import numpy as np

from engine.registry import figure

STYLES = {  # norm: (label, colour)
    "batch": ("batch norm", "tab:blue"),
    "running": ("running averages in training", "tab:red"),
    "renorm": ("Batch Renorm", "tab:green"),
}
BATCH_LINES = ("-", "--", ":", "-.")


def _grouped_bars(ax, result, field):
    sizes = result["batch_sizes"]
    positions = np.arange(len(sizes))
    width = 0.8 / len(STYLES)
    for k, (norm, (label, colour)) in enumerate(STYLES.items()):
        x = positions + (k - 1) * width
        ax.bar(x, result[f"{field}_{norm}"], width, color=colour, label=label)
        for xi, diverged in zip(x, result[f"diverged_{norm}"]):
            if diverged:
                ax.text(xi, 0.02, "diverged", rotation=90, ha="center", va="bottom")
    ax.set_xticks(positions, [str(int(m)) for m in sizes])
    ax.set_xlabel("batch size $m$")


@figure("running_averages_in_training", "accuracy_by_batch")
def draw_accuracy_by_batch(result, fig):
    ax = fig.subplots()
    _grouped_bars(ax, result, "acc")
    ax.axhline(1 / 3, color="gray", linestyle=":", label="chance (3 classes)")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy (inference mode)")
    ax.set_title(f"Spirals, {result['steps']} SGD steps at lr {result['lr']:g}")
    ax.legend(loc="upper left")


@figure("running_averages_in_training", "train_inference_gap")
def draw_train_inference_gap(result, fig):
    ax = fig.subplots()
    _grouped_bars(ax, result, "disagree")
    highest = max(float(result[f"disagree_{norm}"].max()) for norm in STYLES)
    ax.set_ylim(0, min(1.05, 1.2 * highest + 0.02))
    ax.set_ylabel("test examples classified differently\nin training and inference mode")
    ax.set_title("Training-mode outputs vs inference-mode outputs")
    ax.legend(loc="upper right")


@figure("running_averages_in_training", "bias_drift")
def draw_bias_drift(result, fig):
    bias_ax, loss_ax = fig.subplots(1, 2)
    steps = result["record_steps"] + 1
    for norm, (label, colour) in STYLES.items():
        for i, m in enumerate(result["batch_sizes"]):
            style = dict(color=colour, linestyle=BATCH_LINES[i % len(BATCH_LINES)],
                         label=f"{label}, $m = {int(m)}$")
            bias_ax.plot(steps, result[f"bias_curve_{norm}"][i], **style)
            loss_ax.plot(steps, result[f"loss_curve_{norm}"][i], **style)
    bias_ax.set_xlabel("step")
    bias_ax.set_ylabel("norm of the biases before normalization")
    bias_ax.set_title("Parameters the normalization cancels")
    loss_ax.set_xlabel("step")
    loss_ax.set_ylabel("training loss (training mode)")
    loss_ax.set_yscale("log")
    loss_ax.set_title("Training loss")
    fig.legend(*bias_ax.get_legend_handles_labels(),
               loc="outside lower center", ncol=3)
