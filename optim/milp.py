"""Recomputation as an integer program, for graphs whose cut groups do not form a chain.

``optim.optimal``'s dynamic program assumes a chain: only the previous stage's cut group
crosses into a stage. Branches that skip stages (DenseNet's concatenations, Inception's
parallel towers joined after the group) break that, and the chain model's bytes are then off.
This module states the choice as a small mixed-integer program in the style of Checkmate
(Jain et al. 2020), simplified to one binary per stage, and solves it with HiGHS
(``highspy``) under a time limit.

Model (stages as ``optimal.stage_model`` makes them: the forward graph in topological order,
split after each cut group; stage k's nodes need not form a chain with the others):
  * ``bound[k]``: the bytes of stage k's *boundary* nodes: outputs read in the forward pass by
    a node of a later stage or outside every stage (the loss head); they are always kept, so
    recomputing any stage needs only kept values;
  * ``saved[k]``: bytes of stage k's outputs that the backward pass reads; ``flops[k]``: the
    forward FLOPs of its non-boundary nodes; ``work[k]``: three times its largest output;
  * a binary ``x[k]`` = 1 when stage k is recomputed (its non-boundary nodes once, from the
    kept boundaries, right before its backward), 0 when it is stored whole;
  * while the backward pass runs stage k (last to first), every earlier stage holds its
    boundary, plus its saved bytes if stored, and stage k's own saved bytes are live:
        sum_{i<k} (saved_i - (saved_i - bound_i) x_i) + saved_k + work_k + tail <= B
    for every k (``tail``: the saved bytes of the head, always kept);
  * minimise ``sum_k flops_k x_k``.
The memory rows are linear in ``x``; that is what one binary per stage buys (Checkmate's full
formulation has a binary per node and time step, too many for 100,000-node graphs).

Algorithm: 1. the stages' coefficients (``stage_terms``); 2. the program above, built as
sparse rows (``highspy.Highs.passModel``) and solved with ``time_limit``; 3. counts: the
non-boundary nodes of recomputed stages 1 (``milp_counts``). The caller (``optim.search``)
plans the counts exactly and keeps the plan only if its exact planned bytes fit; it lowers the
model budget by the excess otherwise.
Legality: any counts are Alg. 2 counts (kept boundaries make every recomputation read kept
values or earlier copies), so every plan passes ``check_mirror_plan``.
Complexity: O(nodes + edges) for the terms; the program has K binaries and K rows with
O(K^2) non-zeros (K stages); HiGHS's branch and bound is exponential in the worst case, hence
the time limit (``TIME_LIMIT`` seconds): at the limit, or without ``highspy``, the caller keeps
the dynamic program's plan and says so in the plan's note.
Kill switch: ``NO_MILP=1`` (``PlannerFlags.no_milp``).
Invariant (checked by the caller with the exact planner, as for the dynamic program): a plan
returned fits the budget.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from symbol.graph import Entry, Graph, Node

from .optimal import Stage

__all__ = ["StageTerms", "is_chain", "stage_terms", "solve_milp", "milp_counts", "MilpResult",
           "TIME_LIMIT", "available"]

#: Seconds HiGHS may spend on one program.
TIME_LIMIT = 5.0


def available() -> bool:
    """Whether ``highspy`` can be imported."""
    try:
        import highspy  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class StageTerms:
    """Per stage (arrays of length K): saved, boundary bytes, FLOPs saved by storing, work;
    the boundary nodes of each stage; ``tail`` bytes."""

    saved: np.ndarray
    bound: np.ndarray
    flops: np.ndarray
    work: np.ndarray
    boundary: tuple[frozenset[Node], ...]
    tail: int

    def top(self) -> int:
        """The model's peak with every stage stored."""
        return int(self.peak(np.zeros(len(self.saved))))

    def peak(self, x: np.ndarray) -> float:
        """The model's peak for recompute choices ``x`` (1 = recomputed)."""
        kept = self.saved - (self.saved - self.bound) * x
        before = np.concatenate(([0.0], np.cumsum(kept)[:-1]))
        return float(max(np.max(before + self.saved + self.work, initial=0.0),
                         float(np.sum(kept))) + self.tail)


@dataclass(frozen=True)
class MilpResult:
    """The solver's answer: ``x`` (None when none was found), its status and model peak."""

    x: np.ndarray | None
    status: str
    peak: float = 0.0

    def summary(self) -> str:
        """One line: status, recomputed stages and model peak."""
        got = "no solution" if self.x is None else f"{int(self.x.sum())} stages recomputed"
        return f"milp: {self.status}, {got}, model peak {self.peak:,.0f} bytes"


