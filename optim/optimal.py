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
Complexity: O(K * S * sqrt S) once for every piece's costs (``Costs``, vectorised over all
pieces, shared by the solves at every model budget), then O(K * S * BUCKETS) per solve for
S <= ``MAX_PIECE`` * sqrt(K) the longest piece, one numpy block per stage (``solve``); at most
``ROUNDS`` exact plans plus the fall-backs (``optim.search``: large graphs jump along the
ladder by the exact plan's excess or slack and plan a larger model budget only when the model
recomputes less there).
Invariant: the plan returned fits the budget by the exact planner's own count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from symbol.gradient import JointGraph
from symbol.graph import Entry, Graph, Node

from .liveness import value_inputs
from .mirror import KEEP_OPS, eligible, forward_part

__all__ = ["Stage", "Solution", "Costs", "stage_model", "solve", "counts_of", "saved_bytes",
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
    plain: dict[str, bool] = {}  # op -> every slot reads values (value_inputs' cache)
    for node in joint.graph.nodes:
        if node not in forward:
            read.update(value_inputs(node, plain))
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


class Costs:
    """Every piece's model costs, for every first stage ``a`` and length ``L`` (1 ..
    ``longest``), as arrays (budget-independent: made once, shared by every ``solve``).

    Attributes (shape ``(K, longest)`` unless said; +inf bytes where ``a + L > K``):
        live, flops: ``(3, K, longest)``, per mode ``recompute``, ``light``, ``nested``
            (``nested`` for L >= 4 only); bytes live while the piece's backward runs, FLOPs;
        grow: bytes the piece adds to the prefix (its end group);
        single: ``(2, 3, K)``, for ``store`` then ``cheap``: live, grow, FLOPs of one stage.
    """

    MULTI = (RECOMPUTE, LIGHT, NESTED)

    def __init__(self, stages: Sequence[Stage]) -> None:
        k = len(stages)
        self.k, self.longest = k, max(4, int(MAX_PIECE * math.sqrt(k)))
        col = np.array([[s.saved, s.heavy, s.flops, s.cheap_flops, s.group_bytes,
                         s.group_flops, s.largest] for s in stages], dtype=np.float64)
        col = col.reshape(k, 7)
        saved, heavy, flops, cheap, gbytes, gflops, largest = col.T
        pre = [np.concatenate(([0.0], np.cumsum(x))) for x in (saved, heavy, flops, cheap)]
        psaved, pheavy, pflops, pcheap = pre
        self.single = np.array([[saved + 3 * largest, saved, np.zeros(k)],
                                [heavy + 5 * largest, heavy, cheap]])
        a = np.arange(k)[:, None]
        length = np.arange(1, self.longest + 1)[None, :]
        b = np.minimum(a + length, k)
        valid = a + length <= k
        widest_stage = np.empty((k, self.longest))  # running max of ``largest`` over a..b-1
        widest_stage[:, 0] = largest
        for j in range(1, self.longest):
            widest_stage[:, j] = np.maximum(widest_stage[:, j - 1], largest[b[:, j] - 1])
        work = 3 * widest_stage
        end = b - 1
        self.grow = np.where(valid, gbytes[end], np.inf)
        rec_flops = pflops[b] - pflops[a] - gflops[end]
        live = np.empty((3, k, self.longest))
        live[0] = psaved[b] - psaved[a] + gbytes[end] + work
        live[1] = pheavy[b] - pheavy[a] + 2 * widest_stage + gbytes[end] + work
        fl = np.empty((3, k, self.longest))
        fl[0] = rec_flops
        fl[1] = rec_flops + pcheap[b] - pcheap[a]
        inner, widest, again = _nested(a, a + length, psaved, pflops, gbytes, gflops, k)
        live[2] = inner + widest + gbytes[end] + work
        fl[2] = rec_flops + again
        live[2][:, :3] = np.inf  # nested pieces have at least 4 stages
        live[:, ~valid] = np.inf
        self.live, self.flops = live, fl


def _nested(a: np.ndarray, b: np.ndarray, psaved: np.ndarray, pflops: np.ndarray,
            gbytes: np.ndarray, gflops: np.ndarray, k: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_Chain.cost``'s nested terms (inner groups' bytes, widest inner piece, FLOPs of the
    second recomputation) for every (a, b) at once, one inner piece at a time."""
    a, b = np.broadcast_arrays(a, b)
    b = np.minimum(b, k)
    if not a.size:
        return np.zeros(a.shape), np.zeros(a.shape), np.zeros(a.shape)
    step = np.maximum(2, np.rint(np.sqrt(np.maximum(b - a, 1)))).astype(np.int64)
    inner = np.zeros(a.shape)
    widest = np.zeros(a.shape)
    again = np.zeros(a.shape)
    for i in range(int(np.max((b - a + step - 1) // step))):
        j = a + i * step
        on = j < b
        stop = np.minimum(j + step, b)
        jc, sc = np.minimum(j, k), np.maximum(stop, 1)
        widest = np.where(on, np.maximum(widest, psaved[sc] - psaved[jc]), widest)
        again = np.where(on, again + pflops[sc] - pflops[jc] - gflops[sc - 1], again)
        g = j + step - 1
        inner = np.where(g < b - 1, inner + gbytes[np.minimum(g, k - 1)], inner)
    return inner, widest, again


def solve(stages: Sequence[Stage], tail: int, budget: int, *,
          buckets: int = BUCKETS, costs: Costs | None = None) -> Solution | None:
    """Step 2: the least-FLOPs walk whose model peak is <= ``budget`` (None if none).

    ``costs``: the stages' ``Costs`` (made here when not given; a caller solving one chain
    at several budgets makes it once).

    Algorithm: the table F[b][p] is filled row by row, each row *pulled* from the rows before
    it. Every piece ending before stage b adds the same bytes to the prefix (the group of
    stage b - 1), so all of them shift their source row by the same number of buckets: row b
    is the column-wise least of the source rows ``F[a]`` (a stacked block of the table) plus
    each piece's FLOPs, then one shifted slice. A piece's FLOPs against its prefix bucket are
    a step function (a mode fits while the prefix is at most its last bucket), built for a
    whole block by one ``np.repeat``. Ties go to the earlier first stage, then the
    single-stage modes, then ``recompute``, ``light``, ``nested``: the order in which a scalar
    loop over first stages (pushing each row forward with strict improvements) would take
    them, so the walk is the same as that loop's.
    Complexity: O(K * S * BUCKETS) element operations, in O(K) numpy calls (S: the longest
    piece that fits).
    """
    k = len(stages)
    if budget <= 0:
        return None
    costs = costs or Costs(stages)
    unit = budget / buckets
    size = buckets + 1
    longest = costs.longest
    table = np.full((k + 1, size), math.inf)
    table[0, 0] = 0.0
    # the move into each cell, as (first stage a) * 8 + mode code (index into ``_CODES``)
    choice = np.full((k + 1, size), -1, dtype=np.int64)
    limit = np.floor((budget - costs.live) / unit)  # (3, K, longest): last prefix bucket
    shift = np.ceil(costs.grow / unit)  # (K, longest): the same for every piece ending at b
    top = np.minimum(limit, size - 1 - np.where(np.isfinite(shift), shift, size))
    # a first stage tries lengths up to the first where no mode fits (a scalar loop's break)
    fits = (top >= 0).any(axis=0)
    tried = np.where(fits.all(axis=1), longest, np.argmin(fits, axis=1))
    top[:, np.arange(longest)[None, :] >= tried[:, None]] = -1
    top = np.clip(top, -1, size - 1).astype(np.int64)
    steps, step_flops = _steps(top, costs.flops)
    reach = steps[..., 2] + 1  # (K, longest): buckets where some mode fits
    single_top = np.minimum(np.floor((budget - costs.single[:, 0]) / unit),
                            size - 1 - np.ceil(costs.single[:, 1] / unit))
    single_top = np.clip(single_top, -1, size - 1).astype(np.int64)
    single_shift = np.ceil(costs.single[:, 1] / unit).astype(np.int64)
    for b in range(1, k + 1):
        row, code = table[b], choice[b]
        at = int(shift[b - 1, 0])  # the group of stage b - 1, in buckets
        # pieces a..b-1: first stages from the longest piece that still fits
        first = np.arange(max(0, b - longest), b)
        length = b - 1 - first  # index into the length axis
        width = int(reach[first, length].max())
        if width > 0:
            on = reach[first, length] > 0
            first, length = first[np.argmax(on):], length[np.argmax(on):]
            s = steps[first, length]  # (m, 3): last bucket of each step
            counts = np.diff(np.minimum(s, width - 1), axis=1, prepend=-1, append=width - 1)
            eff = np.repeat(step_flops[first, length].ravel(),
                            counts.ravel()).reshape(len(first), width)
            vals = table[first[0]:b, :width] + eff
            span = max(0, min(width, size - at))
            if len(first) > 1:  # first stages before b - 1: the earliest least wins
                early = vals[:-1, :span]
                pick = np.argmin(early, axis=0)
                best = early[pick, np.arange(span)]
                row[at:at + span] = best
                code[at:at + span] = np.where(np.isfinite(best), first[pick] * 8 + _PIECE, -1)
        for m in range(2):  # store, cheap: one stage from b - 1
            t = int(single_top[m, b - 1]) + 1
            if t > 0:
                sh = int(single_shift[m, b - 1])
                _relax(row[sh:sh + t], code[sh:sh + t],
                       table[b - 1, :t] + costs.single[m, 2, b - 1], (b - 1) * 8 + m)
        if width > 0 and first[-1] == b - 1:  # the one-stage piece from b - 1
            _relax(row[at:at + span], code[at:at + span], vals[-1, :span],
                   (b - 1) * 8 + _PIECE)
        # the mode of the pieces that won: the first of equal FLOPs (recompute, light, nested)
        won = np.flatnonzero((code >= 0) & (code % 8 == _PIECE))
        if won.size:
            a = code[won] // 8
            col, ln = won - at, b - 1 - a
            got = eff[a - first[0], col]
            mode = np.where((col <= top[0, a, ln]) & (costs.flops[0, a, ln] == got), 0,
                            np.where((col <= top[1, a, ln]) & (costs.flops[1, a, ln] == got),
                                     1, 2))
            code[won] = a * 8 + 2 + mode
    last = table[k]
    ok = [p for p in range(size) if np.isfinite(last[p]) and p * unit + tail <= budget]
    if not ok:
        return None
    p = min(ok, key=lambda q: (last[q], q))
    flops = float(last[p])
    pieces: list[tuple[int, int, str]] = []
    b = k
    while b > 0:
        a, m = divmod(int(choice[b, p]), 8)
        pieces.append((a, b, _CODES[m]))
        grow = costs.single[m, 1, a] if m < 2 else costs.grow[a, b - a - 1]
        b, p = a, p - int(math.ceil(grow / unit))
    pieces.reverse()
    return Solution(tuple(pieces), flops, model_peak(stages, pieces, tail))


def _steps(top: np.ndarray, flops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every piece's FLOPs against its prefix bucket p, as a step function: the least FLOPs
    of the modes whose last bucket ``top`` (``(3, K, L)``, -1 where none) is >= p.

    Returns ``(ends, values)``: ``(K, L, 3)`` last bucket of each step (non-decreasing) and
    ``(K, L, 4)`` the FLOPs of each step, then inf (past the last bucket of every mode).
    """
    order = np.argsort(top, axis=0, kind="stable")
    ends = np.take_along_axis(top, order, axis=0)
    f = np.take_along_axis(flops, order, axis=0)
    values = np.stack([np.minimum(np.minimum(f[0], f[1]), f[2]), np.minimum(f[1], f[2]), f[2],
                       np.full(f[2].shape, math.inf)], axis=-1)
    return np.moveaxis(ends, 0, -1), values


_CODES = (STORE, CHEAP, RECOMPUTE, LIGHT, NESTED)
#: ``solve``'s code of a piece whose mode is not decided yet.
_PIECE = 7


def _relax(row: np.ndarray, code: np.ndarray, src: np.ndarray, move: int) -> None:
    """row <- min(itself, src) element-wise (strictly less wins), remembering ``move``."""
    better = src < row
    row[better] = src[better]
    code[better] = move


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
