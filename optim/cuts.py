"""Candidate cut points for the sublinear planner, found from the forward graph.

The paper's planner keeps or drops *candidates* that the user marks with ``mirror_stage``
(``optim.mirror.stage_groups``). Without marks, ``auto_cut_groups`` finds them: a cut after
position i of the forward order is the *frontier* F(i), the recomputable nodes defined at or
before i that a node after i reads. Keeping F(i) is exactly what recomputing everything after i
needs (variables are always at hand, so weights and per-step inputs never count). A single-node
frontier is an articulation point of the forward graph (a residual sum, a DenseNet or Inception
concat, every op of a chain); in an unrolled RNN the narrow frontiers are the recurrent states
of one wavefront (the c and h of every layer). Each chosen frontier is one group, kept or
dropped together, as Alg. 3 treats the nodes of one ``mirror_stage`` value.

Algorithm (n operator nodes, e edges; positions are the graph's topological order):
  1. for every recomputable node u: its position p(u) and the position l(u) of its last reader
     (a node nobody reads later has l(u) = p(u) and is in no frontier);
  2. frontier bytes w(i) = sum of the output bytes of u with p(u) <= i < l(u) (a difference
     array); F(i) overlaps F(j) exactly for j in [lo(i), hi(i)], where lo(i) is the oldest
     p(u) alive at i and hi(i) = max l(u) over p(u) <= i, minus one: both ends never decrease;
  3. position i is a candidate if F(i) is not empty and w(i) is the least w over the
     positions whose frontier overlaps it (a sliding-window minimum on a monotone deque);
  4. walk the candidates in order and take each one whose frontier is disjoint from the last
     taken (lo(i) > that position): overlapping candidates of equal bytes keep the first;
  5. a node belongs to the first taken frontier at or after its position, if it is alive
     there (a binary search); each group lists its nodes in forward order.
Legality: a frontier is a cut of the recompute dependencies (everything after i reads only
F(i) and variables), so any set of taken frontiers, kept, bounds every recomputation to one
segment; taken frontiers are disjoint and ordered, so the groups are well formed for Alg. 3
(a group's first node decides it). Counterexample avoided: a frontier inside a residual unit
{unit input, intermediate} also cuts, but it holds the unit input, which the unit's sum
frontier does not: it is never minimal there, so Alg. 3 never keeps both.
Complexity: O(n + e + g log g) for g taken groups.
Invariant (``check_cut_groups``): groups are disjoint, in forward order, and each group's nodes
form the whole frontier of the position after the group's last node.
"""
from __future__ import annotations

import bisect
from collections import deque
from typing import Any, Mapping, Sequence

from symbol.graph import Entry, Graph, Node
from symbol.registry import numel

__all__ = ["auto_cut_groups", "check_cut_groups", "frontier_positions"]


def _recomputable(graph: Graph) -> list[bool]:
    """Per position of ``graph.nodes``: may the node be recomputed (``mirror.eligible``)."""
    outputs = {e.node for e in graph.outputs}
    return [not (n.opdef.is_loss or n.opdef.is_backward or n in outputs) for n in graph.nodes]


def _bytes(node: Node, shapes: Mapping[Entry, Any] | None) -> int:
    if shapes is None:
        return node.num_outputs
    total = 0
    for i in range(node.num_outputs):
        shape = shapes.get(Entry(node, i))
        total += 4 * numel(shape) if shape is not None else 0
    return max(total, 1)


def frontier_positions(graph: Graph) -> tuple[list[int], list[int]]:
    """Step 1: per position, the node's position and its last reader's position (the node's
    own position when no later node reads it or it may not be recomputed)."""
    nodes = graph.nodes
    pos = {n: i for i, n in enumerate(nodes)}
    ok = _recomputable(graph)
    last = list(range(len(nodes)))
    for i, n in enumerate(nodes):
        for e in n.inputs:
            p = pos.get(e.node)
            if p is not None and ok[p] and last[p] < i:
                last[p] = i
    return list(range(len(nodes))), last


def auto_cut_groups(graph: Graph, shapes: Mapping[Entry, Any] | None = None
                    ) -> list[list[Node]]:
    """Candidate groups of ``graph`` in forward order (see the module docstring).

    ``shapes`` (forward entry shapes) weigh frontiers by bytes; without them, by outputs.
    """
    nodes = graph.nodes
    n = len(nodes)
    if not n:
        return []
    _, last = frontier_positions(graph)
    # step 2: frontier bytes, lo(i) and hi(i)
    diff = [0] * (n + 1)
    for p in range(n):
        if last[p] > p:
            b = _bytes(nodes[p], shapes)
            diff[p] += b
            diff[last[p]] -= b
    width, run = [0] * n, 0
    for i in range(n):
        run += diff[i]
        width[i] = run
    lo, hi = [0] * n, [0] * n
    oldest, reach = 0, -1
    for i in range(n):
        reach = max(reach, last[i])
        hi[i] = reach - 1
        while oldest <= i and last[oldest] <= i:
            oldest += 1
        lo[i] = oldest
    # step 3: candidates, by a sliding-window minimum over [lo(i), hi(i)]
    window: deque[int] = deque()
    right = -1
    candidates = []
    for i in range(n):
        if lo[i] > i:  # empty frontier
            continue
        while right < hi[i]:
            right += 1
            if lo[right] <= right:  # only positions with a frontier
                while window and width[window[-1]] >= width[right]:
                    window.pop()
                window.append(right)
        while window and window[0] < lo[i]:
            window.popleft()
        if not window or width[i] <= width[window[0]]:
            candidates.append(i)
    # step 4: disjoint frontiers, the first of equals
    taken: list[int] = []
    for i in candidates:
        if not taken or lo[i] > taken[-1]:
            taken.append(i)
    # step 5: members
    groups: list[list[Node]] = [[] for _ in taken]
    for p in range(n):
        if last[p] > p:
            k = bisect.bisect_left(taken, p)
            if k < len(taken) and taken[k] < last[p]:
                groups[k].append(nodes[p])
    return [g for g in groups if g]


def check_cut_groups(graph: Graph, groups: Sequence[Sequence[Node]]) -> None:
    """Raise AssertionError unless ``groups`` satisfy the module's invariant: disjoint, in
    forward order, each one the whole frontier of some position from its last node to the next
    group's first. O(n * frontier size): for tests."""
    nodes = graph.nodes
    pos = {nd: i for i, nd in enumerate(nodes)}
    _, last = frontier_positions(graph)
    starts = [pos[g[0]] for g in groups[1:]] + [len(nodes)]
    end = -1
    for g, stop in zip(groups, starts, strict=True):
        ps = [pos[x] for x in g]
        assert ps == sorted(ps) and ps[0] > end, "groups overlap or are out of forward order"
        end = ps[-1]
        want = set(g)
        assert any({nodes[p] for p in range(at + 1) if last[p] > at} == want
                   for at in range(end, stop)), f"'{nodes[end].name}' ends no frontier"
