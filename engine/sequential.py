"""``Sequential``: layers applied one after the other, with the engine's layer interface.

For networks that are not ``engine.network.MLP``s, such as a small convolutional network::

    net = Sequential(Conv2d(3, 8, 3, padding=1, rng=rng), BatchNorm2d(8), ReLU(),
                     MaxPool2d(2), Flatten(), Linear(8 * 4 * 4, 2, rng))
    engine.train.train_step(net, SGD(net.params(), lr=0.1), x, y)

Parameter names are ``"{index}.{name}"`` ("0.W", "1.gamma", ...), as PyTorch's
``nn.Sequential`` names them, so ``engine.optim.SGD`` decays the weights ("W") only.

Checks, as in ``MLP``: the first layer checks the input, the network checks the gradient it
is given and its own output; the layers after the first only see what the layers before
them produced, so their checks are turned off (``check_input = False``). That also lets the
engine's elementwise layers (``ReLU``, ``Sigmoid``, ``Tanh``), which on their own insist on
(batch, features) input, work on images.
"""
from __future__ import annotations

import inspect

import numpy as np

from engine.checks import check_dy
from engine.layers import require_finite


class Sequential:
    def __init__(self, *layers):
        if not layers:
            raise ValueError("layers must hold at least one layer")
        self.layers = list(layers)
        for layer in self.layers[1:]:
            if hasattr(layer, "check_input"):
                layer.check_input = False
        first = self.layers[0]
        # Whether the first layer can skip its input's gradient (Linear, Conv2d can).
        self._first_takes_need_dx = "need_dx" in inspect.signature(first.backward).parameters
        self._out_shape: tuple[int, ...] | None = None

    def forward(self, x, training: bool = True) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training)
        # Finite inputs can still overflow inside, or meet parameters that did.
        require_finite("output", x)
        self._out_shape = x.shape
        return x

    def backward(self, dy, need_dx: bool = True) -> np.ndarray | None:
        """Fill ``grads()`` from dL/dy; return dL/dx (None when ``need_dx`` is False and the
        first layer can skip it)."""
        if self._out_shape is None:
            raise RuntimeError("Sequential.backward called before forward")
        dy = check_dy(dy, self._out_shape)
        require_finite("dy", dy)
        for layer in reversed(self.layers[1:]):
            dy = layer.backward(dy)
        if self._first_takes_need_dx:
            return self.layers[0].backward(dy, need_dx=need_dx)
        return self.layers[0].backward(dy)

    def params(self) -> dict[str, np.ndarray]:
        return {f"{i}.{name}": p for i, layer in enumerate(self.layers)
                for name, p in layer.params().items()}

    def grads(self) -> dict[str, np.ndarray]:
        return {f"{i}.{name}": g for i, layer in enumerate(self.layers)
                for name, g in layer.grads().items()}
