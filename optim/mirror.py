"""Mirror planning: which forward nodes to recompute in the backward pass, and how often.

A plan is a mirror count m(v) per forward node (0 keep, k >= 1 recompute k times; paper
Alg. 2, applied by ``symbol.gradient``). Strategies:

* ``none``: keep everything.
* ``drop-cheap`` (``MXNET_BACKWARD_DO_MIRROR=1``): MXNet 1.x's rule, recompute every node except
  Convolution, FullyConnected, Concat and SoftmaxOutput (the paper's "drop bn-relu").
  ``drop-cheap-keep-bn`` is the paper-era variant that also keeps BatchNorm. Unlike MXNet we
  also recompute Dropout: its mask is redrawn from the same (seed, step, node) stream, so the
  recompute is exact.
* ``sublinear``: paper Alg. 3 over the candidate cut points with the Appendix A budget search,
  each candidate plan scored by the exact memory planner.
* ``recursive``: the O(log n) scheme: candidates kept at levels of a recursive bisection
  (mirror counts up to log2 n), everything else recomputed at the deepest level.

Candidates (``cut_groups``): the ``mirror_stage`` marks when any node carries one, else the
cut points ``optim.cuts.auto_cut_groups`` finds in the forward graph.
Attributes override every strategy: ``__force_mirroring__='True'`` recomputes a node (count at
least 1), ``'False'`` keeps it.

Algorithm 3 (``alg3``), for budget B: walk forward nodes in order adding each output's bytes to
``temp``; at a candidate (a group's first node) with ``temp > B`` keep it (checkpoint: x += its
bytes, y = max(y, temp), temp = 0); other nodes of the same group follow their group's
decision; everything else is recomputed.
Search (Appendix A): B = 0 gives (x, y); try 6 budgets evenly spaced on [B/sqrt2, sqrt2 B] with
B = sqrt(x y); keep the plan whose exact planned bytes are lowest.
Accounting (``describe``): the requested counts are what Alg. 2 is given; the plan reports what
the joint graph holds, the number of recomputed copies (``__mirror_of__`` nodes) of every node,
which is exactly what the executor runs. Copies are made lazily, only where the backward pass
reads them, so a requested count may yield fewer copies or none.
Legality: never recompute variables, loss heads, backward ops, or nodes whose outputs are graph
outputs (the user reads them; recomputing saves nothing).
Complexity: alg3 O(nodes) (``alg3_scan`` reads the graph once, then O(eligible nodes) per
budget); the search plans the joint graph once per distinct candidate, at most 6 times;
``describe`` O(nodes of the joint graph).
Invariant (``check_mirror_plan``): no backward node reads a recomputed node's original output,
and every node has exactly the plan's count of copies in the joint graph.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from symbol import units
from symbol.errors import SymbolError
from symbol.gradient import MIRROR_OF, JointGraph
from symbol.graph import Entry, Graph, Node, output_name
from symbol.registry import numel

from .cuts import auto_cut_groups
from .liveness import value_inputs, value_slots

__all__ = ["MIRROR_STRATEGIES", "MirrorPlan", "MirrorError", "eligible", "drop_cheap",
           "apply_attributes", "stage_groups", "cut_groups", "segments", "alg3", "alg3_scan",
           "recursive_counts", "describe", "copies_in", "check_mirror_plan", "resolve_mirror",
           "parse_bytes", "KEEP_OPS", "executed_saved", "has_marks", "unmirrored_lower_bound",
           "forced", "forward_part", "BUDGET_STRATEGIES", "ALL_STRATEGIES",
           "forward_flops"]

MIRROR_STRATEGIES = ("none", "drop-cheap", "drop-cheap-keep-bn", "sublinear", "recursive")
#: Strategies that need a memory budget (``optim.optimal``); every name a user may give.
BUDGET_STRATEGIES = ("optimal",)
ALL_STRATEGIES = MIRROR_STRATEGIES + BUDGET_STRATEGIES
#: Ops MXNet 1.x keeps under MXNET_BACKWARD_DO_MIRROR=1.
KEEP_OPS = frozenset({"Convolution", "FullyConnected", "Concat", "SoftmaxOutput"})
FORCE = "__force_mirroring__"
STAGE = "mirror_stage"


class MirrorError(SymbolError, ValueError):
    """A bad mirror setting or an impossible memory budget."""


@dataclass(frozen=True, eq=False)
class MirrorPlan:
    """A mirror plan as the joint graph holds it, plus what was asked for and searched.

    Attributes:
        strategy: the strategy that produced it.
        counts: forward node -> number of its recomputed copies in the joint graph (only nodes
            with at least one); the executor's ``recompute_calls`` per training step.
        budget: Alg. 3's B for sublinear plans (bytes), else None.
        searched: (budget, planned bytes) of every plan the search scored.
        kept / recomputed: (name, op, bytes) of every forward node without copies, and
            (name, op, bytes, copies) of every node with some, in forward order.
        recompute_flops: extra forward flops of the copies (``OpDef.cost``) as a fraction of
            one forward pass.
        requested: the counts given to Alg. 2 (the strategy's, after attributes and any
            fall-back); a node counted here may have fewer copies in ``counts``.
        note: why the plan differs from the strategy's (a fall-back), else empty.
        cuts: where the candidate cut points came from: ``marks`` (``mirror_stage``),
            ``automatic``, or empty when the strategy uses none.
    """

    strategy: str
    counts: Mapping[Node, int]
    budget: int | None = None
    searched: tuple[tuple[int, int], ...] = ()
    kept: tuple[tuple[str, str, int], ...] = field(default=(), repr=False)
    recomputed: tuple[tuple[str, str, int, int], ...] = field(default=(), repr=False)
    recompute_flops: float = 0.0
    requested: Mapping[Node, int] = field(default_factory=dict, repr=False)
    note: str = ""
    cuts: str = ""

    @property
    def kept_bytes(self) -> int:
        return sum(b for _, _, b in self.kept)

    @property
    def recomputed_bytes(self) -> int:
        return sum(b for _, _, b, _ in self.recomputed)

    @property
    def num_recomputed(self) -> int:
        """Forward nodes with at least one recomputed copy."""
        return len(self.recomputed)

    @property
    def num_copies(self) -> int:
        """Recomputed copies in the joint graph: kernel calls a training step adds."""
        return sum(k for *_, k in self.recomputed)

    def saved(self) -> list[dict[str, Any]]:
        """Every forward node: name, op, bytes of its outputs, kept or recomputed (and how
        often) — the equivalent of JAX's ``print_saved_residuals``."""
        rows = [{"node": n, "op": op, "bytes": b, "decision": "kept"} for n, op, b in self.kept]
        rows += [{"node": n, "op": op, "bytes": b, "decision": f"recomputed x{k}"}
                 for n, op, b, k in self.recomputed]
        return rows

    def print_saved(self, rows: Sequence[Mapping[str, Any]] | None = None) -> str:
        """``saved()`` (or ``rows`` such as :func:`executed_saved`'s) as text, a node a line."""
        return "\n".join(f"{r['decision']:<14} {units.format_bytes(r['bytes']):>10}  "
                         f"{r['node']} ({r['op']})" for r in (rows or self.saved()))

    def summary(self) -> str:
        """One line: strategy, counts, bytes kept and recomputed, extra compute, fall-back."""
        copies = self.num_copies
        again = f", {copies} copies" if copies != self.num_recomputed else ""
        cuts = f", {self.cuts} cut points" if self.cuts else ""
        note = f"; {self.note}" if self.note else ""
        return (f"mirror {self.strategy}: {self.num_recomputed} nodes recomputed "
                f"({units.format_bytes(self.recomputed_bytes)}{again}), {len(self.kept)} kept "
                f"({units.format_bytes(self.kept_bytes)}), +{100 * self.recompute_flops:.1f}% "
                f"forward flops{cuts}{note}")


