"""Forward + backward of the engine's LayerNorm, GroupNorm, BatchNorm2d and Conv2d against
PyTorch's (CPU), float32 and float64.

Sizes: LayerNorm over the last axis of (256, 1024); GroupNorm (8 groups) and BatchNorm2d
(training mode) of (32, 64, 16, 16); Conv2d from (32, 16, 16, 16) to 32 channels, 3x3,
padding 1. One step is one forward and one backward with a fixed dy (dx and every parameter
gradient). The run goes in rounds: each round times one step of every layer of ours and of
PyTorch's, ours first in even rounds and PyTorch's first in odd ones, so both meet the same
machine load; the table gives medians, quartiles, the ratio of medians, the median of the
per-round ratios and the ratio of the fastest tenths (10th percentiles), by the wall clock and
by the thread's CPU time (which leaves out the time the process waits for a core, the bulk
of the wall time's spread on a busy machine). Single-threaded for both by default (numpy's
elementwise operations are single-threaded anyway; BLAS and torch pinned to one thread).

    .venv/bin/python bench/bench_norms.py [--rounds 300] [--threads 1|default] [--layers ...]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

LAYERS = ("LayerNorm", "GroupNorm", "BatchNorm2d", "Conv2d")


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="timed rounds per dtype")
    parser.add_argument("--warmup", type=int, default=20, help="untimed rounds first")
    parser.add_argument("--threads", choices=("1", "default"), default="1")
    parser.add_argument("--layers", default=",".join(LAYERS),
                        help=f"which of {', '.join(LAYERS)}")
    parser.add_argument("--dtypes", default="float32,float64")
    return parser.parse_args(argv)


ARGS = _parse_args(sys.argv[1:])
if ARGS.threads == "1":  # must be set before numpy loads OpenBLAS
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.batchnorm2d import BatchNorm2d  # noqa: E402
from engine.conv import Conv2d  # noqa: E402
from engine.gradcheck import relative_error  # noqa: E402
from engine.layernorm import GroupNorm, LayerNorm  # noqa: E402

if ARGS.threads == "1":
    torch.set_num_threads(1)

# name: (input shape, our layer, PyTorch's layer, setting described)
SETUPS = {
    "LayerNorm": ((256, 1024), lambda dt, rng: LayerNorm(1024, dtype=dt),
                  lambda: torch.nn.LayerNorm(1024), "(256, 1024), over the last axis"),
    "GroupNorm": ((32, 64, 16, 16), lambda dt, rng: GroupNorm(8, 64, dtype=dt),
                  lambda: torch.nn.GroupNorm(8, 64), "(32, 64, 16, 16), 8 groups"),
    "BatchNorm2d": ((32, 64, 16, 16), lambda dt, rng: BatchNorm2d(64, dtype=dt),
                    lambda: torch.nn.BatchNorm2d(64), "(32, 64, 16, 16), training mode"),
    "Conv2d": ((32, 16, 16, 16), lambda dt, rng: Conv2d(16, 32, 3, padding=1, rng=rng, dtype=dt),
               lambda: torch.nn.Conv2d(16, 32, 3, padding=1),
               "(32, 16, 16, 16) to 32 channels, 3x3, padding 1"),
}


def _pair(name, dtype, rng):
    """One step of ours and one of PyTorch's on the same data and parameters."""
    shape, make_ours, make_theirs, _ = SETUPS[name]
    ours = make_ours(dtype, rng)
    theirs = make_theirs().to(torch.float32 if dtype == np.float32 else torch.float64)
    with torch.no_grad():  # the same parameters
        if name == "Conv2d":
            theirs.weight.copy_(torch.from_numpy(ours.W))
            theirs.bias.copy_(torch.from_numpy(ours.b))
    x = (rng.standard_normal(shape) * 2.0 + 1.0).astype(dtype)
    dy_shape = tuple(theirs(torch.from_numpy(x)).shape)
    dy = rng.standard_normal(dy_shape).astype(dtype)
    x_torch, dy_torch = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dy)

    def step_ours():
        ours.forward(x)
        return ours.backward(dy)

    def step_theirs():
        x_torch.grad = None
        for p in theirs.parameters():
            p.grad = None
        theirs(x_torch).backward(dy_torch)
        return x_torch.grad.numpy()

    return step_ours, step_theirs


def _time(step) -> tuple[float, float]:
    """Wall-clock and CPU time of one step, in microseconds."""
    wall, cpu = time.perf_counter_ns(), time.thread_time_ns()
    step()
    return (time.perf_counter_ns() - wall) / 1e3, (time.thread_time_ns() - cpu) / 1e3


def measure(dtype, names, rounds, warmup, rng):
    steps = {name: _pair(name, dtype, rng) for name in names}
    agreement = {name: relative_error(ours(), theirs()) for name, (ours, theirs) in steps.items()}
    times = {name: np.empty((rounds, 2, 2)) for name in names}  # round, ours/torch, wall/CPU
    for r in range(-warmup, rounds):
        for name, (ours, theirs) in steps.items():
            if r % 2:
                t_theirs, t_ours = _time(theirs), _time(ours)
            else:
                t_ours, t_theirs = _time(ours), _time(theirs)
            if r >= 0:
                times[name][r] = t_ours, t_theirs
    return times, agreement


def main() -> None:
    rng = np.random.default_rng(0)
    names = [n for n in ARGS.layers.split(",") if n]
    unknown = set(names) - set(LAYERS)
    if unknown:
        raise SystemExit(f"unknown layers {sorted(unknown)}; choose from {', '.join(LAYERS)}")
    load_before = os.getloadavg()[0]
    rows = []
    for dtype_name in ARGS.dtypes.split(","):
        dtype = np.dtype(dtype_name)
        times, agreement = measure(dtype, names, ARGS.rounds, ARGS.warmup, rng)
        for name in names:
            for clock, label in ((0, "wall"), (1, "CPU")):
                ours, theirs = times[name][:, 0, clock], times[name][:, 1, clock]
                q_ours = np.percentile(ours, [25, 50, 75])
                q_torch = np.percentile(theirs, [25, 50, 75])
                paired = np.median(ours / theirs)
                fastest = np.percentile(ours, 10) / np.percentile(theirs, 10)
                rows.append(
                    f"| {name} | {dtype.name} | {label} "
                    f"| {q_ours[1]:.0f} ({q_ours[0]:.0f}-{q_ours[2]:.0f}) "
                    f"| {q_torch[1]:.0f} ({q_torch[0]:.0f}-{q_torch[2]:.0f}) "
                    f"| {q_ours[1] / q_torch[1]:.2f} | {paired:.2f} | {fastest:.2f} "
                    f"| {agreement[name]:.1e} |")
    threads = ("1 (BLAS and torch pinned)" if ARGS.threads == "1"
               else f"defaults (torch {torch.get_num_threads()})")
    print(f"forward + backward; {ARGS.rounds} rounds after {ARGS.warmup} warm-up; "
          f"threads: {threads}")
    for name in names:
        print(f"  {name}: {SETUPS[name][3]}")
    print(f"numpy {np.__version__}, torch {torch.__version__}, {os.cpu_count()} cores, "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    print()
    print("| layer | dtype | clock | ours, µs: median (quartiles) "
          "| torch, µs: median (quartiles) | ratio of medians | median paired ratio "
          "| ratio of 10th percentiles | dx relative difference |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
