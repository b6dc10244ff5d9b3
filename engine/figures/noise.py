"""Figures of ``batch_stat_noise``: the noise of the statistics and one example's jitter,
against the batch size."""
from __future__ import annotations

import numpy as np

from engine.registry import figure


@figure("batch_stat_noise", "noise_vs_batch")
def draw_noise_vs_batch(result, fig):
    ax = fig.subplots()
    m = result["batch_sizes"]
    ax.loglog(m, result["mean_var"], "o", color="tab:blue",
              label=r"$\mathrm{Var}(\mu_B)$, measured")
    ax.loglog(m, result["mean_var_theory"], "-", color="tab:blue", alpha=0.6,
              label=r"theory $\sigma^2/m$")
    ax.loglog(m, result["var_var"], "s", color="tab:orange",
              label=r"$\mathrm{Var}(\sigma_B^2)$, measured")
    ax.loglog(m, result["var_var_theory"], "-", color="tab:orange", alpha=0.6,
              label=r"theory $2(m-1)\sigma^4/m^2$")
    ax.set_xscale("log", base=2)
    ax.set_xticks(m, [str(int(v)) for v in m])
    ax.set_xlabel("batch size $m$")
    ax.set_ylabel("variance across mini-batches")
    ax.set_title(f"Noise of the batch statistics ({result['trials']} mini-batches per size)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()


@figure("batch_stat_noise", "example_spread")
def draw_example_spread(result, fig):
    left, right = fig.subplots(1, 2)
    small, large = result["small_batch"], result["large_batch"]
    z = result["example_z"]
    values = np.concatenate([result["values_small"], result["values_large"]])
    bins = np.linspace(values.min(), values.max(), 50)
    left.hist(result["values_small"], bins=bins, alpha=0.6, color="tab:red",
              label=f"batch {small}")
    left.hist(result["values_large"], bins=bins, alpha=0.6, color="tab:green",
              label=f"batch {large}")
    left.axvline(z, color="black", linestyle="--", label=f"without noise ({z:g})")
    left.set_xlabel(r"the example's normalized value $\hat z$")
    left.set_ylabel("mini-batches")
    left.set_title("Same example, different mini-batches")
    left.legend(loc="upper left")

    m = result["batch_sizes"]
    right.loglog(m, result["example_spread"], "o", label="batch norm, measured")
    right.loglog(m, result["example_spread_theory"], "-", alpha=0.6,
                 label=r"$\sqrt{(1+z^2/2)/m}$")
    right.axhline(result["dropout_spread"], color="tab:purple", linestyle=":",
                  label=f"dropout $p = {result['dropout_p']:g}$")
    right.set_xscale("log", base=2)
    right.set_xticks(m, [str(int(v)) for v in m])
    right.set_xlabel("batch size $m$")
    right.set_ylabel("spread (std) of the normalized value")
    right.set_title(r"Noise shrinks like $1/\sqrt{m}$")
    right.grid(True, which="major", alpha=0.3)
    right.legend()
