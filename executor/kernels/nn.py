"""Kernels for the nn family (see ``symbol/ops/nn.py``): 2-D NCHW, written into ``outs``.

Window geometry (defaults, global pooling, the ``full`` convention) comes from the same helpers
the shape rules use, so a kernel always produces the shape the planner allocated.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Any, Mapping, Sequence

import torch

from symbol.ops.nn import conv_window, pool_window

from .context import (Call, KernelContext, aten_op, contiguous_late, copy_into, kernel_of,
                      overlaps)

__all__ = ["KERNELS", "WholeBatchStats", "WHOLE_BATCH_STATE"]

aten = torch.ops.aten
T = torch.Tensor
# the aten overloads the prepared calls bind, resolved once
_CONV = aten_op(aten.convolution.out)
_CONV_IM2COL = aten_op(aten._slow_conv2d_forward.output)
_CONV_IM2COL_BACKWARD = aten_op(aten._slow_conv2d_backward.grad_input)
_BATCH_NORM = aten_op(aten.native_batch_norm.out)
_BATCH_NORM_EVAL = aten.native_batch_norm.default
_AVG_POOL = aten_op(aten.avg_pool2d.out)
_AVG_POOL_BACKWARD = aten_op(aten.avg_pool2d_backward.grad_input)


# -- FullyConnected ------------------------------------------------------------------------------
def _matrix(params: Mapping[str, Any], t: T) -> T:
    """Input ``t`` as the 2-D matrix FullyConnected multiplies: (N, -1) if flatten, else
    (-1, last axis); a view, since the prepared kernels see contiguous inputs only."""
    return t.view(t.shape[0], -1) if params["flatten"] else t.view(-1, t.shape[-1])


def _out_matrix(params: Mapping[str, Any], t: T) -> T:
    """Output ``t`` as a matrix *view*, so writing the matrix writes ``t`` (``view`` raises
    where ``reshape`` would silently copy)."""
    return t.view(t.shape[0], -1) if params["flatten"] else t.view(-1, t.shape[-1])


def _mixed(x: T, w: T) -> bool:
    """Mixed precision: a float32 weight (``float32_arguments``) with low-precision data; the
    kernel then multiplies with a low-precision copy of the weight made at each call
    (workspace), as torch.autocast does."""
    return w.dtype != x.dtype


def prepare_fully_connected(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    """y = x W^T (+ b) with ``mm``/``addmm`` into the output's matrix view; no temporary
    (but the low-precision copy of W and b under mixed precision)."""
    late = contiguous_late(prepare_fully_connected, ctx, ins, outs)
    if late:
        return late
    if _mixed(ins[0], ins[1]):
        x, y, w32 = _matrix(ctx.params, ins[0]), _out_matrix(ctx.params, outs[0]), ins[1]
        b32 = None if ctx.params["no_bias"] else ins[2]

        def mixed() -> None:
            w = w32.to(x.dtype).t()
            if b32 is None:
                torch.mm(x, w, out=y)
            else:
                torch.addmm(b32.to(x.dtype), x, w, out=y)
        return (mixed,)
    x, wt, y = _matrix(ctx.params, ins[0]), ins[1].t(), _out_matrix(ctx.params, outs[0])
    if ctx.params["no_bias"]:
        return (partial(torch.mm, x, wt, out=y),)
    return (partial(torch.addmm, ins[2], x, wt, out=y),)


def prepare_fully_connected_backward(ctx: KernelContext, ins: list[T],
                                     outs: list[T | None]) -> Sequence[Call]:
    """dW = dy^T x, db = column sums of dy, then dx = dy W, each only if wanted; no temporary.

    dx is written last: it may overwrite x (the in-place pair data -> data_grad), which dW
    has read by then.
    """
    late = contiguous_late(prepare_fully_connected_backward, ctx, ins, outs)
    if late:
        return late
    p = ctx.params
    dy, x, w = _matrix(p, ins[0]), ins[1], ins[2]
    dx, dw = outs[0], outs[1]
    if _mixed(ins[0], w):  # float32 dW and db of a float32 weight, low-precision dx
        xm, db = _matrix(p, x), None if p["no_bias"] else outs[2]
        dxm = None if dx is None else _out_matrix(p, dx)

        def mixed() -> None:
            if dw is not None:
                dw.copy_(torch.mm(dy.t(), xm))
            if db is not None:
                torch.sum(dy, 0, dtype=db.dtype, out=db)
            if dxm is not None:
                torch.mm(dy, w.to(dy.dtype), out=dxm)
        return (mixed,)
    calls: list[Call] = []
    if dw is not None:
        calls.append(partial(torch.mm, dy.t(), _matrix(p, x), out=dw))
    if not p["no_bias"] and outs[2] is not None:
        calls.append(partial(torch.sum, dy, 0, out=outs[2]))
    if dx is not None:
        calls.append(partial(torch.mm, dy, w, out=_out_matrix(p, dx)))
    return calls


# -- Convolution ---------------------------------------------------------------------------------
def _native_conv(x: T, w: T, bias: T | None, stride: Any, pad: Any, dilate: Any,
                 groups: int, tensors: Sequence[T]) -> bool:
    """Whether torch runs this convolution with its own CPU im2col kernel (``Slow2d``), whose
    ``_slow_conv2d_*`` out= overloads write straight into our buffers and give bit for bit
    what ``aten.convolution`` / ``convolution_backward`` give. Decided once, as torch decides
    per call (its choice depends on shapes, dtype and the number of threads)."""
    if groups != 1 or x.dim() != 4 or not all(t.is_contiguous() for t in tensors):
        return False
    backend = torch._C._select_conv_backend(x, w, bias, stride, pad, dilate, False, (0, 0),
                                            groups)
    return backend.name == "Slow2d"


def prepare_convolution(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    """``aten._slow_conv2d_forward.output`` where torch would run that kernel (the CPU's
    im2col; writes into ``out``, its column buffer is workspace), else ``aten.convolution.out``.

    torch generates ``convolution.out`` (compute, then copy into ``out``), so that form
    allocates one output-sized temporary per call (workspace). On CUDA,
    ``cudnn_convolution.out`` writes in place and would remove it.
    """
    p, x, w, y = ctx.params, ins[0], ins[1], outs[0]
    kernel, stride, dilate, pad = conv_window(p)
    bias = None if p["no_bias"] else ins[2]
    if _mixed(x, w):
        def mixed() -> None:
            _CONV(x, w.to(x.dtype), None if bias is None else bias.to(x.dtype), stride, pad,
                  dilate, False, (0, 0), p["num_group"], out=y)
        return (mixed,)
    if _native_conv(x, w, bias, stride, pad, dilate, p["num_group"], [*ins, y]):
        return (partial(_CONV_IM2COL, x, w, kernel, bias, stride, pad, output=y),)
    return (partial(_CONV, x, w, bias, stride, pad, dilate, False, (0, 0), p["num_group"],
                    out=y),)


def prepare_convolution_backward(ctx: KernelContext, ins: list[T],
                                 outs: list[T | None]) -> Sequence[Call]:
    """Into ``outs`` with ``aten._slow_conv2d_backward.grad_input`` where the forward runs
    the CPU's im2col kernel, dx and dW are wanted and no output overlaps an input (it writes
    dx before it reads x for dW); its bias gradient goes into a (C_out,) buffer of the node's
    own when the node has no bias (workspace).

    Otherwise ``aten.convolution_backward`` for the wanted grads, copied into ``outs``: the
    functional form, because ``convolution_backward.out`` is generated by torch (compute,
    then copy) and needs all three outputs, so the wanted gradients are temporaries
    (workspace). Every gradient is computed before any is copied, so dx may overwrite x (the
    in-place pair data -> data_grad).
    """
    p = ctx.params
    dy, x, w = ins
    kernel, stride, dilate, pad = conv_window(p)
    mask = [o is not None for o in outs] + [False] * (3 - len(outs))
    if not any(mask):
        return ()
    dx, dw = outs[0], outs[1]
    mixed = _mixed(x, w)
    if (not mixed and dx is not None and dw is not None
            and not any(overlaps(o, i) for o in outs if o is not None for i in ins)
            and _native_conv(x, w, None, stride, pad, dilate, p["num_group"],
                             [*ins, *(o for o in outs if o is not None)])):
        db = outs[2] if len(outs) > 2 and outs[2] is not None else w.new_empty(w.shape[0])
        return (partial(_CONV_IM2COL_BACKWARD, dy, x, w, kernel, stride, pad, grad_input=dx,
                        grad_weight=dw, grad_bias=db),)
    bias_sizes = None if p["no_bias"] else [w.shape[0]]
    wanted = [(o, i) for i, o in enumerate(outs) if o is not None]

    def run() -> None:
        weight = w.to(x.dtype) if mixed else w  # float32 weight: a low-precision copy
        grads = aten.convolution_backward(dy, x, weight, bias_sizes, stride, pad, dilate,
                                          False, (0, 0), p["num_group"], mask)
        for o, i in wanted:
            o.copy_(grads[i])
    return (run,)


# -- BatchNorm -----------------------------------------------------------------------------------
class WholeBatchStats:
    """One BatchNorm layer's statistics over the slices of a microbatched batch, so that every
    slice is normalised, and its gradient taken, as in the whole batch (exact mode; see
    ``executor.training.microbatch``). The BatchNorm kernels read it from the executor's
    ``state[WHOLE_BATCH_STATE]`` (node name -> this), set only while such a step runs.

    Forward: while ``collect``, each slice's (mean, biased variance) is folded in (Chan et
    al.'s pairwise update, all slices weighing the same); ``finish_statistics`` makes ``mean``,
    ``var`` and ``invstd`` those of the whole batch and sets ``known``, after which slices are
    normalised with them. Backward: while ``collect_grads``, each slice's sums of dy and of
    dy * xhat are added; ``finish_gradients`` turns them into the whole-batch means the data
    gradient subtracts, and sets ``grads_known``.
    """

    def __init__(self, like: T, eps: float) -> None:
        self.eps = eps
        self.mean, self.var, self.invstd = (torch.zeros_like(like) for _ in range(3))
        self.sum_dy, self.sum_dy_xhat = torch.zeros_like(like), torch.zeros_like(like)
        self.mean_dy, self.mean_dy_xhat = torch.zeros_like(like), torch.zeros_like(like)
        self.reset()

    def reset(self) -> None:
        """Forget the last batch."""
        self.known = self.collect = self.grads_known = self.collect_grads = False
        self.slices = 0
        self.elements = 0  # per channel, in all slices folded so far
        for t in (self.mean, self.var, self.sum_dy, self.sum_dy_xhat):
            t.zero_()

    def fold(self, mean: T, invstd: T) -> None:
        """Add one slice's statistics (its batch mean and the inverse standard deviation the
        forward kernel saved)."""
        var = invstd.pow(-2).sub_(self.eps)
        n = self.slices
        delta = mean - self.mean
        self.mean.add_(delta, alpha=1 / (n + 1))
        self.var.add_(var).add_(delta.square_(), alpha=n / (n + 1))  # m2, until finished
        self.slices = n + 1

    def finish_statistics(self) -> None:
        self.var.div_(max(self.slices, 1))
        torch.rsqrt(self.var + self.eps, out=self.invstd)
        self.known, self.collect = True, False

    def fold_gradients(self, sum_dy: T, sum_dy_xhat: T, elements: int) -> None:
        """Add one slice's sums of dy and dy * xhat over its ``elements`` per channel."""
        self.sum_dy.add_(sum_dy)
        self.sum_dy_xhat.add_(sum_dy_xhat)
        self.elements += elements

    def finish_gradients(self) -> None:
        n = max(self.elements, 1)
        torch.div(self.sum_dy, n, out=self.mean_dy)
        torch.div(self.sum_dy_xhat, n, out=self.mean_dy_xhat)
        self.grads_known, self.collect_grads = True, False


