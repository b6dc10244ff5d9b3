"""Conv2d, MaxPool2d and AvgPool2d against PyTorch in float64 (outputs and every gradient,
across shapes down to 1x1 images), and training steps of a small convolutional network
(conv -> BatchNorm2d -> ReLU -> max pool -> linear) against the same network in PyTorch."""
import numpy as np
import pytest

from engine.batchnorm2d import BatchNorm2d
from engine.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from engine.gradcheck import relative_error
from engine.layers import Linear, ReLU
from engine.losses import softmax_cross_entropy
from engine.optim import SGD, decays
from engine.sequential import Sequential

pytestmark = pytest.mark.reference

TOL = 1e-10


def _assert_close(ours, theirs, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == theirs.shape, what
    error = relative_error(ours, theirs)
    assert error < TOL, f"{what}: relative error {error:.2e}"


# (N, C, H, W, out channels, kernel, stride, padding, bias)
CONV = [
    (2, 3, 5, 5, 4, 3, 1, 1, True),
    (2, 2, 7, 6, 3, (3, 2), 2, 0, True),
    (1, 1, 1, 1, 1, 1, 1, 0, True),  # 1x1 image, 1x1 kernel
    (2, 1, 1, 1, 2, 3, 1, 1, False),  # kernel larger than the image, padded
    (3, 2, 4, 4, 3, 3, (1, 2), (2, 1), True),
    (2, 3, 6, 5, 2, 4, 3, 0, True),  # windows that leave pixels out
]


def _random_conv(seed):
    rng = np.random.default_rng(seed + 300)
    kernel = tuple(int(k) for k in rng.integers(1, 5, 2))
    padding = tuple(int(p) for p in rng.integers(0, 3, 2))
    h, w = (int(rng.integers(max(1, k - 2 * p), 10)) for k, p in zip(kernel, padding))
    return (int(rng.integers(1, 5)), int(rng.integers(1, 5)), h, w, int(rng.integers(1, 6)),
            kernel, tuple(int(s) for s in rng.integers(1, 4, 2)), padding, bool(rng.integers(2)))


CONV += [_random_conv(seed) for seed in range(10)]


@pytest.mark.parametrize("n, c, h, w, out, kernel, stride, padding, bias", CONV,
                         ids=[f"{n}x{c}x{h}x{w}-o{o}-k{k}-s{s}-p{p}-{'b' if b else 'nb'}"
                              for n, c, h, w, o, k, s, p, b in CONV])
def test_conv2d_matches_torch(torch, n, c, h, w, out, kernel, stride, padding, bias):
    rng = np.random.default_rng([n, c, h, w, out])
    ours = Conv2d(c, out, kernel, stride, padding, bias, rng=rng)
    theirs = torch.nn.Conv2d(c, out, kernel, stride, padding, bias=bias, dtype=torch.float64)
    if bias:
        ours.b[...] = rng.standard_normal(out)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.W))
        if bias:
            theirs.bias.copy_(torch.from_numpy(ours.b))
    for training in (True, False):
        x = rng.standard_normal((n, c, h, w)) * 2 + 0.5
        x_torch = torch.tensor(x, requires_grad=True)
        y_torch = theirs(x_torch)
        dy = rng.standard_normal(tuple(y_torch.shape))
        theirs.zero_grad()
        y_torch.backward(torch.from_numpy(dy))
        _assert_close(ours.forward(x, training), y_torch, "y")
        _assert_close(ours.backward(dy), x_torch.grad, "dx")
        _assert_close(ours.dW, theirs.weight.grad, "dW")
        if bias:
            _assert_close(ours.db, theirs.bias.grad, "db")
    assert set(ours.params()) == ({"W", "b"} if bias else {"W"})


# (N, C, H, W, kernel, stride)
POOL = [
    (2, 3, 4, 4, 2, None),
    (1, 2, 5, 7, 3, 2),  # windows that leave pixels out
    (2, 2, 5, 5, 3, 1),  # overlapping windows
    (2, 1, 1, 1, 1, None),  # 1x1 images
    (3, 2, 6, 5, (2, 3), (1, 2)),
]


def _random_pool(seed):
    rng = np.random.default_rng(seed + 400)
    kernel = tuple(int(k) for k in rng.integers(1, 4, 2))
    stride = None if rng.integers(2) else tuple(int(s) for s in rng.integers(1, 4, 2))
    return (int(rng.integers(1, 5)), int(rng.integers(1, 5)), int(rng.integers(kernel[0], 9)),
            int(rng.integers(kernel[1], 9)), kernel, stride)


