"""Choosing a mirror plan: by strategy, by the paper's budget search, or by a memory budget.

``plan_training`` is the entry point used by the executor and the CLI:
  1. resolve the strategy (argument > ``SUBLINEAR_MIRROR`` > ``MXNET_BACKWARD_DO_MIRROR``);
  2. find the candidate cut points once (``optim.mirror.cut_groups``: ``mirror_stage`` marks,
     else found in the forward graph);
  3. compute mirror counts: ``none``, ``drop-cheap``, ``recursive`` directly; ``sublinear`` by
     the Appendix A search (``search_sublinear``), every candidate scored by the exact planner;
  4. apply ``__force_mirroring__`` attributes;
  5. never worse than no recomputation: if the plan's bytes exceed a lower bound of the plan
     without recomputation (``unmirrored_lower_bound``, read off the plan's own joint graph),
     plan without recomputation under the same memory strategy and, if that is smaller, fall
     back (``_fall_back``): drop the recomputation of whole segments between candidates, by
     halves, while it lowers the planned bytes, at most ``_FALLBACK_PLANS`` plans; if still
     larger, no recomputation. The MirrorPlan's ``note`` says so;
  6. with a memory budget (argument or ``SUBLINEAR_MEMORY_BUDGET``), plan every strategy and
     keep the one with the least recomputation whose planned bytes (activations + intermediate
     gradients, the paper's panel (a)) fit; if none fits, fail before anything is allocated,
     naming the smallest achievable;
  7. describe the plan from the joint graph it planned (``optim.mirror.describe``): copies per
     node, which is what the executor runs.
Complexity: one joint-graph plan per strategy (plus one without recomputation when step 5's
bound does not settle it, plus at most ``_FALLBACK_PLANS``); for the sublinear search one per
distinct candidate (at most six), plus one when a child process scored the winner. The
candidates are derived from their process's first plan (``PlanHints``: joint graph, shapes and
dtypes, no gradient, shape or dtype rule; ``symbol.gradient.remirror``; the first plan itself
reads the forward graph's shapes by node name, for the recomputed copies); they are scored
in up to ``SUBLINEAR_SEARCH_JOBS`` processes (``optim.parallel``; default one per CPU, at most
three, for graphs of 2000 nodes or more); ``Graph.verify`` runs on the plan returned only, and
only the best plan so far is kept.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from functools import cached_property
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from symbol.graph import Entry, Graph, Node
from symbol.infer_shape import infer_shape, output_hints
from symbol.units import format_bytes

from .arena import align
from .flags import PlannerFlags, read_flags
from .mirror import (BUDGET_STRATEGIES, MIRROR_STRATEGIES, MirrorError, MirrorPlan, alg3_scan,
                     apply_attributes, eligible, forward_flops,
                     copies_in, cut_groups, describe, drop_cheap, forced, has_marks, parse_bytes,
                     recursive_counts, resolve_mirror, segments, unmirrored_lower_bound)
from .milp import TIME_LIMIT, StageTerms, is_chain, milp_counts, solve_milp, stage_terms
from .optimal import ROUNDS, Costs, Solution, counts_of, model_peak, saved_bytes, solve, stage_model
from .parallel import Progress, available_jobs, score_all
from .pipeline import NetworkPlan, PlanHints, collector_paused, plan_network

__all__ = ["plan_training", "search_sublinear", "mirror_counts", "resolve_budget",
           "resolve_budget_scope", "BUDGET_SCOPES"]

log = logging.getLogger(__name__)
#: Smallest forward graph whose sublinear search forks (``SUBLINEAR_SEARCH_JOBS`` unset): one
#: candidate of a 2000-node graph takes ~0.1 s to plan, a fork a few milliseconds.
_FORK_MIN_NODES = 2000
#: Ratio of consecutive model budgets ``optimal`` tries (a fixed ladder below the plan without
#: recomputation).
LADDER = 0.97
#: Graphs of at most this many nodes walk the ladder from its top (every plan is cheap), which
#: makes ``optimal`` monotone in the budget by construction; larger graphs start near the
#: budget and make at most ``optim.optimal.ROUNDS`` plans; at most ``MAX_RUNGS`` rungs.
FULL_LADDER = 400
MAX_RUNGS = 200
#: Least recompute, as a fraction of one forward pass, a larger model budget must save before
#: ``optimal`` makes another exact plan of a large graph.
MIN_GAIN = 0.005
#: The rank of the integer program's candidates (``optim.milp``).
MILP_RANK = -1
#: Graphs with at most this many recomputable nodes: ``optimal`` plans every choice exactly.
EXHAUSTIVE = 6
#: Most extra joint-graph plans a fall-back to fewer recomputed segments may make.
_FALLBACK_PLANS = 10
#: What a memory budget may count (``resolve_budget_scope``).
BUDGET_SCOPES = ("step", "activations")
_ITEMSIZE = {"float64": 8, "int64": 8, "float16": 2, "bfloat16": 2, "uint8": 1, "int8": 1,
             "bool": 1}


def mirror_counts(strategy: str, graph: Graph,
                  groups: Sequence[Sequence[Node]] | None = None) -> dict[Node, int]:
    """Counts for the strategies that need no search (``groups``: the candidates)."""
    if strategy == "none":
        return {}
    if strategy in ("drop-cheap", "drop-cheap-keep-bn"):
        return drop_cheap(graph, keep_bn=strategy == "drop-cheap-keep-bn")
    if strategy == "recursive":
        return recursive_counts(graph, groups)
    raise MirrorError(f"strategy {strategy!r} needs the search")


def search_sublinear(graph: Graph, shapes: Mapping[Entry, Any], score: Any, *,
                     jobs: int = 1, progress: Progress | None = None,
                     groups: Sequence[Sequence[Node]] | None = None
                     ) -> tuple[dict[Node, int], int, list[tuple[int, int]]]:
    """Appendix A: B = sqrt(x y) from Alg. 3 at B = 0, then 6 budgets on [B/sqrt2, sqrt2 B],
    each scored by ``score(counts) -> planned bytes``; returns (best counts, its B, tried).

    The lowest score wins, the first on ties. Budgets giving equal counts are scored once;
    ``jobs`` > 1 scores the candidates in that many processes (``optim.parallel``), with the
    same result. ``groups``: the candidates (default ``cut_groups``).
    """
    run_alg3 = alg3_scan(graph, shapes, groups)
    _, x, y = run_alg3(0)
    guess = math.sqrt(x * y)
    budgets = [guess / math.sqrt(2) + i * (math.sqrt(2) - 1 / math.sqrt(2)) * guess / 5
               for i in range(6)]
    candidates = [apply_attributes(graph, run_alg3(b)[0]) for b in budgets]
    scores = score_all(candidates, score, jobs, progress)
    best = scores.index(min(scores))
    return candidates[best], int(budgets[best]), [(int(b), s) for b, s in
                                                  zip(budgets, scores, strict=True)]


def resolve_budget(budget: str | int | None, env: Mapping[str, str] | None = None) -> int | None:
    """Bytes of the memory budget: the argument, else ``SUBLINEAR_MEMORY_BUDGET``, else None."""
    env = os.environ if env is None else env
    if budget is None:
        text = env.get("SUBLINEAR_MEMORY_BUDGET", "").strip()
        return parse_bytes(text) if text else None
    return parse_bytes(budget)


def resolve_budget_scope(scope: str | None, env: Mapping[str, str] | None = None) -> str:
    """What a budget counts: the argument, else ``SUBLINEAR_BUDGET_SCOPE``, else ``step``
    (the whole step: activations and gradients plus parameters, their gradients, inputs,
    auxiliary states and the operator workspace); ``activations``: the planned arena only.

    Raises:
        MirrorError: another value.
    """
    env = os.environ if env is None else env
    given = scope if scope is not None else env.get("SUBLINEAR_BUDGET_SCOPE", "").strip()
    if not given:
        return "step"
    if given not in BUDGET_SCOPES:
        where = ("budget scope" if scope is not None
                 else "environment variable SUBLINEAR_BUDGET_SCOPE")
        raise MirrorError(f"{where} {given!r} is invalid: expected one of "
                          f"{', '.join(BUDGET_SCOPES)}")
    return given


def _cannot_meet(limit: int, smallest: tuple[int, str], fixed: int | None = None) -> MirrorError:
    """The error of a budget no plan meets, naming the smallest plan found."""
    what = f"memory budget {format_bytes(limit)}"
    if fixed is not None:
        what = (f"memory budget {format_bytes(limit + fixed)} for the whole step "
                f"({format_bytes(fixed)} of parameters, their gradients, inputs, auxiliary "
                f"states and workspace; {format_bytes(limit)} left)")
    err = MirrorError(f"{what} cannot be met: the smallest plan found needs "
                      f"{format_bytes(smallest[0])} of activations and gradients (mirror "
                      f"strategy {smallest[1]}, {smallest[0]:,} bytes)")
    err.smallest = smallest[0] + (fixed or 0)  # type: ignore[attr-defined]  # what fits
    return err


@collector_paused()
def plan_training(graph: Graph, shapes: Mapping[str, Any], *, grad_req: Mapping[str, str],
                  aux: Sequence[str] = (), dtypes: Mapping[str, str] | None = None,
                  strategy: str | None = None, mirror: str | None = None,
                  budget: str | int | None = None, flags: PlannerFlags | None = None,
                  default_dtype: str = "float32", budget_scope: str | None = None,
                  progress: Progress | None = None) -> tuple[MirrorPlan, NetworkPlan]:
    """Choose a mirror plan and plan memory for it (see the module docstring).

    ``budget_scope`` (:func:`resolve_budget_scope`): ``step`` (default) counts the whole
    step against the budget, ``activations`` the planned activations and gradients only.
    ``progress`` hears of every joint-graph plan a search makes (a strategy, a budget, the
    sublinear search's candidates); a plan without a search reports nothing.

    Raises:
        MirrorError: a bad strategy or budget, or a budget no plan meets.
    """
    flags = flags or read_flags()
    chosen = resolve_mirror(mirror)
    limit = resolve_budget(budget)
    scope = resolve_budget_scope(budget_scope)
    fwd_shapes = infer_shape(graph, shapes)
    if chosen == "none" and limit is None or flags.no_mirror:
        net = _plan(graph, shapes, grad_req, aux, dtypes, strategy, flags, default_dtype, {})
        return describe("none", graph, fwd_shapes, net.joint, requested={}), net
    planner = _Planner(graph, fwd_shapes, progress,
                       lambda counts, hints, verify: _plan(
                           graph, shapes, grad_req, aux, dtypes, strategy, flags,
                           default_dtype, counts, hints, verify=verify))
    if limit is None:
        if chosen in BUDGET_STRATEGIES:
            raise MirrorError(f"mirror strategy '{chosen}' needs a memory budget: give --budget "
                              "(budget=... in the API, or SUBLINEAR_MEMORY_BUDGET)")
        return planner.evaluate(chosen, flags.search_jobs)
    fixed = None
    if scope == "step":  # what no mirror plan changes: bound arrays and the workspace
        base = planner.counted({}).plan
        fixed = base.step_bytes - base.planned_bytes
        if limit <= fixed:
            raise MirrorError(f"memory budget {format_bytes(limit)} for the whole step cannot "
                              f"be met: parameters, their gradients, inputs, auxiliary states "
                              f"and the operator workspace alone take {format_bytes(fixed)} "
                              "(a budget scope of 'activations' counts activations and "
                              "gradients only)")
        limit -= fixed
    if chosen in ("none", *BUDGET_STRATEGIES):  # a budget alone: the least recompute that fits
        return planner.optimal(limit, flags.search_jobs, fixed, milp=not flags.no_milp)
    return _within_budget(limit, lambda name: planner.evaluate(name, flags.search_jobs), fixed)


class _Candidate(NamedTuple):
    """A plan ``optimal`` considered: its exact FLOPs and bytes, counts, the plan, the model's
    bytes (None for a fixed strategy's plan) and its rank (rung of the ladder)."""

    flops: float
    bytes: int
    counts: dict[Node, int]
    net: NetworkPlan
    model: int | None
    rank: int


class _Planner:
    """Plans mirror variants of one network for ``plan_training`` (steps 2-5, 7).

    ``plan(counts, hints, verify)`` plans one variant. The others derive from the first plan
    (``PlanHints.of``: its joint graph, shapes and dtypes); only the plan returned is verified.
    The plan without recomputation is made at most once.
    """

    def __init__(self, graph: Graph, fwd_shapes: Mapping[Entry, Any],
                 progress: Progress | None, plan: Any) -> None:
        self.graph, self.fwd_shapes, self.progress, self._plan = graph, fwd_shapes, progress, plan
        self.known = None not in fwd_shapes.values()
        self.cost = forward_flops(graph, fwd_shapes) if self.known else {}
        self.cuts = "marks" if has_marks(graph) else "automatic"
        self.hints: PlanHints | None = None
        self.unmirrored: NetworkPlan | None = None
        self.unmirrored_bytes: int | None = None

    @cached_property
    def groups(self) -> list[list[Node]]:
        """The candidate cut points (step 2), found on first use."""
        return cut_groups(self.graph, self.fwd_shapes if self.known else None)

    @cached_property
    def forward_hints(self) -> PlanHints:
        """The first plan's hints: the forward shapes already inferred (``fwd_shapes``), which
        the recomputed copies share by name too (their shape rules would give the same)."""
        shapes = output_hints(self.graph, self.fwd_shapes) if self.known else {}
        return PlanHints(shapes, {}, forward=self.fwd_shapes)

    def run(self, counts: Mapping[Node, int]) -> NetworkPlan:
        """Plan one variant (unverified). The first plan reuses the forward shapes already
        inferred (``forward_hints``), later ones derive from the first plan."""
        hints = self.hints or self.forward_hints
        net = self._plan(counts, hints, False)
        if self.hints is None:
            self.hints = PlanHints.of(net, forward=self.fwd_shapes)
        if not counts and self.unmirrored is None:
            self.unmirrored, self.unmirrored_bytes = net, net.plan.planned_bytes
        return net

    def counted(self, counts: Mapping[Node, int]) -> NetworkPlan:
        """:meth:`run`, reported to the progress listener."""
        if self.progress is not None:
            self.progress.add_total(1)
        net = self.unmirrored if not counts and self.unmirrored is not None else self.run(counts)
        if self.progress is not None:
            self.progress.advance()
        return net

    def evaluate(self, name: str, search_jobs: int) -> tuple[MirrorPlan, NetworkPlan]:
        """Step 3-5 and 7 for strategy ``name``."""
        budget: int | None = None
        tried: list[tuple[int, int]] = []
        if name == "sublinear":
            counts, net, budget, tried = self._sublinear(search_jobs)
        else:
            groups = self.groups if name == "recursive" else None
            counts = apply_attributes(self.graph, mirror_counts(name, self.graph, groups))
            net = self.counted(counts)
        counts, net, note = self._never_worse(name, counts, net)
        uses_cuts = name in ("sublinear", "recursive") and bool(self.groups)
        plan = describe(name, self.graph, self.fwd_shapes, net.joint, requested=counts,
                        budget=budget, searched=tried, cost=self.cost, note=note,
                        cuts=self.cuts if uses_cuts else "")
        return plan, _verified(net)

    def optimal(self, limit: int, search_jobs: int, fixed: int | None = None, *,
                milp: bool = True) -> tuple[MirrorPlan, NetworkPlan]:
        """The least recomputation whose exact planned bytes fit ``limit`` (``optim.optimal``);
        ``fixed``: the bytes outside the arena already taken off a whole-step budget. When the
        stages are not a chain and ``milp``, the integer program of ``optim.milp`` is tried
        too, and the plan that recomputes less (exact FLOPs) wins.

        Raises:
            MirrorError: no plan fits; names the smallest planned bytes found.
        """
        small = len(self.graph.nodes) <= FULL_LADDER
        base = self.counted({})
        if base.plan.planned_bytes <= limit:
            return self._described("optimal", {}, base, budget=limit,
                                   note="no recomputation needed"), _verified(base)
        base_bytes, base_joint = base.plan.planned_bytes, base.joint
        candidates = eligible(self.graph)
        if not candidates:  # nothing can be recomputed
            raise _cannot_meet(limit, (base_bytes, "none"), fixed)
        if len(candidates) <= EXHAUSTIVE:
            return self._exhaustive(candidates, limit, fixed)
        sizes = base.plan.nbytes  # the arena places every value aligned: so does the model
        if not small:  # the variants need the first plan's facts only (``FirstPlan``): its
            self.unmirrored = None  # memory plan is freed for theirs (re-planned if needed)
            del base

        def nbytes(e: Entry) -> int:
            return align(sizes.get(e, 0))
        by_name = saved_bytes(base_joint, nbytes)
        saved = {n: by_name.get(n.name, 0) for n in self.graph.nodes}
        stages, tail, light = stage_model(self.graph, self.groups, nbytes, saved, self.cost)
        # what the chain model leaves out (gradient accumulators of shared weights, the head's
        # backward): the exact plan without recomputation against the model's own
        everything = tuple((a, a + 1, "store") for a in range(len(stages)))
        top = model_peak(stages, everything, tail)
        overhead = max(0, base_bytes - top)
        # the model budgets tried form one ladder, whatever the budget (top * LADDER**j), so
        # that a smaller budget chooses among the same plans as a larger one
        tried: dict[int, _Candidate | None] = {}
        planned: dict[frozenset[tuple[Node, int]], tuple[float, int, NetworkPlan]] = {}
        costs = Costs(stages)  # every piece's model costs, shared by the rungs' solves

        solved: dict[int, Solution | None] = {}

        def solved_at(j: int) -> Solution | None:
            if j not in solved:
                solved[j] = solve(stages, tail, int(top * LADDER ** j), costs=costs)
            return solved[j]

        def rung(j: int) -> _Candidate | None:
            if j not in tried:
                solution = solved_at(j)
                if solution is None:
                    tried[j] = None
                else:
                    counts = apply_attributes(self.graph, counts_of(stages, solution, light))
                    key = frozenset(counts.items())
                    if key not in planned:  # nearby model budgets often give the same walk
                        net = self.counted(counts)
                        # large graphs order by rung: the model's FLOPs only break ties
                        flops = self._flops_of(net) if small else solution.flops
                        planned[key] = (flops, net.plan.planned_bytes, net)
                    flops, got, net = planned[key]
                    tried[j] = _Candidate(flops, got, counts, net, solution.peak + overhead, j)
            return tried[j]

        def worth(j: int, than: int) -> bool:
            # an exact plan at rung j pays only if the model recomputes less there by
            # MIN_GAIN of a forward pass (a solve costs a fraction of an exact plan)
            a, b = solved_at(j), solved_at(than)
            return a is not None and b is not None and a.flops <= b.flops - gain
        gain = MIN_GAIN * sum(self.cost.values())
        extra: list[_Candidate] = []
        if small:
            # small graphs (plans are cheap): every rung and every fixed strategy; the least
            # recompute that fits among plans that do not depend on the budget, so a smaller
            # budget never plans more bytes, nor recomputes less
            j = 0
            while j < MAX_RUNGS and rung(j) is not None:
                j += 1
            for k, name in enumerate(("drop-cheap", "drop-cheap-keep-bn", "sublinear",
                                      "recursive")):
                try:
                    mplan, net = self.evaluate(name, search_jobs)
                except MirrorError:
                    continue
                extra.append(_Candidate(mplan.recompute_flops, net.plan.planned_bytes,
                                        dict(mplan.requested), net, None, MAX_RUNGS + k))
            order: Callable[[_Candidate], tuple[float, ...]] = (
                lambda c: (c.flops, c.bytes, c.rank))
        else:  # the largest model budget that fits, in few exact plans
            room = max(limit - overhead, 1)
            _search_rungs(rung, tried, limit, _rung_of(room / top), lambda: len(planned),
                          worth)
            order = (lambda c: (c.rank, c.flops))
        considered = [c for c in tried.values() if c is not None] + extra
        fits = sorted((c for c in considered if c.bytes <= limit), key=order)
        milp_note = ""
        if milp and stages and not is_chain(self.graph, stages):
            terms = stage_terms(self.graph, stages, tail, nbytes, saved, self.cost)
            found, milp_note = self._milp(terms, stages, limit, base_bytes)
            considered += found
            best = [fits[0]] if fits else []
            if best and best[0].model is not None and not small:
                best = [best[0]._replace(flops=self._flops_of(best[0].net))]
            fits = sorted(best + [c for c in found if c.bytes <= limit],
                          key=lambda c: (c.flops, c.bytes))
        seen = sorted(((int(top * LADDER ** c.rank), c.bytes) for c in considered
                       if c.model is not None and c.rank != MILP_RANK), reverse=True)
        smallest = min([(base_bytes, "none"),
                        *((c.bytes, "optimal") for c in considered)])
        if not fits:
            mplan, net = self._optimal_fallback(limit, search_jobs, smallest, seen, fixed)
            if milp_note:
                mplan = dataclasses.replace(mplan, note=f"{mplan.note}; {milp_note}")
            return mplan, net
        flops, got_bytes, counts, net, model, rank = fits[0]
        note = (f"model {format_bytes(model)}, exact planner {format_bytes(got_bytes)} "
                f"({100 * (got_bytes - model) / model:+.1f}%)" if model else
                "a fixed strategy's plan was the cheapest that fits")
        if rank == MILP_RANK:
            note = f"integer program (stages not a chain): {note}"
        elif milp_note:
            note = f"{note}; {milp_note}"
        return self._described("optimal", counts, net, budget=limit, searched=seen,
                               note=note), _verified(net)

    def _milp(self, terms: StageTerms, stages: Sequence[Any], limit: int, base: int
              ) -> tuple[list[_Candidate], str]:
        """The integer program (``optim.milp``) at model budgets from ``limit`` down, until
        its counts' exact plan fits (at most ``ROUNDS`` exact plans); the candidates planned
        and a note when it gave no plan that fits (time limit, no ``highspy``, infeasible)."""
        overhead = max(0, base - terms.top())
        budget, found = limit - overhead, []
        status = "no plan that fits"
        for _ in range(ROUNDS):
            result = solve_milp(terms, int(budget))
            log.debug("optimal: %s", result.summary())
            if result.x is None:
                status = result.status
                break
            counts = apply_attributes(self.graph, milp_counts(stages, terms, result.x))
            net = self.counted(counts)
            got = net.plan.planned_bytes
            found.append(_Candidate(self._flops_of(net), got, counts, net,
                                    int(result.peak) + overhead, MILP_RANK))
            if got <= limit:
                return found, ""
            budget -= got - limit  # the exact planner needs more: lower the model budget
        what = {"time limit": f"reached its {TIME_LIMIT:g} s time limit",
                "unavailable": "needs highspy"}.get(status, f"found {status}")
        return found, f"the integer program {what}; the dynamic program's plan is kept"

    def _exhaustive(self, candidates: list[Node], limit: int,
                    fixed: int | None) -> tuple[MirrorPlan, NetworkPlan]:
        """A small graph: plan every set of recomputed nodes exactly, keep the least
        recompute that fits (fewest bytes on ties; the first such set, in a fixed order)."""
        best: tuple[float, int, int, dict[Node, int], NetworkPlan] | None = None
        smallest: tuple[int, str] | None = None
        for mask in range(1, 2 ** len(candidates)):
            counts = apply_attributes(self.graph, {n: 1 for i, n in enumerate(candidates)
                                                   if mask >> i & 1})
            net = self.counted(counts)
            got = net.plan.planned_bytes
            smallest = min(smallest or (got, "optimal"), (got, "optimal"))
            if got <= limit:
                key = (self._flops_of(net), got, mask)
                if best is None or key < best[:3]:
                    best = (*key, counts, net)
        if best is None:
            assert smallest is not None
            raise _cannot_meet(limit, smallest, fixed)
        counts, net = best[3], best[4]
        note = f"exhaustive over the {len(candidates)} recomputable nodes"
        return self._described("optimal", counts, net, budget=limit, note=note), _verified(net)

    def _optimal_fallback(self, limit: int, search_jobs: int, smallest: tuple[int, str],
                          seen: list[tuple[int, int]], fixed: int | None
                          ) -> tuple[MirrorPlan, NetworkPlan]:
        """The model found nothing that fits: the fixed strategies (recursive first, the
        smallest), the least recompute that fits, else the error naming the smallest."""
        options = []
        for name in ("recursive", "sublinear", "drop-cheap"):
            try:
                mplan, net = self.evaluate(name, search_jobs)
            except MirrorError:
                continue
            options.append((mplan.recompute_flops, net.plan.planned_bytes, mplan, net))
            smallest = min(smallest, (net.plan.planned_bytes, name))
        fitting = [o for o in options if o[1] <= limit]
        if not fitting:
            raise _cannot_meet(limit, smallest, fixed)
        _, _, mplan, net = min(fitting, key=lambda o: (o[0], o[1]))
        counts = dict(mplan.requested)
        note = f"the chain model found no fit; the {mplan.strategy} plan fits"
        return self._described("optimal", counts, net, budget=limit, searched=seen,
                               note=note), net

    def _flops_of(self, net: NetworkPlan) -> float:
        """Extra forward FLOPs of the copies in ``net``'s joint graph."""
        return describe("optimal", self.graph, self.fwd_shapes, net.joint, requested={},
                        cost=self.cost).recompute_flops

    def _described(self, name: str, counts: Mapping[Node, int], net: NetworkPlan, *,
                   budget: int | None = None, searched: Sequence[tuple[int, int]] = (),
                   note: str = "") -> MirrorPlan:
        return describe(name, self.graph, self.fwd_shapes, net.joint, requested=counts,
                        budget=budget, searched=searched, cost=self.cost, note=note,
                        cuts=self.cuts if counts else "")

    def _sublinear(self, search_jobs: int
                   ) -> tuple[dict[Node, int], NetworkPlan, int, list[tuple[int, int]]]:
        if not self.groups:
            raise MirrorError("the sublinear plan needs candidate cut points, and this graph "
                              "has none: mark nodes with the attribute mirror_stage")
        kept: list[tuple[Mapping[Node, int], NetworkPlan]] = []  # lowest score planned here

        def score(counts: Mapping[Node, int]) -> int:
            net = self.run(counts)
            if not kept or net.plan.planned_bytes < kept[0][1].plan.planned_bytes:
                kept[:] = [(counts, net)]
            return net.plan.planned_bytes
        jobs = (available_jobs(search_jobs) if len(self.graph.nodes) >= _FORK_MIN_NODES
                else 1)
        counts, b, tried = search_sublinear(self.graph, self.fwd_shapes, score, jobs=jobs,
                                            progress=self.progress, groups=self.groups)
        if kept and kept[0][0] == counts:
            return counts, kept[0][1], b, tried
        return counts, self.counted(counts), b, tried  # a child process scored it

    def _never_worse(self, name: str, counts: dict[Node, int], net: NetworkPlan
                     ) -> tuple[dict[Node, int], NetworkPlan, str]:
        """Step 5: ``(counts, net, note)``, with no more planned bytes than no recomputation."""
        got = net.plan.planned_bytes
        if not counts or got <= unmirrored_lower_bound(net.joint, _entry_bytes(net)):
            return counts, net, ""
        if self.unmirrored_bytes is None:
            self.counted({})
        base = self.unmirrored_bytes
        assert base is not None
        if got <= base:
            return counts, net, ""
        before = len(copies_in(net.joint))
        kept, net = self._fall_back(counts, net, base)
        what = (f"recomputing {len(copies_in(net.joint))} of its {before} nodes" if kept
                else "no recomputation")
        if not kept and any(n in counts for n in forced(self.graph)):
            what += ", __force_mirroring__ nodes included"
        note = (f"fell back to {what} (the {name} plan was {got / base:.2f}x of no "
                "recomputation)")
        log.info("mirror %s: %s", name, note)
        return kept, net, note

    def _fall_back(self, counts: dict[Node, int], net: NetworkPlan, base: int
                   ) -> tuple[dict[Node, int], NetworkPlan]:
        """Drop the recomputation of segments, by halves, while that lowers the planned
        bytes (at most ``_FALLBACK_PLANS`` plans; nodes with ``__force_mirroring__`` stay);
        no recomputation at all if still above ``base``."""
        keep = set(forced(self.graph))
        chunks = _halves(segments(self.graph, self.groups,
                                  {n: k for n, k in counts.items() if n not in keep}))
        tries = 0
        while net.plan.planned_bytes > base and chunks and tries < _FALLBACK_PLANS:
            chunk = chunks.pop(0)
            drop = {n for seg in chunk for n in seg if n in counts}
            trial = {n: k for n, k in counts.items() if n not in drop}
            if not drop:
                continue
            if not trial:  # the chunk is all that is left: try its halves
                chunks.extend(_halves(chunk) if len(chunk) > 1 else [])
                continue
            tries += 1
            got = self.counted(trial)
            if got.plan.planned_bytes <= net.plan.planned_bytes:
                counts, net = trial, got
            else:
                chunks.extend(_halves(chunk))
        if net.plan.planned_bytes > base or not copies_in(net.joint):
            return {}, self.counted({})  # (no copy left: the graph without recomputation)
        return counts, net


def _rung_of(ratio: float) -> int:
    """The first rung of the ladder whose model budget is at most ``ratio`` of the top."""
    if ratio >= 1:
        return 0
    return min(MAX_RUNGS, max(0, math.ceil(math.log(ratio) / math.log(LADDER) - 1e-9)))


def _search_rungs(rung: Callable[[int], Any], tried: Mapping[int, Any], limit: int,
                  start: int, plans: Callable[[], int],
                  worth: Callable[[int, int], bool]) -> None:
    """Find the smallest rung (largest model budget) whose exact plan fits ``limit`` in at most
    ``ROUNDS`` exact plans (``plans()``: how many were made; ``tried``: the rungs tried): from
    ``start``, each plan's excess or slack against ``limit`` says how many rungs to move (the
    exact planner scales the model's bytes by about the same factor at a nearby rung), then
    bisection between the
    smallest rung that fits and the largest above it that does not. A rung above the one
    that fits is planned only when ``worth(rung, fit)`` (the model recomputes less there)."""
    fit: int | None = None  # smallest rung known to fit
    over = -1  # largest rung known not to fit (below ``fit``)
    j, solves = start, 0
    while plans() < ROUNDS and solves < 2 * ROUNDS and 0 <= j < MAX_RUNGS:
        solves += 1
        got = rung(j)
        if got is None:  # the model fits nothing at this budget: nor at any smaller one
            break
        log.debug("optimal: rung %d: model %d, exact %d bytes (limit %d)", j, got.model,
                  got.bytes, limit)
        if got.bytes <= limit:
            fit = j if fit is None else min(fit, j)
        else:
            over = max(over, j)
        step = math.log(limit / got.bytes) / math.log(1 / LADDER)  # rungs of slack (+)
        guess = j - max(1, round(step)) if got.bytes <= limit else j + max(1, math.ceil(-step))
        if fit is not None:
            guess = min(guess, fit - 1)
            if guess <= over:
                guess = (over + fit) // 2
            if guess <= over or guess < 0 or guess in tried or not worth(guess, fit):
                break
        j = guess


def _halves(items: list[Any]) -> list[list[Any]]:
    """``items`` split into two halves (one part when there is a single item)."""
    if len(items) < 2:
        return [items] if items else []
    mid = len(items) // 2
    return [items[:mid], items[mid:]]


def _entry_bytes(net: NetworkPlan) -> Any:
    """``entry -> bytes`` from the plan's shapes and dtypes."""
    def nbytes(e: Entry) -> int:
        shape = net.shapes.get(e)
        if shape is None:
            return 0
        return math.prod(shape) * _ITEMSIZE.get(net.dtypes.get(e) or "float32", 4)
    return nbytes


def _within_budget(limit: int, evaluate: Any,
                   fixed: int | None = None) -> tuple[MirrorPlan, NetworkPlan]:
    options = []
    for name in MIRROR_STRATEGIES:
        try:
            mplan, net = evaluate(name)
        except MirrorError:
            if name == "sublinear":  # no candidate cut points
                continue
            raise
        options.append((mplan.recompute_flops, net.plan.planned_bytes, mplan, net))
    fitting = [o for o in options if o[1] <= limit]
    if not fitting:
        smallest = min(options, key=lambda o: o[1])
        raise _cannot_meet(limit, (smallest[1], smallest[2].strategy), fixed)
    _, _, mplan, net = min(fitting, key=lambda o: (o[0], o[1]))
    log.info("budget %s: chose %s", format_bytes(limit), mplan.summary())
    return mplan, net


def _plan(graph: Graph, shapes: Mapping[str, Any], grad_req: Mapping[str, str],
          aux: Sequence[str], dtypes: Mapping[str, str] | None, strategy: str | None,
          flags: PlannerFlags, default_dtype: str, counts: Mapping[Node, int],
          hints: PlanHints | None = None, *, verify: bool = True) -> NetworkPlan:
    return plan_network(graph, shapes, grad_req=grad_req, aux=aux, dtypes=dtypes,
                        strategy=strategy, flags=flags, default_dtype=default_dtype,
                        mirror=counts, hints=hints, verify=verify)


def _verified(net: NetworkPlan) -> NetworkPlan:
    """``net`` after checking its joint graph's IR invariants (GraphError if broken)."""
    net.joint.graph.verify()
    return net