#: the executor state's key of the node name -> WholeBatchStats table (exact microbatching)
WHOLE_BATCH_STATE = "whole_batch_stats"


def _whole_batch(ctx: KernelContext) -> WholeBatchStats | None:
    table = ctx.state.get(WHOLE_BATCH_STATE)
    return table.get(ctx.name) if table else None


def prepare_batch_norm(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    """``aten.native_batch_norm.out``; see the BatchNorm OpDef doc for the hidden outputs.

    Training (and not use_global_stats): batch statistics go into the hidden outputs (mean,
    invstd) and the moving statistics are updated once, with MXNet's rule: moving =
    moving*momentum + batch*(1-momentum), with the BIASED batch variance, recovered as
    1/invstd^2 - eps into a (C,) buffer of the node's own (workspace; torch's own running_var
    update would use the unbiased variance, so it is not used). Otherwise the moving
    statistics normalise and are copied into the hidden outputs; torch's own
    save_mean/save_invstd are then empty, so two zero-size dummies take them (our hidden
    buffers must keep their shape).

    Exact microbatching (a :class:`WholeBatchStats` for this node in the state): once the
    whole batch's statistics are known, they normalise (and fill the hidden outputs); before,
    the slice's own do, and are folded in while the layer collects. The moving statistics are
    then updated once per batch, by the trainer, from the whole batch's.
    """
    p, state = ctx.params, ctx.state
    x, gamma, beta, moving_mean, moving_var = ins
    y, mean, invstd = outs
    weight = None if p["fix_gamma"] else gamma
    eps, keep = p["eps"], 1 - p["momentum"]
    batch_stats, update = not p["use_global_stats"], not ctx.recompute
    norm = _BATCH_NORM
    var = torch.empty_like(invstd)
    minus_eps = torch.full((), -eps, dtype=var.dtype, device=var.device)  # sub_(eps) would
    # wrap the Python float into a new tensor every call
    moving, batch = [moving_mean, moving_var], [mean, var]
    dummies = (mean.new_empty(0), mean.new_empty(0))  # the statistics' dtype (float32 when mixed)

    def given(stats_mean: T, stats_var: T, stats_invstd: T) -> None:
        norm(x, weight, beta, stats_mean, stats_var, False, 0.0, eps, out=y,
             save_mean=dummies[0], save_invstd=dummies[1])
        mean.copy_(stats_mean)
        invstd.copy_(stats_invstd)

    def run() -> None:
        if batch_stats and state.get("is_train", False):
            whole = _whole_batch(ctx)
            if whole is not None and whole.known:
                given(whole.mean, whole.var, whole.invstd)
                return
            norm(x, weight, beta, None, None, True, 0.0, eps, out=y, save_mean=mean,
                 save_invstd=invstd)
            if whole is not None:
                if whole.collect and update:
                    whole.fold(mean, invstd)
            elif update:  # a recomputed copy must not update the statistics twice
                torch.pow(invstd, -2, out=var)
                var.add_(minus_eps)
                torch._foreach_lerp_(moving, batch, keep)
            return
        given(moving_mean, moving_var, moving_var)
    return (run,)


def prepare_batch_norm_backward(ctx: KernelContext, ins: list[T],
                                outs: list[T | None]) -> Sequence[Call]:
    """``aten.native_batch_norm_backward`` for the wanted grads, copied into ``outs``.

    With use_global_stats the saved (mean, invstd) inputs hold (moving_mean, moving_var), which
    is what the ``train=False`` form reads. fix_gamma: gamma is 1 and its gradient 0 (a (C,)
    ones buffer of the node's own stands for gamma). torch's ``.out`` overload is generated
    (compute, then copy), so the wanted grads are allocated as temporaries (workspace) and
    copied; as every gradient exists before the first copy, dx may overwrite x (the in-place
    pair), or dy.

    Exact microbatching (a :class:`WholeBatchStats` in the state): the ``train=False`` form on
    the whole batch's mean and variance gives gamma*invstd*dy and the slice's sums of dy*xhat
    (dgamma) and dy (dbeta), which are folded in while the layer collects; once the whole
    batch's means of both are known, gamma*invstd*(mean(dy) + xhat*mean(dy*xhat)) is
    subtracted, computed as the eval-mode BatchNorm of x with those (C,) factors as weight and
    bias (one more aten call, a temporary of x's size).
    """
    p = ctx.params
    dy, x, gamma, mean, invstd = ins
    fix = p["fix_gamma"]
    calls: list[Call] = []
    if outs[1] is not None and fix:
        calls.append(outs[1].zero_)
    mask = [outs[0] is not None, outs[1] is not None and not fix, outs[2] is not None]
    if not any(mask):
        return calls
    # CUDA's kernel wants a weight tensor (ones under fix_gamma) and a defined save_mean
    # (empty when the running statistics are used)
    weight = torch.ones_like(gamma) if fix else gamma
    empty = mean.new_empty(0)
    glob = p["use_global_stats"]
    saved = (mean, invstd, empty, empty) if glob else (None, None, mean, invstd)
    args = (dy, x, weight, *saved, not glob, p["eps"], mask)
    wanted = [(o, i) for i, o in enumerate(outs) if mask[i] and o is not None]
    per_channel = x.numel() // max(x.shape[1], 1)

    def exact(whole: WholeBatchStats) -> None:
        grads = aten.native_batch_norm_backward(
            dy, x, weight, whole.mean, whole.var, None, None, False, p["eps"],
            [mask[0], True, True])
        if whole.collect_grads:
            whole.fold_gradients(grads[2], grads[1], per_channel)
        if mask[0] and whole.grads_known:
            scale = weight * whole.invstd
            grads[0].add_(_BATCH_NORM_EVAL(x, -scale * whole.mean_dy_xhat,
                                           -scale * whole.mean_dy, whole.mean, whole.var,
                                           False, 0.0, p["eps"])[0])
        for o, i in wanted:
            o.copy_(grads[i])

    def run() -> None:
        whole = None if glob else _whole_batch(ctx)
        if whole is not None:
            exact(whole)
            return
        grads = aten.native_batch_norm_backward(*args)
        for o, i in wanted:
            o.copy_(grads[i])
    calls.append(run)
    return calls


# -- Pooling -------------------------------------------------------------------------------------
def _argmax(x: T, kernel: Any, stride: Any, pad: Any, ceil: bool, values: T) -> T:
    """The int64 argmax indices of max pooling ``x`` (a temporary), computed by the kernel
    torch's autograd uses, so ties and NaNs pick the element torch picks; the pooled values
    go into ``values``."""
    indices = torch.empty(values.shape, dtype=torch.int64, device=x.device)
    aten.max_pool2d_with_indices.out(x, kernel, stride, pad, (1, 1), ceil, out=values,
                                     indices=indices)
    return indices


def prepare_pooling(ctx: KernelContext, ins: list[T], outs: list[T]) -> Sequence[Call]:
    """Max, avg or sum pooling via aten ``.out``.

    sum = avg_pool2d with ``divisor_override=1``; global pooling is one window over the plane.
    Max pooling keeps no indices (its backward recomputes them): torch's max kernel still
    writes them, into an int64 temporary of the output's shape (workspace: twice the output's
    fp32 bytes, freed at once).
    """
    p, x, y = ctx.params, ins[0], outs[0]
    kernel, stride, pad, ceil = pool_window(p, x.shape[2:])
    if p["pool_type"] == "max":
        return (partial(_argmax, x, kernel, stride, pad, ceil, y),)
    divisor = 1 if p["pool_type"] == "sum" else None
    return (partial(_AVG_POOL, x, kernel, stride, pad, ceil, p["count_include_pad"],
                    divisor, out=y),)


def _scratch(dx: T, x: T, shape: Any) -> T | None:
    """A tensor of ``shape`` for values nobody reads: the front of ``dx`` when it is large
    enough and does not hold ``x`` (``max_pool2d_with_indices_backward`` overwrites all of
    ``dx`` without reading it), else None: a temporary per call."""
    n = math.prod(shape)
    if dx.is_contiguous() and dx.numel() >= n and not overlaps(dx, x):
        return dx.view(-1)[:n].view(shape)
    return None


def prepare_pooling_backward(ctx: KernelContext, ins: list[T],
                             outs: list[T | None]) -> Sequence[Call]:
    """Pooling gradient via aten ``.grad_input``.

    max: the argmax is recomputed from ``data`` (MXNet's backward reads the input too; nothing
    was saved): an int64 temporary of the output's shape, the pooled values written into the
    front of ``dx`` (or a temporary when ``dx`` overwrites ``data``, the in-place pair).
    ``data`` is passed as torch's ``self``, of which the backward reads only the sizes and
    memory format, so it may alias ``dx``. avg/sum: ``data`` is shape-only (checked: a
    NaN-filled ``self``, or one aliasing ``grad_input``, gives the same result).
    """
    dx = outs[0]
    if dx is None:
        return ()
    p, dy, data = ctx.params, ins[0], ins[1]
    kernel, stride, pad, ceil = pool_window(p, data.shape[2:])
    if p["pool_type"] != "max":
        divisor = 1 if p["pool_type"] == "sum" else None
        return (partial(_AVG_POOL_BACKWARD, dy, data, kernel, stride, pad,
                        ceil, p["count_include_pad"], divisor, grad_input=dx),)
    scratch = _scratch(dx, data, dy.shape)

    def run() -> None:
        values = dy.new_empty(dy.shape) if scratch is None else scratch
        indices = _argmax(data, kernel, stride, pad, ceil, values)
        aten.max_pool2d_with_indices_backward.grad_input(dy, data, kernel, stride, pad, (1, 1),
                                                         ceil, indices, grad_input=dx)
    return (run,)


# -- Dropout -------------------------------------------------------------------------------------
def _keep_scale(ctx: KernelContext) -> float:
    """1/(1-p) when the node drops (training, or mode='always'), else 1 (the identity); 1 for
    p >= 1, whose mask is all zeros."""
    p = ctx.params["p"]
    drops = ctx.is_train or ctx.params["mode"] == "always"
    return 1.0 / (1.0 - p) if drops and p < 1 else 1.0


def dropout(ctx: KernelContext, ins: list[T], outs: list[T]) -> None:
    """mask = bernoulli(1-p) (0 or 1, uint8), y = x * mask * 1/(1-p); no temporary.

    The mask is drawn from ``ctx.generator`` (seed, step, node), so a recompute of this node
    draws the same mask. It is written before ``y``, which makes the in-place pair (x, y) safe.
    At inference with mode='training' the op is the identity and the mask is all ones.
    """
    x, (y, mask) = ins[0], outs
    p = ctx.params["p"]
    if ctx.params["mode"] == "training" and not ctx.is_train:
        mask.fill_(1)
        copy_into(y, x)
        return
    if p >= 1:
        mask.zero_()
    else:
        mask.bernoulli_(1 - p, generator=ctx.generator(x.device))
    torch.mul(x, mask, out=y)
    scale = _keep_scale(ctx)
    if scale != 1.0:
        y.mul_(scale)


def dropout_backward(ctx: KernelContext, ins: list[T], outs: list[T | None]) -> None:
    """dx = dy * mask * 1/(1-p) (the scale the forward applied; dx may overwrite dy)."""
    dx = outs[0]
    if dx is None:
        return
    torch.mul(ins[0], ins[1], out=dx)
    scale = _keep_scale(ctx)
    if scale != 1.0:
        dx.mul_(scale)


KERNELS = {
    "FullyConnected": kernel_of(prepare_fully_connected),
    "_backward_FullyConnected": kernel_of(prepare_fully_connected_backward),
    "Convolution": kernel_of(prepare_convolution),
    "_backward_Convolution": kernel_of(prepare_convolution_backward),
    "BatchNorm": kernel_of(prepare_batch_norm),
    "_backward_BatchNorm": kernel_of(prepare_batch_norm_backward),
    "Pooling": kernel_of(prepare_pooling),
    "_backward_Pooling": kernel_of(prepare_pooling_backward),
    "Dropout": dropout, "_backward_Dropout": dropout_backward,
}
