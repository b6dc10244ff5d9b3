"""Multi-layer perceptrons with optional normalization and dropout: ``build_mlp`` and ``MLP``.

A hidden block computes, in this order::

    linear -> [norm if norm_position == "before"] -> activation
           -> [norm if norm_position == "after"] -> [dropout]

and the output block is a single linear layer producing logits. Parameter names are
``"hidden{i}.linear.W"``, ``"hidden{i}.linear.b"``, ``"hidden{i}.norm.gamma"``,
``"hidden{i}.norm.beta"``, ``"out.linear.W"``, ``"out.linear.b"``.

After every forward pass the network keeps, for measurement:
``mlp.hidden_inputs[i]``, the input of hidden block i's linear layer, and
``mlp.preactivations[i]``, the input of its nonlinearity (after the norm when the norm comes
before the activation -- the quantity of Ioffe & Szegedy's Figure 1).
"""
from __future__ import annotations

import numpy as np

from engine.batchnorm import BatchNorm1d, BatchRenorm1d, RunningAverageBatchNorm1d
from engine.layers import ACTIVATIONS, Dropout, Linear, as_float_array, require_finite
from engine.optim import decays
from engine.speed import store_contiguously

NORMS = {"batch": BatchNorm1d, "renorm": BatchRenorm1d, "running": RunningAverageBatchNorm1d}
NORM_POSITIONS = ("before", "after")
DEFAULT_INIT = {"relu": "he", "sigmoid": "xavier", "tanh": "xavier"}


