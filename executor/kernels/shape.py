"""Kernels for the shape family (see ``symbol/ops/shape.py``).

Every kernel here is a copy between views. A reshape whose output the planner placed on its
input's buffer (the declared in-place pair) has nothing to do. Inputs the op declares
shape-only (the forward inputs of ``_backward_Reshape`` and ``_backward_Concat``) are never
read: the output buffers already carry the shapes.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

import torch

from .context import Call, KernelContext, copy_call, kernel_of

__all__ = ["KERNELS"]

T = torch.Tensor


def prepare_reshape(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    """Flatten and Reshape: the output is the input's elements in the new shape."""
    return copy_call(outs[0], ins[0])


def prepare_reshape_backward(ctx: KernelContext, ins: list[T],
                             outs: list[T | None]) -> Sequence[Call]:
    """dx = dy in x's shape; ``ins[1]`` (the forward input) is shape-only and not read."""
    return () if outs[0] is None else copy_call(outs[0], ins[0])


def prepare_concat(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    return (partial(torch.cat, list(ins), dim=ctx.params["dim"], out=outs[0]),)


def concat_backward(ctx: KernelContext, ins: list[T], outs: list[T | None]) -> None:
    """Slices of dy go to the input gradients; of the shape-only inputs only ``.shape`` is read."""
    dy, dim = ins[0], ctx.params["dim"]
    offset = 0
    for x, dx in zip(ins[1:], outs, strict=True):
        width = x.shape[dim]
        if dx is not None:
            dx.copy_(dy.narrow(dim, offset, width))
        offset += width


def slice_channel(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    x, axis = ins[0], ctx.params["axis"]
    k = x.shape[axis] // len(outs)
    for i, y in enumerate(outs):
        part = x.narrow(axis, i * k, k)
        y.view(part.shape).copy_(part)


def slice_channel_backward(ctx: KernelContext, ins: list[T], outs: list[T | None]) -> None:
    """dx = concat(dy_i) along axis; squeezed parts are unsqueezed by viewing the slice."""
    dx = outs[0]
    if dx is None:
        return
    axis = ctx.params["axis"]
    k = dx.shape[axis] // len(ins)
    for i, dy in enumerate(ins):
        part = dx.narrow(axis, i * k, k)
        part.copy_(dy.reshape(part.shape))


KERNELS = {
    "Flatten": kernel_of(prepare_reshape), "Reshape": kernel_of(prepare_reshape),
    "_backward_Reshape": kernel_of(prepare_reshape_backward),
    "Concat": kernel_of(prepare_concat), "_backward_Concat": concat_backward,
    "SliceChannel": slice_channel, "_backward_SliceChannel": slice_channel_backward,
}
