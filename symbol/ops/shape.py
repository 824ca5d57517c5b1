"""Shape operators: Flatten, Reshape (with MXNet's special values), Concat, SliceChannel.

Gradients are pure data movement. ``Flatten``/``Reshape`` share one backward op,
``_backward_Reshape``, which reads the forward input for its shape only, so a reshape keeps no
buffer alive for the backward pass.
"""
from __future__ import annotations

from typing import Sequence

from ..errors import ShapeError
from ..graph import Entry, Node, make_node
from ..registry import OpDef, Param, Params, Shape, ShapeList, numel, register
from ._helpers import backward_node, out

__all__ = ["reshape_shape"]


def _inplace0(params: Params) -> tuple[tuple[int, int], ...]:
    return ((0, 0),)


def _axis(axis: int, ndim: int, what: str, shape: Shape) -> int:
    """``axis`` normalised to ``0 .. ndim-1`` (negative counts from the end)."""
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{what} {axis} is out of range for shape {shape}")
    return axis % ndim


def _single(ograds: list[Entry | None]) -> Entry:
    """The gradient of a single-output, non-loss op (the pass never calls its rule without)."""
    assert ograds[0] is not None
    return ograds[0]


# -- Flatten and Reshape ---------------------------------------------------------------------------

def _flatten_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    s = ins[0]
    if s is None:
        return list(ins), [None]
    if len(s) == 0:
        raise ShapeError("cannot flatten a scalar (shape ())")
    return list(ins), [(s[0], numel(s[1:]))]


def _reshape_units(shape: Shape) -> list[tuple[int, ...]]:
    """Split the target into units; ``-4`` takes its two following values with it."""
    units: list[tuple[int, ...]] = []
    i = 0
    while i < len(shape):
        if shape[i] == -4:
            if i + 2 >= len(shape):
                raise ShapeError(f"reshape target {shape}: -4 needs two values after it")
            units.append(tuple(shape[i:i + 3]))
            i += 3
        else:
            units.append((shape[i],))
            i += 1
    return units


def _split_dim(d0: int, d1: int, d2: int, fail: ShapeError) -> tuple[int, int]:
    """Resolve ``-4, d1, d2`` applied to a source dim ``d0`` (one of d1, d2 may be -1)."""
    if not all(d == -1 or d > 0 for d in (d1, d2)) or d1 == d2 == -1:
        raise fail
    if d1 == -1:
        d1 = d0 // d2
    elif d2 == -1:
        d2 = d0 // d1
    if d1 * d2 != d0:
        raise fail
    return d1, d2


#: Source dims consumed by each special value (-2 consumes all the remaining ones).
_CONSUMES = {0: 1, -1: 1, -3: 2, -4: 1}


def reshape_shape(dshape: Shape, shape: Shape, reverse: bool = False) -> Shape:
    """MXNet's Reshape target: ``shape`` with special values applied to ``dshape``.

    Special values: 0 copies a dim, -1 infers one dim, -2 copies all remaining dims, -3 merges two
    consecutive dims, -4 splits one dim into the next two values (one may be -1). A positive
    value also consumes one source dim, which matters for a later 0. With ``reverse`` both
    shapes are matched right to left (MXNet's ``reverse=True``).

    Raises:
        ShapeError: the target does not fit ``dshape``.
    """
    fail = ShapeError(f"cannot reshape {tuple(dshape)} to {tuple(shape)}")
    units, src = _reshape_units(tuple(shape)), list(dshape)
    if reverse:
        units.reverse()
        src.reverse()
    res: list[int] = []
    infer, pos = -1, 0
    for unit in units:
        code = unit[0]
        if code < 0 and code not in _CONSUMES and code != -2:
            raise ShapeError(f"reshape target {tuple(shape)}: invalid value {code}")
        used = len(src) - pos if code == -2 else _CONSUMES.get(code, 1)
        if code in (0, -3, -4) and pos + used > len(src):
            raise fail
        if code == 0:
            res.append(src[pos])
        elif code == -1:
            if infer >= 0:
                raise ShapeError(f"cannot reshape {tuple(dshape)} to {tuple(shape)}: "
                                 "more than one -1")
            infer = len(res)
            res.append(1)
        elif code == -2:
            res.extend(src[pos:])
        elif code == -3:
            res.append(src[pos] * src[pos + 1])
        elif code == -4:
            pair = _split_dim(src[pos], unit[1], unit[2], fail)
            res.extend(reversed(pair) if reverse else pair)
        else:
            res.append(code)
        pos += used
    total = numel(dshape)
    if infer >= 0:
        rest = numel(tuple(res))
        if total % rest:
            raise fail
        res[infer] = total // rest
    if reverse:
        res.reverse()
    if numel(tuple(res)) != total:
        raise fail
    return tuple(res)


