"""Time one training step of Ioffe & Szegedy's Figure-1 network, numpy engine vs PyTorch CPU.

The network: 784 inputs, three hidden layers of 100 sigmoid units with batch norm before
each sigmoid, 10 logits, softmax cross-entropy, mini-batches of 60. A step is forward,
backward and an SGD update (momentum 0.9). Both implementations start from the same
weights and see the same batches. The run goes in rounds: each round times a block of
consecutive steps of every row below, then a block of PyTorch's step, so all meet the same
machine conditions and each row's samples pair with the PyTorch samples of their rounds.

    .venv/bin/python bench/bench_train_step.py [--threads 1] [--samples 300] [--block 10]
                                               [--rows step,fused,products,products+sgd]

Rows (the engine's side): ``step``, the engine's training step; ``fused``, the same step as
one bare function without layers or checks, batch norm and sigmoid fused (checked to train
exactly like the engine); ``products``, the step's eleven matrix products alone (forward,
weight gradients, input gradients but the first layer's); ``products+sgd``, those plus the
engine's SGD update. The last two are lower bounds on what any numpy step can reach on
this machine.

Prints a Markdown table for float32 and float64, wall-clock and CPU: median time per step
in microseconds of each row and of PyTorch, and the row's time as a fraction of PyTorch's,
three ways: ratio of the medians, median of the ratios of paired samples (same round), and
ratio of the fastest tenths (10th percentiles). On a busy machine the last two are the
steadier figures.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


ROWS = ("step", "fused", "products", "products+sgd")


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for numpy and PyTorch (default 1)")
    parser.add_argument("--samples", type=int, default=300, help="timed samples per cell")
    parser.add_argument("--block", type=int, default=10, help="steps per timed sample")
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--rows", default=",".join(ROWS),
                        help=f"what to time on the numpy side, of {', '.join(ROWS)}")
    return parser.parse_args()


ARGS = parse_args()
# Thread counts must be fixed before numpy and torch load their BLAS libraries.
for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[variable] = str(ARGS.threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.losses import softmax_cross_entropy  # noqa: E402
from engine.network import build_mlp  # noqa: E402
from engine.optim import SGD  # noqa: E402
from engine.speed import ones  # noqa: E402
from engine.train import train_step  # noqa: E402

BATCH, IN, WIDTH, DEPTH, CLASSES = 60, 784, 100, 3, 10
LR, MOMENTUM = 0.01, 0.9
N_BATCHES = 16  # distinct batches, cycled


def make_batches(rng, dtype):
    """Binary 28x28 "images" (about 19% of pixels on, like MNIST digits) and random labels."""
    xs = [(rng.random((BATCH, IN)) < 0.19).astype(dtype) for _ in range(N_BATCHES)]
    ys = [rng.integers(0, CLASSES, BATCH) for _ in range(N_BATCHES)]
    return xs, ys


def figure1_network(dtype):
    mlp = build_mlp(np.random.default_rng(0), IN, CLASSES, DEPTH, WIDTH, "sigmoid",
                    norm="batch", init="gaussian", init_std=0.1, dtype=dtype)
    return mlp, SGD(mlp.params(), lr=LR, momentum=MOMENTUM)


def numpy_stepper(dtype, xs, ys):
    mlp, opt = figure1_network(dtype)
    counter = iter(range(sys.maxsize))

    def step():
        i = next(counter) % N_BATCHES
        return train_step(mlp, opt, xs[i], ys[i])

    return mlp, step


def products_stepper(dtype, xs, with_sgd):
    """The matrix products of the engine's step, on a network of its own: x W for every
    layer, x.T dy into each weight gradient, dy W.T for every layer but the first; then,
    with ``with_sgd``, the engine's SGD update of all parameters. No bias, batch norm,
    sigmoid or loss, so the values are not a training step's, only its shapes and work.
    The update runs with lr 0 (the same passes over memory; numpy does not skip a product
    by zero): the made-up gradients would otherwise push the weights up to overflow."""
    mlp, opt = figure1_network(dtype)
    opt.lr = 0.0
    linears = [block.linear for block in mlp.hidden] + [mlp.out.linear]
    dlogits = np.random.default_rng(2).normal(0.0, 1e-3, (BATCH, CLASSES)).astype(dtype)
    counter = iter(range(sys.maxsize))

    def step():
        inputs = [xs[next(counter) % N_BATCHES]]
        for linear in linears[:-1]:
            inputs.append(inputs[-1] @ linear.W)
        dy = dlogits
        for i in range(len(linears) - 1, -1, -1):
            np.matmul(inputs[i].T, dy, out=linears[i].dW)
            if i > 0:
                dy = dy @ linears[i].W.T
        if with_sgd:
            opt.step(mlp.grads())

    return step


def fused_stepper(dtype, xs, ys):
    """The engine's step written as one bare function, on a network of its own: the same
    arithmetic through the layers' arrays, but no layer objects and no checks, and each
    hidden layer's bias, batch norm and sigmoid fused into a few passes (the bias only
    shifts the batch mean, so it enters the running mean alone). The engine's loss and SGD.
    It measures what giving up the layer structure would gain; ``measure`` checks that it
    trains exactly like the engine."""
    mlp, opt = figure1_network(dtype)
    blocks, out = mlp.hidden, mlp.out.linear
    column_sums = ones(BATCH, dtype)  # the engine's cached vector: ones @ a sums columns
    counter = iter(range(sys.maxsize))

    def step():
        i = next(counter) % N_BATCHES
        inputs, saved = [xs[i]], []
        for block in blocks:
            linear, norm = block.linear, block.norm
            centered = inputs[-1] @ linear.W
            mean = column_sums @ centered
            mean /= BATCH
            centered -= mean
            var = np.einsum("ij,ij->j", centered, centered)
            var /= BATCH
            inv_std = 1.0 / np.sqrt(var + norm.eps)
            scale = inv_std * norm.gamma
            norm.running_mean *= 1.0 - norm.momentum
            norm.running_mean += norm.momentum * (mean + linear.b)
            norm.running_var *= 1.0 - norm.momentum
            norm.running_var += (norm.momentum * BATCH / (BATCH - 1)) * var
            activation = np.multiply(centered, scale * 0.5)  # sigmoid(y) = (1 + tanh(y/2)) / 2
            activation += norm.beta * 0.5
            np.tanh(activation, out=activation)
            activation *= 0.5
            activation += 0.5
            saved.append((centered, inv_std, scale))
            inputs.append(activation)
        logits = inputs[-1] @ out.W
        logits += out.b
        loss, dy = softmax_cross_entropy(logits, ys[i])
        np.matmul(inputs[-1].T, dy, out=out.dW)
        np.matmul(column_sums, dy, out=out.db)
        dy = dy @ out.W.T
        for k in range(len(blocks) - 1, -1, -1):
            linear, norm = blocks[k].linear, blocks[k].norm
            centered, inv_std, scale = saved[k]
            activation = inputs[k + 1]
            grad = np.subtract(1.0, activation)
            grad *= activation
            grad *= dy
            np.matmul(column_sums, grad, out=norm.dbeta)
            np.einsum("ij,ij->j", grad, centered, out=norm.dgamma)
            norm.dgamma *= inv_std
            dx = np.multiply(centered, inv_std * norm.dgamma / -BATCH)
            dx += grad
            dx -= norm.dbeta / BATCH
            dx *= scale
            np.matmul(inputs[k].T, dx, out=linear.dW)
            np.matmul(column_sums, dx, out=linear.db)
            if k:
                dy = dx @ linear.W.T
        opt.step(mlp.grads())
        return loss

    return step


def require_same_training(dtype, xs, ys, steps=5):
    """The fused step trains exactly like the engine's: same losses, step after step (each
    after the previous update), to rounding."""
    _, engine = numpy_stepper(dtype, xs, ys)
    fused = fused_stepper(dtype, xs, ys)
    ours = [engine() for _ in range(steps)]
    theirs = [fused() for _ in range(steps)]
    if not np.allclose(ours, theirs, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=0):
        raise SystemExit(f"{dtype.__name__}: the fused step's losses {theirs} differ from "
                         f"the engine's {ours}")


def torch_stepper(mlp, dtype, xs, ys):
    nn = torch.nn
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    layers = []
    for block in mlp.hidden:
        linear = nn.Linear(IN if not layers else WIDTH, WIDTH, dtype=tdtype)
        layers += [linear, nn.BatchNorm1d(WIDTH, dtype=tdtype), nn.Sigmoid()]
    layers.append(nn.Linear(WIDTH, CLASSES, dtype=tdtype))
    model = nn.Sequential(*layers)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    ours = [block.linear for block in mlp.hidden] + [mlp.out.linear]
    with torch.no_grad():
        for theirs, mine in zip(linears, ours):
            theirs.weight.copy_(torch.from_numpy(mine.W.T.copy()))
            theirs.bias.copy_(torch.from_numpy(mine.b))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    txs = [torch.from_numpy(x) for x in xs]
    tys = [torch.from_numpy(y) for y in ys]
    counter = iter(range(sys.maxsize))
    model.train()

    def step():
        i = next(counter) % N_BATCHES
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(txs[i]), tys[i])
        loss.backward()
        opt.step()
        return loss.item()

    return step


def time_block(step, block):
    """(wall-clock, CPU) seconds per step over ``block`` steps. CPU time (of all the process's
    threads) does not count time spent waiting for a core, so it is the steadier figure on
    a busy machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(block):
        step()
    return (time.perf_counter() - wall) / block, (time.process_time() - cpu) / block


