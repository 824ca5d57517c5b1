"""Kernel tables, one module per op family (the same families as ``symbol/ops``).

A kernel is ``kernel(ctx, ins, outs) -> None``: it reads the input tensors ``ins`` and writes
every output into the caller's tensors ``outs`` (aten ``out=`` / ``.grad_input`` overloads where
torch has them), so that outputs land in the buffers the executor planned. For backward ops
(``OpDef.is_backward``) an entry of ``outs`` may be None: that output is not needed and the
kernel skips computing it. A kernel that must allocate a temporary says so in its docstring
(it is operator workspace).
"""
from __future__ import annotations

import importlib
from typing import Callable

from .context import KernelContext

__all__ = ["KERNELS", "Kernel", "KernelContext"]

Kernel = Callable[..., None]
KERNELS: dict[str, Kernel] = {}

for _family in ("elemwise", "nn", "shape", "loss"):
    _table = importlib.import_module(f"{__name__}.{_family}").KERNELS
    _clash = set(_table) & set(KERNELS)
    if _clash:
        raise ValueError(f"kernels registered twice: {sorted(_clash)}")
    KERNELS.update(_table)