def _reshape_infer(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    s = ins[0]
    if s is None:
        return list(ins), [None]
    return list(ins), [reshape_shape(s, params["shape"], params["reverse"])]


def _reshape_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = reshape(x, s)
    # dx = reshape(dy, shape(x))   (x read for its shape only)
    dy = _single(ograds)
    return [out(backward_node("_backward_Reshape", node, [dy, node.inputs[0]], params={}))]


def _backward_reshape_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    dy, x = ins
    if dy is not None and x is not None and numel(dy) != numel(x):
        raise ShapeError(f"cannot reshape gradient {dy} to input shape {x}")
    return list(ins), [x]


# -- Concat ---------------------------------------------------------------------------------------

def _concat_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    known = [s for s in ins if s is not None]
    if not known:
        return list(ins), [None]
    first = known[0]
    dim = _axis(params["dim"], len(first), "concat dim", first)
    for s in known[1:]:
        if len(s) != len(first) or any(a != b for i, (a, b) in enumerate(zip(s, first, strict=True))
                                       if i != dim):
            raise ShapeError(f"cannot concatenate {first} and {s} along dim {params['dim']}")
    if len(known) < len(ins):
        return list(ins), [None]
    size = sum(s[dim] for s in known)
    return list(ins), [first[:dim] + (size,) + first[dim + 1:]]


def _concat_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y = concat(x_0, .., x_{n-1}; dim)
    # dx_i = slice of dy along dim at x_i's offset   (x_i read for their shapes only)
    back = backward_node("_backward_Concat", node, [_single(ograds), *node.inputs])
    return [out(back, i) for i in range(len(node.inputs))]


def _backward_concat_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    return list(ins), list(ins[1:])


# -- SliceChannel ---------------------------------------------------------------------------------

def _slice_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    n = params["num_outputs"]
    s = ins[0]
    if n < 1:
        raise ShapeError(f"num_outputs must be positive, got {n}")
    if s is None:
        return list(ins), [None] * n
    axis = _axis(params["axis"], len(s), "axis", s)
    if s[axis] % n:
        raise ShapeError(f"axis {params['axis']} of shape {s} (size {s[axis]}) does not split "
                         f"into {n} equal parts")
    k = s[axis] // n
    if params["squeeze_axis"]:
        if k != 1:
            raise ShapeError(f"squeeze_axis needs axis {params['axis']} of shape {s} to have "
                             f"size num_outputs={n}")
        piece = s[:axis] + s[axis + 1:]
    else:
        piece = s[:axis] + (k,) + s[axis + 1:]
    return list(ins), [piece] * n


def _slice_grad(node: Node, ograds: list[Entry | None]) -> Sequence[Entry | None]:
    # y_i = x[.., i*k:(i+1)*k, ..] along axis (squeezed if squeeze_axis)
    # dx = concat(dy_0, .., dy_{n-1}) along axis; a missing dy_i is zeros
    grads = [g if g is not None else
             out(make_node("zeros_like", f"{node.name}_out{i}_zeros", [out(node, i)]))
             for i, g in enumerate(ograds)]
    return [out(backward_node("_backward_SliceChannel", node, grads))]


def _backward_slice_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    known = [s for s in ins if s is not None]
    if not known:
        return list(ins), [None]
    s = known[0]
    if any(g != s for g in known):
        raise ShapeError(f"output gradients have different shapes {s} and "
                         f"{next(g for g in known if g != s)}")
    n = params["num_outputs"]
    if params["squeeze_axis"]:
        axis = _axis(params["axis"], len(s) + 1, "axis", s)
        return [s] * n, [s[:axis] + (n,) + s[axis:]]
    axis = _axis(params["axis"], len(s), "axis", s)
    return [s] * n, [s[:axis] + (s[axis] * n,) + s[axis + 1:]]


def _slice_outputs(params: Params) -> tuple[str, ...]:
    return tuple(f"output{i}" for i in range(params["num_outputs"]))


# -- registry rows --------------------------------------------------------------------------------

_RESHAPE = (Param("shape", "tuple", (), doc="target shape; 0, -1, -2, -3, -4 are special"),
            Param("reverse", "bool", False, doc="match special values right to left"))
_CONCAT = (Param("num_args", "int", 1, doc="number of inputs (set automatically)"),
           Param("dim", "int", 1, doc="the axis to concatenate along"))
_SLICE = (Param("num_outputs", "int", doc="number of equal parts"),
          Param("axis", "int", 1, doc="the axis to split"),
          Param("squeeze_axis", "bool", False, doc="drop the split axis (parts of size 1)"))

register(OpDef("Flatten", "shape", ("data",), _flatten_shape, _reshape_grad, inplace=_inplace0,
               doc="Collapse all but the first axis: (N, ...) -> (N, prod(...))."),
         aliases=("flatten",))
register(OpDef("Reshape", "shape", ("data",), _reshape_infer, _reshape_grad, params=_RESHAPE,
               inplace=_inplace0, doc="Reshape with MXNet's special values 0, -1, -2, -3, -4."),
         aliases=("reshape",))
register(OpDef("_backward_Reshape", "shape", ("out_grad", "data"), _backward_reshape_shape,
               None, inplace=_inplace0, shape_only=lambda p: (1,), is_backward=True))
register(OpDef("Concat", "shape", (), _concat_shape, _concat_grad, params=_CONCAT,
               variadic=True, doc="Concatenate inputs along dim."), aliases=("concat",))
register(OpDef("_backward_Concat", "shape",
               lambda p: ("out_grad", *(f"arg{i}" for i in range(p["num_args"]))),
               _backward_concat_shape, None, params=_CONCAT,
               outputs=lambda p: tuple(f"arg{i}_grad" for i in range(p["num_args"])),
               shape_only=lambda p: tuple(range(1, p["num_args"] + 1)), is_backward=True))
register(OpDef("SliceChannel", "shape", ("data",), _slice_shape, _slice_grad, params=_SLICE,
               outputs=_slice_outputs, doc="Split data into num_outputs equal parts along axis."),
         aliases=("split",))
register(OpDef("_backward_SliceChannel", "shape",
               lambda p: tuple(f"out_grad{i}" for i in range(p["num_outputs"])),
               _backward_slice_shape, None, params=_SLICE, is_backward=True))
