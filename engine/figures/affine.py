"""Figures of ``distribution_control`` and ``gamma_beta_undo``."""
from __future__ import annotations

import numpy as np

from engine.figures.style import COLORS, LABELS
from engine.registry import figure

PARTS = (("mean", "mean shift\n(in stds)"), ("spread", "spread change\n(|log ratio|)"),
         ("values", "change of the\nvalues (in stds)"))


def _bar_text(value: float) -> str:
    # Rounding errors (1e-17) would read as real, if tiny, effects.
    return f"{value:.2g}" if value >= 1e-6 else "≈0"


@figure("distribution_control", "step_change_sources")
def draw_step_change_sources(result, fig):
    axes = fig.subplots(1, 3)
    width = 0.38
    for ax, (part, title) in zip(axes, PARTS):
        for offset, label in ((-width / 2, "plain"), (width / 2, "bn")):
            values = [result[f"{label}_earlier_{part}_avg"], result[f"{label}_total_{part}_avg"]]
            bars = ax.bar(np.arange(2) + offset, values, width, color=COLORS[label],
                          label=LABELS[label])
            ax.bar_label(bars, labels=[_bar_text(v) for v in values], padding=1)
        ax.set_xticks([0, 1], ["earlier\nlayers", "whole\nstep"])
        ax.set_title(title)
        ax.margins(y=0.15)
    axes[0].set_ylabel("per step, mean over units")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=2)
    fig.suptitle(f"What one SGD step does to hidden layer {result['layer']}'s inputs "
                 "of the ReLU")


@figure("distribution_control", "moments_over_training")
def draw_moments_over_training(result, fig):
    axes = fig.subplots(2, 2, sharex=True, sharey="row")  # same scale: compare by eye
    steps = result["checkpoints"]
    for column, label in enumerate(("plain", "bn")):
        top, bottom = axes[0, column], axes[1, column]
        top.plot(steps, result[f"{label}_unit_means"], color=COLORS[label], linewidth=0.7,
                 alpha=0.6)
        bottom.plot(steps, result[f"{label}_unit_stds"], color=COLORS[label], linewidth=0.7,
                    alpha=0.6)
        top.set_title(LABELS[label])
        bottom.set_xlabel("training step")
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("unit mean")
    axes[1, 0].set_ylabel("unit std")
    fig.suptitle(f"Each unit of hidden layer {result['layer']}, batch mean and std")


@figure("gamma_beta_undo", "gamma_vs_sigma")
def draw_gamma_vs_sigma(result, fig):
    left, right = fig.subplots(1, 2)
    gain = result["gain"]
    for label, name, marker, color in (
            ("bn", r"started at $\gamma = 1$, $\beta = 0$", "o", COLORS["bn"]),
            ("undone", "started undone", "^", "tab:green"),
            ("scaled", f"weights ×{gain:g} at the start", "s", "tab:orange")):
        left.plot(result[f"{label}_sigma"], np.abs(result[f"{label}_gamma"]), marker,
                  color=color, alpha=0.6, markersize=4, label=name)
        right.plot(result[f"{label}_mu"], result[f"{label}_beta"], marker, color=color,
                   alpha=0.6, markersize=4, label=name)
    left.set_xscale("log")
    left.set_yscale("log")
    # The answer's prose writes the batch statistics with a calligraphic B.
    for ax, xlabel, ylabel in (
            (left, r"$\sigma_\mathcal{B}$ (batch std of $z$)", r"$|\gamma|$"),
            (right, r"$\mu_\mathcal{B}$ (batch mean of $z$)", r"$\beta$")):
        low, high = ax.get_xlim()
        ax.plot([low, high], [low, high], "k--", linewidth=1, label="undone: $y = z$")
        ax.set_xlim(low, high)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    left.set_title("Scale after training")
    right.set_title("Shift after training")
    left.legend()


@figure("gamma_beta_undo", "undo_over_training")
def draw_undo_over_training(result, fig):
    left, right = fig.subplots(1, 2)
    steps = result["checkpoints"]
    left.plot(steps, result["bn_undo_error"], "o-", color=COLORS["bn"],
              label=r"started at $\gamma = 1$, $\beta = 0$")
    left.plot(steps, result["undone_undo_error"], "^-", color="tab:green",
              label="started undone")
    left.plot(steps, result["output_gap"], ":", color="black",
              label="output gap: started undone vs plain")
    left.set_xlabel("training step")
    left.set_ylabel(r"$\mathrm{RMS}(y - z)\,/\,\mathrm{std}(z)$")
    left.set_title("Distance from undoing")
    left.legend()
    left.grid(True, alpha=0.3)
    cosines = result["start_gradient_cosine"]
    names = [str(i) for i in range(1, len(cosines))] + ["out"]
    right.bar(names, cosines, color="tab:green")
    right.axhline(1.0, color="gray", linestyle=":", linewidth=1)
    right.set_ylim(min(0.0, cosines.min() - 0.1), 1.05)
    right.set_xlabel("layer")
    right.set_ylabel(r"cosine of the two $\partial L/\partial W$")
    right.set_title("Step 0: same function,\ndifferent gradient")
    right.grid(True, axis="y", alpha=0.3)
