"""Elementwise operators: activations, arithmetic, sums, identity, BlockGrad, zeros_like, Cast."""
from __future__ import annotations

from typing import Sequence

from ..graph import Entry, Node
from ..registry import OpDef, Param, Params, ShapeList, register
from ._helpers import backward_node, head, identity_shape, out, same_shape

__all__: list[str] = []

ACT_TYPES = ("relu", "sigmoid", "tanh", "softrelu")


def _inplace0(params: Params) -> tuple[tuple[int, int], ...]:
    return ((0, 0),)


def _inplace_any(params: Params) -> tuple[tuple[int, int], ...]:
    return ((0, 0), (1, 0))


def _activation_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = f(x); every supported f has f' expressible from y alone:
    # relu: dx = dy*(y>0); sigmoid: dy*y*(1-y); tanh: dy*(1-y^2); softrelu: dy*(1-exp(-y))
    return [out(backward_node("_backward_Activation", node, [head(ograds), out(node)]))]


def _leaky_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # leaky: y = x if x>0 else slope*x  ->  dx = dy if y>0 else slope*dy  (slope > 0)
    # elu:   y = x if x>0 else slope*(exp(x)-1)  ->  dx = dy if y>0 else dy*(y+slope)
    return [out(backward_node("_backward_LeakyReLU", node, [head(ograds), out(node)]))]


def _pass_through(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = x (+ c)  ->  dx = dy, for every input
    return [ograds[0]] * len(node.inputs)


def _mul_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = a*b  ->  da = dy*b, db = dy*a
    a, b = node.inputs
    dy = head(ograds)
    return [out(backward_node("elemwise_mul", node, [dy, b], suffix="_in0_backward", params={})),
            out(backward_node("elemwise_mul", node, [dy, a], suffix="_in1_backward", params={}))]


def _mul_scalar_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = s*x  ->  dx = s*dy
    return [out(backward_node("_mul_scalar", node, [head(ograds)]))]


def _rminus_scalar_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = s - x  ->  dx = -dy
    return [out(backward_node("_mul_scalar", node, [head(ograds)], params={"scalar": -1.0}))]


def _no_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # BlockGrad: y = x with the gradient stopped; zeros_like: y = 0.  dx = 0 (no contribution)
    return [None]


def _cast_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = cast(x, T)  ->  dx = cast(dy, dtype of x); x is read for its dtype only
    return [out(backward_node("_backward_Cast", node, [head(ograds), node.inputs[0]]))]


def _cast_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    s = ins[0] if ins[0] is not None else ins[1]
    return [s, s], [s]


def _grad_pair_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    s = same_shape(params, ins)[1][0]
    return [s, s], [s]


_ACT = Param("act_type", "str", choices=ACT_TYPES, doc="activation function")
_LEAKY = (Param("act_type", "str", "leaky", choices=("leaky", "elu"), doc="leaky or elu"),
          Param("slope", "float", 0.25, doc="negative slope (leaky) or alpha (elu)"))
_SCALAR = (Param("scalar", "float", doc="the scalar operand"),)

register(OpDef("Activation", "elemwise", ("data",), same_shape, _activation_grad,
               params=(_ACT,), inplace=_inplace0,
               doc="Elementwise activation: relu, sigmoid, tanh, softrelu (softplus)."))
register(OpDef("_backward_Activation", "elemwise", ("out_grad", "out_data"), _grad_pair_shape,
               None, params=(_ACT,), inplace=_inplace0, workspace=1.0, is_backward=True))
register(OpDef("LeakyReLU", "elemwise", ("data",), same_shape, _leaky_grad, params=_LEAKY,
               inplace=_inplace0, doc="Leaky ReLU or ELU with the given slope."))
register(OpDef("_backward_LeakyReLU", "elemwise", ("out_grad", "out_data"), _grad_pair_shape,
               None, params=_LEAKY, inplace=_inplace0, is_backward=True))
register(OpDef("elemwise_add", "elemwise", ("lhs", "rhs"), same_shape, _pass_through,
               inplace=_inplace_any, doc="lhs + rhs (same shapes)."), aliases=("_plus", "_add"))
register(OpDef("elemwise_mul", "elemwise", ("lhs", "rhs"), same_shape, _mul_grad,
               inplace=_inplace_any, doc="lhs * rhs (same shapes)."), aliases=("_mul",))
register(OpDef("_plus_scalar", "elemwise", ("data",), same_shape, _pass_through,
               params=_SCALAR, inplace=_inplace0, doc="data + scalar."))
register(OpDef("_mul_scalar", "elemwise", ("data",), same_shape, _mul_scalar_grad,
               params=_SCALAR, inplace=_inplace0, doc="data * scalar."))
register(OpDef("_rminus_scalar", "elemwise", ("data",), same_shape, _rminus_scalar_grad,
               params=_SCALAR, inplace=_inplace0, doc="scalar - data."))
register(OpDef("ElementWiseSum", "elemwise", (), same_shape, _pass_through,
               params=(Param("num_args", "int", 1, doc="number of inputs (set automatically)"),),
               variadic=True, inplace=_inplace0, doc="Sum of any number of same-shape inputs."),
         aliases=("add_n",))
register(OpDef("Cast", "elemwise", ("data",), same_shape, _cast_grad,
               params=(Param("dtype", "str", choices=("float16", "bfloat16", "float32",
                                                      "float64"), doc="the output dtype"),),
               infer_type=lambda p, ins, n: [p["dtype"]],
               doc="The input converted to dtype (mixed precision inserts these)."),
         aliases=("amp_cast",))
register(OpDef("_backward_Cast", "elemwise", ("out_grad", "data"), _cast_shape, None,
               shape_only=lambda p: (1,), infer_type=lambda p, ins, n: [ins[1]],
               params=(Param("dtype", "str", doc="the forward output dtype"),),
               is_backward=True))
register(OpDef("identity", "elemwise", ("data",), same_shape, _pass_through, inplace=_inplace0,
               doc="Copy of the input."), aliases=("_copy",))
register(OpDef("BlockGrad", "elemwise", ("data",), same_shape, _no_grad, inplace=_inplace0,
               doc="Identity forward; stops the gradient."), aliases=("stop_gradient",))
register(OpDef("zeros_like", "elemwise", ("data",), identity_shape(), _no_grad,
               shape_only=lambda p: (0,), doc="Zeros with the shape of the input."))
