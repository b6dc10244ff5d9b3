"""Figures of ``gradient_ics``, ``loss_smoothness`` and ``lr_steps_to_target``."""
from __future__ import annotations

import numpy as np

from engine.figures.style import COLORS, LABELS
from engine.registry import figure


@figure("gradient_ics", "ics_over_training")
def draw_ics_over_training(result, fig):
    left, right = fig.subplots(1, 2)
    steps = result["checkpoints"]
    for label in ("plain", "bn"):
        left.plot(steps, result[f"{label}_cosine"].mean(axis=1), "o-", color=COLORS[label],
                  label=LABELS[label])
        right.plot(steps, result[f"{label}_rel_l2"].mean(axis=1), "o-", color=COLORS[label],
                   label=LABELS[label])
    left.axhline(1.0, color="gray", linestyle=":", linewidth=1)
    left.set_title(r"$\cos(G, G')$  (1 = no shift)")
    right.set_title(r"$\|G - G'\| \,/\, \|G\|$  (0 = no shift)")
    for ax in (left, right):
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
    left.set_ylabel("mean over layers 2 .. output")
    left.legend()
    fig.suptitle(f"Gradient change caused by the earlier layers' step (lr {result['lr']:g})")


@figure("gradient_ics", "ics_by_layer")
def draw_ics_by_layer(result, fig):
    ax = fig.subplots()
    layers = result["layers"]
    for label in ("plain", "bn"):
        ax.plot(layers, result[f"{label}_cosine"].mean(axis=0), "o-", color=COLORS[label],
                label=LABELS[label])
    ax.axhline(1.0, color="gray", linestyle=":", linewidth=1)
    ax.set_xticks(layers, [str(v) for v in layers[:-1]] + ["out"])
    ax.set_xlabel("layer (its weights' gradient $G$)")
    ax.set_ylabel(r"$\cos(G, G')$, mean over training")
    ax.set_title("Santurkar et al.'s internal covariate shift, layer by layer")
    ax.grid(True, alpha=0.3)
    ax.legend()


def _band(ax, steps, values, label):
    ax.fill_between(steps, values.min(axis=1), values.max(axis=1), color=COLORS[label],
                    alpha=0.3, label=LABELS[label])
    ax.plot(steps, values.min(axis=1), color=COLORS[label], linewidth=0.8)
    ax.plot(steps, values.max(axis=1), color=COLORS[label], linewidth=0.8)


@figure("loss_smoothness", "loss_landscape")
def draw_loss_landscape(result, fig):
    ax = fig.subplots()
    for label in ("plain", "bn"):
        _band(ax, result["checkpoints"], result[f"{label}_losses"], label)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_title(f"Loss along the gradient, step sizes up to {result['max_step']:g} "
                 "(band: min to max)")
    ax.grid(True, alpha=0.3)
    ax.legend()


@figure("loss_smoothness", "gradient_predictiveness")
def draw_gradient_predictiveness(result, fig):
    left, right = fig.subplots(1, 2)
    steps = result["checkpoints"]
    for label in ("plain", "bn"):
        _band(left, steps, result[f"{label}_gradient_changes"], label)
        right.plot(steps, result[f"{label}_beta_smoothness"], "o-", color=COLORS[label],
                   label=LABELS[label])
    left.set_title("Gradient change along the gradient")
    left.set_ylabel(r"$\|\nabla L(\theta - \eta g) - g\|$")
    right.set_title(r"Effective $\beta$-smoothness")
    right.set_ylabel("max gradient change / distance")
    for ax in (left, right):
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
    left.legend()


@figure("lr_steps_to_target", "steps_vs_lr")
def draw_steps_vs_lr(result, fig):
    ax = fig.subplots()
    lrs, cap = result["lrs"], result["max_steps"]
    for label, marker in (("plain", "o"), ("bn", "s")):
        steps = result[f"{label}_steps"]
        reached, diverged = result[f"{label}_reached"], result[f"{label}_diverged"]
        ax.plot(lrs[reached], steps[reached], marker + "-", color=COLORS[label],
                label=f"{LABELS[label]}: steps to the target")
        missed = ~reached & ~diverged
        ax.plot(lrs[missed], np.full(missed.sum(), cap), marker, color=COLORS[label],
                markerfacecolor="none", linestyle="none",
                label=f"{LABELS[label]}: not reached in {cap}" if missed.any() else None)
        ax.plot(lrs[diverged], np.full(diverged.sum(), cap * 1.15), "x", color=COLORS[label],
                markersize=9, linestyle="none",
                label=f"{LABELS[label]}: diverged" if diverged.any() else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(lrs, [f"{v:.2g}" for v in lrs])
    ax.set_xlabel("learning rate")
    ax.set_ylabel("SGD steps")
    ax.set_title(f"Steps to a training loss below {result['target']:g}")
    ax.grid(True, which="major", alpha=0.3)
    fig.legend(loc="outside lower center", ncols=2)
