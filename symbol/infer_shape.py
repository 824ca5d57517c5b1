"""Shape and dtype inference passes.

``infer_shape(graph, known) -> ShapeMap`` computes the shape of every entry.

Algorithm:
  1. seed variables from ``known`` (by name) and from their ``__shape__`` attribute;
  2. sweep the operator nodes in topological order; each op's rule receives the input shapes
     (None = unknown) and returns completed input shapes (weights inferred from data) and output
     shapes; newly learnt input shapes are written back to the producing entries;
  3. repeat while a sweep learns something and some entry is still unknown (shapes can flow
     backwards, from an op's output requirement to an earlier variable);
  4. only when a rule fails, find the variable to blame: the sweeps record which op's rule
     learnt each variable's shape (a dict written only when a rule learns one); the failing
     rule is rerun without each variable input's shape in turn (:func:`_blame_variable`).
Legality: a rule may only complete unknown shapes; a rule result that contradicts a known shape
is a user error (``ShapeError`` naming the op, the node and the DSL location). A variable used
twice gets one shape: ``Convolution(data, w, w)`` asks ``(4, 3, 3, 3)`` and ``(4,)`` of one
``w``, an error naming both uses (op node, argument, shape, DSL location); a shape given by
the caller or declared (``__shape__``) that an op contradicts names the variable too.
Complexity: O(passes * nodes); one pass for every network built forward from data. Nodes whose
shapes are all known are dropped from later sweeps (shapes are only ever learnt), and
``hints`` (shapes by node name from another variant of the same graph) skip most rules.
Invariant: every known shape in the result satisfies every op rule that reads or writes it.
"""
from __future__ import annotations

import operator
from itertools import chain
from typing import Any, Iterable, Mapping, Sequence, cast

from .errors import ShapeError, SymbolError
from .gradient import MIRROR_OF
from .graph import Entry, Graph, Node
from .ops._helpers import same_shape
from .registry import Shape, _parse_tuple, _same_dtype

__all__ = ["ShapeMap", "TypeMap", "infer_shape", "infer_type", "output_hints",
           "check_input_types", "ANY_DTYPE_ARGUMENTS"]

ShapeMap = dict[Entry, "tuple[int, ...] | None"]
TypeMap = dict[Entry, "str | None"]
Hints = list[Sequence[Any]]
_MAX_SWEEPS = 8
#: Op arguments whose dtype may differ from the other inputs': class-index labels of loss ops
#: (SoftmaxOutput, softmax_cross_entropy), which MXNet passes as floats or integers.
ANY_DTYPE_ARGUMENTS = frozenset({"label"})
_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
_LOW_DTYPES = ("float16", "bfloat16")


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
            shape = _index_tuple(value, v.name)
        if any(d <= 0 for d in shape):
            raise SymbolError(f"shape of '{v.name}' must have positive sizes, got {shape}")
        shapes[table[v][0]] = shape
    return shapes


def _index_tuple(value: Any, name: str) -> tuple[int, ...]:
    """``value`` as a shape when its sizes are integer-like (numpy integers), else SymbolError."""
    try:
        if isinstance(value, (tuple, list)) and not any(isinstance(d, bool) for d in value):
            return tuple(operator.index(d) for d in value)
    except TypeError:
        pass
    raise SymbolError(f"shape of '{name}' must be a tuple of integers, got {value!r}")


def _hinted(graph: Graph,
            hints: Mapping[str, Sequence[Any]] | None) -> list[Sequence[Any] | None]:
    """Per operator node, its hinted outputs or None (a recomputed copy: those of the node it
    copies); a hint with the wrong number of outputs is ignored."""
    if not hints:
        return [None] * len(graph.nodes)
    nodes = graph.nodes
    out = [hints.get(n.attrs.get(MIRROR_OF, n.name)) for n in nodes]
    return [h if h is None or len(h) == n.num_outputs else None
            for h, n in zip(out, nodes, strict=True)]


