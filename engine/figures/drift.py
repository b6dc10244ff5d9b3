"""Figures of the drift experiments (``engine.experiments.drift``)."""
from __future__ import annotations

import numpy as np

from engine.figures.style import COLORS, LABELS
from engine.registry import figure

NETWORKS = tuple((name, LABELS[name], COLORS[name]) for name in ("plain", "bn"))
PERCENTILE_STYLES = (("15th", ":"), ("50th", "-"), ("85th", "--"))


@figure("sigmoid_input_drift", "percentiles_over_training")
def draw_percentiles(result, fig):
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (label, name, colour), letter in zip(axes, NETWORKS, "bc"):
        values = result[f"{label}_percentiles"]
        for column, (which, style) in enumerate(PERCENTILE_STYLES):
            ax.plot(result["record_steps"], values[:, column], style, color=colour,
                    label=f"{which} percentile")
        ax.set_xlabel("training step")
        ax.set_title(f"({letter}) {name}")
        ax.grid(True, alpha=0.3)
        ax.legend()
    axes[0].set_ylabel(f"input to sigmoid {result['unit']} of the last hidden layer")
    fig.suptitle(f"One unit's input distribution over training ({result['depth']} hidden "
                 f"layers of {result['width']} sigmoids, batch {result['batch']})")
    fig.set_size_inches(9, 4)


@figure("sigmoid_input_drift", "drift_of_every_unit")
def draw_unit_drift(result, fig):
    ax = fig.subplots()
    drifts = np.concatenate([result["plain_unit_drift"], result["bn_unit_drift"]])
    bins = np.geomspace(drifts.min(), drifts.max(), 40)
    for label, name, colour in NETWORKS:
        ax.hist(result[f"{label}_unit_drift"], bins=bins, alpha=0.6, color=colour,
                label=f"{name} (median {result[f'{label}_drift']:.2g})")
    ax.set_xscale("log")
    ax.set_xlabel("how far the unit's percentiles moved, in units of its spread")
    ax.set_ylabel("units of the last hidden layer")
    ax.set_title("Drift of every unit's input distribution, start to end of training")
    ax.legend()


KIND_TITLES = {"random": "$W_1$ moved in a random direction",
               "step": "$W_1$ moved by a gradient step",
               "scale": "$W_1$ scaled up"}


KIND_LABELS = {"random": "random direction", "step": "gradient step", "scale": "scaled up"}


def describe_inputs(result) -> str:
    return "standardized inputs" if result["standardize"] else "raw pixel inputs"


@figure("first_layer_perturbation", "change_by_depth")
def draw_change_by_depth(result, fig):
    axes = fig.subplots(1, 2, sharey=True)
    layers = result["layers"]
    for ax, kind in zip(axes, ("random", "step")):
        ax.plot(layers, result[f"plain_{kind}_dist"], "--o", color="tab:red", markersize=3,
                label="without BN: mean/spread part")
        ax.plot(layers, result[f"plain_{kind}_example"], "-o", color="tab:red", markersize=3,
                label="without BN: per-example part")
        ax.plot(layers, result[f"bn_{kind}_example"], "-s", color="tab:blue", markersize=3,
                label="with BN: per-example part\n(mean/spread part is 0)")
        ax.plot(layers, result[f"bn_{kind}_out_dist"], "--s", color="tab:blue", markersize=3,
                alpha=0.6, label="with BN: mean/spread part of the\noutput (after the "
                                 "nonlinearity)")
        ax.set_xlabel("hidden layer")
        ax.set_xticks(layers)
        ax.set_title(KIND_TITLES[kind])
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("change of the pre-activations\n(in units of the layer's spread)")
    axes[0].legend()
    fig.suptitle(f"Changing layer 1's weights by {result['size']:.0%}: how every layer's inputs "
                 f"move ({result['activation']}, {describe_inputs(result)})")
    fig.set_size_inches(9, 4)