def measure(dtype, rows, samples, block):
    """Times per step of each of ``rows`` and of PyTorch's step, (samples, 2) arrays of wall
    and CPU seconds. Each round times a block of every row, then one of PyTorch, so all see
    the same machine conditions and pair with the same PyTorch samples."""
    xs, ys = make_batches(np.random.default_rng(1), dtype)
    mlp, step = numpy_stepper(dtype, xs, ys)
    theirs = torch_stepper(mlp, dtype, xs, ys)
    first = (step(), theirs())  # same weights, same batch: the same loss
    if not np.isclose(first[0], first[1], rtol=1e-4):
        raise SystemExit(f"{dtype.__name__}: first losses differ: {first}")
    if "fused" in rows:
        require_same_training(dtype, xs, ys)
    steppers = {"step": step,
                "fused": fused_stepper(dtype, xs, ys),
                "products": products_stepper(dtype, xs, with_sgd=False),
                "products+sgd": products_stepper(dtype, xs, with_sgd=True)}
    steppers = {row: steppers[row] for row in rows} | {"pytorch": theirs}
    for _ in range(20 * block):  # warm up caches, allocators and lazy initialisation
        for stepper in steppers.values():
            stepper()
    times = {name: [] for name in steppers}
    for _ in range(samples):
        for name, stepper in steppers.items():
            times[name].append(time_block(stepper, block))
    return {name: np.array(samples) for name, samples in times.items()}