def _all_entries(graph: Graph) -> Iterable[Entry]:
    """Every operator node's entries, in node order."""
    return chain.from_iterable(map(graph.node_entries.__getitem__, graph.nodes))


def _seed_outputs(graph: Graph, hinted: list[Sequence[Any] | None], shapes: ShapeMap) -> None:
    """Every operator output into ``shapes``: its hint, else None (unknown)."""
    if None not in hinted:  # every node hinted (a planner's later variants): one update
        shapes.update(zip(_all_entries(graph), chain.from_iterable(cast(Hints, hinted))))
        return
    table = graph.node_entries
    for node, hint in zip(graph.nodes, hinted, strict=True):
        entries = table[node]
        if len(entries) == 1:  # most nodes: one output
            shapes[entries[0]] = None if hint is None else hint[0]
        elif hint is None:
            shapes.update(dict.fromkeys(entries))
        else:
            shapes.update(zip(entries, hint, strict=True))


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
    _seed_outputs(graph, _hinted(graph, hints), shapes)
    if given:
        shapes.update({e: s for e, s in given.items() if s is not None and e in shapes})
    pending: list[Node] = []  # nodes with an unknown input or output
    if None in shapes.values():
        pending = [n for n in graph.nodes if None in [shapes[e] for e in table[n]]
                   or None in [shapes[e] for e in n.inputs]]
    return _sweep(pending, table, shapes, known)


def _sweep(pending: list[Node], table: Mapping[Node, tuple[Entry, ...]], shapes: ShapeMap,
           known: Mapping[str, Any]) -> ShapeMap:
    """Steps 2-4 of the pass on the seeded ``shapes`` (updated in place and returned)."""
    # steps 2-3: sweep until nothing changes. A rule only runs on a node with an unknown input
    # or output, and shapes are only ever learnt, so nodes found complete are dropped for good.
    setter: dict[Entry, Node] = {}  # variable -> the op whose rule learnt its shape
    node = None
    try:
        for _ in range(_MAX_SWEEPS):
            changed = False
            unfinished: list[Node] = []
            for node in pending:
                learnt, finished = _apply_rule(node, table[node], shapes, setter)
                changed |= learnt
                if not finished:
                    unfinished.append(node)
            pending = unfinished
            if not changed or not pending:
                break
    except ShapeError as err:
        # step 4, on the error path only: it reruns the failing rule a few times
        assert node is not None
        raise _blame_variable(node, err, shapes, setter, known) from None
    return shapes


def _apply_rule(node: Node, outputs: tuple[Entry, ...], shapes: ShapeMap,
                setter: dict[Entry, Node]) -> tuple[bool, bool]:
    """Run ``node``'s rule unless its shapes are all known: (learnt something, all known).

    A variable whose shape the rule learns is recorded in ``setter``. An input shape that
    contradicts a known one (also one learnt a moment ago from the same entry given twice)
    raises ShapeError.
    """
    ins = [shapes[e] for e in node.inputs]
    outs = [shapes[e] for e in outputs]
    if None not in ins and None not in outs:
        return False, True
    opdef = node.opdef
    if (opdef.infer_shape is same_shape and len(outs) == 1 and outs[0] is None and ins
            and None not in ins and ins.count(ins[0]) == len(ins)):
        # most backward nodes: a shape-preserving op whose equal inputs are known (what the
        # rule would learn, without building its lists)
        shapes[outputs[0]] = tuple(cast(Shape, ins[0]))
        return True, True
    learnt_back = False
    if opdef.infer_shape is same_shape and outs[0] is not None and None in ins:
        # a shape-preserving op (Cast of a weight): its inputs take the output's known shape
        for e in node.inputs:
            if shapes[e] is None:
                shapes[e] = outs[0]
                learnt_back = True
                if e.node.is_variable:
                    setter[e] = node
        ins = [shapes[e] for e in node.inputs]
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
            cur = shapes[e]  # not None: the same entry at an earlier position, just learnt
            if cur is None:
                shapes[e] = tuple(new)
                changed = True
                if e.node.is_variable:
                    setter[e] = node
            elif cur != tuple(new):
                raise _mismatch(node, k, cur, new)
        elif old != new and old != tuple(new):
            raise _mismatch(node, k, old, new)
    for e, old, new in zip(outputs, outs, new_outs, strict=True):
        if new is None:
            finished = finished and old is not None
        elif old is None:
            shapes[e] = tuple(new)
            changed = True
    return changed or learnt_back, finished


