"""A minimal SGD (with momentum and weight decay) over an executor's parameters."""
from __future__ import annotations

import torch

from .executor import Executor

__all__ = ["SGD"]


class SGD:
    """``w -= lr * (rescale_grad * g + wd * w)``, with optional momentum (MXNet ``sgd``).

    Updates every argument that has a gradient, except the names in ``exclude``.
    """

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, wd: float = 0.0,
                 rescale_grad: float = 1.0, exclude: tuple[str, ...] = ("data",)) -> None:
        self.lr, self.momentum, self.wd, self.rescale_grad = lr, momentum, wd, rescale_grad
        self.exclude = exclude
        self._mom: dict[str, torch.Tensor] = {}

    def update(self, exe: Executor) -> None:
        """Apply one step using ``exe.grad_dict``."""
        with torch.no_grad():
            for name, g in exe.grad_dict.items():
                if name in self.exclude:
                    continue
                w = exe.arg_dict[name]
                step = g * self.rescale_grad
                if self.wd:
                    step.add_(w, alpha=self.wd)
                if self.momentum:
                    m = self._mom.setdefault(name, torch.zeros_like(w))
                    m.mul_(self.momentum).add_(step)
                    step = m
                w.sub_(step, alpha=self.lr)