POOL += [_random_pool(seed) for seed in range(8)]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("n, c, h, w, kernel, stride", POOL,
                         ids=[f"{n}x{c}x{h}x{w}-k{k}-s{s}" for n, c, h, w, k, s in POOL])
def test_pooling_matches_torch(torch, kind, n, c, h, w, kernel, stride):
    rng = np.random.default_rng([n, c, h, w])
    ours = {"max": MaxPool2d, "avg": AvgPool2d}[kind](kernel, stride)
    theirs = {"max": torch.nn.MaxPool2d, "avg": torch.nn.AvgPool2d}[kind](kernel, stride)
    # After a ReLU, as in a network: many ties at 0, which both send to the first entry.
    x = np.maximum(rng.standard_normal((n, c, h, w)), 0.0)
    x_torch = torch.tensor(x, requires_grad=True)
    y_torch = theirs(x_torch)
    dy = rng.standard_normal(tuple(y_torch.shape))
    y_torch.backward(torch.from_numpy(dy))
    _assert_close(ours.forward(x), y_torch, "y")
    _assert_close(ours.backward(dy), x_torch.grad, "dx")


LR, MOMENTUM, WEIGHT_DECAY = 0.1, 0.9, 0.01


def test_convnet_training_steps_match_pytorch(torch):
    """Three SGD steps (momentum, weight decay on weights only) of conv -> BatchNorm2d ->
    ReLU -> max pool -> linear: loss, logits, every gradient, every parameter after the
    step, running statistics, and eval-mode logits."""
    rng = np.random.default_rng(60)
    ours = Sequential(Conv2d(3, 4, 3, padding=1, rng=rng), BatchNorm2d(4), ReLU(),
                      MaxPool2d(2), Flatten(), Linear(4 * 3 * 3, 5, rng))
    for name, p in ours.params().items():  # biases and norm parameters away from 0 and 1
        if not name.endswith(".W"):
            p += rng.uniform(-0.5, 0.5, p.shape)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, dtype=torch.float64),
                          nn.BatchNorm2d(4, dtype=torch.float64), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(4 * 3 * 3, 5, dtype=torch.float64))
    twin = {"0.W": model[0].weight, "0.b": model[0].bias, "1.gamma": model[1].weight,
            "1.beta": model[1].bias, "5.W": model[5].weight, "5.b": model[5].bias}

    def torch_layout(name, a):  # engine.Linear keeps W as (in, out), torch as (out, in)
        return a.T if name == "5.W" else a

    with torch.no_grad():
        for name, p in ours.params().items():
            twin[name].copy_(torch.from_numpy(np.ascontiguousarray(torch_layout(name, p))))
    groups = [{"params": [p for n, p in twin.items() if decays(n)], "weight_decay": WEIGHT_DECAY},
              {"params": [p for n, p in twin.items() if not decays(n)], "weight_decay": 0.0}]
    torch_opt = torch.optim.SGD(groups, lr=LR, momentum=MOMENTUM)
    opt = SGD(ours.params(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)

    for step in range(3):
        x = rng.standard_normal((6, 3, 6, 6)) * 2 + 0.5
        y = rng.integers(0, 5, 6)
        logits = ours.forward(x)
        loss, dlogits = softmax_cross_entropy(logits, y)
        ours.backward(dlogits, need_dx=False)
        torch_opt.zero_grad()
        torch_logits = model(torch.from_numpy(x))
        torch_loss = nn.functional.cross_entropy(torch_logits, torch.from_numpy(y))
        torch_loss.backward()
        assert loss == pytest.approx(torch_loss.item(), rel=TOL, abs=0)
        _assert_close(logits, torch_logits, f"step {step}: logits")
        for name, g in ours.grads().items():
            if name == "0.b":
                # Batch norm cancels the conv's bias: both gradients are 0 up to rounding.
                scale = np.abs(ours.grads()["0.W"]).max()
                assert np.abs(g).max() < 1e-12 * scale
                assert twin[name].grad.abs().max().item() < 1e-12 * scale
                continue
            _assert_close(torch_layout(name, g), twin[name].grad, f"step {step}: grad {name}")
        opt.step(ours.grads())
        torch_opt.step()
        for name, p in ours.params().items():
            _assert_close(torch_layout(name, p), twin[name], f"step {step}: {name}")

    _assert_close(ours.layers[1].running_mean, model[1].running_mean, "running mean")
    _assert_close(ours.layers[1].running_var, model[1].running_var, "running variance")
    model.eval()
    x = rng.standard_normal((3, 3, 6, 6))
    _assert_close(ours.forward(x, training=False), model(torch.from_numpy(x)), "eval logits")
