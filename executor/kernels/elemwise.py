"""Kernels for the elementwise family (see ``symbol/ops/elemwise.py``)."""
from __future__ import annotations

import torch

from .context import KernelContext, copy_into

__all__ = ["KERNELS"]

aten = torch.ops.aten
T = torch.Tensor


def activation(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    x, y = ins[0], outs[0]
    act = ctx.params["act_type"]
    if act == "relu":
        torch.clamp_min(x, 0, out=y)
    elif act == "sigmoid":
        torch.sigmoid(x, out=y)
    elif act == "tanh":
        torch.tanh(x, out=y)
    elif act == "softrelu":
        aten.softplus.out(x, 1, 20, out=y)
    else:
        raise NotImplementedError(act)


def activation_backward(ctx: KernelContext, ins: list[T], outs: list[T | None]) -> None:
    """Reads only the forward output. softrelu allocates one temporary (workspace)."""
    dy, y = ins
    dx = outs[0]
    if dx is None:
        return
    act = ctx.params["act_type"]
    if act == "relu":
        aten.threshold_backward.grad_input(dy, y, 0, grad_input=dx)
    elif act == "sigmoid":
        aten.sigmoid_backward.grad_input(dy, y, grad_input=dx)
    elif act == "tanh":
        aten.tanh_backward.grad_input(dy, y, grad_input=dx)
    elif act == "softrelu":
        # d softplus(x)/dx = sigmoid(x) = 1 - exp(-y) = -expm1(-y)
        t = torch.expm1(-y)
        torch.mul(dy, t, out=dx)
        dx.neg_()
    else:
        raise NotImplementedError(act)


def leaky_relu(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    slope = ctx.params["slope"]
    if ctx.params["act_type"] == "leaky":
        aten.leaky_relu.out(ins[0], slope, out=outs[0])
    else:
        aten.elu.out(ins[0], slope, 1, 1, out=outs[0])


def leaky_relu_backward(ctx: KernelContext, ins: list[T], outs: list[T | None]) -> None:
    dy, y = ins
    if outs[0] is None:
        return
    slope = ctx.params["slope"]
    if ctx.params["act_type"] == "leaky":
        aten.leaky_relu_backward.grad_input(dy, y, slope, True, grad_input=outs[0])
    else:
        aten.elu_backward.grad_input(dy, slope, 1, 1, True, y, grad_input=outs[0])


def add(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    torch.add(ins[0], ins[1], out=outs[0])


def mul(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    torch.mul(ins[0], ins[1], out=outs[0])


def plus_scalar(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    torch.add(ins[0], ctx.params["scalar"], out=outs[0])


def mul_scalar(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    torch.mul(ins[0], ctx.params["scalar"], out=outs[0])


def rminus_scalar(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    aten.rsub.Scalar_out(ins[0], ctx.params["scalar"], out=outs[0])  # scalar - data


def add_n(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    y = outs[0]
    if len(ins) == 1:
        copy_into(y, ins[0])
        return
    torch.add(ins[0], ins[1], out=y)
    for x in ins[2:]:
        y.add_(x)


def copy(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    copy_into(outs[0], ins[0])


def zeros_like(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    outs[0].zero_()


KERNELS = {
    "Activation": activation, "_backward_Activation": activation_backward,
    "LeakyReLU": leaky_relu, "_backward_LeakyReLU": leaky_relu_backward,
    "elemwise_add": add, "elemwise_mul": mul, "_plus_scalar": plus_scalar,
    "_mul_scalar": mul_scalar, "_rminus_scalar": rminus_scalar, "ElementWiseSum": add_n,
    "identity": copy, "BlockGrad": copy, "zeros_like": zeros_like,
    # Cast: torch's copy_ converts (round to nearest even); its gradient converts back
    "Cast": copy, "_backward_Cast": copy,
}
