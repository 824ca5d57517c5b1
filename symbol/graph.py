"""The graph IR: nodes, entries, and a flat topologically ordered graph.

IR specification
----------------
* A :class:`Node` is one operator application (or a variable, ``op == "null"`` as in MXNet).
  ``inputs`` are :class:`Entry` values; ``attrs`` are the node's attributes as strings exactly as
  the user wrote them (op attributes and user attributes such as ``mirror_stage`` or
  ``__force_mirroring__``, which pass through untouched); ``params`` are the op attributes parsed
  to their declared types (defaults filled in); ``span`` is the DSL location, if any.
  Nodes are immutable and compared by identity.
* An :class:`Entry` ``(node, index)`` names one output of a node (NNVM ``NodeEntry``).
* A :class:`Graph` holds ``inputs`` (the variable nodes), ``nodes`` (operator nodes, always in
  topological order) and ``outputs`` (entries); ``graph.node_entries`` gives every node's
  entries, made once, for passes that key maps by entry. ``str(graph)`` prints one node a line::

      %fc1 = FullyConnected(%data, %fc1_weight, %fc1_bias; num_hidden=10)  # net.sym:4:7
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import AbstractSet, Any, Iterable, Iterator, Mapping, NamedTuple, Sequence

from .errors import GraphError, OpError, Span
from .registry import AUTO_ARGUMENTS, OPS, OpDef, Param, get_op

__all__ = ["Node", "Entry", "Graph", "make_node", "make_variable", "topo_sort", "VARIABLE",
           "output_name", "format_node"]

VARIABLE = "null"
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, eq=False)
class Node:
    """One operator application or variable. See the module docstring for the IR contract.

    Attributes:
        op: registered op name, or ``"null"`` for a variable.
        name: unique name within a graph.
        inputs: one entry per op argument.
        attrs: string attributes (op params as written, plus user attributes).
        params: op params parsed to their types, defaults filled in (empty for variables).
        num_outputs: number of outputs including hidden ones.
        span: DSL source location, or None.
    """

    op: str
    name: str
    inputs: tuple["Entry", ...]
    attrs: Mapping[str, str]
    params: Mapping[str, Any]
    num_outputs: int
    span: Span | None = None

    @property
    def is_variable(self) -> bool:
        return self.op == VARIABLE

    @property
    def opdef(self) -> OpDef:
        try:
            return OPS[self.op]  # nodes always carry the canonical op name
        except KeyError:
            return get_op(self.op)

    def __getitem__(self, index: int) -> "Entry":
        return Entry(self, index)

    def __repr__(self) -> str:
        return f"<Node {self.op} {self.name!r}>"


class Entry(NamedTuple):
    """Output ``index`` of ``node``."""

    node: Node
    index: int  # type: ignore[assignment]  # NNVM's name; shadows tuple.index on purpose

    def __repr__(self) -> str:
        return f"%{self.node.name}" + (f":{self.index}" if self.node.num_outputs > 1 else "")


def make_variable(name: str, attrs: Mapping[str, str] | None = None,
                  span: Span | None = None) -> Node:
    """A variable node (MXNet ``op: "null"``)."""
    return Node(VARIABLE, name, (), MappingProxyType(dict(attrs or {})), _EMPTY, 1, span)


#: ``make_node``'s facts of nodes made from typed params alone (what gradient rules make):
#: (op name, arity, params written out) -> (the OpDef, params, attrs, outputs); at most
#: ``_FACTS_MAX`` (cleared when full).
_FACTS: dict[tuple[Any, ...], tuple[OpDef, Mapping[str, Any], Mapping[str, str], int]] = {}
_FACTS_MAX = 4096


def make_node(op: str | OpDef, name: str, inputs: Sequence[Entry], *,
              params: Mapping[str, Any] | None = None, attrs: Mapping[str, Any] | None = None,
              user_attrs: Mapping[str, str] | None = None, span: Span | None = None) -> Node:
    """Create an operator node, validating attributes and arity.

    Args:
        op: op name (aliases accepted) or record.
        name: the node name.
        inputs: one entry per argument of the op.
        params: already-typed op params (used by gradient rules to copy a forward node's params);
            missing ones are defaulted.
        attrs: op attributes as the user gave them (Python values or strings), parsed here.
        user_attrs: string attributes that are not op params (``mirror_stage``...).
        span: DSL location.

    Raises:
        AttrError: unknown or ill-typed attribute. OpError: wrong number of inputs.
    """
    opdef = op if isinstance(op, OpDef) else get_op(op)
    key = None
    if params is not None and not attrs and not user_attrs:
        # the same typed params make the same parsed params and attributes: reuse them (the
        # values are written with their type and repr, so 1, 1.0, True and -0.0 differ)
        key = (opdef.name, len(inputs),
               tuple([(k, type(v), repr(v)) for k, v in params.items()]))
        facts = _FACTS.get(key)
        if facts is not None and facts[0] is opdef:
            return Node(opdef.name, name, tuple(inputs), facts[2], facts[1], facts[3], span)
    parsed = opdef.parse_params(attrs or {}, name, params)
    if opdef.variadic:
        parsed["num_args"] = len(inputs)
    args = opdef.list_arguments(parsed)
    if len(args) != len(inputs):
        raise OpError(f"operator '{name}' ({opdef.name}) takes {len(args)} inputs "
                      f"({', '.join(args)}), got {len(inputs)}")
    strs = {k: Param.format(v) for k, v in (attrs or {}).items()}
    if params:
        strs.update({k: Param.format(v) for k, v in params.items() if v is not None})
    if opdef.variadic:
        strs["num_args"] = str(len(inputs))
    strs.update(user_attrs or {})
    nout = len(opdef.list_outputs(parsed))
    node = Node(opdef.name, name, tuple(inputs), MappingProxyType(strs),
                MappingProxyType(parsed), nout, span)
    if key is not None:
        if len(_FACTS) >= _FACTS_MAX:
            _FACTS.clear()
        _FACTS[key] = (opdef, node.params, node.attrs, nout)
    return node


def auto_argument(arg: str) -> bool:
    """Whether a missing argument becomes a variable ``<node>_<arg>`` (weights, labels...)."""
    return arg in AUTO_ARGUMENTS


def topo_sort(outputs: Iterable[Entry], stop: AbstractSet[Node] = frozenset()) -> list[Node]:
    """All nodes reachable from ``outputs`` in DFS post-order (inputs in order), iteratively.

    Nodes in ``stop`` (and what only they reach) are not visited. Deterministic: the order
    depends only on the graph structure, never on ids.
    """
    order: list[Node] = []
    seen: set[Node] = set()
    for head in outputs:
        if head.node in seen or head.node in stop:
            continue
        stack: list[tuple[Node, int]] = [(head.node, 0)]
        seen.add(head.node)
        while stack:
            node, i = stack[-1]
            if i < len(node.inputs):
                stack[-1] = (node, i + 1)
                child = node.inputs[i].node
                if child not in seen and child not in stop:
                    seen.add(child)
                    stack.append((child, 0))
            else:
                stack.pop()
                order.append(node)
    return order


@dataclass(frozen=True, eq=False)
class Graph:
    """A flat, topologically ordered graph. Build it with :meth:`Graph.from_outputs`.

    Attributes:
        inputs: variable nodes, in first-use order.
        nodes: operator nodes, topologically ordered.
        outputs: the graph's output entries.
    """

    inputs: tuple[Node, ...]
    nodes: tuple[Node, ...]
    outputs: tuple[Entry, ...]

    @staticmethod
    def from_outputs(outputs: Sequence[Entry]) -> Graph:
        """The graph of everything ``outputs`` depend on."""
        order = topo_sort(outputs)
        return Graph(tuple(n for n in order if n.is_variable),
                     tuple(n for n in order if not n.is_variable), tuple(outputs))

    @cached_property
    def all_nodes(self) -> tuple[Node, ...]:
        """Variables and operators together, in DFS order (every input before its reader)."""
        return tuple(topo_sort(self.outputs))

    @cached_property
    def node_index(self) -> Mapping[Node, int]:
        """Position of every node in :attr:`all_nodes`."""
        return {n: i for i, n in enumerate(self.all_nodes)}

    @cached_property
    def node_entries(self) -> Mapping[Node, tuple[Entry, ...]]:
        """Every node's entries ``(Entry(n, 0), ..., Entry(n, num_outputs - 1))``, made once.

        The passes key their maps by entry; reading the entries here rather than building new
        ones in every pass saves most of their allocations on a long LSTM. They are kept on the
        graph and not on the node because a node holding its own entries would be a reference
        cycle, which only the cyclic collector frees (the planners pause it, see
        ``optim.pipeline.collector_paused``).
        """
        return {n: (Entry(n, 0),) if n.num_outputs == 1 else
                tuple([Entry(n, i) for i in range(n.num_outputs)])
                for n in (*self.inputs, *self.nodes)}

    @cached_property
    def aux_variables(self) -> frozenset[Node]:
        """Variables bound to an op's auxiliary-state argument (batch-norm moving stats)."""
        aux: set[Node] = set()
        for node in self.nodes:
            opdef = node.opdef
            if opdef.aux:
                args = opdef.list_arguments(node.params)
                aux.update(e.node for arg, e in zip(args, node.inputs, strict=True)
                           if arg in opdef.aux)
        return frozenset(aux)

    def entries(self) -> Iterator[Entry]:
        """Every output entry of every node, variables first then operators in order."""
        for entries in self.node_entries.values():
            yield from entries

    def verify(self) -> None:
        """Check the IR invariants; raise GraphError with nearby nodes on the first failure.

        Checks: unique names; every input defined earlier; arity matches the op; entry indices
        within the producer's output count; outputs defined.
        """
        defined: set[Node] = set()
        names: dict[str, Node] = {}
        seq = (*self.inputs, *self.nodes)
        for pos, node in enumerate(seq):
            if node.name in names:
                self._fail(seq, pos, f"two different nodes are named '{node.name}'")
            names[node.name] = node
            if not node.is_variable:
                args = node.opdef.list_arguments(node.params)
                if len(args) != len(node.inputs):
                    self._fail(seq, pos, f"'{node.name}' ({node.op}) has {len(node.inputs)} "
                                         f"inputs, its op takes {len(args)}")
            for e in node.inputs:
                if e.node not in defined:
                    self._fail(seq, pos, f"'{node.name}' reads '{e.node.name}' before it is "
                                         "defined")
                if not 0 <= e.index < e.node.num_outputs:
                    self._fail(seq, pos, f"'{node.name}' reads output {e.index} of "
                                         f"'{e.node.name}', which has {e.node.num_outputs}")
            defined.add(node)
        for e in self.outputs:
            if e.node not in defined:
                raise GraphError(f"graph output '{e.node.name}' is not defined in the graph")

    def _fail(self, seq: Sequence[Node], pos: int, message: str) -> None:
        lo, hi = max(0, pos - 5), min(len(seq), pos + 6)
        context = "\n".join(("--> " if i == pos else "    ") + format_node(seq[i])
                            for i in range(lo, hi))
        raise GraphError(f"{message}\n{context}")

    def __str__(self) -> str:
        lines = [format_node(n) for n in (*self.inputs, *self.nodes)]
        lines.append("return " + ", ".join(repr(e) for e in self.outputs))
        return "\n".join(lines)


def output_name(e: Entry) -> str:
    """MXNet's output name of an entry: ``fc1_output``, ``slice0_output1``, or the variable."""
    node = e.node
    if node.is_variable:
        return node.name
    return f"{node.name}_{node.opdef.list_outputs(node.params)[e.index]}"


def format_node(node: Node) -> str:
    """One stable line: ``%y = Op(%x, %w; a=1)  # file:line:col``."""
    args = ", ".join(repr(e) for e in node.inputs)
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(node.attrs.items()))
    op = "Variable" if node.is_variable else node.op
    body = args + ("; " + attrs if attrs else "") if args else attrs
    where = f"  # {node.span}" if node.span else ""
    return f"%{node.name} = {op}({body}){where}"
