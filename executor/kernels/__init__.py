"""Kernel tables, one module per op family (the same families as ``symbol/ops``).

A kernel is ``kernel(ctx, ins, outs) -> None``: it reads the input tensors ``ins`` and writes
every output into the caller's tensors ``outs`` (aten ``out=`` / ``.grad_input`` overloads where
torch has them), so that outputs land in the buffers the executor planned. For backward ops
(``OpDef.is_backward``) an entry of ``outs`` may be None: that output is not needed and the
kernel skips computing it. A kernel that must allocate a temporary says so in its docstring
(it is operator workspace).

Most kernels are written in prepared form (``Prepare`` in :mod:`.context`): at bind time,
:func:`prepare` turns a node and its fixed buffers into a few no-argument calls, with the op's
parameters parsed, views of the buffers made and the torch function chosen once, so that a
training step is a flat list of calls. ``KERNELS`` holds the plain form of every op
(:func:`.context.kernel_of` for the prepared ones), which tests call directly.
"""
from __future__ import annotations

import importlib
from functools import partial
from typing import Any, Callable

import torch

from .context import Call, KernelContext, Prepare

__all__ = ["KERNELS", "PREPARE", "Call", "Kernel", "KernelContext", "prepare"]

Kernel = Callable[..., None]
KERNELS: dict[str, Kernel] = {}

for _family in ("elemwise", "nn", "shape", "loss"):
    _table = importlib.import_module(f"{__name__}.{_family}").KERNELS
    _clash = set(_table) & set(KERNELS)
    if _clash:
        raise ValueError(f"kernels registered twice: {sorted(_clash)}")
    KERNELS.update(_table)

#: op -> its prepared form, for the kernels written that way.
PREPARE: dict[str, Prepare] = {op: getattr(k, "prepare") for op, k in KERNELS.items()
                               if hasattr(k, "prepare")}


def prepare(op: str, ctx: KernelContext, ins: list[torch.Tensor],
            outs: list[Any]) -> tuple[Call, ...]:
    """The calls that run one node on its bound buffers: its kernel's prepared calls, or one
    call of the plain kernel. Buffers must not move afterwards (the executor's never do)."""
    prep = PREPARE.get(op)
    if prep is None:
        return (partial(KERNELS[op], ctx, ins, outs),)
    return tuple(prep(ctx, ins, outs))
