"""Figures of the regularization experiments: test accuracy and loss per network, and how
much the output leans on each hidden unit."""
from __future__ import annotations

import numpy as np

from engine.registry import figure


@figure("bn_noise_regularization", "test_accuracy")
def draw_test_accuracy(result, fig):
    ghost, small = result["ghost_batch"], result["small_ghost_batch"]
    rows = (("plain", "plain", "tab:gray", ""), ("dropout", "dropout", "tab:purple", ""),
            ("bn", "BN, no noise", "tab:blue", ""), ("ghost", f"BN, ghost {ghost}", "tab:cyan", ""),
            ("small_ghost", f"BN, ghost {small}", "tab:green", ""),
            ("plain_mini", f"plain, batch {ghost}", "tab:gray", "//"),
            ("bn_mini", f"BN, batch {ghost}", "tab:blue", "//"))
    names, labels, colors, hatches = zip(*rows)
    positions = -np.arange(len(rows)) - np.array([0, 0, 0, 0, 0, 0.5, 0.5])
    left, right = fig.subplots(1, 2, sharey=True)
    accuracy = [100 * result[f"{n}_test_acc"] for n in names]
    loss = [result[f"{n}_test_loss"] for n in names]
    train_accuracy = [100 * result[f"{n}_train_acc"] for n in names]
    for ax, values in ((left, accuracy), (right, loss)):
        ax.barh(positions, values, color=colors, hatch=hatches, edgecolor="white")
        ax.grid(True, axis="x", alpha=0.3)
    left.set_yticks(positions, labels)
    left.set_xlim(max(0.0, min(accuracy) - 4), min(100.0, max(accuracy) + 1))
    left.set_xlabel("test accuracy (%)")
    left.set_title(f"Test accuracy (training: {min(train_accuracy):.0f}"
                   + ("" if min(train_accuracy) == max(train_accuracy)
                      else f"-{max(train_accuracy):.0f}") + "%)")
    right.set_xlabel("test cross-entropy")
    right.set_title("Test loss")
    fig.suptitle(f"{result['train_size']} training pictures; full-batch SGD except the hatched "
                 f"bars (batches of {ghost})")


@figure("unit_reliance", "unit_effects")
def draw_unit_effects(result, fig):
    ax = fig.subplots()
    series = (("plain", "no BN, no dropout", "tab:gray"), ("dropout", "dropout", "tab:purple"),
              ("bn", "BN, whole batch (no noise)", "tab:blue"),
              ("ghost", f"BN, ghost batch {result['ghost_batch']}", "tab:cyan"))
    for name, label, color in series:
        effects = result[f"{name}_effects"]
        flips = result[f"{name}_top_flips"]
        ax.semilogy(np.arange(1, len(effects) + 1), effects, color=color,
                    label=f"{label} (top unit flips {flips:.1%} of predictions)")
    ax.set_xlabel("hidden unit of the last layer, most important first")
    ax.set_ylabel("change of the decision margin\nwhen the unit is removed (relative)")
    ax.set_title("How much the output leans on each single unit")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
