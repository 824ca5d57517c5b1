"""Kernels for the elementwise family (see ``symbol/ops/elemwise.py``)."""
from __future__ import annotations

from functools import partial
from typing import Sequence

import torch

from .context import Call, KernelContext, aten_op, copy_call, kernel_of

__all__ = ["KERNELS"]

aten = torch.ops.aten
T = torch.Tensor


def prepare_activation(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    x, y = ins[0], outs[0]
    act = ctx.params["act_type"]
    if act == "relu":
        return (partial(torch.clamp_min, x, 0, out=y),)
    if act == "sigmoid":
        return (partial(torch.sigmoid, x, out=y),)
    if act == "tanh":
        return (partial(torch.tanh, x, out=y),)
    if act == "softrelu":
        return (partial(aten_op(aten.softplus.out), x, 1, 20, out=y),)
    raise NotImplementedError(act)


def _softrelu_backward(dy: T, y: T, dx: T) -> None:
    # d softplus(x)/dx = sigmoid(x) = 1 - exp(-y) = -expm1(-y)
    t = torch.expm1(-y)
    torch.mul(dy, t, out=dx)
    dx.neg_()


def prepare_activation_backward(ctx: KernelContext, ins: list[T],
                                outs: list[T | None]) -> Sequence[Call]:
    """Reads only the forward output. softrelu allocates one temporary (workspace)."""
    dy, y = ins
    dx = outs[0]
    if dx is None:
        return ()
    act = ctx.params["act_type"]
    if act == "relu":
        return (partial(aten_op(aten.threshold_backward.grad_input), dy, y, 0, grad_input=dx),)
    if act == "sigmoid":
        return (partial(aten_op(aten.sigmoid_backward.grad_input), dy, y, grad_input=dx),)
    if act == "tanh":
        return (partial(aten_op(aten.tanh_backward.grad_input), dy, y, grad_input=dx),)
    if act == "softrelu":
        return (partial(_softrelu_backward, dy, y, dx),)
    raise NotImplementedError(act)


def prepare_leaky_relu(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    slope = ctx.params["slope"]
    if ctx.params["act_type"] == "leaky":
        return (partial(aten_op(aten.leaky_relu.out), ins[0], slope, out=outs[0]),)
    return (partial(aten_op(aten.elu.out), ins[0], slope, 1, 1, out=outs[0]),)


def prepare_leaky_relu_backward(ctx: KernelContext, ins: list[T],
                                outs: list[T | None]) -> Sequence[Call]:
    dy, y = ins
    if outs[0] is None:
        return ()
    slope = ctx.params["slope"]
    if ctx.params["act_type"] == "leaky":
        return (partial(aten_op(aten.leaky_relu_backward.grad_input), dy, y, slope, True,
                        grad_input=outs[0]),)
    return (partial(aten_op(aten.elu_backward.grad_input), dy, slope, 1, 1, True, y,
                    grad_input=outs[0]),)


def prepare_add(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    return (partial(torch.add, ins[0], ins[1], out=outs[0]),)


def prepare_mul(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    return (partial(torch.mul, ins[0], ins[1], out=outs[0]),)


def prepare_plus_scalar(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    return (partial(torch.add, ins[0], ctx.params["scalar"], out=outs[0]),)


def prepare_mul_scalar(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    return (partial(torch.mul, ins[0], ctx.params["scalar"], out=outs[0]),)


def prepare_rminus_scalar(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    # scalar - data
    return (partial(aten_op(aten.rsub.Scalar_out), ins[0], ctx.params["scalar"], out=outs[0]),)


def prepare_add_n(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    y = outs[0]
    if len(ins) == 1:
        return copy_call(y, ins[0])
    return (partial(torch.add, ins[0], ins[1], out=y), *(partial(y.add_, x) for x in ins[2:]))


def prepare_copy(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    return copy_call(outs[0], ins[0])


def prepare_zeros_like(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    return (outs[0].zero_,)


_copy = kernel_of(prepare_copy)
KERNELS = {
    "Activation": kernel_of(prepare_activation),
    "_backward_Activation": kernel_of(prepare_activation_backward),
    "LeakyReLU": kernel_of(prepare_leaky_relu),
    "_backward_LeakyReLU": kernel_of(prepare_leaky_relu_backward),
    "elemwise_add": kernel_of(prepare_add), "elemwise_mul": kernel_of(prepare_mul),
    "_plus_scalar": kernel_of(prepare_plus_scalar), "_mul_scalar": kernel_of(prepare_mul_scalar),
    "_rminus_scalar": kernel_of(prepare_rminus_scalar),
    "ElementWiseSum": kernel_of(prepare_add_n), "identity": _copy, "BlockGrad": _copy,
    "zeros_like": kernel_of(prepare_zeros_like),
    # Cast: torch's copy_ converts (round to nearest even); its gradient converts back
    "Cast": _copy, "_backward_Cast": _copy,
}
