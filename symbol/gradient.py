"""The gradient pass: forward graph -> one joint forward+backward graph (NNVM ``Gradient``).

Algorithm:
  1. mark the nodes on a path from a ``wrt`` variable to an output (only they need gradients);
  2. seed head gradients: an output of a loss op (``OpDef.is_loss``) needs none; any other
     output gets a variable ``<output>_head_grad`` (ones by default at bind time);
  3. visit the marked nodes in reverse topological order; sum the contributions to each output
     gradient (one ``ElementWiseSum`` named ``<node>_grad_sum`` for up to ``grad_sum_cap``
     contributions, as MXNet; beyond that a chain of ``elemwise_add`` nodes
     ``<node>_grad_sum_add<i>`` that the planner can run in place, so each contribution dies as
     soon as it is added: MXNet's ``MXNET_EXEC_INPLACE_GRAD_SUM_CAP``); call the
     op's symbolic rule, which returns graph nodes, one entry or None per input;
  4. the joint graph's outputs are the forward outputs followed by the gradient of each
     ``wrt`` variable (``zeros_like`` of the variable when no path reaches it).
Legality: rules may read only what they need (the paper's minimal backward dependencies);
a rule must return exactly one result per input (checked here).
Complexity: O(nodes + edges).
Invariant (checked by ``Graph.verify`` in tests): the joint graph is well formed, every forward
node appears once, and backward nodes are named deterministically from forward names.

``remirror`` derives the joint graph of other mirror counts from one made here without calling
a single gradient rule: rules read a node's inputs and outputs only through the node they are
given, which the pass points at the recomputed copies, so the joint graph for counts m' is the
one for m with every backward read of a forward node moved to its copy under m' (or back to
the node), the copies made anew, and the pass's placements replayed (``Replay``). The result
is the graph ``gradient(graph, wrt, mirror=m')`` makes, node for node (tested).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, NamedTuple, Sequence

from .errors import SymbolError
from .graph import Entry, Graph, Node, make_node, make_variable, output_name, topo_sort
from .ops._helpers import reading_outputs_of

__all__ = ["JointGraph", "Replay", "gradient", "remirror", "sum_gradients", "mirror_copies",
           "MIRROR_OF"]

#: Attribute on a recomputed copy naming the node it recomputes.
MIRROR_OF = "__mirror_of__"


class Replay(NamedTuple):
    """What ``remirror`` needs of the pass that made a joint graph.

    Attributes:
        created: every node the pass made, in creation order (recomputed copies included, and
            nodes the final sweep dropped as unneeded).
        calls: the entries of every placement that placed a node (``_Order.collect``), in order.
        copies: the pass's copies (forward node -> its last copy, which backward nodes read).
        head_vars: the head-gradient variables the pass made.
        grad_sum_cap: the pass's ``grad_sum_cap`` (a variant derived from it has the same).
    """

    created: tuple[Node, ...]
    calls: tuple[tuple[Entry | None, ...], ...]
    copies: Mapping[Node, Node]
    head_vars: tuple[Node, ...]
    grad_sum_cap: int


@dataclass(frozen=True, eq=False)
class JointGraph:
    """A joint forward+backward graph.

    Attributes:
        graph: outputs are the ``num_forward`` forward outputs, then one gradient per ``wrt``.
        num_forward: number of forward outputs.
        wrt: names of the variables whose gradients follow the forward outputs.
        head_grads: per forward output, the name of its head-gradient variable (None for loss
            heads, whose gradient ignores the head gradient).
        replay: how the pass built it, for ``remirror`` (None: not derivable).
    """

    graph: Graph
    num_forward: int
    wrt: tuple[str, ...]
    head_grads: tuple[str | None, ...]
    replay: Replay | None = field(default=None, repr=False)

    @property
    def forward_outputs(self) -> tuple[Entry, ...]:
        return self.graph.outputs[:self.num_forward]

    @property
    def grad_outputs(self) -> tuple[Entry, ...]:
        return self.graph.outputs[self.num_forward:]

    def summary(self) -> str:
        """One line: node counts of the forward and backward parts."""
        nback = sum(1 for n in self.graph.nodes if n.opdef.is_backward
                    or n.name.endswith(("_backward", "_grad_sum")))
        return (f"joint graph: {len(self.graph.nodes)} ops ({nback} backward), "
                f"{len(self.graph.inputs)} variables, {len(self.wrt)} gradients")


def sum_gradients(name: str, grads: Sequence[Entry], cap: int = 8) -> Entry:
    """One entry for the sum of ``grads``: itself, one ``ElementWiseSum`` of up to ``cap``
    entries, or a left-to-right chain of ``elemwise_add`` (in-place candidates) beyond."""
    if len(grads) == 1:
        return grads[0]
    if len(grads) <= cap:
        return Entry(make_node("ElementWiseSum", name, grads), 0)
    total = grads[0]
    for i, g in enumerate(grads[1:]):
        total = Entry(make_node("elemwise_add", f"{name}_add{i}", [total, g]), 0)
    return total


def _needs_gradient(graph: Graph, wrt: set[Node]) -> set[Node]:
    need: set[Node] = set(wrt)
    for node in graph.nodes:
        if any(e.node in need for e in node.inputs):
            need.add(node)
    return need


class _Accumulator:
    """Gradient contributions per entry, summed as MXNet does (see step 3 of the module doc).

    Entries expecting more than ``cap`` contributions are folded into a running in-place chain
    as each contribution arrives, so each one dies as soon as it is added.
    """

    def __init__(self, expected: dict[Entry, int], cap: int) -> None:
        self.expected, self.cap = expected, cap
        self.parts: dict[Entry, list[Entry]] = {}
        self.adds: dict[Entry, int] = {}

    def add(self, e: Entry, g: Entry) -> None:
        parts = self.parts.setdefault(e, [])
        if parts and self.expected.get(e, 0) > self.cap:
            i = self.adds.get(e, 0)
            self.adds[e] = i + 1
            parts[0] = Entry(make_node("elemwise_add", f"{_sum_name(e)}_add{i}",
                                       [parts[0], g]), 0)
        else:
            parts.append(g)

    def total(self, e: Entry) -> Entry | None:
        parts = self.parts.get(e)
        if not parts:
            return None
        if len(parts) == 1:
            return parts[0]
        total = sum_gradients(_sum_name(e), parts, self.cap)
        self.parts[e] = [total]
        return total


def _sum_name(e: Entry) -> str:
    suffix = f"_out{e.index}" if e.node.num_outputs > 1 else ""
    return f"{e.node.name}{suffix}_grad_sum"


def _expected(graph: Graph, need: set[Node]) -> dict[Entry, int]:
    """Upper bound of the gradient contributions each entry will receive."""
    count: dict[Entry, int] = {}
    for node in graph.nodes:
        if node in need:
            for e in node.inputs:
                count[e] = count.get(e, 0) + 1
    return count


class _Order:
    """Records new backward nodes in creation order (a topological, reverse-mode order), and
    the entries of every placement that placed one (``calls``, for ``Replay``)."""

    def __init__(self, known: set[Node]) -> None:
        self.known = known
        self.nodes: list[Node] = []
        self.calls: list[tuple[Entry | None, ...]] = []

    def collect(self, entries: Sequence[Entry | None]) -> None:
        before = len(self.nodes)
        self._place(entries)
        if len(self.nodes) > before:
            self.calls.append(tuple(entries))

    def _place(self, entries: Sequence[Entry | None]) -> None:
        known = self.known
        for e in entries:
            if e is None or e.node in known:
                continue
            if all(i.node in known for i in e.node.inputs):  # the usual case: one new node
                known.add(e.node)
                self.nodes.append(e.node)
                continue
            for node in topo_sort([e], stop=known):
                known.add(node)
                self.nodes.append(node)


def mirror_copies(graph: Graph, counts: Mapping[Node, int],
                  origin: dict[Node, Node] | None = None) -> dict[Node, Node]:
    """Paper Alg. 2: the recomputed copy ``a[v]`` of every node with mirror count m(v) >= 1.

    Level k = 1 .. max m copies every node with m(v) >= k, wiring it to the latest copies of
    its inputs; so a node with m = k is recomputed k times, each level from the previous
    level's copies (the recursive scheme). Copies are named ``<node>_mirror`` (level 1),
    ``<node>_mirror<k>`` (level k > 1) and carry ``__mirror_of__ = <node>``. Returns each
    node's last copy; ``origin``, if given, gets every copy -> the node it copies.
    """
    latest: dict[Node, Node] = {}
    top = max(counts.values(), default=0)
    for k in range(1, top + 1):
        for v in graph.nodes:
            if counts.get(v, 0) >= k:
                inputs = _read_copies(v.inputs, latest)
                name = f"{v.name}_mirror" + (str(k) if k > 1 else "")
                attrs = MappingProxyType({**v.attrs, MIRROR_OF: v.name})
                latest[v] = Node(v.op, name, inputs, attrs, v.params, v.num_outputs, v.span)
                if origin is not None:
                    origin[latest[v]] = v
    return latest


def _read_copies(inputs: tuple[Entry, ...], copies: Mapping[Node, Node]) -> tuple[Entry, ...]:
    """``inputs`` with every entry of a copied node replaced by the copy's entry."""
    return tuple([Entry(copies[e.node], e.index) if e.node in copies else e for e in inputs])