def main():
    torch.set_num_threads(ARGS.threads)
    print(f"Figure-1 network {IN}-{WIDTH}-{WIDTH}-{WIDTH}-{CLASSES}, sigmoid, batch norm before "
          f"each sigmoid, batch {BATCH}, SGD momentum {MOMENTUM}.")
    print(f"Threads: {ARGS.threads} (OPENBLAS/OMP/MKL_NUM_THREADS, torch.set_num_threads); "
          f"numpy {np.__version__}, torch {torch.__version__}; median of {ARGS.samples} "
          f"samples of {ARGS.block} steps, in rounds.\n")
    rows = ARGS.rows.split(",")
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise SystemExit(f"--rows: unknown {', '.join(unknown)}; choose from {', '.join(ROWS)}")
    print("| dtype | clock | engine side | engine (µs/step) | PyTorch step (µs) "
          "| ratio of medians | median paired ratio | ratio of fastest tenths |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name in ARGS.dtypes.split(","):
        dtype = {"float32": np.float32, "float64": np.float64}[name]
        times = measure(dtype, rows, ARGS.samples, ARGS.block)
        for row in rows:
            for i, clock in enumerate(("wall", "CPU")):
                a, b = times[row][:, i], times["pytorch"][:, i]
                print(f"| {name} | {clock} | {row} | {np.median(a) * 1e6:.0f} "
                      f"| {np.median(b) * 1e6:.0f} | {np.median(a) / np.median(b):.2f} "
                      f"| {np.median(a / b):.2f} "
                      f"| {np.percentile(a, 10) / np.percentile(b, 10):.2f} |", flush=True)


if __name__ == "__main__":
    main()