def eligible(graph: Graph) -> list[Node]:
    """Forward nodes that may be recomputed (see Legality in the module docstring)."""
    outputs = {e.node for e in graph.outputs}
    return [n for n in graph.nodes
            if not n.opdef.is_loss and not n.opdef.is_backward and n not in outputs]


def drop_cheap(graph: Graph, *, keep_bn: bool = False) -> dict[Node, int]:
    """MXNet's ``MXNET_BACKWARD_DO_MIRROR`` rule (``keep_bn``: the paper-era variant)."""
    keep = KEEP_OPS | ({"BatchNorm"} if keep_bn else set())
    return {n: 1 for n in eligible(graph) if n.op not in keep}


def apply_attributes(graph: Graph, counts: Mapping[Node, int]) -> dict[Node, int]:
    """``__force_mirroring__`` on a node overrides the strategy's count for it."""
    out = dict(counts)
    allowed: set[Node] | None = None  # the eligible nodes, found when a flag needs them
    for n in graph.nodes:
        flag = n.attrs.get(FORCE)
        if flag is None:
            continue
        if flag.strip().lower() in ("true", "1"):
            if allowed is None:
                allowed = set(eligible(graph))
            if n in allowed:
                out[n] = max(out.get(n, 0), 1)
        elif flag.strip().lower() in ("false", "0"):
            out.pop(n, None)
        else:
            raise MirrorError(f"node '{n.name}': {FORCE}={flag!r} must be 'True' or 'False'")
    return out


