"""Shared helpers for the planner tests (no torch)."""
from __future__ import annotations

from typing import Sequence

import symbol as sym
from optim.memory import MemoryPlan, entry_bytes, plan_memory
from optim.pipeline import NetworkPlan, default_grad_req, plan_network
from symbol.graph import Entry, Node
from symbol.infer_shape import infer_shape, infer_type


def plan_forward(net: sym.Symbol, shapes: dict, *, order: Sequence[Node] | None = None,
                 **kw) -> MemoryPlan:
    """Plan a forward-only graph."""
    g = net.graph
    s, t = infer_shape(g, shapes), infer_type(g, {})
    return plan_memory(g, entry_bytes(s, t), t, order=order, **kw)


def plan_training(net: sym.Symbol, shapes: dict, strategy: str, **kw) -> NetworkPlan:
    """Plan the joint graph; arguments with given shapes (and labels) get no gradient."""
    reqs = default_grad_req(net.list_arguments(), list(shapes))
    return plan_network(net.graph, shapes, grad_req=reqs,
                        aux=net.list_auxiliary_states(), strategy=strategy, **kw)


def groups(plan: MemoryPlan) -> list[set[str]]:
    """Storage groups as sets of node names (``name:index`` for multi-output nodes)."""
    out: dict[int, set[str]] = {}
    for e, sid in plan.storage.items():
        label = e.node.name if e.node.num_outputs == 1 else f"{e.node.name}:{e.index}"
        out.setdefault(sid, set()).add(label)
    return sorted(out.values(), key=lambda s: sorted(s))


def storage_of(plan: MemoryPlan, node_name: str, index: int = 0) -> int:
    for e, sid in plan.storage.items():
        if e.node.name == node_name and e.index == index:
            return sid
    raise KeyError(node_name)


__all__ = ["plan_forward", "plan_training", "groups", "storage_of", "Entry"]