def _stage_of(stages: Sequence[Stage]) -> dict[Node, int]:
    return {n: k for k, s in enumerate(stages) for n in s.nodes}


def is_chain(graph: Graph, stages: Sequence[Stage]) -> bool:
    """True when every value crossing into a stage comes from the previous stage's cut group
    (or a variable, or a node outside every stage), as the dynamic program assumes."""
    where = _stage_of(stages)
    groups = [set(s.group) for s in stages]
    for n in graph.nodes:
        k = where.get(n)
        if k is None:
            continue
        for e in n.inputs:
            j = where.get(e.node)
            if j is not None and j < k and (j != k - 1 or e.node not in groups[j]):
                return False
    return True


def stage_terms(graph: Graph, stages: Sequence[Stage], tail: int,
                nbytes: Callable[[Entry], int], saved: Mapping[Node, int],
                cost: Mapping[Node, int]) -> StageTerms:
    """Step 1: the program's coefficients (see the module docstring)."""
    where = _stage_of(stages)
    boundary: list[set[Node]] = [set() for _ in stages]
    for n in graph.nodes:
        k = where.get(n)
        for e in n.inputs:
            j = where.get(e.node)
            if j is not None and (k is None or k > j):
                boundary[j].add(e.node)
    for e in graph.outputs:
        if (j := where.get(e.node)) is not None:
            boundary[j].add(e.node)

    def out(n: Node) -> int:
        return sum(nbytes(Entry(n, i)) for i in range(n.num_outputs))
    bound = [sum(max(out(n), saved.get(n, 0)) for n in b) for b in boundary]
    flops = [sum(cost.get(n, 0) for n in s.nodes if n not in b)
             for s, b in zip(stages, boundary, strict=True)]
    return StageTerms(np.array([s.saved for s in stages], dtype=np.float64),
                      np.array(bound, dtype=np.float64), np.array(flops, dtype=np.float64),
                      np.array([3 * s.largest for s in stages], dtype=np.float64),
                      tuple(frozenset(b) for b in boundary), tail)


def solve_milp(terms: StageTerms, budget: int, *, time_limit: float | None = None
               ) -> MilpResult:
    """Step 2: the least-FLOPs choice of recomputed stages whose model peak is <= ``budget``.

    Status ``optimal``, ``infeasible``, ``time limit`` (x None: the caller falls back) or
    ``unavailable`` (no ``highspy``).
    """
    try:
        import highspy
    except ImportError:
        return MilpResult(None, "unavailable")
    k = len(terms.saved)
    if k == 0:
        return MilpResult(None, "infeasible")
    # rows: sum_{i<k} (saved_i - bound_i) x_i >= sum_{i<k} saved_i + saved_k + work_k + tail - B
    # (and the end of the forward pass: sum_i (saved_i - bound_i) x_i >= sum saved + tail - B)
    drop = terms.saved - terms.bound
    prefix = np.concatenate(([0.0], np.cumsum(terms.saved)))
    lower = np.concatenate((prefix[:-1] + terms.saved + terms.work, [prefix[-1]]))
    lower = lower + terms.tail - budget
    starts, index, value = [0], [], []
    for r in range(k + 1):
        cols = np.arange(min(r, k) if r < k else k)
        index.extend(cols.tolist())
        value.extend(drop[cols].tolist())
        starts.append(len(index))
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(TIME_LIMIT if time_limit is None else time_limit))
    h.setOptionValue("threads", 1)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = k, k + 1
    lp.col_cost_ = terms.flops.tolist()
    lp.col_lower_, lp.col_upper_ = [0.0] * k, [1.0] * k
    lp.row_lower_, lp.row_upper_ = lower.tolist(), [highspy.kHighsInf] * (k + 1)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = starts, index, value
    lp.integrality_ = [highspy.HighsVarType.kInteger] * k
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    if status == highspy.HighsModelStatus.kOptimal:
        x = np.rint(np.array(h.getSolution().col_value))
        return MilpResult(x, "optimal", terms.peak(x))
    if status == highspy.HighsModelStatus.kInfeasible:
        return MilpResult(None, "infeasible")
    if status == highspy.HighsModelStatus.kTimeLimit:
        return MilpResult(None, "time limit")
    return MilpResult(None, h.modelStatusToString(status))


def milp_counts(stages: Sequence[Stage], terms: StageTerms, x: np.ndarray) -> dict[Node, int]:
    """Step 3: Alg. 2 counts: the non-boundary nodes of recomputed stages 1."""
    return {n: 1 for k, s in enumerate(stages) if x[k] > 0.5 for n in s.nodes
            if n not in terms.boundary[k]}
