"""LayerNorm, GroupNorm (and instance norm as GroupNorm(C, C)) and BatchNorm2d against
PyTorch in float64: outputs in training and eval mode, every gradient, and BatchNorm2d's
running statistics over several steps, across shapes down to the smallest PyTorch accepts.

Errors are relative to the largest entry of either result (``relative_error``), except that
dx and dgamma are measured against the size of the terms they sum, for when they are mostly
cancellation: a set of two values has xhat = +-1 whatever x, so dx comes from eps alone, and
a set of one value has xhat = 0, which the engine gets exactly and PyTorch up to rounding
(about 1e-14). The terms of dx are about dy * gamma / sqrt(var + eps); those of dgamma,
dy * xhat, so dgamma is measured against the sum of |dy|."""
import numpy as np
import pytest

from engine.batchnorm2d import BatchNorm2d
from engine.layernorm import GroupNorm, LayerNorm

pytestmark = pytest.mark.reference

TOL = 1e-10


def _error(ours, theirs, scale=0.0):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours.shape == theirs.shape
    scale = max(scale, np.abs(ours).max(initial=0.0), np.abs(theirs).max(initial=0.0))
    return 0.0 if scale == 0 else float(np.abs(ours - theirs).max() / scale)


def _assert_close(ours, theirs, what, scale=0.0):
    error = _error(ours, theirs, scale)
    assert error < TOL, f"{what}: relative error {error:.2e}"


def _copy_affine(torch, ours, theirs, rng):
    """Random gamma (of both signs) and beta in ours, copied into theirs."""
    if ours.gamma is None:
        return
    ours.gamma[...] = rng.uniform(0.5, 2.0, ours.gamma.shape) \
        * rng.choice([-1.0, 1.0], ours.gamma.shape)
    ours.beta[...] = rng.standard_normal(ours.beta.shape)
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.gamma))
        theirs.bias.copy_(torch.from_numpy(ours.beta))


def _compare_steps(torch, ours, theirs, shape, rng, steps=3, gamma_axes=None):
    """Forward in both modes, dx, dgamma and dbeta at each of ``steps`` steps."""
    for step in range(steps):
        for training in (True, False):
            theirs.train(training)
            x = rng.standard_normal(shape) * rng.uniform(0.1, 5.0) + rng.uniform(-5, 5)
            dy = rng.standard_normal(shape)
            x_torch = torch.tensor(x, requires_grad=True)
            y_torch = theirs(x_torch)
            theirs.zero_grad()
            y_torch.backward(torch.from_numpy(dy))
            what = f"step {step}, {'training' if training else 'eval'}"

            _assert_close(ours.forward(x, training=training), y_torch, f"y at {what}")
            gamma = 1.0 if ours.gamma is None else np.abs(ours.gamma).max()
            dx_terms = np.abs(dy).max() * gamma * ours_inv_std(ours).max()
            _assert_close(ours.backward(dy), x_torch.grad, f"dx at {what}", dx_terms)
            if ours.gamma is not None:
                dy_sums = np.abs(dy).sum(axis=gamma_axes).max()
                _assert_close(ours.dgamma, theirs.weight.grad, f"dgamma at {what}", dy_sums)
                _assert_close(ours.dbeta, theirs.bias.grad, f"dbeta at {what}")


def ours_inv_std(layer):
    """1 / sqrt(var + eps) of the last forward pass, whichever cache the layer keeps."""
    return layer._cache.inv_std


# (leading shape, normalized_shape, eps, elementwise_affine)
LAYER_NORM = [
    ((2,), (5,), 1e-5, True),
    ((), (7,), 1e-5, True),  # no batch axis
    ((3,), (1,), 1e-5, True),  # one value: y = beta
    ((2,), (2,), 1e-5, True),  # two values: xhat = +-1
    ((2, 3), (4, 5), 1e-3, False),
    ((4,), (3, 2, 2), 1e-1, True),
]


def _random_layer_norm(seed):
    rng = np.random.default_rng(seed)
    leading = tuple(int(s) for s in rng.integers(1, 6, rng.integers(0, 3)))
    normalized = tuple(int(s) for s in rng.integers(1, 9, rng.integers(1, 4)))
    return leading, normalized, float(rng.choice([1e-8, 1e-5, 1e-2])), bool(rng.integers(2))


LAYER_NORM += [_random_layer_norm(seed) for seed in range(10)]


@pytest.mark.parametrize("leading, normalized, eps, affine", LAYER_NORM,
                         ids=[f"{lead}-{norm}-e{eps}-{'a' if a else 'na'}"
                              for lead, norm, eps, a in LAYER_NORM])
def test_layernorm_matches_torch(torch, leading, normalized, eps, affine):
    rng = np.random.default_rng([len(leading), *leading, *normalized])
    ours = LayerNorm(normalized, eps=eps, elementwise_affine=affine)
    theirs = torch.nn.LayerNorm(normalized, eps=eps, elementwise_affine=affine,
                                dtype=torch.float64)
    _copy_affine(torch, ours, theirs, rng)
    _compare_steps(torch, ours, theirs, leading + normalized, rng,
                   gamma_axes=tuple(range(len(leading))))
    assert set(ours.params()) == ({"gamma", "beta"} if affine else set())


