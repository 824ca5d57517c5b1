"""Optimal recomputation for a byte budget: the least recompute whose exact planned peak fits.

``plan_optimal(graph, groups, shapes, cost, budget, run)`` returns mirror counts and the plan
the exact planner (``run``: counts -> NetworkPlan) made for them, with planned bytes <= budget.

The model (a chain of stages, as Rotor and Chen et al. model a network):
  * the candidate cut groups G_0 .. G_{K-1} (``optim.mirror.cut_groups``) split the forward
    graph into stages: stage k holds the recomputable nodes after G_{k-1} up to and including
    G_k; the nodes after G_{K-1} (the loss head) form the tail, always kept;
  * each stage has its forward FLOPs (``OpDef.cost``), the bytes of its outputs that the
    backward pass reads (``saved``, read off the plan without recomputation), the same for its
    convolutions and matrix products only (``heavy``: what stays when the cheap ops — BatchNorm,
    activations, sums — are recomputed again right before their backward), and the bytes of
    its cut group;
  * a plan walks the chain choosing, for each piece, one of three modes:
    - ``store``: one stage, nothing recomputed; its saved bytes stay until its backward;
    - ``cheap``: one stage kept but for its cheap ops, recomputed once right before their
      backward (what MXNet's ``MXNET_BACKWARD_DO_MIRROR`` does everywhere): its heavy bytes
      stay, for the cheap ops' FLOPs;
    - ``recompute``: stages a..b-1 recomputed once from the kept group G_{a-1}, G_{b-1} kept;
      during their backward, the saved bytes of the segment are live;
    - ``light``: as ``recompute``, with the cheap ops recomputed a second time just before
      their backward (Alg. 2 count 2): only the heavy bytes of the segment are live, at the
      price of the cheap ops' FLOPs once more (a second level of recomputation, kept to the
      ops whose FLOPs are small);
    - ``nested``: two levels, as Revolve/Rotor recompute from recomputed checkpoints: the
      piece's recomputation keeps an inner cut group every ~sqrt(length) stages, and each
      inner piece is recomputed again during the backward: the live bytes fall to the inner
      groups plus the widest inner piece, for about one more recomputation of the piece;
  * the backward pass runs the pieces last to first; while it runs a piece, every byte kept for
    the earlier pieces (kept groups, stored stages: the *prefix*) is live beside the piece's
    own, plus a gradient working set (three times the piece's largest tensor).

Algorithm:
  1. plan without recomputation once (the saved bytes; also the answer when it fits);
  2. dynamic program over the chain (``solve``): F[b][p] = the least recompute FLOPs that
     reach a kept cut before stage b with p prefix bytes (in ``BUCKETS`` steps of the model
     budget, rounded up), over the transitions store and cheap (b = a + 1), recompute, light
     and nested
     (b - a up to ``MAX_PIECE`` * sqrt(K), while some mode fits); the answer is the cheapest
     state whose tail fits;
  3. the exact planner plans the counts; if its planned bytes exceed the budget (the model is
     an estimate: the exact planner wins), the model budget is lowered by the excess and step
     2 runs again, up to ``ROUNDS`` times; if below, raised by part of the slack to buy back
     recomputation; the cheapest plan that fits is kept (fewest bytes on ties);
  4. the existing strategies (drop-cheap, sublinear, recursive) are planned too when the
     model found nothing that fits, so ``optimal`` never needs more bytes than they do.
Guarantee: every plan returned has exact planned bytes <= budget; if none is found, the
error names the smallest planned bytes seen (``MirrorError`` from the caller).
Legality: the counts are the same kind the other strategies give Alg. 2 (cut groups kept,
other nodes recomputed once or twice), so every plan passes ``check_mirror_plan``.
Complexity: O(K * S * (BUCKETS + sqrt S)) per solve for S <= ``MAX_PIECE`` * sqrt(K) the
longest piece, vectorised over the buckets; at most ``ROUNDS`` exact plans plus the
fall-backs.
Invariant: the plan returned fits the budget by the exact planner's own count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from symbol.gradient import JointGraph
from symbol.graph import Entry, Graph, Node

from .liveness import value_slots
from .mirror import KEEP_OPS, eligible, forward_part

__all__ = ["Stage", "Solution", "stage_model", "solve", "counts_of", "saved_bytes",
           "light_nodes", "model_peak", "nested_step", "BUCKETS", "ROUNDS", "LIGHT_DEPTH",
           "MAX_PIECE"]

#: Prefix bytes are counted in this many steps of the model budget.
BUCKETS = 512
#: Most exact plans the calibration of step 3 makes.
ROUNDS = 6
#: Longest chain of cheap ops a ``light`` piece recomputes a second time (``light_nodes``).
LIGHT_DEPTH = 2
STORE, CHEAP, RECOMPUTE, LIGHT, NESTED = "store", "cheap", "recompute", "light", "nested"
#: Longest piece the dynamic program tries, in multiples of sqrt(stages).
MAX_PIECE = 4


@dataclass(frozen=True)
class Stage:
    """One stage of the chain (see the module docstring); bytes and FLOPs of its nodes."""

    nodes: tuple[Node, ...]
    group: tuple[Node, ...]
    flops: int
    cheap_flops: int
    group_flops: int
    saved: int
    heavy: int
    group_bytes: int
    largest: int


@dataclass(frozen=True)
class Solution:
    """A walk over the chain: per piece (first stage, end stage, mode); its model bytes/FLOPs."""

    pieces: tuple[tuple[int, int, str], ...]
    flops: float
    peak: int


def saved_bytes(joint: JointGraph, nbytes: Callable[[Entry], int]) -> dict[str, int]:
    """Forward node name -> bytes of its outputs that the backward part of ``joint`` (a plan
    without recomputation) reads for their values."""
    forward = forward_part(joint)
    read: set[Entry] = set()
    for node in joint.graph.nodes:
        if node not in forward:
            read.update(node.inputs[k] for k in value_slots(node))
    out: dict[str, int] = {}
    for e in read:
        if e.node in forward and not e.node.is_variable:
            out[e.node.name] = out.get(e.node.name, 0) + nbytes(e)
    return out


def _out_bytes(node: Node, nbytes: Callable[[Entry], int]) -> int:
    return sum(nbytes(Entry(node, i)) for i in range(node.num_outputs))


def light_nodes(graph: Graph, saved: Mapping[Node, int],
                depth_cap: int = LIGHT_DEPTH) -> frozenset[Node]:
    """Cheap ops that ``light`` recomputes a second time, right before their backward.

    A second copy reads its inputs' latest copies, so every input it reads that is not light
    itself stays alive until then: a cheap op is light only when each such input is a variable
    or saved anyway (read by the backward pass without recomputation), and when the chain of
    light ops ending at it is at most ``depth_cap`` long (a second copy rebuilds that chain).
    After a convolution, BatchNorm then ReLU are light (the convolution output is saved for
    BatchNorm's backward); a residual sum is not (its convolution input is not saved).
    """
    depth: dict[Node, int] = {}  # light nodes: the longest chain of light ops ending there
    for n in graph.nodes:  # topological: a node's inputs are decided before it
        if n.is_variable or n.op in KEEP_OPS:
            continue
        if any(not (u.is_variable or u in depth or saved.get(u, 0))
               for u in (e.node for e in n.inputs)):
            continue
        d = 1 + max((depth.get(e.node, 0) for e in n.inputs), default=0)
        if d <= depth_cap:
            depth[n] = d
    return frozenset(depth)


def stage_model(graph: Graph, groups: Sequence[Sequence[Node]],
                nbytes: Callable[[Entry], int], saved: Mapping[Node, int],
                cost: Mapping[Node, int]) -> tuple[list[Stage], int, frozenset[Node]]:
    """The stages of the chain, the tail's saved bytes and the ``light`` nodes (step 1)."""
    ends = {g[-1]: k for k, g in enumerate(groups) if g}
    light = light_nodes(graph, saved)
    stages: list[Stage] = []
    current: list[Node] = []
    for n in eligible(graph):
        current.append(n)
        if n in ends:
            stages.append(_stage(current, groups[ends[n]], nbytes, saved, cost, light))
            current = []
    tail = sum(saved.get(n, 0) for n in current)
    return stages, tail, light


def _stage(nodes: list[Node], group: Sequence[Node], nbytes: Callable[[Entry], int],
           saved: Mapping[Node, int], cost: Mapping[Node, int], light: frozenset[Node]) -> Stage:
    members = set(group)
    return Stage(tuple(nodes), tuple(group),
                 flops=sum(cost.get(n, 0) for n in nodes),
                 cheap_flops=sum(cost.get(n, 0) for n in nodes if n in light),
                 group_flops=sum(cost.get(n, 0) for n in members),
                 saved=sum(saved.get(n, 0) for n in nodes),
                 heavy=sum(saved.get(n, 0) for n in nodes if n not in light),
                 group_bytes=sum(_out_bytes(n, nbytes) for n in members),
                 largest=max((_out_bytes(n, nbytes) for n in nodes), default=0))


class _Chain:
    """Prefix sums over the stages: a piece's live bytes, prefix growth and FLOPs in O(1)
    (``nested``: O(length / step))."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = stages
        self.saved = np.cumsum([0] + [s.saved for s in stages]).tolist()
        self.heavy = np.cumsum([0] + [s.heavy for s in stages]).tolist()
        self.flops = np.cumsum([0] + [s.flops for s in stages]).tolist()
        self.cheap = np.cumsum([0] + [s.cheap_flops for s in stages]).tolist()

    def cost(self, a: int, b: int, mode: str, largest: int) -> tuple[float, float, float]:
        """(bytes live while the piece's backward runs, bytes it adds to the prefix, FLOPs)."""
        st = self.stages
        work = 3 * largest
        if mode == STORE:
            own = st[a].saved
            return own + work, own, 0.0
        if mode == CHEAP:  # kept, but for its light ops, recomputed once before their backward
            own = st[a].heavy
            return own + 2 * largest + work, own, float(st[a].cheap_flops)
        end = st[b - 1]
        flops = self.flops[b] - self.flops[a] - end.group_flops
        if mode == RECOMPUTE:
            return self.saved[b] - self.saved[a] + end.group_bytes + work, end.group_bytes, flops
        if mode == LIGHT:
            live = self.heavy[b] - self.heavy[a] + 2 * largest + end.group_bytes + work
            return live, end.group_bytes, flops + self.cheap[b] - self.cheap[a]
        # nested: inner groups every ``step`` stages, recomputed once and kept during the
        # piece's backward; the sub-pieces between them recomputed a second time
        step = nested_step(b - a)
        inner = sum(st[j].group_bytes for j in range(a + step - 1, b - 1, step))
        widest = max(self.saved[min(j + step, b)] - self.saved[j] for j in range(a, b, step))
        again = sum(self.flops[min(j + step, b)] - self.flops[j]
                    - st[min(j + step, b) - 1].group_flops for j in range(a, b, step))
        return inner + widest + end.group_bytes + work, end.group_bytes, flops + again


def nested_step(length: int) -> int:
    """Stages per inner piece of a ``nested`` piece of ``length`` stages (about sqrt)."""
    return max(2, round(math.sqrt(length)))


def solve(stages: Sequence[Stage], tail: int, budget: int, *,
          buckets: int = BUCKETS) -> Solution | None:
    """Step 2: the least-FLOPs walk whose model peak is <= ``budget`` (None if none)."""
    k = len(stages)
    if budget <= 0:
        return None
    chain = _Chain(stages)
    unit = budget / buckets
    size = buckets + 1
    longest = max(4, int(MAX_PIECE * math.sqrt(k)))
    table = np.full((k + 1, size), math.inf)
    table[0, 0] = 0.0
    choice = np.full((k + 1, size), -1, dtype=np.int64)  # index into ``moves``
    moves: list[tuple[int, str, int]] = []  # (from position, mode, prefix shift in buckets)

    def relax(a: int, b: int, mode: str, largest: int) -> bool:
        # F[b][p + grow] <- F[a][p] + flops, for the p with p + live <= budget
        live, grow, flops = chain.cost(a, b, mode, largest)
        limit = int((budget - live) // unit)
        shift = math.ceil(grow / unit)
        top = min(limit, size - 1 - shift)
        if top < 0:
            return False
        src = table[a, :top + 1] + flops
        dst = table[b, shift:shift + top + 1]
        better = src < dst
        if better.any():
            dst[better] = src[better]
            moves.append((a, mode, shift))
            choice[b, shift:shift + top + 1][better] = len(moves) - 1
        return True

    for a in range(k):
        if not np.isfinite(table[a]).any():
            continue
        relax(a, a + 1, STORE, stages[a].largest)
        relax(a, a + 1, CHEAP, stages[a].largest)
        largest = 0
        for b in range(a + 1, min(k, a + longest) + 1):
            largest = max(largest, stages[b - 1].largest)
            fits = [relax(a, b, mode, largest) for mode in (RECOMPUTE, LIGHT)]
            if b - a >= 4:
                fits.append(relax(a, b, NESTED, largest))
            if not any(fits):
                break
    last = table[k]
    ok = [p for p in range(size) if np.isfinite(last[p]) and p * unit + tail <= budget]
    if not ok:
        return None
    p = min(ok, key=lambda q: (last[q], q))
    flops = float(last[p])
    pieces: list[tuple[int, int, str]] = []
    b = k
    while b > 0:
        a, mode, shift = moves[int(choice[b, p])]
        pieces.append((a, b, mode))
        b, p = a, p - shift
    pieces.reverse()
    return Solution(tuple(pieces), flops, model_peak(stages, pieces, tail))


def model_peak(stages: Sequence[Stage], pieces: Sequence[tuple[int, int, str]],
               tail: int) -> int:
    """The model's peak for a walk (exact arithmetic, no buckets)."""
    chain = _Chain(stages)
    prefix = peak = 0
    for a, b, mode in pieces:
        live, grow, _ = chain.cost(a, b, mode, max(s.largest for s in stages[a:b]))
        peak = max(peak, prefix + int(live))
        prefix += int(grow)
    return max(peak, prefix + tail)


def counts_of(stages: Sequence[Stage], solution: Solution,
              light: frozenset[Node]) -> dict[Node, int]:
    """Alg. 2 counts of a walk: kept groups and stored stages 0 (the light nodes of ``cheap``
    stages 1); recomputed nodes 1, the ``light`` nodes of ``light`` pieces 2; in ``nested``
    pieces the inner groups 1 and the other nodes 2 (recomputed from the recomputed inner
    groups)."""
    counts: dict[Node, int] = {}
    for a, b, mode in solution.pieces:
        if mode == STORE:
            continue
        if mode == CHEAP:
            counts.update((n, 1) for n in stages[a].nodes if n in light)
            continue
        kept = set(stages[b - 1].group)
        inner: set[Node] = set()
        if mode == NESTED:
            step = nested_step(b - a)
            inner = {n for j in range(a + step - 1, b - 1, step) for n in stages[j].group}
        for s in stages[a:b]:
            for n in s.nodes:
                if n in kept:
                    continue
                if mode == NESTED:
                    counts[n] = 1 if n in inner else 2
                else:
                    counts[n] = 2 if mode == LIGHT and n in light else 1
    return counts