def forced(graph: Graph) -> list[Node]:
    """Nodes whose ``__force_mirroring__`` asks for recomputation, in forward order."""
    return [n for n in graph.nodes
            if n.attrs.get(FORCE, "").strip().lower() in ("true", "1")]


def stage_groups(graph: Graph) -> list[list[Node]]:
    """Candidate cut lines in forward order: consecutive nodes sharing a ``mirror_stage``
    value form one group; a stage value of ``'True'`` makes every node its own group."""
    groups: list[list[Node]] = []
    last: str | None = None
    for n in eligible(graph):
        stage = n.attrs.get(STAGE)
        if stage is None:
            continue
        if stage == "True" or stage != last or not groups:
            groups.append([n])
        else:
            groups[-1].append(n)
        last = stage
    return groups


def has_marks(graph: Graph) -> bool:
    """Does any recomputable node carry ``mirror_stage``?"""
    return any(STAGE in n.attrs for n in eligible(graph))


def cut_groups(graph: Graph, shapes: Mapping[Entry, Any] | None = None) -> list[list[Node]]:
    """Candidate cut lines in forward order: :func:`stage_groups` when the graph has
    ``mirror_stage`` marks, else :func:`optim.cuts.auto_cut_groups` (frontiers weighed by the
    bytes of ``shapes`` if given)."""
    if has_marks(graph):
        return stage_groups(graph)
    return auto_cut_groups(graph, shapes)


def segments(graph: Graph, groups: Sequence[Sequence[Node]],
             counts: Mapping[Node, int]) -> list[list[Node]]:
    """The nodes ``counts`` recomputes, split where a candidate group starts, in forward
    order (empty segments left out)."""
    firsts = {g[0] for g in groups if g}
    out: list[list[Node]] = [[]]
    for n in graph.nodes:
        if n in firsts and out[-1]:
            out.append([])
        if counts.get(n, 0) > 0:
            out[-1].append(n)
    return [s for s in out if s]


def node_bytes(node: Node, shapes: Mapping[Entry, Any], itemsize: int = 4) -> int:
    """Bytes of all outputs of ``node``."""
    return sum(numel(shapes[Entry(node, i)]) * itemsize for i in range(node.num_outputs))


def alg3(graph: Graph, shapes: Mapping[Entry, Any], budget: float,
         groups: Sequence[Sequence[Node]] | None = None) -> tuple[dict[Node, int], int, int]:
    """Paper Alg. 3 with budget B: (counts, x = kept bytes, y = largest segment bytes).

    ``groups``: the candidates (default :func:`cut_groups`)."""
    return alg3_scan(graph, shapes, groups)(budget)


def alg3_scan(graph: Graph, shapes: Mapping[Entry, Any],
              groups: Sequence[Sequence[Node]] | None = None
              ) -> Callable[[float], tuple[dict[Node, int], int, int]]:
    """:func:`alg3` as ``budget -> (counts, x, y)``, reading the graph once for many budgets."""
    if groups is None:
        groups = cut_groups(graph, shapes)
    first = {g[0] for g in groups}
    member = {n for g in groups for n in g}
    # per eligible node: its bytes and its role (2: a group's first node, 1: a later member)
    scan = [(n, node_bytes(n, shapes), 2 if n in first else 1 if n in member else 0)
            for n in eligible(graph)]

    def run(budget: float) -> tuple[dict[Node, int], int, int]:
        counts: dict[Node, int] = {}
        temp = x = y = 0
        keep_group = False
        for n, b, role in scan:
            temp += b
            if role == 2:
                keep_group = temp > budget
                if keep_group:
                    x += b
                    y = max(y, temp)
                    temp = 0
                    continue
            elif role == 1 and keep_group:
                x += b
                continue
            counts[n] = 1
        return counts, x, y
    return run


