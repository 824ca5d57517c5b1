"""Kernels for the loss family (see ``symbol/ops/loss.py``).

Softmax gradients are computed on a ``(A, C, B)`` view of the probabilities with the class axis
in the middle and labels viewed as ``(A, B)``: ``(N, C*...)`` by default, ``(rows, C)`` with
``preserve_shape``, ``(N, C, rest)`` with ``multi_output``. Labels are class indices stored as
floats (MXNet); converting them to an index tensor is operator workspace.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Mapping, Sequence

import torch

from .context import Call, KernelContext, aten_op, copy_call, kernel_of

__all__ = ["KERNELS", "LABEL_CLASSES"]

aten = torch.ops.aten
T = torch.Tensor
_SOFTMAX = aten_op(aten._softmax.out)


def _class_view(params: Mapping[str, Any], t: T) -> T:
    """``t`` (data-shaped) viewed as ``(A, C, B)`` with the class axis in the middle."""
    if params["multi_output"]:
        return t.view(t.shape[0], t.shape[1], -1)
    if params["preserve_shape"]:
        return t.view(-1, t.shape[-1], 1)
    return t.view(t.shape[0], -1, 1)


def _softmax_classes(params: Mapping[str, Any], data: tuple[int, ...]) -> int:
    """The size of the class axis of :func:`_class_view` for data of shape ``data``."""
    if params["multi_output"]:
        return data[1]
    if params["preserve_shape"]:
        return data[-1]
    n = 1
    for d in data[1:]:
        n *= d
    return n


#: Ops whose input 1 (``label``) holds class indices: op -> (params, data shape) -> number of
#: classes. A label outside [0, classes) would index out of range in these kernels.
LABEL_CLASSES: dict[str, Callable[[Mapping[str, Any], tuple[int, ...]], int]] = {
    "SoftmaxOutput": _softmax_classes,
    "softmax_cross_entropy": lambda params, data: data[1],
}


def _add_at_label(g: T, label: T, value: float) -> None:
    """``g[a, label[a, b], b] += value`` on an ``(A, C, B)`` tensor, labels ``(A, B)``."""
    idx = label.reshape(g.shape[0], 1, g.shape[2]).long()
    g.scatter_add_(1, idx, torch.full((), value, dtype=g.dtype, device=g.device).expand(
        idx.shape))


def prepare_softmax_output(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    """Softmax along the class axis; may run in place (the declared pair (data, output))."""
    p = ctx.params
    return (partial(_SOFTMAX, _class_view(p, ins[0]), 1, False, out=_class_view(p, outs[0])),)


def prepare_softmax_output_backward(ctx: KernelContext, ins: list[T],
                                    outs: list[T | None]) -> Sequence[Call]:
    """dx = (y - q) * grad_scale / norm, q the (smoothed) one-hot label; reads y and label.

    Workspace: the index tensor, a row mask with use_ignore, the valid count.
    """
    y, label = ins
    dx = outs[0]
    if dx is None:
        return ()
    p = ctx.params
    g = _class_view(p, dx)
    rows, classes, cols = g.shape
    alpha, use_ignore, ignore = p["smooth_alpha"], p["use_ignore"], p["ignore_label"]
    # q = 1 - alpha on the label's class, alpha / (C - 1) elsewhere
    off = alpha / (classes - 1) if alpha > 0 and classes > 1 else 0.0
    hit = torch.full((), -(1.0 - alpha - off) if alpha > 0 else -1.0, dtype=g.dtype,
                     device=g.device).expand(rows, 1, cols)
    scale, norm, state = p["grad_scale"], p["normalization"], ctx.state
    counted = use_ignore or norm == "valid"

    def run() -> None:
        lab = label.reshape(rows, cols)
        keep = lab != ignore if counted else None
        safe = torch.where(keep, lab, 0) if use_ignore and keep is not None else lab
        if alpha > 0:
            g.sub_(off)
        g.scatter_add_(1, safe.reshape(rows, 1, cols).long(), hit)
        if use_ignore and keep is not None:
            g.mul_(keep.unsqueeze(1))
        _normalize(g, scale * state.get("loss_scale", 1.0), norm, rows, keep)
    return (*copy_call(dx, y), run)


def _normalize(g: T, scale: float, norm: str, batch: int, valid: T | None) -> None:
    """``g *= scale / n``, n = 1, ``batch`` or the number of true ``valid`` (at least 1).

    The valid count stays on the device: no host synchronisation.
    """
    if norm == "valid":
        assert valid is not None
        g.div_(valid.sum().clamp_min(1))
    elif norm == "batch":
        g.div_(max(batch, 1))
    if scale != 1:  # exact either way: x * 1 == x
        g.mul_(scale)


_LOW = (torch.float16, torch.bfloat16)


def _float32(x: T) -> T:
    """``x``, or a float32 copy of it (workspace) when it is float16 or bfloat16."""
    return x.float() if x.dtype in _LOW else x


def cross_entropy(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    """sum_n -log softmax(x)[n, label_n] = sum_n logsumexp(x[n]) - x[n, label_n].

    The logsumexp form needs O(N) workspace (two length-N vectors and the index), where
    gathering from log_softmax(x) would need an (N, C) one.
    """
    x, label = _float32(ins[0]), ins[1]  # mixed precision: computed in float32
    lse = torch.logsumexp(x, 1)
    lse.sub_(x.gather(1, label.long().unsqueeze(1)).squeeze(1))
    torch.sum(lse, 0, keepdim=True, out=outs[0])


def cross_entropy_backward(ctx: KernelContext, ins: list[T], outs: list[T | None]) -> None:
    """dx = (softmax(x) - onehot(label)) * dy."""
    dy, x, label = ins
    dx = outs[0]
    if dx is None:
        return
    if x.dtype in _LOW:  # mixed precision: computed in float32, rounded once at the end
        g = torch.softmax(x.float(), 1)
        _add_at_label(g.unsqueeze(2), label, -1.0)
        dx.copy_(g.mul_(dy))
        return
    aten._softmax.out(x, 1, False, out=dx)
    _add_at_label(dx.unsqueeze(2), label, -1.0)
    dx.mul_(dy)


def prepare_make_loss(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    return copy_call(outs[0], ins[0])


def make_loss_backward(ctx: KernelContext, ins: list[T], outs: list[T | None]) -> None:
    """dx = grad_scale / norm everywhere. The output is read only with normalization='valid'."""
    dx = outs[0]
    if dx is None:
        return
    p = ctx.params
    norm = p["normalization"]
    valid = torch.gt(ins[0], p["valid_thresh"]) if norm == "valid" else None
    dx.fill_(1)
    _normalize(dx, p["grad_scale"] * ctx.state.get("loss_scale", 1.0), norm,
               dx.shape[0] if dx.dim() else 1, valid)


KERNELS = {
    "SoftmaxOutput": kernel_of(prepare_softmax_output),
    "_backward_SoftmaxOutput": kernel_of(prepare_softmax_output_backward),
    "softmax_cross_entropy": cross_entropy,
    "_backward_softmax_cross_entropy": cross_entropy_backward,
    "MakeLoss": kernel_of(prepare_make_loss), "_backward_MakeLoss": make_loss_backward,
}