def _gradient_view(node: Node, copies: Mapping[Node, Node]) -> Node:
    """The node a gradient rule sees: ``node`` with its inputs read from their copies."""
    if node not in copies and not any(e.node in copies for e in node.inputs):
        return node
    return Node(node.op, node.name, _read_copies(node.inputs, copies), node.attrs, node.params,
                node.num_outputs, node.span)


def _call_rule(node: Node, copies: Mapping[Node, Node],
               out_grads: list[Entry | None]) -> list[Entry | None]:
    """The op's gradient rule on ``node``, reading recomputed copies where there are some."""
    gradient_rule = node.opdef.gradient
    assert gradient_rule is not None
    view, target = _gradient_view(node, copies), copies.get(node, node)
    if view is target:  # nothing recomputed around this node
        return list(gradient_rule(view, out_grads))
    with reading_outputs_of(view, target):
        return list(gradient_rule(view, out_grads))


def gradient(graph: Graph, wrt: Sequence[str] | None = None, *, grad_sum_cap: int = 8,
             mirror: Mapping[Node, int] | None = None) -> JointGraph:
    """Build the joint forward+backward graph of ``graph``. See the module docstring.

    The joint graph's node order is the forward order followed by the backward nodes in the
    order this pass creates them (reverse topological order of the forward nodes), which is
    the order reverse-mode differentiation runs and keeps gradients short-lived.

    Args:
        graph: the forward graph.
        wrt: variable names to differentiate with respect to (default: every variable that is
            not an auxiliary state).
        grad_sum_cap: most contributions summed by one ElementWiseSum (see step 3).
        mirror: mirror count m(v) of forward nodes to recompute (paper Alg. 2); gradient rules
            then read the copies, which the node order schedules lazily, right before the
            first backward node that needs them.

    Raises:
        SymbolError: an unknown ``wrt`` name.
    """
    copies = mirror_copies(graph, mirror or {})
    variables = {v.name: v for v in graph.inputs}
    if wrt is None:
        wrt = [v.name for v in graph.inputs if v not in graph.aux_variables]
    for name in wrt:
        if name not in variables:
            raise SymbolError(f"gradient: '{name}' is not a variable of the graph")
    # step 1: mark
    need = _needs_gradient(graph, {variables[n] for n in wrt})
    acc = _Accumulator(_expected(graph, need), grad_sum_cap)
    order = _Order({*graph.inputs, *graph.nodes})
    # step 2: head gradients
    head_names: list[str | None] = []
    head_vars: list[Node] = []
    for e in graph.outputs:
        if not e.node.is_variable and e.node.opdef.is_loss:
            head_names.append(None)
            continue
        hname = f"{output_name(e)}_head_grad"
        head_names.append(hname)
        if e.node in need:
            head = make_variable(hname)
            head_vars.append(head)
            order.known.add(head)
            acc.add(e, Entry(head, 0))
    # step 3: reverse sweep
    table = graph.node_entries
    for node in reversed(graph.nodes):
        if node not in need:
            continue
        out_grads = [acc.total(e) for e in table[node]]
        order.collect(out_grads)
        opdef = node.opdef
        if not opdef.is_loss and all(g is None for g in out_grads):
            continue
        if opdef.gradient is None:
            raise SymbolError(f"operator '{node.name}' ({node.op}) is not differentiable")
        in_grads = _call_rule(node, copies, out_grads)
        if len(in_grads) != len(node.inputs):
            raise AssertionError(f"gradient rule of {node.op} returned {len(in_grads)} "
                                 f"gradients for {len(node.inputs)} inputs")
        sums = []  # each input's running sum, once this contribution is in
        for e, g in zip(node.inputs, in_grads, strict=True):
            if g is not None and e.node in need:
                acc.add(e, g)
                sums.append(acc.parts[e][0])
        order.collect(sums)
    # step 4: outputs
    grads = []
    for name in wrt:
        v = variables[name]
        total = acc.total(table[v][0])
        if total is None:
            total = Entry(make_node("zeros_like", f"{name}_grad_zeros", [table[v][0]]), 0)
        grads.append(total)
    order.collect(grads)
    return _joint(graph, order, grads, copies, tuple(head_vars), tuple(wrt), tuple(head_names),
                  grad_sum_cap)