def recursive_counts(graph: Graph, groups: Sequence[Sequence[Node]] | None = None
                     ) -> dict[Node, int]:
    """O(log n) plan: candidate groups (default :func:`cut_groups`) get the depth of a
    recursive bisection (the middle one kept, each half's middle recomputed once, ...); other
    nodes the deepest level."""
    if groups is None:
        groups = cut_groups(graph)
    depth: dict[int, int] = {}

    stack = [(0, len(groups) - 1, 0)]
    while stack:
        lo, hi, level = stack.pop()
        if lo > hi:
            continue
        mid = (lo + hi) // 2
        depth[mid] = level
        stack.extend([(lo, mid - 1, level + 1), (mid + 1, hi, level + 1)])
    deepest = max(depth.values(), default=0) + 1
    counts = {n: deepest for n in eligible(graph)}
    for i, g in enumerate(groups):
        for n in g:
            if depth[i]:
                counts[n] = depth[i]
            else:
                counts.pop(n, None)
    return counts


def forward_flops(graph: Graph, shapes: Mapping[Entry, Any]) -> dict[Node, int]:
    """FLOPs of every forward node (``OpDef.cost``) at the forward shapes ``shapes``."""
    out = {}
    for n in graph.nodes:
        ins = [shapes[e] for e in n.inputs]
        outs = [shapes[Entry(n, i)] for i in range(n.num_outputs)]
        out[n] = n.opdef.cost(n.params, ins, outs).flops
    return out


def copies_in(joint: JointGraph) -> Counter[str]:
    """Forward node name -> number of its recomputed copies in the joint graph."""
    return Counter(n.attrs[MIRROR_OF] for n in joint.graph.nodes if MIRROR_OF in n.attrs)


def describe(strategy: str, graph: Graph, shapes: Mapping[Entry, Any], joint: JointGraph,
             *, requested: Mapping[Node, int], budget: int | None = None,
             searched: Sequence[tuple[int, int]] = (), cost: Mapping[Node, int] | None = None,
             note: str = "", cuts: str = "") -> MirrorPlan:
    """The MirrorPlan of ``joint``, the joint graph Alg. 2 built from ``requested``: copies
    per node, the saved/recomputed listing and the extra forward flops of the copies."""
    copies = copies_in(joint)
    kept, recomputed = [], []
    counts: dict[Node, int] = {}
    total_flops = extra = 0
    for n in graph.nodes:
        b = node_bytes(n, shapes)
        flops = cost.get(n, 0) if cost else 0
        total_flops += flops
        k = copies.get(n.name, 0)
        if k:
            counts[n] = k
            recomputed.append((n.name, n.op, b, k))
            extra += k * flops
        else:
            kept.append((n.name, n.op, b))
    return MirrorPlan(strategy, counts, budget, tuple(searched), tuple(kept), tuple(recomputed),
                      extra / total_flops if total_flops else 0.0, dict(requested), note, cuts)


def forward_part(joint: JointGraph) -> set[Node]:
    """Nodes of the joint graph the forward outputs depend on (the forward pass)."""
    forward: set[Node] = set()
    stack = [e.node for e in joint.forward_outputs]
    while stack:
        n = stack.pop()
        if n not in forward:
            forward.add(n)
            stack.extend(e.node for e in n.inputs)
    return forward


def unmirrored_lower_bound(joint: JointGraph, entry_bytes: Callable[[Entry], int]) -> int:
    """A lower bound of the planned bytes of the same network without recomputation, read
    off ``joint`` (any mirror variant of it).

    Without recomputation the backward pass reads the forward entries that ``joint``'s
    backward nodes read, with every copy replaced by the node it copies; all of them are live
    at once when the forward pass ends, in distinct storage (an entry read later cannot be
    overwritten in place), so any plan holds at least their bytes. O(nodes + edges).
    """
    forward = forward_part(joint)
    by_name = {n.name: n for n in forward}
    outputs = {e.node for e in joint.forward_outputs}
    read: set[Entry] = set()
    plain: dict[str, bool] = {}  # op -> every slot reads values (value_inputs' cache)
    for node in joint.graph.nodes:
        if node in forward or MIRROR_OF in node.attrs:
            continue
        for e in value_inputs(node, plain):
            src = by_name.get(e.node.attrs.get(MIRROR_OF, e.node.name))
            if src is not None and not src.is_variable and src not in outputs:
                read.add(Entry(src, e.index))
    return sum(entry_bytes(e) for e in read)