class HiddenBlock:
    """One hidden layer: ``linear``, ``norm`` (or None), ``activation``, ``dropout`` (or None).

    The block checks what comes in from outside: ``x`` (its ``linear`` layer does) and, in
    ``backward``, ``dy``. The layers after ``linear`` only see what the block's own layers
    produce, so their own checks, a pass over the array each, are turned off
    (``check_input``)."""

    def __init__(self, linear, activation, norm=None, norm_position: str = "before",
                 dropout: Dropout | None = None):
        self.linear = linear
        self.norm = norm
        self.norm_position = norm_position
        self.activation = activation
        self.dropout = dropout
        for layer in (norm, activation, dropout):
            if hasattr(layer, "check_input"):
                layer.check_input = False
        self.input: np.ndarray | None = None
        self.preactivation: np.ndarray | None = None

    def layers(self) -> dict[str, object]:
        """The sub-layers by name, in forward order (only those present)."""
        named = {"linear": self.linear}
        if self.norm is not None and self.norm_position == "before":
            named["norm"] = self.norm
        named["activation"] = self.activation
        if self.norm is not None and self.norm_position == "after":
            named["norm"] = self.norm
        if self.dropout is not None:
            named["dropout"] = self.dropout
        return named

    def forward(self, x: np.ndarray, training: bool = True) -> np.ndarray:
        self.input = x
        h = self.linear.forward(x, training)
        if self.norm is not None and self.norm_position == "before":
            h = self.norm.forward(h, training)
        self.preactivation = h
        h = self.activation.forward(h, training)
        if self.norm is not None and self.norm_position == "after":
            h = self.norm.forward(h, training)
        if self.dropout is not None:
            h = self.dropout.forward(h, training)
        return h

    def backward(self, dy: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        if self.preactivation is None:
            raise RuntimeError("HiddenBlock.backward called before forward")
        if dy.shape != self.preactivation.shape:
            raise ValueError(f"dy must have shape {self.preactivation.shape}, got {dy.shape}")
        require_finite("dy", dy)
        return self._backward(dy, need_dx)

    def _backward(self, dy: np.ndarray, need_dx: bool) -> np.ndarray | None:
        """``backward`` of a checked ``dy``."""
        if self.dropout is not None:
            dy = self.dropout.backward(dy)
        if self.norm is not None and self.norm_position == "after":
            dy = self.norm.backward(dy)
        dy = self.activation.backward(dy)
        if self.norm is not None and self.norm_position == "before":
            dy = self.norm.backward(dy)
        return self.linear.backward(dy, need_dx)


class MLP:
    """A stack of ``HiddenBlock``s and an output ``Linear`` (``mlp.out.linear``), with the
    layer interface: ``forward``, ``backward``, ``params``, ``grads``.

    The network checks its input ``x`` (through its first layer), ``dlogits`` and its
    output; every other layer only sees what the layers before it produced, so their own
    checks (``check_input``), a numpy call or more each, are turned off, including those of
    the linear layers of the blocks after the first.

    Speed: the parameters of its layers are moved into one array, weight matrices first, and
    their gradients into another, laid out alike (``engine.speed.store_contiguously``):
    ``engine.optim.SGD`` then updates them all with a few numpy calls per step rather than a
    few per parameter (a copy of the network keeps separate arrays, which is slower, not
    wrong)."""

    def __init__(self, hidden: list[HiddenBlock], out: Linear):
        self.hidden = list(hidden)
        self.out = _OutputBlock(out)
        self.dtype = out.dtype
        self.in_features = (self.hidden[0].linear if self.hidden else out).in_features
        self.out_features = out.out_features
        fed = [block.linear for block in self.hidden[1:]] + ([out] if self.hidden else [])
        for linear in fed:
            if hasattr(linear, "check_input"):
                linear.check_input = False
        self._structure: list | None = None  # see _layers_with_parameters
        self._owners: list[tuple[str, object]] = []
        # Speed (see above): weight matrices first, since weight decay applies to them alone,
        # so that SGD updates two runs whatever its settings.
        store_contiguously(self.named_layers().values(), self.dtype, first=decays)

    def named_layers(self) -> dict[str, object]:
        """Every layer object by its dotted name ("hidden0.linear", ..., "out.linear")."""
        named = {}
        for i, block in enumerate(self.hidden):
            for name, layer in block.layers().items():
                named[f"hidden{i}.{name}"] = layer
        named["out.linear"] = self.out.linear
        return named

    @property
    def preactivations(self) -> list[np.ndarray]:
        return [block.preactivation for block in self.hidden]

    @property
    def hidden_inputs(self) -> list[np.ndarray]:
        return [block.input for block in self.hidden]

    def forward(self, x, training: bool = True) -> np.ndarray:
        """Logits for ``x`` of shape (batch, in_features). ``training`` selects batch statistics
        (and updates running ones) in norm layers and enables dropout."""
        h = as_float_array("x", x, self.dtype)  # the first Linear checks its shape and values
        for block in self.hidden:
            h = block.forward(h, training)
        logits = self.out.linear.forward(h, training)
        # Finite inputs can still overflow inside, or meet parameters that did.
        require_finite("logits", logits)
        return logits

    def backward(self, dlogits: np.ndarray, need_dx: bool = True) -> np.ndarray | None:
        """Fill ``grads()`` from dL/dlogits; return dL/dx, or None when ``need_dx`` is False
        (training does not need the input's gradient, and skipping it saves the largest
        matrix product of the backward pass)."""
        require_finite("dlogits", dlogits)  # then every gradient below is computed, not given
        dy = self.out.linear.backward(dlogits)
        for i in range(len(self.hidden) - 1, -1, -1):
            dy = self.hidden[i]._backward(dy, need_dx or i > 0)
        return dy

    def params(self) -> dict[str, np.ndarray]:
        return self._collect("params")

    def grads(self) -> dict[str, np.ndarray]:
        return self._collect("grads")

    def _collect(self, method: str) -> dict[str, np.ndarray]:
        collected = {}
        for prefix, layer in self._layers_with_parameters():
            for name, array in getattr(layer, method)().items():
                collected[prefix + name] = array
        return collected

    def _layers_with_parameters(self) -> list[tuple[str, object]]:
        """(name prefix, layer) of every layer holding parameters. ``grads()`` needs them every
        step, so they are looked up again only when the layers changed (experiments replace
        a block's layers after construction)."""
        structure = [(b.linear, b.norm, b.activation, b.dropout, b.norm_position)
                     for b in self.hidden] + [self.out.linear]
        if structure != self._structure:
            self._structure = structure
            self._owners = [(f"{name}.", layer) for name, layer in self.named_layers().items()
                            if layer.params()]
        return self._owners


class _OutputBlock:
    """Holds the output layer so that it reads ``mlp.out.linear`` like the hidden blocks."""

    def __init__(self, linear: Linear):
        self.linear = linear


def build_mlp(rng: np.random.Generator, in_dim: int, out_dim: int, depth: int, width: int,
              activation: str = "relu", norm: str | None = None, norm_position: str = "before",
              dropout: float = 0.0, init: str | None = None, dtype=np.float64,
              norm_kwargs: dict | None = None, init_std: float | None = None) -> MLP:
    """An MLP with ``depth`` hidden layers of ``width`` units and ``out_dim`` logits.

    ``activation``: "relu", "sigmoid" or "tanh". ``norm``: None, "batch" (BatchNorm1d),
    "renorm" (BatchRenorm1d) or "running" (RunningAverageBatchNorm1d), placed "before" or
    "after" the activation; ``norm_kwargs`` go to the norm's constructor. ``dropout``: drop
    probability after each hidden block (0 = none). ``init``: weight initialization of every
    linear layer (see ``engine.layers.init_weights``); default "he" for ReLU, "xavier"
    otherwise; ``init_std`` is the standard deviation of init="gaussian".
    Weights are drawn from ``rng`` layer by layer; dropout masks come from a generator
    spawned from ``rng``.
    """
    for name, value, low in (("in_dim", in_dim, 1), ("out_dim", out_dim, 1),
                             ("depth", depth, 0), ("width", width, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if norm is not None and norm not in NORMS:
        raise ValueError(f"norm must be None or one of {', '.join(NORMS)}, got {norm!r}")
    if norm_position not in NORM_POSITIONS:
        raise ValueError(f"norm_position must be 'before' or 'after', got {norm_position!r}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
            or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
    if norm_kwargs and norm is None:
        raise ValueError("norm_kwargs given but norm is None")
    init = DEFAULT_INIT[activation] if init is None else init
    dropout_rng = rng.spawn(1)[0] if dropout else None
    hidden = []
    fan_in = in_dim
    for _ in range(depth):
        linear = Linear(fan_in, width, rng, init=init, std=init_std, dtype=dtype)
        norm_layer = NORMS[norm](width, dtype=dtype, **(norm_kwargs or {})) if norm else None
        drop = Dropout(dropout, dropout_rng) if dropout else None
        hidden.append(HiddenBlock(linear, ACTIVATIONS[activation](), norm_layer, norm_position,
                                  drop))
        fan_in = width
    out = Linear(fan_in, out_dim, rng, init=init, std=init_std, dtype=dtype)
    return MLP(hidden, out)
