"""Figures of the backward-pass experiments: formula errors, scale invariance, depth."""
from __future__ import annotations

from engine.registry import figure


def _log2_batch_axis(ax, sizes):
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [str(int(v)) for v in sizes])
    ax.set_xlabel("batch size $m$")


@figure("bn_backward_check", "formula_errors")
def draw_formula_errors(result, fig):
    ax = fig.subplots()
    m = result["batch_sizes"]
    ax.semilogy(m, result["quoted_errors"], "s-", color="tab:red",
                label="formula quoted in the thread (last sum without 1/m)")
    ax.semilogy(m, result["correct_errors"], "o-", color="tab:green", label="correct formula")
    ax.semilogy(m, result["engine_errors"], "x--", color="black", label="engine's backward")
    _log2_batch_axis(ax, m)
    ax.set_ylabel(r"$\|dx - dx_\mathrm{numeric}\| \,/\, \|dx_\mathrm{numeric}\|$")
    ax.set_title("Batch norm's input gradient against finite differences")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()


@figure("bn_scale_invariance", "scale_invariance")
def draw_scale_invariance(result, fig):
    ax = fig.subplots()
    a = result["scales"]
    ax.loglog(a, result["plain_du_ratio"], "s-", color="tab:red",
              label="no batch norm: gradient reaching the layer's input")
    ax.loglog(a, result["du_ratio"], "o-", color="tab:green",
              label="with batch norm: gradient reaching the layer's input")
    ax.loglog(a, result["dW_scaled"] / a, "^-", color="tab:blue",
              label="with batch norm: gradient w.r.t. the weights $aW$")
    ax.loglog(a, 1 / a, ":", color="gray", label="$1/a$")
    ax.set_xlabel("scale $a$ of the weights feeding batch norm")
    ax.set_ylabel("gradient norm relative to $a = 1$")
    ax.set_title("Scaling the incoming weights by $a$")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()


@figure("depth_gradient_norms", "gradient_norms_by_layer")
def draw_gradient_norms_by_layer(result, fig):
    ax = fig.subplots()
    layers = result["layers"]
    ax.semilogy(layers, result["bn_init"], "o-", color="tab:blue",
                label="batch norm, at initialization")
    ax.semilogy(layers, result["bn_trained"], "o--", color="tab:blue", alpha=0.6,
                label=f"batch norm, after {result['steps']} steps")
    ax.semilogy(layers, result["plain_init"], "s-", color="tab:orange",
                label="no batch norm, at initialization")
    ax.semilogy(layers, result["plain_trained"], "s--", color="tab:orange", alpha=0.6,
                label=f"no batch norm, after {result['steps']} steps")
    ax.set_xticks(layers[::2])
    ax.set_xlabel(f"layer (1 = nearest the input, {layers[-1]} = output)")
    ax.set_ylabel(r"$\|\partial L / \partial W_l\|$")
    ax.set_title(f"Weight-gradient norms in a {result['depth']}-layer ReLU MLP (no skips)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()


@figure("depth_gradient_norms", "gradient_norms_by_gain")
def draw_gradient_norms_by_gain(result, fig):
    ax = fig.subplots()
    g = result["gains"]
    ax.loglog(g, result["plain_by_gain"], "s-", color="tab:orange", label="no batch norm")
    ax.loglog(g, result["bn_by_gain"], "o-", color="tab:blue", label="batch norm")
    ax.minorticks_off()
    ax.set_xticks(g, [f"{v:g}" for v in g])
    ax.set_xlabel("all initial weights multiplied by")
    ax.set_ylabel("first layer's gradient norm, relative to 1")
    ax.set_title(f"Badly scaled initialization, {result['depth']} layers")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