def _mismatch(node: Node, k: int, known: Shape, new: Sequence[int]) -> ShapeError:
    arg = node.opdef.list_arguments(node.params)[k]
    return ShapeError(f"input '{arg}' has shape {known}, expected {tuple(new)}", op=node.op,
                      node=node.name, span=node.span)


def _blame_variable(node: Node, err: ShapeError, shapes: ShapeMap,
                    setter: Mapping[Entry, Node], known: Mapping[str, Any]) -> ShapeError:
    """``err`` (a failure of ``node``'s rule), naming the variables behind it where possible.

    For each variable input with a known shape, the rule is rerun without that shape: if it
    then asks two shapes of the variable (given twice to ``node``) or one shape that another
    op's rule set before, the error names both uses; if it asks another shape than one given
    by the caller or declared, ``err`` gets a note naming the variable and where its shape came
    from. Otherwise ``err`` is returned as it is.
    """
    args = node.opdef.list_arguments(node.params)
    notes: list[str] = []
    for e in dict.fromkeys(node.inputs):
        cur = shapes[e]
        if not e.node.is_variable or cur is None:
            continue
        try:
            asked, _ = node.opdef.infer_shape(
                node.params, [None if x == e else shapes[x] for x in node.inputs])
        except ShapeError:
            continue
        wants = [(k, tuple(a)) for k, (x, a) in enumerate(zip(node.inputs, asked, strict=True))
                 if x == e and a is not None]
        if len(wants) > 1 and wants[0][1] != wants[1][1]:
            (k1, s1), (k2, s2) = wants[:2]
            return _two_uses(e.node.name, (node, args[k1], s1), (node, args[k2], s2))
        if not wants or wants[0][1] == cur:
            continue
        k, want = wants[0]
        first = setter.get(e)
        if first is not None and first is not node:
            arg1 = first.opdef.list_arguments(first.params)[first.inputs.index(e)]
            return _two_uses(e.node.name, (first, arg1, cur), (node, args[k], want))
        if err.message.startswith(f"input '{args[k]}' has shape {cur}"):
            notes.append(f"variable '{e.node.name}' was {_given(e.node, None, known)}")
        else:
            notes.append(f"input '{args[k]}' is variable '{e.node.name}', "
                         f"{_given(e.node, cur, known)}")
    if not notes:
        return err
    return ShapeError("; ".join([err.message, *notes]), op=node.op, node=node.name,
                      span=node.span)


def _two_uses(name: str, *uses: tuple[Node, str, Shape]) -> ShapeError:
    """``variable 'w' is bound to two shapes: ... and ...``, at the second use (or the first)."""
    said = [f"{shape} as input '{arg}' of '{n.name}' ({n.op}){_at(n)}" for n, arg, shape in uses]
    span = uses[1][0].span or uses[0][0].span
    return ShapeError(f"variable '{name}' is bound to two shapes: {said[0]}, and {said[1]}",
                      span=span)


def _given(var: Node, shape: Shape | None, known: Mapping[str, Any]) -> str:
    """Where a variable's shape came from, for an error message (None: 'that shape')."""
    said = "that shape" if shape is None else f"shape {shape}"
    if known.get(var.name) is not None:
        return f"given {said} by the caller"
    if "__shape__" in var.attrs:
        return f"declared with {said}" + (_at(var) or " (its __shape__ attribute)")
    return f"known to have {said} beforehand"


