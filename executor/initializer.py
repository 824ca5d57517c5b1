"""Parameter initialisation by name, as MXNet's default initializers do."""
from __future__ import annotations

import math

import torch

from .executor import Executor

__all__ = ["initialize"]


def initialize(exe: Executor, *, magnitude: float = 3.0, seed: int | None = None,
               skip: tuple[str, ...] = ("data", "label")) -> None:
    """Initialise parameters in ``exe.arg_dict`` / ``exe.aux_dict`` in place.

    ``*_weight``: Xavier uniform (MXNet ``Xavier(factor_type='avg', magnitude=3)``);
    ``*_bias``, ``*_beta``, ``*_moving_mean``: 0; ``*_gamma``, ``*_moving_var``: 1. Names in
    ``skip`` or ending in ``_label``/``_data`` (inputs) are left alone.
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed if seed is not None else int(torch.initial_seed() % 2**31))
    for name, t in {**exe.arg_dict, **exe.aux_dict}.items():
        if name in skip or name.endswith(("_label", "_data", "_head_grad")):
            continue
        if name.endswith(("_gamma", "_moving_var")):
            t.fill_(1)
        elif name.endswith("_weight") and t.dim() >= 2:
            fan_out = t.shape[0] * math.prod(t.shape[2:])
            fan_in = t.shape[1] * math.prod(t.shape[2:])
            scale = math.sqrt(magnitude / ((fan_in + fan_out) / 2))
            t.copy_(torch.empty(t.shape, dtype=t.dtype).uniform_(-scale, scale, generator=gen))
        elif name.endswith(("_bias", "_beta", "_moving_mean", "_weight")):
            t.zero_()
