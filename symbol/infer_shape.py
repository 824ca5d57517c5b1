"""Shape and dtype inference passes.

``infer_shape(graph, known) -> ShapeMap`` computes the shape of every entry.

Algorithm:
  1. seed variables from ``known`` (by name) and from their ``__shape__`` attribute;
  2. sweep the operator nodes in topological order; each op's rule receives the input shapes
     (None = unknown) and returns completed input shapes (weights inferred from data) and output
     shapes; newly learnt input shapes are written back to the producing entries;
  3. repeat while a sweep learns something and some entry is still unknown (shapes can flow
     backwards, from an op's output requirement to an earlier variable).
Legality: a rule may only complete unknown shapes; a rule result that contradicts a known shape
is a user error (``ShapeError`` naming the op, the node and the DSL location).
Complexity: O(passes * nodes); one pass for every network built forward from data.
Invariant: every known shape in the result satisfies every op rule that reads or writes it.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .errors import ShapeError, SymbolError
from .graph import Entry, Graph, Node
from .registry import _parse_tuple

__all__ = ["ShapeMap", "TypeMap", "infer_shape", "infer_type", "shape_hints"]

ShapeMap = dict[Entry, "tuple[int, ...] | None"]
TypeMap = dict[Entry, "str | None"]
_MAX_SWEEPS = 8


def _seed_shapes(graph: Graph, known: Mapping[str, Any]) -> ShapeMap:
    shapes: ShapeMap = {}
    for v in graph.inputs:
        value: Any = known.get(v.name)
        if value is None and "__shape__" in v.attrs:
            value = v.attrs["__shape__"]
        if value is None:
            shapes[Entry(v, 0)] = None
            continue
        try:
            shape = _parse_tuple(value)
        except ValueError:
            raise SymbolError(f"shape of '{v.name}' must be a tuple of integers, got "
                              f"{value!r}") from None
        if any(d <= 0 for d in shape):
            raise SymbolError(f"shape of '{v.name}' must have positive sizes, got {shape}")
        shapes[Entry(v, 0)] = shape
    return shapes


def infer_shape(graph: Graph, known: Mapping[str, Any],
                hints: Mapping[str, Sequence[Any]] | None = None) -> ShapeMap:
    """Shapes of every entry of ``graph`` (None where unknown). See the module docstring.

    Args:
        graph: the graph.
        known: shapes of some variables, by name.
        hints: output shapes of nodes already inferred in another graph with the same node
            names (a recomputed copy uses the hint of the node it copies, ``__mirror_of__``);
            planners that try many variants of one joint graph pass them to skip the rules.

    Raises:
        ShapeError: inconsistent shapes, located at the op node.
    """
    # step 1: seed
    shapes = _seed_shapes(graph, known)
    for node in graph.nodes:
        hint = hints.get(node.attrs.get("__mirror_of__", node.name)) if hints else None
        if hint is not None and len(hint) == node.num_outputs:
            for i, h in enumerate(hint):
                shapes[Entry(node, i)] = h
            continue
        for i in range(node.num_outputs):
            shapes[Entry(node, i)] = None
    # steps 2-3: sweep until nothing changes
    for _ in range(_MAX_SWEEPS):
        changed = False
        for node in graph.nodes:
            changed |= _apply_rule(node, shapes)
        if not changed or all(s is not None for s in shapes.values()):
            break
    return shapes


def _apply_rule(node: Node, shapes: ShapeMap) -> bool:
    opdef = node.opdef
    ins = [shapes[e] for e in node.inputs]
    nout = node.num_outputs
    outs = [shapes[Entry(node, i)] for i in range(nout)]
    if all(s is not None for s in ins) and all(s is not None for s in outs):
        return False
    try:
        new_ins, new_outs = opdef.infer_shape(node.params, list(ins))
    except ShapeError as err:
        raise err.locate(op=node.op, node=node.name, span=node.span) from None
    if len(new_ins) != len(ins) or len(new_outs) != nout:
        raise AssertionError(f"shape rule of {node.op} returned the wrong number of shapes")
    changed = False
    args = opdef.list_arguments(node.params)
    for arg, e, old, new in zip(args, node.inputs, ins, new_ins, strict=True):
        if new is None:
            continue
        new = tuple(new)
        if old is None:
            shapes[e] = new
            changed = True
        elif old != new:
            raise ShapeError(f"input '{arg}' has shape {old}, expected {new}",
                             op=node.op, node=node.name, span=node.span)
    for i, (old, new) in enumerate(zip(outs, new_outs, strict=True)):
        if new is not None and old is None:
            shapes[Entry(node, i)] = tuple(new)
            changed = True
    return changed


def shape_hints(graph: Graph, shapes: Mapping[Entry, Any]) -> dict[str, tuple[Any, ...]]:
    """``hints`` for :func:`infer_shape`: output shapes of every operator node, by name."""
    return {n.name: tuple(shapes[Entry(n, i)] for i in range(n.num_outputs))
            for n in graph.nodes if "__mirror_of__" not in n.attrs}


def infer_type(graph: Graph, known: Mapping[str, str], *,
               default: str | None = "float32") -> TypeMap:
    """Dtype name of every entry: variables from ``known``/``__dtype__``/``default``; ops by rule.

    One forward sweep; O(nodes).
    """
    types: TypeMap = {}
    for v in graph.inputs:
        types[Entry(v, 0)] = known.get(v.name) or v.attrs.get("__dtype__") or default
    for node in graph.nodes:
        ins = [types[e] for e in node.inputs]
        outs = node.opdef.infer_type(node.params, ins, node.num_outputs)
        for i, t in enumerate(outs):
            types[Entry(node, i)] = t
    return types