def output_hints(graph: Graph, values: Mapping[Entry, Any]) -> dict[str, tuple[Any, ...]]:
    """``hints`` for :func:`infer_shape` (shapes) or :func:`infer_type` (dtypes): the values of
    every operator node's outputs, by node name (recomputed copies are left out)."""
    table = graph.node_entries
    return {n.name: (values[table[n][0]],) if n.num_outputs == 1  # (most nodes: one output)
            else tuple([values[e] for e in table[n]])
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
    hinted = _hinted(graph, hints)
    if None not in hinted:  # every node hinted (a planner's later variants): one update
        types.update(zip(_all_entries(graph), chain.from_iterable(cast(Hints, hinted))))
        return types
    for node, outs in zip(graph.nodes, hinted, strict=True):
        if outs is None:
            rule = node.opdef.infer_type
            if rule is _same_dtype:  # the default rule: skip building the input list
                outs = [types[node.inputs[0]] if node.inputs else None] * node.num_outputs
            else:
                outs = rule(node.params, [types[e] for e in node.inputs], node.num_outputs)
        entries = table[node]
        if len(entries) == 1 and len(outs) == 1:  # most nodes: one output
            types[entries[0]] = outs[0]
        else:
            types.update(zip(entries, outs, strict=True))
    return types


def check_input_types(graph: Graph, types: Mapping[Entry, str | None], *,
                      hint: str = "give every argument the same dtype") -> None:
    """Check that every operator computes in one floating dtype, before anything is allocated.

    The inputs of a forward op must all have the same dtype, one of float16, bfloat16,
    float32 and float64; arguments in :data:`ANY_DTYPE_ARGUMENTS` (the class-index labels of
    loss ops) may have any dtype, and an op's ``float32_arguments`` may be float32 when its
    other inputs are float16 or bfloat16 (mixed precision). Unknown dtypes (None) are
    skipped. O(inputs).

    Args:
        graph: the graph. types: dtype names by entry (:func:`infer_type`).
        hint: what the caller can do about a mismatch, appended to the message.

    Raises:
        SymbolError: the first op (in topological order) whose inputs break the rule, naming
            the op node, both inputs (and the variables behind them) and their dtypes.
    """
    for node in graph.nodes:
        if node.opdef.is_backward:
            continue
        first: tuple[str, Entry, str] | None = None
        args = node.opdef.list_arguments(node.params)
        wide = node.opdef.float32_arguments
        low = wide and any(types.get(e) in _LOW_DTYPES for a, e in zip(args, node.inputs)
                           if a not in wide)
        for arg, e in zip(args, node.inputs, strict=True):
            t = types.get(e)
            if t is None or arg in ANY_DTYPE_ARGUMENTS:
                continue
            if low and arg in wide and t == "float32":  # mixed precision (BatchNorm's scale)
                continue
            if t not in _FLOAT_DTYPES:
                raise SymbolError(f"{_op_at(node)}: input '{arg}'{_source_of(e)} is {t}; "
                                  f"operators compute in {', '.join(_FLOAT_DTYPES)} (only "
                                  "labels of loss ops may be integers)")
            if first is None:
                first = (arg, e, t)
            elif t != first[2]:
                a0, e0, t0 = first
                raise SymbolError(f"{_op_at(node)}: input '{a0}'{_source_of(e0)} is {t0} but "
                                  f"input '{arg}'{_source_of(e)} is {t}; {hint} (labels of "
                                  "loss ops may differ)")


def _at(node: Node) -> str:
    """`` at file:line:col`` where ``node`` comes from a DSL file, else ``''``."""
    return f" at {node.span}" if node.span else ""


def _op_at(node: Node) -> str:
    return f"operator '{node.name}' ({node.op}){_at(node)}"


def _source_of(e: Entry) -> str:
    if e.node.is_variable:
        return f" (variable '{e.node.name}')"
    return f" (output {e.index} of '{e.node.name}')" if e.node.num_outputs > 1 else \
        f" (output of '{e.node.name}')"
