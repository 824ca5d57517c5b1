"""A multilayer perceptron classifier."""
from __future__ import annotations

from typing import Sequence

import symbol as sym

__all__ = ["get_symbol"]


def get_symbol(num_classes: int = 10, hidden: Sequence[int] = (128, 64),
               act_type: str = "relu") -> sym.Symbol:
    """data -> [FC -> act] * len(hidden) -> FC -> SoftmaxOutput."""
    x = sym.Variable("data")
    for i, h in enumerate(hidden):
        x = sym.FullyConnected(x, num_hidden=h, name=f"fc{i + 1}")
        x = sym.Activation(x, act_type=act_type, name=f"{act_type}{i + 1}")
    x = sym.FullyConnected(x, num_hidden=num_classes, name=f"fc{len(hidden) + 1}")
    return sym.SoftmaxOutput(x, name="softmax")
