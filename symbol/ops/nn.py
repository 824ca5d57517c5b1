"""Neural-network operators (2-D, NCHW): FullyConnected, Convolution, BatchNorm, Pooling, Dropout.

Names, attributes and defaults follow MXNet 1.x. Each forward op has one backward op
(``_backward_<Op>``) whose inputs are only what its gradient reads (the paper's minimal
backward dependencies): FullyConnected and Convolution read ``out_grad``, ``data`` and
``weight`` (never the bias or the output); BatchNorm reads its saved statistics (hidden outputs)
instead of recomputing them; avg/sum Pooling reads the input's *shape* only (``shape_only``);
max Pooling reads the input and recomputes the argmax from it, so nothing is saved (MXNet's
reads the input and the output); Dropout reads its one-byte mask only.

In-place pairs (``inplace``), beyond the elementwise ones: every backward op here may write
``data_grad`` over ``data`` once it has read it (MXNet declares this pair for
``_backward_FullyConnected``), and ``_backward_Dropout`` over ``out_grad``. The kernels are
written so that each declared pair is safe (tests/executor/test_mxnet_parity.py).

Attribute values that are legal for the parser but unsupported here (``axis != 1``, a 3-D
kernel, a non-empty dropout ``axes``) are rejected by the shape rules with ShapeError, so the
message names the op, the node and the DSL location.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import ShapeError
from ..graph import Entry, Node
from ..registry import (Cost, OpDef, Param, Params, Shape, ShapeList, check_shape, numel,
                        register)
from ._helpers import backward_node, out, unify

__all__ = ["conv_window", "pool_window"]

Pair = tuple[int, int]


# -- geometry shared with the kernels ------------------------------------------------------------
def _pair(name: str, value: tuple[int, ...], default: int, low: int) -> Pair:
    """A 2-D attribute (``()`` means ``(default, default)``); values must be >= ``low``."""
    if not value:
        return (default, default)
    if len(value) != 2 or min(value) < low:
        raise ShapeError(f"{name} must be 2 integers >= {low} for 2-D NCHW data, got {value}")
    return (value[0], value[1])


def conv_window(params: Params) -> tuple[Pair, Pair, Pair, Pair]:
    """``(kernel, stride, dilate, pad)`` of a Convolution node with MXNet defaults filled in.

    Raises:
        ShapeError: a window attribute is not 2-D or out of range.
    """
    kernel = params["kernel"]
    if len(kernel) != 2:
        raise ShapeError(f"kernel must be 2-D (kh, kw) for NCHW data, got {kernel}")
    return (_pair("kernel", kernel, 1, 1), _pair("stride", params["stride"], 1, 1),
            _pair("dilate", params["dilate"], 1, 1), _pair("pad", params["pad"], 0, 0))


def pool_window(params: Params, hw: Sequence[int]) -> tuple[Pair, Pair, Pair, bool]:
    """``(kernel, stride, pad, ceil_mode)`` of a Pooling node on spatial size ``hw``.

    ``global_pool`` pools the whole ``hw`` plane (stride 1, no padding); the ``full`` pooling
    convention is torch's ``ceil_mode``.

    Raises:
        ShapeError: no kernel without global_pool; a window attribute is not 2-D or out of range;
            padding larger than half the kernel (torch's limit).
    """
    if params["global_pool"]:
        return (hw[0], hw[1]), (1, 1), (0, 0), False
    if not params["kernel"]:
        raise ShapeError("kernel must be given unless global_pool=True")
    kernel = _pair("kernel", params["kernel"], 1, 1)
    pad = _pair("pad", params["pad"], 0, 0)
    if pad[0] > kernel[0] // 2 or pad[1] > kernel[1] // 2:
        raise ShapeError(f"pad {pad} must be at most half the kernel {kernel}")
    return (kernel, _pair("stride", params["stride"], 1, 1), pad,
            params["pooling_convention"] == "full")


def _require_4d(shape: Shape) -> Shape:
    if len(shape) != 4:
        raise ShapeError(f"data must be 4-D (N, C, H, W), got {tuple(shape)}")
    return shape


def _with_bias(params: Params, names: tuple[str, ...], bias: str) -> tuple[str, ...]:
    return names if params["no_bias"] else (*names, bias)


def _matmul_cost(params: Params, ins: Sequence[Shape], outs: Sequence[Shape]) -> Cost:
    """flops = 2 * multiply-adds (each output element sums weight-size / rows products)."""
    macs = numel(outs[0]) * numel(ins[1]) // ins[1][0]
    return Cost(2 * macs, 4 * (sum(numel(s) for s in ins) + sum(numel(s) for s in outs)))


# -- FullyConnected ------------------------------------------------------------------------------
def _fc_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    data, hidden = ins[0], params["num_hidden"]
    if hidden < 1:
        raise ShapeError(f"num_hidden must be positive, got {hidden}")
    if data is None:
        return list(ins), [None]
    if not data:
        raise ShapeError("input 'data' has shape (), expected at least one dimension (the batch)")
    if params["flatten"]:
        features, oshape = numel(data[1:]), (data[0], hidden)
    else:
        features, oshape = data[-1], (*data[:-1], hidden)
    new: ShapeList = [data, check_shape("input 'weight'", ins[1], (hidden, features))]
    if not params["no_bias"]:
        new.append(check_shape("input 'bias'", ins[2], (hidden,)))
    return new, [oshape]


def _fc_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = x W^T + b   (x as a matrix: (N, prod(rest)) if flatten, else (..., in))
    # dx = dy W, dW = dy^T x, db = sum over rows of dy
    if ograds[0] is None:
        return [None] * len(node.inputs)
    data, weight = node.inputs[0], node.inputs[1]
    bwd = backward_node("_backward_FullyConnected", node, [ograds[0], data, weight])
    return [out(bwd, i) for i in range(len(node.inputs))]


def _data_to_data_grad(params: Params) -> tuple[tuple[int, int], ...]:
    """FullyConnected/Convolution backward: data_grad may overwrite data (MXNet declares this
    pair for ``_backward_FullyConnected``); the kernels read data only before writing dx."""
    return ((1, 0),)


def _weighted_backward_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    """Shape rule of the FullyConnected/Convolution backward: (data, weight[, bias]) grads."""
    weight = ins[2]
    grads: ShapeList = [ins[1], weight]
    if not params["no_bias"]:
        grads.append(None if weight is None else (weight[0],))
    return list(ins), grads


# -- Convolution ---------------------------------------------------------------------------------
def _conv_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _conv_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    kernel, stride, dilate, pad = conv_window(params)
    groups, filters = params["num_group"], params["num_filter"]
    if groups < 1 or filters < 1 or filters % groups:
        raise ShapeError(f"num_filter ({filters}) must be a positive multiple of num_group "
                         f"({groups})")
    data = ins[0]
    if data is None:
        return list(ins), [None]
    n, c, h, w = _require_4d(data)
    if c % groups:
        raise ShapeError(f"data has {c} channels, not a multiple of num_group ({groups})")
    oh = _conv_size(h, kernel[0], stride[0], pad[0], dilate[0])
    ow = _conv_size(w, kernel[1], stride[1], pad[1], dilate[1])
    if oh < 1 or ow < 1:
        raise ShapeError(f"kernel {kernel} with dilate {dilate} does not fit the padded input "
                         f"{(h + 2 * pad[0], w + 2 * pad[1])}")
    new: ShapeList = [data, check_shape("input 'weight'", ins[1], (filters, c // groups, *kernel))]
    if not params["no_bias"]:
        new.append(check_shape("input 'bias'", ins[2], (filters,)))
    return new, [(n, filters, oh, ow)]


def _conv_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = conv(x, W) + b
    # dx = conv_transpose(dy, W), dW = conv(x, dy) (correlation), db = sum_{n,h,w} dy
    if ograds[0] is None:
        return [None] * len(node.inputs)
    data, weight = node.inputs[0], node.inputs[1]
    bwd = backward_node("_backward_Convolution", node, [ograds[0], data, weight])
    return [out(bwd, i) for i in range(len(node.inputs))]


# -- BatchNorm -----------------------------------------------------------------------------------
def _bn_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    if params["axis"] != 1:
        raise ShapeError(f"only axis=1 (channels of NCHW) is supported, got axis={params['axis']}")
    data = ins[0]
    if data is None:
        return list(ins), [None, None, None]
    if len(data) < 2:
        raise ShapeError(f"data must be (N, C, ...), got {tuple(data)}")
    c = (data[1],)
    names = ("gamma", "beta", "moving_mean", "moving_var")
    stats = [check_shape(f"input '{n}'", s, c) for n, s in zip(names, ins[1:], strict=True)]
    return [data, *stats], [data, c, c]


def _bn_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = gamma * (x - mean) * invstd + beta   (batch statistics; fix_gamma: gamma = 1)
    # dx = gamma*invstd*(dy - mean(dy) - xhat*mean(dy*xhat)), dgamma = sum(dy*xhat), dbeta = sum(dy)
    # (use_global_stats: mean/var are constants, so dx = gamma*invstd*dy.)
    if ograds[0] is None:
        return [None] * len(node.inputs)
    data, gamma = node.inputs[0], node.inputs[1]
    bwd = backward_node("_backward_BatchNorm", node,
                        [ograds[0], data, gamma, out(node, 1), out(node, 2)])
    return [out(bwd, 0), out(bwd, 1), out(bwd, 2), None, None]


def _weighted_backward_type(params: Params, ins: list[str | None],
                            nout: int) -> list[str | None]:
    # (out_grad, data, weight) -> data_grad in the data's dtype, weight (and bias) gradients
    # in the weight's (float32 under mixed precision)
    return [ins[1], ins[2], ins[2]][:nout]


def _bn_type(params: Params, ins: list[str | None], nout: int) -> list[str | None]:
    # mixed precision: the output has the data's dtype, the statistics gamma's (float32)
    return [ins[0], ins[1] or ins[0], ins[1] or ins[0]]


def _bn_backward_inplace(params: Params) -> tuple[tuple[int, int], ...]:
    """data_grad may overwrite data or out_grad: the kernel computes every gradient before it
    writes any (the in-place pass takes at most one of the two)."""
    return ((1, 0), (0, 0))


def _bn_backward_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    data = ins[1]
    c = None if data is None else (data[1],)
    return list(ins), [data, c, c]


# -- Pooling -------------------------------------------------------------------------------------
def _pool_size(size: int, k: int, s: int, p: int, ceil: bool) -> int:
    span = size + 2 * p - k
    if span < 0:
        raise ShapeError(f"pooling kernel {k} is larger than the padded input {size + 2 * p}")
    n = (-(-span // s) if ceil else span // s) + 1
    if ceil and (n - 1) * s >= size + p:
        # MXNet would emit a window that starts past the input; torch (and this op) cannot.
        raise ShapeError(f"pooling_convention='full' starts the last window past the input "
                         f"(input {size}, kernel {k}, stride {s}, pad {p})")
    return n


def _pool_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    data = ins[0]
    if data is None:
        return list(ins), [None]
    n, c, h, w = _require_4d(data)
    kernel, stride, pad, ceil = pool_window(params, (h, w))
    oh = _pool_size(h, kernel[0], stride[0], pad[0], ceil)
    ow = _pool_size(w, kernel[1], stride[1], pad[1], ceil)
    return list(ins), [(n, c, oh, ow)]


def _pool_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y[i] = max_{j in window i} x[j] (avg: mean, sum: sum over the window)
    # max: dx[argmax_i] += dy[i];  avg: dx[j] += dy[i]/divisor_i, sum: dx[j] += dy[i] (j in i)
    # max reads x's values (the argmax is recomputed from x, nothing is saved); avg/sum read
    # only its shape
    if ograds[0] is None:
        return [None]
    data = node.inputs[0]
    return [out(backward_node("_backward_Pooling", node, [ograds[0], data]))]


def _pool_backward_shape_only(params: Params) -> tuple[int, ...]:
    return () if params["pool_type"] == "max" else (1,)


def _pool_backward_inplace(params: Params) -> tuple[tuple[int, int], ...]:
    # max: the kernel has the argmax before it writes dx, so dx may overwrite x
    return ((1, 0),) if params["pool_type"] == "max" else ()


def _pool_backward_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    return list(ins), [ins[-1]]


# -- Dropout -------------------------------------------------------------------------------------
def _dropout_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    if params["axes"]:
        raise ShapeError(f"only axes=() (independent elements) is supported, got {params['axes']}")
    if not 0.0 <= params["p"] <= 1.0:
        raise ShapeError(f"p must be in [0, 1], got {params['p']}")
    return list(ins), [ins[0], ins[0]]


def _dropout_type(params: Params, in_types: list[str | None], nout: int) -> list[str | None]:
    return [in_types[0], "uint8"]


def _dropout_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = x * m / (1-p)   (m = bernoulli(1-p) in {0, 1}, drawn in the forward, saved as output 1)
    # dx = dy * m / (1-p)
    if ograds[0] is None:
        return [None]
    return [out(backward_node("_backward_Dropout", node, [ograds[0], out(node, 1)]))]


def _dropout_backward_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    s = unify("out_grad and mask", ins)
    return [s, s], [s]


def _inplace0(params: Params) -> tuple[tuple[int, int], ...]:
    return ((0, 0),)


# -- the table -----------------------------------------------------------------------------------
_NO_BIAS = Param("no_bias", "bool", False, doc="drop the bias input")
_CUDNN_OFF = Param("cudnn_off", "bool", False, doc="accepted for MXNet compatibility; ignored")
_FC = (Param("num_hidden", "int", doc="number of output features"), _NO_BIAS,
       Param("flatten", "bool", True, doc="flatten data to (N, -1); else apply to the last axis"))
_CONV = (
    Param("kernel", "tuple", doc="window (kh, kw)"),
    Param("stride", "tuple", (), doc="(sh, sw); () = 1s"),
    Param("dilate", "tuple", (), doc="(dh, dw); () = 1s"),
    Param("pad", "tuple", (), doc="zero padding (ph, pw); () = 0s"),
    Param("num_filter", "int", doc="number of output channels"),
    Param("num_group", "int", 1, doc="grouped convolution: channels split into groups"),
    _NO_BIAS,
    Param("workspace", "int", 1024, doc="MB of workspace (accepted for MXNet; ignored)"),
    Param("cudnn_tune", "str", None, choices=("off", "limited_workspace", "fastest"),
          doc="accepted for MXNet compatibility; ignored"),
    _CUDNN_OFF,
    Param("layout", "str", None, choices=("NCHW",), doc="data layout; only NCHW"),
)
_BN = (
    Param("eps", "float", 1e-3, doc="added to the variance"),
    Param("momentum", "float", 0.9, doc="moving = moving*momentum + batch*(1-momentum)"),
    Param("fix_gamma", "bool", True, doc="treat gamma as 1 (its gradient is 0)"),
    Param("use_global_stats", "bool", False, doc="normalise with the moving statistics"),
    Param("axis", "int", 1, doc="channel axis; only 1"),
    _CUDNN_OFF,
)
_POOL = (
    Param("kernel", "tuple", (), doc="window (kh, kw); ignored with global_pool"),
    Param("pool_type", "str", "max", choices=("max", "avg", "sum"), doc="reduction"),
    Param("global_pool", "bool", False, doc="pool the whole plane to (N, C, 1, 1)"),
    Param("stride", "tuple", (), doc="(sh, sw); () = 1s"),
    Param("pad", "tuple", (), doc="padding (ph, pw); () = 0s"),
    Param("pooling_convention", "str", "valid", choices=("valid", "full"),
          doc="output size rounding: valid = floor, full = ceil"),
    Param("count_include_pad", "bool", True, doc="avg: padding counts in the divisor"),
    _CUDNN_OFF,
)
_DROPOUT = (
    Param("p", "float", 0.5, doc="probability of dropping an element"),
    Param("mode", "str", "training", choices=("training", "always"),
          doc="training: identity at inference; always: drop at inference too"),
    Param("axes", "tuple", (), doc="axes sharing one mask; only () is supported"),
    _CUDNN_OFF,
)

register(OpDef(
    "FullyConnected", "nn", lambda p: _with_bias(p, ("data", "weight"), "bias"), _fc_shape,
    _fc_grad, params=_FC, cost=_matmul_cost, amp="low", float32_arguments=("weight", "bias"),
    doc="y = x W^T + b; weight (num_hidden, in), bias (num_hidden,)."))
register(OpDef(
    "_backward_FullyConnected", "nn", ("out_grad", "data", "weight"), _weighted_backward_shape,
    None, params=_FC, outputs=lambda p: _with_bias(p, ("data_grad", "weight_grad"), "bias_grad"),
    inplace=_data_to_data_grad, infer_type=_weighted_backward_type, is_backward=True))
register(OpDef(
    "Convolution", "nn", lambda p: _with_bias(p, ("data", "weight"), "bias"), _conv_shape,
    _conv_grad, params=_CONV, cost=_matmul_cost, workspace=1.0, amp="low",
    float32_arguments=("weight", "bias"),
    doc="2-D convolution (NCHW); weight (num_filter, C/num_group, kh, kw)."))
register(OpDef(
    "_backward_Convolution", "nn", ("out_grad", "data", "weight"), _weighted_backward_shape,
    None, params=_CONV, outputs=lambda p: _with_bias(p, ("data_grad", "weight_grad"), "bias_grad"),
    inplace=_data_to_data_grad, infer_type=_weighted_backward_type, workspace=1.0,
    is_backward=True))
register(OpDef(
    "BatchNorm", "nn", ("data", "gamma", "beta", "moving_mean", "moving_var"), _bn_shape,
    _bn_grad, params=_BN, outputs=("output", "mean", "invstd"), num_visible=1,
    aux=("moving_mean", "moving_var"), infer_type=_bn_type,
    float32_arguments=("gamma", "beta", "moving_mean", "moving_var"),
    doc="Batch normalisation over axis 1. Training: batch statistics, hidden outputs "
        "(mean, invstd) = the batch mean and 1/sqrt(var+eps), moving stats updated with the "
        "biased batch variance (MXNet; torch's running_var uses the unbiased one). Inference or "
        "use_global_stats: moving statistics, hidden outputs = (moving_mean, moving_var)."))
register(OpDef(
    "_backward_BatchNorm", "nn", ("out_grad", "data", "gamma", "mean", "invstd"),
    _bn_backward_shape, None, params=_BN, outputs=("data_grad", "gamma_grad", "beta_grad"),
    shape_only=lambda p: (2,) if p["fix_gamma"] else (), inplace=_bn_backward_inplace,
    infer_type=lambda p, ins, n: [ins[1], ins[2], ins[2]], workspace=1.0, is_backward=True))
register(OpDef(
    "Pooling", "nn", ("data",), _pool_shape, _pool_grad, params=_POOL, workspace=2.0,
    doc="2-D max/avg/sum pooling (NCHW). No hidden outputs: the max backward recomputes the "
        "argmax from the input (MXNet's cuDNN backward reads input and output instead)."))
register(OpDef(
    "_backward_Pooling", "nn", ("out_grad", "data"), _pool_backward_shape, None, params=_POOL,
    outputs=("data_grad",), shape_only=_pool_backward_shape_only,
    inplace=_pool_backward_inplace, workspace=1.0, is_backward=True))
register(OpDef(
    "Dropout", "nn", ("data",), _dropout_shape, _dropout_grad, params=_DROPOUT,
    outputs=("output", "mask"), num_visible=1, inplace=_inplace0, infer_type=_dropout_type,
    doc="Drops elements with probability p and scales the rest by 1/(1-p); the hidden output "
        "is the keep mask (0 or 1, uint8: a quarter of MXNet's float32 mask)."))
register(OpDef(
    "_backward_Dropout", "nn", ("out_grad", "mask"), _dropout_backward_shape, None,
    params=_DROPOUT, outputs=("data_grad",), inplace=_inplace0, is_backward=True))
