"""Figures of the practice experiments: accuracy by evaluation mode and by the age of the
running statistics, fine-tuning with tiny batches, the variance shift of dropout before
batch norm, and batch norm before or after the activation."""
from __future__ import annotations

import numpy as np

from engine.registry import figure


@figure("inference_mode_pitfalls", "accuracy_by_mode")
def draw_accuracy_by_mode(result, fig):
    ax = fig.subplots()
    sizes = result["eval_batches"]
    ax.semilogx(sizes, result["train_mode_acc"], "o-", color="tab:orange",
                label="training mode, shuffled test batches")
    ax.semilogx(sizes, result["sorted_acc"], "s--", color="tab:red",
                label="training mode, test batches sorted by class")
    ax.axhline(result["ema_final"], color="tab:blue",
               label="inference mode (running statistics)")
    ax.axhline(result["majority"], color="gray", linestyle=":", label="always the same class")
    ax.set_xticks(sizes, [str(int(m)) for m in sizes])
    ax.set_xlabel("test batch size (each batch normalized with its own statistics)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{result['depth']} hidden layers of {result['width']}, trained "
                 f"{result['steps']} steps with batches of {result['batch']}")
    ax.legend(loc="lower right")


@figure("inference_mode_pitfalls", "statistics_lag")
def draw_statistics_lag(result, fig):
    acc_ax, lag_ax = fig.subplots(1, 2)
    steps = result["record_steps"] + 1
    slow = result["slow_momentum"]
    for key, label, colour in (("precise", "precise (recomputed)", "tab:green"),
                               ("ema", "running average, momentum 0.1", "tab:blue"),
                               ("slow", f"running average, momentum {slow:g}", "tab:purple")):
        acc_ax.plot(steps, result[f"{key}_acc"], "o-", color=colour, label=label, markersize=3)
        if key != "precise":
            lag_ax.plot(steps, result[f"{key}_lag"], "o-", color=colour, label=label,
                        markersize=3)
    acc_ax.set_xlabel("training step")
    acc_ax.set_ylabel("test accuracy (inference mode)")
    acc_ax.set_title("Accuracy with each set of statistics")
    acc_ax.legend(loc="lower right")
    lag_ax.set_xlabel("training step")
    lag_ax.set_ylabel("|running mean − current mean|\n/ current std")
    lag_ax.set_title("How far the running means lag")


FINETUNE_BARS = (
    ("pretrain_acc", "pretrained, on its own data", "tab:gray"),
    ("pretrained_acc", "pretrained, on the new data", "silver"),
    ("adapted_acc", "statistics recomputed, no training", "tab:cyan"),
    ("batch_acc", "fine-tuned, batch statistics", "tab:red"),
    ("batch_precise_acc", "same, statistics recomputed after", "lightcoral"),
    ("frozen_acc", "fine-tuned, statistics frozen", "tab:blue"),
    ("refrozen_acc", "recomputed, then frozen", "tab:green"),
)


@figure("tiny_batch_finetuning", "finetuning_accuracy")
def draw_finetuning_accuracy(result, fig):
    ax = fig.subplots()
    keys, labels, colours = zip(*FINETUNE_BARS)
    positions = -np.arange(len(keys))
    ax.barh(positions, [result[k] for k in keys], color=colours)
    ax.set_yticks(positions, labels)
    ax.axvline(1 / 3, color="gray", linestyle=":", label="chance (3 classes)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("test accuracy on the new data (inference mode)")
    ax.set_title(f"Fine-tuning on {result['finetune_size']} points, batches of "
                 f"{result['finetune_batch']}, {result['finetune_steps']} steps")
    ax.legend(loc="lower right")


DROPOUT_STYLES = {"none": ("no dropout", "tab:gray"),
                  "before": ("dropout before every batch norm", "tab:red"),
                  "after": ("dropout after the last batch norm", "tab:blue")}


@figure("dropout_variance_shift", "variance_shift")
def draw_variance_shift(result, fig):
    ax = fig.subplots()
    layers = np.arange(2, len(result["before_shift"]) + 2)
    for place, (label, colour) in DROPOUT_STYLES.items():
        ax.semilogy(layers, result[f"{place}_shift"], "o-", color=colour, label=label)
    ax.axhline(result["retain_inverse"], color="black", linestyle=":",
               label=f"$1/(1-p)$, $p = {result['p']:g}$")
    ax.axhline(1.0, color="gray", linewidth=0.8)
    ax.set_xticks(layers)
    ax.set_xlabel("batch-norm layer (hidden layer)")
    ax.set_ylabel("running variance / test variance\n(geometric mean over units)")
    ax.set_title(f"Variance shift, {result['depth']} hidden layers of {result['width']}")
    ax.legend()


@figure("dropout_variance_shift", "dropout_accuracy")
def draw_dropout_accuracy(result, fig):
    ax = fig.subplots()
    bars = (("none_acc", "no\ndropout", "tab:gray"),  # short lines: they fit a phone too
            ("before_acc", "dropout\nbefore BN", "tab:red"),
            ("before_precise_acc", "before BN,\nstatistics\nrecomputed", "lightcoral"),
            ("after_acc", "dropout\nafter the\nlast BN", "tab:blue"))
    keys, labels, colours = zip(*bars)
    positions = np.arange(len(keys))
    ax.bar(positions, [result[k] for k in keys], color=colours)
    ax.set_xticks(positions, labels)
    ax.axhline(0.5, color="gray", linestyle=":", label="chance")
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy (inference mode)")
    ax.set_title(f"{result['train_size']} training pictures, {result['steps']} steps, "
                 f"$p = {result['p']:g}$")
    ax.legend(loc="lower right")


@figure("norm_position", "position_curves")
def draw_position_curves(result, fig):
    loss_ax, acc_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    for position, colour in (("before", "tab:blue"), ("after", "tab:orange")):
        loss_ax.plot(result["curve_steps"], result[f"{position}_curve"], "o-", color=colour,
                     label=f"batch norm {position} the {result['activation']}")
    loss_ax.set_yscale("log")
    loss_ax.set_xlabel("training step")
    loss_ax.set_ylabel("training loss (mean over each tenth)")
    loss_ax.legend()
    loss_ax.set_title("Training loss")
    acc_ax.bar([0, 1], [result["before_acc"], result["after_acc"]],
               color=["tab:blue", "tab:orange"])
    acc_ax.set_xticks([0, 1], ["before", "after"])
    low = min(result["before_acc"], result["after_acc"])
    acc_ax.set_ylim(max(0.0, low - 0.1), 1.0)
    acc_ax.set_ylabel("test accuracy")
    acc_ax.set_title("Test accuracy")
