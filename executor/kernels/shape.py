"""Kernels for the shape family (see ``symbol/ops/shape.py``).

Every kernel here is a copy between views. A reshape whose output the planner placed on its
input's buffer (the declared in-place pair) has nothing to do. Inputs the op declares
shape-only (the forward inputs of ``_backward_Reshape`` and ``_backward_Concat``) are never
read: the output buffers already carry the shapes.
"""
from __future__ import annotations

import torch

from .context import KernelContext, copy_into

__all__ = ["KERNELS"]

T = torch.Tensor


def reshape(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    """Flatten and Reshape: the output is the input's elements in the new shape."""
    copy_into(outs[0], ins[0])


def reshape_backward(ctx: KernelContext, ins: list[T], outs: list[T | None]) -> None:
    """dx = dy in x's shape; ``ins[1]`` (the forward input) is shape-only and not read."""
    if outs[0] is not None:
        copy_into(outs[0], ins[0])


def concat(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    torch.cat(ins, dim=ctx.params["dim"], out=outs[0])


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
    "Flatten": reshape, "Reshape": reshape, "_backward_Reshape": reshape_backward,
    "Concat": concat, "_backward_Concat": concat_backward,
    "SliceChannel": slice_channel, "_backward_SliceChannel": slice_channel_backward,
}
