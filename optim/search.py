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
Complexity: one joint-graph plan per strategy, seven for the sublinear search.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Mapping, Sequence

from symbol.graph import Entry, Graph, Node
from symbol.infer_shape import infer_shape, shape_hints

from .flags import PlannerFlags, read_flags
from .mirror import (MIRROR_STRATEGIES, MirrorError, MirrorPlan, alg3, apply_attributes,
                     describe, drop_cheap, parse_bytes, recursive_counts, resolve_mirror,
                     stage_groups)
from .pipeline import NetworkPlan, plan_network

__all__ = ["plan_training", "search_sublinear", "mirror_counts", "resolve_budget"]

log = logging.getLogger(__name__)


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


def search_sublinear(graph: Graph, shapes: Mapping[Entry, Any],
                     score: Any) -> tuple[dict[Node, int], int, list[tuple[int, int]]]:
    """Appendix A: B = sqrt(x y) from Alg. 3 at B = 0, then 6 budgets on [B/sqrt2, sqrt2 B],
    each scored by ``score(counts) -> planned bytes``; returns (best counts, its B, tried)."""
    _, x, y = alg3(graph, shapes, 0)
    guess = math.sqrt(x * y)
    budgets = [guess / math.sqrt(2) + i * (math.sqrt(2) - 1 / math.sqrt(2)) * guess / 5
               for i in range(6)]
    tried: list[tuple[int, int]] = []
    best: tuple[int, dict[Node, int], int] | None = None
    for b in budgets:
        counts = apply_attributes(graph, alg3(graph, shapes, b)[0])
        planned = score(counts)
        tried.append((int(b), planned))
        if best is None or planned < best[0]:
            best = (planned, counts, int(b))
    assert best is not None
    return best[1], best[2], tried


def resolve_budget(budget: str | int | None, env: Mapping[str, str] | None = None) -> int | None:
    """Bytes of the memory budget: the argument, else ``SUBLINEAR_MEMORY_BUDGET``, else None."""
    env = os.environ if env is None else env
    if budget is None:
        text = env.get("SUBLINEAR_MEMORY_BUDGET", "").strip()
        return parse_bytes(text) if text else None
    return budget if isinstance(budget, int) else parse_bytes(budget)


def plan_training(graph: Graph, shapes: Mapping[str, Any], *, grad_req: Mapping[str, str],
                  aux: Sequence[str] = (), dtypes: Mapping[str, str] | None = None,
                  strategy: str | None = None, mirror: str | None = None,
                  budget: str | int | None = None, flags: PlannerFlags | None = None,
                  default_dtype: str = "float32") -> tuple[MirrorPlan, NetworkPlan]:
    """Choose a mirror plan and plan memory for it (see the module docstring).

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

    hints: dict[str, Any] = {}

    def run(counts: Mapping[Node, int]) -> NetworkPlan:
        # every variant of the joint graph names its nodes alike: reuse the first's shapes
        net = _plan(graph, shapes, grad_req, aux, dtypes, strategy, flags, default_dtype,
                    counts, hints)
        if not hints:
            hints.update(shape_hints(net.joint.graph, net.shapes))
        return net

    def evaluate(name: str) -> tuple[MirrorPlan, NetworkPlan]:
        if name != "sublinear":
            counts = apply_attributes(graph, mirror_counts(name, graph))
            return describe(name, graph, fwd_shapes, counts, cost=cost), run(counts)
        if not stage_groups(graph):
            raise MirrorError("the sublinear plan needs candidate cut points: mark nodes with "
                              "the attribute mirror_stage (e.g. each residual unit's input)")
        plans: dict[int, NetworkPlan] = {}

        def score(counts: Mapping[Node, int]) -> int:
            net = run(counts)
            plans[id(counts)] = net
            return net.plan.planned_bytes
        counts, b, tried = search_sublinear(graph, fwd_shapes, score)
        plan = describe("sublinear", graph, fwd_shapes, counts, budget=b, searched=tried,
                        cost=cost)
        return plan, plans[id(counts)]

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
        raise MirrorError(f"memory budget {limit / 2**30:.2f} GiB cannot be met: the smallest "
                          f"plan found needs {smallest[1] / 2**30:.2f} GiB of activations and "
                          f"gradients (mirror strategy {smallest[2].strategy})")
    _, _, mplan, net = min(fitting, key=lambda o: (o[0], o[1]))
    log.info("budget %.2f GiB: chose %s", limit / 2**30, mplan.summary())
    return mplan, net


def _plan(graph: Graph, shapes: Mapping[str, Any], grad_req: Mapping[str, str],
          aux: Sequence[str], dtypes: Mapping[str, str] | None, strategy: str | None,
          flags: PlannerFlags, default_dtype: str, counts: Mapping[Node, int],
          hints: Mapping[str, Any] | None = None) -> NetworkPlan:
    return plan_network(graph, shapes, grad_req=grad_req, aux=aux, dtypes=dtypes,
                        strategy=strategy, flags=flags, default_dtype=default_dtype,
                        mirror=counts, hints=hints or None)
