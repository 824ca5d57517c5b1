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
Complexity: O(passes * nodes); one pass for every network built forward from data. Nodes whose
shapes are all known are dropped from later sweeps (shapes are only ever learnt), and
``hints`` (shapes by node name from another variant of the same graph) skip most rules.
Invariant: every known shape in the result satisfies every op rule that reads or writes it.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from .errors import ShapeError, SymbolError
from .gradient import MIRROR_OF
from .graph import Entry, Graph, Node
from .registry import _parse_tuple, _same_dtype

__all__ = ["ShapeMap", "TypeMap", "infer_shape", "infer_type", "output_hints"]

ShapeMap = dict[Entry, "tuple[int, ...] | None"]
TypeMap = dict[Entry, "str | None"]
_MAX_SWEEPS = 8


def _seed_shapes(graph: Graph, known: Mapping[str, Any]) -> ShapeMap:
    shapes: ShapeMap = {}
    table = graph.node_entries
    for v in graph.inputs:
        value: Any = known.get(v.name)
        if value is None and "__shape__" in v.attrs:
            value = v.attrs["__shape__"]
        if value is None:
            shapes[table[v][0]] = None
            continue
        try:
            shape = _parse_tuple(value)
        except ValueError:
            raise SymbolError(f"shape of '{v.name}' must be a tuple of integers, got "
                              f"{value!r}") from None
        if any(d <= 0 for d in shape):
            raise SymbolError(f"shape of '{v.name}' must have positive sizes, got {shape}")
        shapes[table[v][0]] = shape
    return shapes


def _hinted(graph: Graph,
            hints: Mapping[str, Sequence[Any]] | None) -> list[Sequence[Any] | None]:
    """Per operator node, its hinted outputs or None (a recomputed copy: those of the node it
    copies); a hint with the wrong number of outputs is ignored."""
    if not hints:
        return [None] * len(graph.nodes)
    found = [hints.get(n.attrs.get(MIRROR_OF, n.name)) for n in graph.nodes]
    return [h if h is None or len(h) == n.num_outputs else None
            for n, h in zip(graph.nodes, found, strict=True)]


def infer_shape(graph: Graph, known: Mapping[str, Any],
                hints: Mapping[str, Sequence[Any]] | None = None, *,
                given: Mapping[Entry, Any] | None = None) -> ShapeMap:
    """Shapes of every entry of ``graph`` (None where unknown). See the module docstring.

    Args:
        graph: the graph.
        known: shapes of some variables, by name.
        hints: output shapes of nodes already inferred in another graph with the same node
            names (a recomputed copy uses the hint of the node it copies, ``__mirror_of__``);
            planners that try many variants of one joint graph pass them to skip the rules.
        given: shapes already inferred for some entries of ``graph`` (those of the forward
            graph inside its joint graph); they are used as they are, rules are not rerun.

    Raises:
        ShapeError: inconsistent shapes, located at the op node.
    """
    # step 1: seed
    shapes = _seed_shapes(graph, known)
    table = graph.node_entries
    for node, hint in zip(graph.nodes, _hinted(graph, hints), strict=True):
        if hint is None:
            shapes.update(dict.fromkeys(table[node]))
        else:
            shapes.update(zip(table[node], hint, strict=True))
    if given:
        shapes.update({e: s for e, s in given.items() if s is not None and e in shapes})
    pending: list[Node] = []  # nodes with an unknown input or output
    if None in shapes.values():
        pending = [n for n in graph.nodes if None in [shapes[e] for e in table[n]]
                   or None in [shapes[e] for e in n.inputs]]
    # steps 2-3: sweep until nothing changes. A rule only runs on a node with an unknown input
    # or output, and shapes are only ever learnt, so nodes found complete are dropped for good.
    for _ in range(_MAX_SWEEPS):
        changed = False
        unfinished: list[Node] = []
        for node in pending:
            learnt, finished = _apply_rule(node, table[node], shapes)
            changed |= learnt
            if not finished:
                unfinished.append(node)
        pending = unfinished
        if not changed or not pending:
            break
    return shapes


def _apply_rule(node: Node, outputs: tuple[Entry, ...],
                shapes: ShapeMap) -> tuple[bool, bool]:
    """Run ``node``'s rule unless its shapes are all known: (learnt something, all known)."""
    ins = [shapes[e] for e in node.inputs]
    outs = [shapes[e] for e in outputs]
    if None not in ins and None not in outs:
        return False, True
    opdef = node.opdef
    try:
        new_ins, new_outs = opdef.infer_shape(node.params, list(ins))
    except ShapeError as err:
        raise err.locate(op=node.op, node=node.name, span=node.span) from None
    if len(new_ins) != len(ins) or len(new_outs) != len(outs):
        raise AssertionError(f"shape rule of {node.op} returned the wrong number of shapes")
    changed, finished = False, True
    for k, (e, old, new) in enumerate(zip(node.inputs, ins, new_ins, strict=True)):
        if new is None:
            finished = finished and old is not None
        elif old is None:
            shapes[e] = tuple(new)
            changed = True
        elif old != new and old != tuple(new):
            arg = opdef.list_arguments(node.params)[k]
            raise ShapeError(f"input '{arg}' has shape {old}, expected {tuple(new)}",
                             op=node.op, node=node.name, span=node.span)
    for e, old, new in zip(outputs, outs, new_outs, strict=True):
        if new is None:
            finished = finished and old is not None
        elif old is None:
            shapes[e] = tuple(new)
            changed = True
    return changed, finished


def output_hints(graph: Graph, values: Mapping[Entry, Any]) -> dict[str, tuple[Any, ...]]:
    """``hints`` for :func:`infer_shape` (shapes) or :func:`infer_type` (dtypes): the values of
    every operator node's outputs, by node name (recomputed copies are left out)."""
    table = graph.node_entries
    return {n.name: tuple([values[e] for e in table[n]])
            for n in graph.nodes if MIRROR_OF not in n.attrs}


def infer_type(graph: Graph, known: Mapping[str, str], *, default: str | None = "float32",
               hints: Mapping[str, Sequence[Any]] | None = None) -> TypeMap:
    """Dtype name of every entry: variables from ``known``/``__dtype__``/``default``; ops by rule.

    One forward sweep; O(nodes). ``hints``: output dtypes by node name, as for
    :func:`infer_shape`; a hinted node skips its rule.
    """
    types: TypeMap = {}
    table = graph.node_entries
    for v in graph.inputs:
        types[table[v][0]] = known.get(v.name) or v.attrs.get("__dtype__") or default
    for node, outs in zip(graph.nodes, _hinted(graph, hints), strict=True):
        if outs is None:
            rule = node.opdef.infer_type
            if rule is _same_dtype:  # the default rule: skip building the input list
                outs = [types[node.inputs[0]] if node.inputs else None] * node.num_outputs
            else:
                outs = rule(node.params, [types[e] for e in node.inputs], node.num_outputs)
        types.update(zip(table[node], outs, strict=True))
    return types