def _joint(graph: Graph, order: _Order, grads: Sequence[Entry], copies: Mapping[Node, Node],
           head_vars: tuple[Node, ...], wrt: tuple[str, ...],
           head_names: tuple[str | None, ...], grad_sum_cap: int) -> JointGraph:
    """Step 4's graph: the backward nodes and head gradients the gradients need (one sweep
    against creation order), after the forward nodes."""
    needed = {e.node for e in grads}
    for node in reversed(order.nodes):
        if node in needed:
            needed.update([e.node for e in node.inputs])
    backward = tuple([n for n in order.nodes if n in needed])
    inputs = graph.inputs + tuple(v for v in head_vars if v in needed)
    joint = Graph(inputs, graph.nodes + backward, (*graph.outputs, *grads))
    replay = Replay(tuple(order.nodes), tuple(order.calls), copies, head_vars, grad_sum_cap)
    return JointGraph(joint, len(graph.outputs), wrt, head_names, replay)


def remirror(joint: JointGraph, graph: Graph, mirror: Mapping[Node, int] | None
             ) -> tuple[JointGraph, dict[Node, Node]]:
    """The joint graph ``gradient`` makes of ``graph`` with mirror counts ``mirror``, derived
    from ``joint`` (made by ``gradient`` of the same graph, ``wrt`` and ``grad_sum_cap``, with
    any mirror counts) without calling a gradient rule (see the module docstring).

    Algorithm: make the copies for ``mirror`` (``mirror_copies``); walk the nodes ``joint``'s
    pass created, in creation order: skip its copies, remake every other node whose inputs
    read a forward node (or one of the old copies) that now has another reader target, or a
    remade node (the rest are shared with ``joint``); replay the placements on the remade
    entries, which places each new copy right before the first backward node reading it, as
    the pass does; keep what the gradients need. O(nodes + edges).

    Returns:
        the joint graph, and ``origin``: every node of it that ``joint`` lacks -> a node of
        ``joint`` with the same output shapes and dtypes (its old self, or for a copy the
        forward node it copies).

    Raises:
        ValueError: ``joint`` has no ``replay`` (it was not made by ``gradient``).
    """
    replay = joint.replay
    if replay is None:
        raise ValueError("remirror: the joint graph was not made by gradient()")
    origin: dict[Node, Node] = {}  # every level's copy stands for the node it copies
    copies = mirror_copies(graph, mirror or {}, origin)
    target: dict[Node, Node] = dict(copies)  # old node -> the node its readers read now
    for v, top in replay.copies.items():
        target[top] = copies.get(v, v)
    for node in replay.created:
        if MIRROR_OF in node.attrs:  # an old copy: the new ones are made above
            continue
        if any(e.node in target for e in node.inputs):
            new = Node(node.op, node.name, _read_copies(node.inputs, target), node.attrs,
                       node.params, node.num_outputs, node.span)
            target[node] = new
            origin[new] = node
    get = target.get

    def moved(entries: Sequence[Entry | None]) -> list[Entry | None]:
        return [None if e is None else Entry(get(e.node, e.node), e.index) for e in entries]
    order = _Order({*graph.inputs, *graph.nodes, *replay.head_vars})
    for call in replay.calls:
        order.collect(moved(call))
    grads = moved(joint.grad_outputs)
    out = _joint(graph, order, grads, copies, replay.head_vars,  # type: ignore[arg-type]
                 joint.wrt, joint.head_grads, replay.grad_sum_cap)
    return out, origin