@figure("first_layer_perturbation", "last_layer_change")
def draw_last_layer_change(result, fig):
    ax = fig.subplots()
    kinds = ("random", "step", "scale")
    bars = (("plain", "dist", "without BN: mean/spread", "tab:red", "//"),
            ("plain", "example", "without BN: per example", "tab:red", ""),
            ("bn", "dist", "with BN: mean/spread", "tab:blue", "//"),
            ("bn", "example", "with BN: per example", "tab:blue", ""))
    width = 0.2
    for i, (net, part, name, colour, hatch) in enumerate(bars):
        heights = [result[f"{net}_{kind}_{part}"][-1] for kind in kinds]
        positions = np.arange(len(kinds)) + (i - 1.5) * width
        drawn = ax.bar(positions, heights, width, color=colour, alpha=0.35 if hatch else 0.8,
                       hatch=hatch, edgecolor=colour, label=name)
        ax.bar_label(drawn, labels=[f"{h:.2g}" if h >= 5e-3 else "0" for h in heights])
    ax.set_xticks(np.arange(len(kinds)), [KIND_LABELS[k] for k in kinds])
    ax.set_ylabel(f"change of layer {result['depth']}'s pre-activations\n"
                  "(in units of its spread)")
    ax.set_xlabel("how layer 1's weights $W_1$ change")
    ax.set_title(f"Layer {result['depth']} after $W_1$ changes by {result['size']:.0%} "
                 f"({describe_inputs(result)})")
    ax.legend()


@figure("drift_by_depth", "drift_by_depth")
def draw_drift_by_depth(result, fig):
    ax = fig.subplots()
    layers = result["layers"]
    ax.plot(layers, result["plain_total"], "-o", color="tab:red",
            label=f"without BN: total ({result['plain_steps']} steps)")
    ax.plot(layers, result["plain_dist"], "--", color="tab:red",
            label="without BN: mean/spread part")
    ax.plot(layers, result["plain_example"], ":", color="tab:red",
            label="without BN: per-example part")
    ax.plot(layers, result["bn_total"], "-s", color="tab:blue",
            label=f"with BN: total = per-example part ({result['bn_steps']} steps)")
    ax.set_xticks(layers)
    ax.set_xlabel("hidden layer (1 = next to the input)")
    ax.set_ylabel("shift of the layer's inputs caused by the layers below\n"
                  "(in units of its spread)")
    ax.set_title("How far each layer's inputs move while the loss falls\n"
                 f"from {result['loss_from']:g} to {result['loss_to']:g} "
                 f"({result['activation']}, {describe_inputs(result)}, "
                 f"learning rate {result['lr']:g})")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.set_size_inches(7, 4.5)


DRIFT_STYLES = (("static", "early layers fixed", "black"),
                ("affine", "early units shift and rescale", "tab:orange"),
                ("random", "early weights move randomly", "tab:purple"))


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (fewer at the start), same length as ``values``."""
    sums = np.cumsum(np.r_[0.0, values])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


@figure("moving_early_layers", "later_layers_learning")
def draw_later_layers_learning(result, fig):
    axes = fig.subplots(1, 2, sharey=True)
    steps = np.arange(1, result["steps"] + 1)
    window = max(1, result["steps"] // 20)
    for ax, (label, name, _) in zip(axes, NETWORKS):
        for kind, kind_name, colour in DRIFT_STYLES:
            ax.plot(steps, moving_average(result[f"{label}_{kind}_losses"], window),
                    color=colour, label=kind_name, linestyle="--" if kind == "affine" else "-")
        ax.set_title(name)
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("training loss (moving average)")
    axes[0].legend()
    fig.suptitle(f"Layers {result['early'] + 1}-{result['depth']} and the output layer learn "
                 f"while layers 1-{result['early']} move")
    fig.set_size_inches(9, 4)


@figure("concurrent_updates", "later_layers_progress")
def draw_later_layers_progress(result, fig):
    axes = fig.subplots(1, 2)
    steps = np.arange(1, result["steps"] + 1)
    for ax, (label, name, colour) in zip(axes, NETWORKS):
        ax.plot(steps, np.cumsum(result[f"{label}_late_gain"]), color=colour,
                label="early layers standing still")
        ax.plot(steps, np.cumsum(result[f"{label}_late_gain_moved"]), "--", color=colour,
                label="early layers stepping too (ordinary SGD)")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_title(f"{name}: {result[f'{label}_coupling']:.0%} undone")
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("loss decrease made by the later layers' steps\n(summed over steps)")
    fig.suptitle(f"Layers {result['early'] + 1}-{result['depth']} and the output layer: what "
                 f"their steps gain ({describe_inputs(result)}, learning rate {result['lr']:g})")
    fig.set_size_inches(9, 4)
