"""Baseline recomputation plans: uniform checkpointing, as PyTorch's ``checkpoint_sequential``.

``uniform_counts(graph, groups, segments)`` gives the mirror counts (paper Alg. 2) of
``torch.utils.checkpoint.checkpoint_sequential(model, segments, input)`` applied to the chain
of stages between candidate cut groups; ``plan_uniform`` plans them exactly (the planned bytes
and the extra forward FLOPs of what the joint graph recomputes), through the same pipeline as
``optim.search.plan_training``. ``plan_with_counts`` plans any given counts the same way.

Algorithm:
  1. the candidate cut groups G_0 .. G_{K-1} (``optim.mirror.cut_groups``) split the
     recomputable forward nodes (``optim.mirror.eligible``) into K stages, as
     ``optim.optimal.stage_model`` does: stage k ends with the last node of G_k; the nodes after
     G_{K-1} (the loss head) join the last stage;
  2. s = min(segments, K) pieces, split as ``checkpoint_sequential`` splits its modules:
     ``size = K // s`` stages each, the last piece takes the rest (K - (s - 1) * size stages)
     and the head;
  3. the cut group that ends each of the first s - 1 pieces is kept (count 0): it is the next
     piece's input, what ``checkpoint`` stores; every other node of those pieces is recomputed
     once (count 1) from the previous piece's kept group while the piece's backward runs; the
     last piece is stored whole (count 0), as ``checkpoint_sequential`` runs it without
     checkpointing;
  4. ``__force_mirroring__`` attributes override the counts, as for every strategy
     (``optim.mirror.apply_attributes``);
  5. ``plan_uniform``: Alg. 2 builds the joint graph from the counts and the exact planner plans
     it (``optim.pipeline.plan_network``); ``optim.mirror.describe`` reads the copies and their
     FLOPs off the joint graph.
Legality: the counts are of the kind every strategy gives Alg. 2 (variables, loss heads,
backward ops and graph outputs are never counted: only ``eligible`` nodes are); a kept boundary
is a whole cut group, a cut of the recompute dependencies, so a piece's recomputation starts
from the kept group and never reaches into an earlier piece. Counterexample avoided: keeping a
single node of an LSTM step's group (h without c) is no cut: the next piece's recomputation
would reach back through c into the earlier piece, recomputing it a second time.
Complexity: ``uniform_counts`` O(nodes); ``plan_uniform`` one joint-graph plan (O(nodes of
the joint graph) plus the memory planner's cost).
Invariant: the plan is the exact planner's, so ``check_mirror_plan(joint, plan.counts)`` and
``check_memory_plan`` hold; every node ``uniform_counts`` recomputes has at most one copy.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from symbol.graph import Graph, Node
from symbol.infer_shape import infer_shape

from .flags import PlannerFlags
from .mirror import (MirrorError, MirrorPlan, apply_attributes, describe, eligible,
                     forward_flops, has_marks)
from .pipeline import NetworkPlan, PlanHints, plan_network

__all__ = ["uniform_counts", "uniform_pieces", "plan_uniform", "plan_with_counts"]


def uniform_pieces(num_groups: int, segments: int) -> list[tuple[int, int]]:
    """The pieces of step 2 as (first stage, end stage) over ``num_groups`` stages.

    Raises:
        MirrorError: ``segments`` < 1.
    """
    if segments < 1:
        raise MirrorError(f"uniform checkpointing needs at least 1 segment, got {segments}")
    if num_groups == 0:
        return []
    s = min(segments, num_groups)
    size = num_groups // s
    ends = [j * size for j in range(1, s)] + [num_groups]
    return list(zip([0, *ends[:-1]], ends, strict=True))


def uniform_counts(graph: Graph, groups: Sequence[Sequence[Node]],
                   segments: int) -> dict[Node, int]:
    """Mirror counts of uniform checkpointing in ``segments`` pieces (see the module docstring).

    ``groups``: the candidate cut groups in forward order (``optim.mirror.cut_groups``). With
    one segment, or no groups, nothing is recomputed.

    Raises:
        MirrorError: ``segments`` < 1.
    """
    pieces = uniform_pieces(len(groups), segments)
    if len(pieces) < 2:
        return {}
    # step 3: the groups ending the first s - 1 pieces are kept; the last piece starts after
    # the last of them
    kept = {n for _, end in pieces[:-1] for n in groups[end - 1]}
    last_boundary = groups[pieces[-1][0] - 1][-1]
    counts: dict[Node, int] = {}
    for n in eligible(graph):  # forward order
        if n not in kept:
            counts[n] = 1
        if n is last_boundary:
            break
    # step 4: attributes override
    return apply_attributes(graph, counts)


def plan_with_counts(graph: Graph, shapes: Mapping[str, Any], counts: Mapping[Node, int], *,
                     grad_req: Mapping[str, str], aux: Sequence[str] = (),
                     dtypes: Mapping[str, str] | None = None, strategy: str | None = None,
                     flags: PlannerFlags | None = None, default_dtype: str = "float32",
                     hints: PlanHints | None = None, name: str = "counts",
                     note: str = "") -> tuple[MirrorPlan, NetworkPlan]:
    """Plan the mirror counts ``counts`` exactly and describe what the joint graph recomputes.

    The arguments are ``plan_training``'s (``hints``: from a plan of the same network, see
    ``PlanHints``); ``name`` is the MirrorPlan's strategy label, ``note`` its note.

    Raises:
        SymbolError: a user error (shapes, strategy, environment values).
    """
    forward = hints.forward if hints is not None and hints.forward is not None else None
    fwd_shapes = forward if forward is not None else infer_shape(graph, shapes)
    net = plan_network(graph, shapes, grad_req=grad_req, aux=aux, dtypes=dtypes,
                       strategy=strategy, flags=flags, default_dtype=default_dtype,
                       mirror=counts, hints=hints)
    cuts = ("marks" if has_marks(graph) else "automatic") if counts else ""
    plan = describe(name, graph, fwd_shapes, net.joint, requested=counts,
                    cost=forward_flops(graph, fwd_shapes), note=note, cuts=cuts)
    return plan, net


def plan_uniform(graph: Graph, shapes: Mapping[str, Any], groups: Sequence[Sequence[Node]],
                 segments: int, *, grad_req: Mapping[str, str], aux: Sequence[str] = (),
                 dtypes: Mapping[str, str] | None = None, strategy: str | None = None,
                 flags: PlannerFlags | None = None, default_dtype: str = "float32",
                 hints: PlanHints | None = None) -> tuple[MirrorPlan, NetworkPlan]:
    """Uniform checkpointing in ``segments`` pieces, planned exactly (``plan_with_counts``).

    ``groups``: the candidate cut groups (``optim.mirror.cut_groups(graph, forward shapes)``,
    what the other strategies use). The MirrorPlan's strategy is ``uniform``; its note gives the
    pieces (``s x size`` stages, last piece ``r``).

    Raises:
        MirrorError: ``segments`` < 1. SymbolError: as ``plan_with_counts``.
    """
    pieces = uniform_pieces(len(groups), segments)
    note = ""
    if pieces:
        size, last = pieces[0][1] - pieces[0][0], pieces[-1][1] - pieces[-1][0]
        note = (f"{len(pieces)} segments of {size} cut groups (the last {last}, stored)"
                if len(pieces) > 1 else "1 segment: nothing recomputed")
    counts = uniform_counts(graph, groups, segments)
    return plan_with_counts(graph, shapes, counts, grad_req=grad_req, aux=aux, dtypes=dtypes,
                            strategy=strategy, flags=flags, default_dtype=default_dtype,
                            hints=hints, name="uniform", note=note)
