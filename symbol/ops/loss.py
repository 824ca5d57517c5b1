"""Loss operators: SoftmaxOutput, softmax_cross_entropy, MakeLoss.

``SoftmaxOutput`` and ``MakeLoss`` are loss heads (``is_loss``): as in MXNet their gradient
ignores the head gradient. ``softmax_cross_entropy`` is an ordinary op whose output is a loss
value; its gradient is scaled by the head gradient.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import AttrError, ShapeError
from ..graph import Entry, Node
from ..registry import OpDef, Param, Params, ShapeList, register
from ._helpers import backward_node, out

__all__ = ["NORMALIZATIONS"]

#: How a loss gradient is divided: 1, the batch size, or the number of valid labels/elements.
NORMALIZATIONS = ("null", "batch", "valid")


def _inplace0(params: Params) -> tuple[tuple[int, int], ...]:
    return ((0, 0),)


# -- SoftmaxOutput --------------------------------------------------------------------------------

def _softmax_label_shape(params: Params, data: tuple[int, ...]) -> tuple[int, ...]:
    """The label shape MXNet expects for ``data``: one class index per softmax row."""
    if params["preserve_shape"] and not params["multi_output"]:
        if not data:
            raise ShapeError("data must have at least 1 dim, got ()")
        return data[:-1]
    if len(data) < 2:
        raise ShapeError(f"data must have at least 2 dims (batch, classes), got {data}")
    return data[:1] + data[2:] if params["multi_output"] else data[:1]


def _softmax_output_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    data = ins[0]
    if data is None:
        return list(ins), [None]
    # a known label of another shape is reported by the pass ("input 'label' has shape ...")
    return [data, _softmax_label_shape(params, data)], [data]


def _softmax_output_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = softmax(x) along the class axis (a loss head: the head gradient is ignored)
    # dx = (y - onehot(label)) * grad_scale / norm, zero rows for ignored labels; dlabel = none
    if node.params["out_grad"]:
        raise AttrError(f"operator '{node.name}' (SoftmaxOutput): out_grad=True is not "
                        "supported (the head gradient of a loss head is ignored)")
    label = node.inputs[1]
    return [out(backward_node("_backward_SoftmaxOutput", node, [out(node), label])), None]


# -- softmax_cross_entropy ------------------------------------------------------------------------

def _cross_entropy_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    data = ins[0]
    if data is None:
        return list(ins), [(1,)]
    if len(data) != 2:
        raise ShapeError(f"data must have shape (batch, classes), got {data}")
    return [data, data[:1]], [(1,)]


def _cross_entropy_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = -sum_n log softmax(x)[n, label_n]
    # dx = (softmax(x) - onehot(label)) * dy; dlabel = none
    data, label = node.inputs
    dy = ograds[0]
    assert dy is not None  # a single-output op: the pass calls this rule only with a gradient
    back = backward_node("_backward_softmax_cross_entropy", node, [dy, data, label])
    return [out(back), None]


def _backward_cross_entropy_shape(params: Params,
                                  ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    (data, label), _ = _cross_entropy_shape(params, ins[1:])
    return [(1,), data, label], [data]


# -- MakeLoss -------------------------------------------------------------------------------------

def _make_loss_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = x (a loss head: the head gradient is ignored)
    # dx = grad_scale / norm everywhere (norm: 1, batch size, or count of y > valid_thresh)
    return [out(backward_node("_backward_MakeLoss", node, [out(node)]))]


def _make_loss_shape_only(params: Params) -> tuple[int, ...]:
    # only 'valid' counts elements of the output; the other normalisations need its shape
    return () if params["normalization"] == "valid" else (0,)


def _identity_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    return list(ins), [ins[0]]


# -- registry rows --------------------------------------------------------------------------------

_NORM = Param("normalization", "str", "null", choices=NORMALIZATIONS,
              doc="divide the gradient by 1 (null), the batch size, or the valid count")
_SOFTMAX = (
    Param("grad_scale", "float", 1.0, doc="scale of the gradient"),
    Param("ignore_label", "float", -1.0, doc="label value ignored when use_ignore is set"),
    Param("multi_output", "bool", False, doc="softmax over axis 1 of (N, C, ...)"),
    Param("use_ignore", "bool", False, doc="give rows labelled ignore_label no gradient"),
    Param("preserve_shape", "bool", False, doc="softmax over the last axis"),
    _NORM,
    Param("out_grad", "bool", False, doc="scale by the head gradient (not supported)"),
    Param("smooth_alpha", "float", 0.0, doc="label smoothing: alpha spread over other classes"),
)
_MAKE_LOSS = (Param("grad_scale", "float", 1.0, doc="scale of the gradient"),
              Param("valid_thresh", "float", 0.0, doc="elements > this count as valid"),
              _NORM)


def _loss_type(params: Params, ins: list[str | None], nout: int) -> list[str | None]:
    # the loss is computed and returned in float32 when the logits are float16/bfloat16
    return ["float32" if ins[0] in ("float16", "bfloat16") else ins[0]] * nout


register(OpDef("SoftmaxOutput", "loss", ("data", "label"), _softmax_output_shape,
               _softmax_output_grad, params=_SOFTMAX, inplace=_inplace0, is_loss=True,
               amp="float32",
               doc="Softmax forward; cross-entropy gradient against class-index labels."),
         aliases=("Softmax",))
register(OpDef("_backward_SoftmaxOutput", "loss", ("output", "label"),
               _softmax_output_shape, None, params=_SOFTMAX, inplace=_inplace0,
               is_backward=True))
register(OpDef("softmax_cross_entropy", "loss", ("data", "label"), _cross_entropy_shape,
               _cross_entropy_grad, amp="float32", infer_type=_loss_type,
               doc="Sum over the batch of -log softmax(data)[label]; output shape (1,)."))
register(OpDef("_backward_softmax_cross_entropy", "loss", ("out_grad", "data", "label"),
               _backward_cross_entropy_shape, None, is_backward=True,
               infer_type=lambda p, ins, n: [ins[1]]))  # the logits' dtype
register(OpDef("MakeLoss", "loss", ("data",), _identity_shape, _make_loss_grad,
               params=_MAKE_LOSS, inplace=_inplace0, is_loss=True,
               doc="Identity forward; treat data as a loss (gradient grad_scale / norm)."))
register(OpDef("_backward_MakeLoss", "loss", ("output",), _identity_shape, None,
               params=_MAKE_LOSS, shape_only=_make_loss_shape_only, is_backward=True))