def executed_saved(plan: MirrorPlan, joint: JointGraph) -> list[dict[str, Any]]:
    """Every forward node of ``plan`` as the joint graph really runs it.

    ``decision`` is ``saved`` (the backward pass reads the value the forward pass made),
    ``recomputed xK`` (the backward pass runs K copies of the node) or ``not needed`` (the
    backward pass reads neither: the value is freed after its forward use); ``planned`` is the
    count Alg. 2 was given (``keep`` or ``recompute xK``, ``plan.requested``), which may exceed
    the copies the joint graph needs. O(nodes + edges).
    """
    forward = forward_part(joint)
    copies: dict[str, int] = {}
    read: set[Node] = set()
    for node in joint.graph.nodes:
        if MIRROR_OF in node.attrs:
            copies[node.attrs[MIRROR_OF]] = copies.get(node.attrs[MIRROR_OF], 0) + 1
        if node in forward:
            continue
        read.update(node.inputs[k].node for k in value_slots(node))
    read_names = {n.name for n in read}
    planned = {n.name: f"recompute x{k}" for n, k in plan.requested.items() if k > 0}
    rows = []
    for name, op, nbytes in [*plan.kept, *((n, o, b) for n, o, b, _ in plan.recomputed)]:
        k = copies.get(name, 0)
        decision = f"recomputed x{k}" if k else "saved" if name in read_names else "not needed"
        rows.append({"node": name, "op": op, "bytes": nbytes, "decision": decision,
                     "planned": planned.get(name, "keep")})
    order = {n.name: i for i, n in enumerate(joint.graph.nodes)}
    return sorted(rows, key=lambda r: order.get(r["node"], -1))


def check_mirror_plan(joint: JointGraph, counts: Mapping[Node, int]) -> None:
    """No backward node reads the original output of a recomputed node, no copy recomputes a
    node ``counts`` keeps, and every node ``counts`` recomputes has exactly that many copies in
    the joint graph (``MirrorPlan.counts`` describes the graph).

    Raises:
        MirrorError: naming the reader and the entry it should have read from a copy, or the
            node whose copies differ from its count.
    """
    dropped = {n for n, k in counts.items() if k > 0}
    forward = forward_part(joint)
    for node in joint.graph.nodes:
        if node in forward:
            continue
        for slot in value_slots(node):
            e = node.inputs[slot]
            if e.node in dropped:
                raise MirrorError(f"backward node '{node.name}' reads {output_name(e)}, which "
                                  "is recomputed: it should read the copy")
        if MIRROR_OF in node.attrs and node.attrs[MIRROR_OF] not in {n.name for n in dropped}:
            raise MirrorError(f"'{node.name}' recomputes a node the plan keeps")
    copies = copies_in(joint)
    for n in sorted(dropped, key=lambda n: n.name):
        if copies.get(n.name, 0) != counts[n]:
            raise MirrorError(f"the plan counts {counts[n]} recomputations of '{n.name}', the "
                              f"joint graph holds {copies.get(n.name, 0)} copies")


def parse_bytes(text: str | int) -> int:
    """A memory budget in bytes: ``'3GiB'``, ``'512MB'`` (powers of ten), ``'1.5G'`` (binary),
    ``'1000000'`` or an int (see :mod:`symbol.units`).

    Raises:
        MirrorError: not a positive size.
    """
    try:
        return units.parse_bytes(text, "memory budget")
    except units.SizeError as e:
        raise MirrorError(str(e)) from None


def resolve_mirror(strategy: str | None, env: Mapping[str, str] | None = None) -> str:
    """The mirror strategy in force: the caller's, else ``SUBLINEAR_MIRROR``, else
    ``MXNET_BACKWARD_DO_MIRROR=1`` (drop-cheap), else ``none``.

    Raises:
        MirrorError: an invalid value, or the two variables disagreeing.
    """
    env = os.environ if env is None else env
    valid = ", ".join(ALL_STRATEGIES)
    if strategy is not None:
        if strategy not in ALL_STRATEGIES:
            raise MirrorError(f"unknown mirror strategy '{strategy}'; expected one of {valid}")
        return strategy
    chosen = env.get("SUBLINEAR_MIRROR", "").strip()
    if chosen and chosen not in ALL_STRATEGIES:
        raise MirrorError(f"environment variable SUBLINEAR_MIRROR={chosen!r} is invalid: "
                          f"expected one of {valid}")
    flag = env.get("MXNET_BACKWARD_DO_MIRROR", "").strip()
    if flag not in ("", "0", "1"):
        raise MirrorError(f"environment variable MXNET_BACKWARD_DO_MIRROR={flag!r} is "
                          "invalid: expected 0 or 1")
    if flag == "1":
        if chosen and chosen not in ("drop-cheap", "drop-cheap-keep-bn"):
            raise MirrorError(f"MXNET_BACKWARD_DO_MIRROR=1 asks for drop-cheap but "
                              f"SUBLINEAR_MIRROR={chosen}; unset one")
        return chosen or "drop-cheap"
    return chosen or "none"
