"""Choosing a mirror plan: by strategy, by the paper's budget search, or by a memory budget.

``plan_training`` is the entry point used by the executor and the CLI:
  1. resolve the strategy (argument > ``SUBLINEAR_MIRROR`` > ``MXNET_BACKWARD_DO_MIRROR``);
  2. compute mirror counts: ``none``, ``drop-cheap``, ``recursive`` directly; ``sublinear`` by
     the Appendix A search (``search_sublinear``), every candidate scored by the exact planner;
  3. apply ``__force_mirroring__`` attributes;
  4. with a memory budget (argument or ``SUBLINEAR_MEMORY_BUDGET``), plan every strategy and
     keep the one with the least recomputation whose planned bytes (activations + intermediate
     gradients, the paper's panel (a)) fit; if none fits, fail before anything is allocated,
     naming the smallest achievable.
Complexity: one joint-graph plan per strategy; for the sublinear search one per distinct
candidate (at most six), plus one when a child process scored the winner. The candidates share
their process's first plan's shapes and dtypes (``PlanHints``); they are scored in up to
``SUBLINEAR_SEARCH_JOBS`` processes (``optim.parallel``; default one per CPU, at most three,
for graphs of 2000 nodes or more); ``Graph.verify`` runs on the plan returned only, and only
the best plan so far is kept.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Mapping, Sequence

from symbol.graph import Entry, Graph, Node
from symbol.infer_shape import infer_shape
from symbol.units import format_bytes

from .flags import PlannerFlags, read_flags
from .mirror import (MIRROR_STRATEGIES, MirrorError, MirrorPlan, alg3_scan, apply_attributes,
                     describe, drop_cheap, parse_bytes, recursive_counts, resolve_mirror,
                     stage_groups)
from .parallel import Progress, available_jobs, score_all
from .pipeline import NetworkPlan, PlanHints, collector_paused, plan_network

__all__ = ["plan_training", "search_sublinear", "mirror_counts", "resolve_budget"]

log = logging.getLogger(__name__)
#: Smallest forward graph whose sublinear search forks (``SUBLINEAR_SEARCH_JOBS`` unset): one
#: candidate of a 2000-node graph takes ~0.1 s to plan, a fork a few milliseconds.
_FORK_MIN_NODES = 2000


def _flops(node: Node, shapes: Mapping[Entry, Any]) -> int:
    ins = [shapes[e] for e in node.inputs]
    outs = [shapes[Entry(node, i)] for i in range(node.num_outputs)]
    return node.opdef.cost(node.params, ins, outs).flops


def mirror_counts(strategy: str, graph: Graph) -> dict[Node, int]:
    """Counts for the strategies that need no search."""
    if strategy == "none":
        return {}
    if strategy in ("drop-cheap", "drop-cheap-keep-bn"):
        return drop_cheap(graph, keep_bn=strategy == "drop-cheap-keep-bn")
    if strategy == "recursive":
        return recursive_counts(graph)
    raise MirrorError(f"strategy {strategy!r} needs the search")


def search_sublinear(graph: Graph, shapes: Mapping[Entry, Any], score: Any, *,
                     jobs: int = 1, progress: Progress | None = None
                     ) -> tuple[dict[Node, int], int, list[tuple[int, int]]]:
    """Appendix A: B = sqrt(x y) from Alg. 3 at B = 0, then 6 budgets on [B/sqrt2, sqrt2 B],
    each scored by ``score(counts) -> planned bytes``; returns (best counts, its B, tried).

    The lowest score wins, the first on ties. Budgets giving equal counts are scored once;
    ``jobs`` > 1 scores the candidates in that many processes (``optim.parallel``), with the
    same result.
    """
    run_alg3 = alg3_scan(graph, shapes)
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


@collector_paused()
def plan_training(graph: Graph, shapes: Mapping[str, Any], *, grad_req: Mapping[str, str],
                  aux: Sequence[str] = (), dtypes: Mapping[str, str] | None = None,
                  strategy: str | None = None, mirror: str | None = None,
                  budget: str | int | None = None, flags: PlannerFlags | None = None,
                  default_dtype: str = "float32",
                  progress: Progress | None = None) -> tuple[MirrorPlan, NetworkPlan]:
    """Choose a mirror plan and plan memory for it (see the module docstring).

    ``progress`` hears of every joint-graph plan a search makes (a strategy, a budget, the
    sublinear search's candidates); a plan without a search reports nothing.

    Raises:
        MirrorError: a bad strategy or budget, or a budget no plan meets.
    """
    flags = flags or read_flags()
    chosen = resolve_mirror(mirror)
    limit = resolve_budget(budget)
    fwd_shapes = infer_shape(graph, shapes)
    if chosen == "none" and limit is None or flags.no_mirror:
        net = _plan(graph, shapes, grad_req, aux, dtypes, strategy, flags, default_dtype, {})
        return describe("none", graph, fwd_shapes, {}), net
    cost = {n: _flops(n, fwd_shapes) for n in graph.nodes} if None not in fwd_shapes.values() \
        else {}

    hints: list[PlanHints] = []

    def run(counts: Mapping[Node, int]) -> NetworkPlan:
        # every variant of the joint graph names its nodes alike: reuse the first's shapes and
        # dtypes; only the plan evaluate() returns is verified
        net = _plan(graph, shapes, grad_req, aux, dtypes, strategy, flags, default_dtype,
                    counts, hints[0] if hints else None, verify=False)
        if not hints:
            hints.append(PlanHints.of(net, forward=fwd_shapes))
        return net

    def counted(counts: Mapping[Node, int]) -> NetworkPlan:
        if progress is not None:
            progress.add_total(1)
        net = run(counts)
        if progress is not None:
            progress.advance()
        return net

    def evaluate(name: str) -> tuple[MirrorPlan, NetworkPlan]:
        if name != "sublinear":
            counts = apply_attributes(graph, mirror_counts(name, graph))
            return (describe(name, graph, fwd_shapes, counts, cost=cost),
                    _verified(counted(counts)))
        if not stage_groups(graph):
            raise MirrorError("the sublinear plan needs candidate cut points: mark nodes with "
                              "the attribute mirror_stage (e.g. each residual unit's input)")
        kept: list[tuple[Mapping[Node, int], NetworkPlan]] = []  # lowest score planned here

        def score(counts: Mapping[Node, int]) -> int:
            net = run(counts)
            if not kept or net.plan.planned_bytes < kept[0][1].plan.planned_bytes:
                kept[:] = [(counts, net)]
            return net.plan.planned_bytes
        jobs = available_jobs(flags.search_jobs) if len(graph.nodes) >= _FORK_MIN_NODES else 1
        counts, b, tried = search_sublinear(graph, fwd_shapes, score, jobs=jobs,
                                            progress=progress)
        plan = describe("sublinear", graph, fwd_shapes, counts, budget=b, searched=tried,
                        cost=cost)
        if kept and kept[0][0] == counts:
            return plan, _verified(kept[0][1])
        return plan, _verified(counted(counts))  # a child process scored it: plan it here

    if limit is None:
        return evaluate(chosen)
    return _within_budget(graph, limit, evaluate)


def _within_budget(graph: Graph, limit: int, evaluate: Any) -> tuple[MirrorPlan, NetworkPlan]:
    options = []
    for name in MIRROR_STRATEGIES:
        if name == "sublinear" and not stage_groups(graph):
            continue
        mplan, net = evaluate(name)
        options.append((mplan.recompute_flops, net.plan.planned_bytes, mplan, net))
    fitting = [o for o in options if o[1] <= limit]
    if not fitting:
        smallest = min(options, key=lambda o: o[1])
        raise MirrorError(f"memory budget {format_bytes(limit)} cannot be met: the smallest "
                          f"plan found needs {format_bytes(smallest[1])} of activations and "
                          f"gradients (mirror strategy {smallest[2].strategy}, "
                          f"{smallest[1]:,} bytes)")
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