# (N, C, spatial shape, groups, eps, affine)
GROUP_NORM = [
    (2, 4, (3, 3), 2, 1e-5, True),
    (2, 6, (2, 3), 1, 1e-5, True),  # one group
    (2, 5, (1, 1), 5, 1e-5, True),  # instance norm of 1x1 images: one value per set
    (2, 4, (1, 1), 2, 1e-5, True),  # two values per set
    (1, 6, (4,), 3, 1e-3, False),  # one sample, one spatial axis
    (3, 4, (), 2, 1e-5, True),  # no spatial axes
    (2, 9, (2, 2, 2), 3, 1e-1, True),  # three spatial axes
]


def _random_group_norm(seed):
    rng = np.random.default_rng(seed + 100)
    groups = int(rng.integers(1, 5))
    spatial = tuple(int(s) for s in rng.integers(1, 6, rng.integers(0, 3)))
    n, per_group = int(rng.integers(1, 6)), int(rng.integers(1, 4))
    if n * per_group * np.prod(spatial) == 1:
        n = 2  # PyTorch refuses N * C / groups * H * W... = 1 in training mode
    return (n, groups * per_group, spatial, groups, float(rng.choice([1e-8, 1e-5, 1e-2])),
            bool(rng.integers(2)))


GROUP_NORM += [_random_group_norm(seed) for seed in range(10)]


@pytest.mark.parametrize("n, c, spatial, groups, eps, affine", GROUP_NORM,
                         ids=[f"n{n}-c{c}-{sp}-g{g}-e{e}-{'a' if a else 'na'}"
                              for n, c, sp, g, e, a in GROUP_NORM])
def test_groupnorm_matches_torch(torch, n, c, spatial, groups, eps, affine):
    rng = np.random.default_rng([n, c, groups, *spatial])
    ours = GroupNorm(groups, c, eps=eps, affine=affine)
    theirs = torch.nn.GroupNorm(groups, c, eps=eps, affine=affine, dtype=torch.float64)
    _copy_affine(torch, ours, theirs, rng)
    _compare_steps(torch, ours, theirs, (n, c, *spatial), rng,
                   gamma_axes=(0, *range(2, 2 + len(spatial))))


@pytest.mark.parametrize("n, c, h, w", [(2, 3, 2, 2), (1, 4, 3, 1), (3, 2, 5, 4)])
def test_groupnorm_with_one_channel_per_group_is_torch_instance_norm(torch, n, c, h, w):
    """torch.nn.InstanceNorm2d (affine, no running statistics; it refuses a single pixel)."""
    rng = np.random.default_rng([n, c, h, w])
    ours = GroupNorm(c, c)
    theirs = torch.nn.InstanceNorm2d(c, affine=True, dtype=torch.float64)
    _copy_affine(torch, ours, theirs, rng)
    _compare_steps(torch, ours, theirs, (n, c, h, w), rng, gamma_axes=(0, 2, 3))


# (N, C, H, W, momentum, eps, affine, track_running_stats)
BATCH_NORM_2D = [
    (2, 3, 4, 4, 0.1, 1e-5, True, True),
    (2, 1, 1, 1, 0.1, 1e-5, True, True),  # two values per channel
    (1, 3, 2, 1, 1.0, 1e-5, True, True),  # one image of two pixels
    (2, 5, 1, 1, 0.0, 1e-3, False, True),  # 1x1 images
    (3, 2, 3, 5, 0.5, 1e-1, True, False),
    (2, 4, 2, 2, 0.1, 1e-5, False, False),
]


def _random_batch_norm_2d(seed):
    rng = np.random.default_rng(seed + 200)
    return (int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 7)),
            int(rng.integers(2, 7)), float(rng.choice([0.0, 0.01, 0.1, 0.3, 1.0])),
            float(rng.choice([1e-8, 1e-5, 1e-2])), bool(rng.integers(2)), bool(rng.integers(2)))


BATCH_NORM_2D += [_random_batch_norm_2d(seed) for seed in range(10)]


@pytest.mark.parametrize("n, c, h, w, momentum, eps, affine, track", BATCH_NORM_2D,
                         ids=[f"{n}x{c}x{h}x{w}-m{m}-e{e}-{'a' if a else 'na'}-"
                              f"{'t' if t else 'nt'}"
                              for n, c, h, w, m, e, a, t in BATCH_NORM_2D])
def test_batchnorm2d_matches_torch(torch, n, c, h, w, momentum, eps, affine, track):
    rng = np.random.default_rng([n, c, h, w])
    ours = BatchNorm2d(c, eps=eps, momentum=momentum, affine=affine, track_running_stats=track)
    theirs = torch.nn.BatchNorm2d(c, eps=eps, momentum=momentum, affine=affine,
                                  track_running_stats=track, dtype=torch.float64)
    _copy_affine(torch, ours, theirs, rng)
    for step in range(4):
        _compare_steps(torch, ours, theirs, (n, c, h, w), rng, steps=1, gamma_axes=(0, 2, 3))
        if track:
            _assert_close(ours.running_mean, theirs.running_mean, f"running_mean at step {step}")
            _assert_close(ours.running_var, theirs.running_var, f"running_var at step {step}")
            assert ours.num_batches_tracked == theirs.num_batches_tracked.item() == step + 1
        else:
            assert ours.running_mean is None and theirs.running_mean is None
