"""Fit a training step into a byte budget with every lever at once: compute dtype,
microbatch count and recompute plan, chosen together (``sublinear plan NET --fit SIZE``).

Algorithm: for each compute dtype (float32; bfloat16 mixed precision, :mod:`symbol.amp`) and
each microbatch count K that divides the batch (powers of two, 1 .. batch), plan the slice of
``batch / K`` samples (1) without recomputation and, when that does not fit, (2) with the
byte-budget planner (``mirror optimal``) at the bytes left for it. A candidate's whole step is

    plan.step_bytes (arena, parameters, parameter gradients the backward pass writes, inputs,
    auxiliary states, the largest operator workspace)
    + the accumulated gradient arrays when K > 1 (``grad_req='add'``, one per parameter)
    + the optimizer state (``optimizer_slots`` float32 copies of the parameters)

(parameters are float32 in every dtype: they are the master weights). With K = 1 the update
runs inside the backward pass (``update_in_backward``), as ``train`` does by default. The
predicted step time is a model, documented in :class:`TimeModel`: floating-point work
(forward, backward = 2 forwards, recomputation) at a device rate, low precision at
``low_speedup`` times it, plus a fixed cost per operator call for every slice. The fastest
candidate that fits wins; ties go to fewer bytes.

Legality: every candidate is an exact plan (the planners' checkers hold for each); a
microbatch of BatchNorm networks normalises per slice (see docs/precision.md), which the
report states. Complexity: 2 dtypes x (log2(batch) + 1) counts x (one plan + one budget
search).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

from symbol.amp import convert_symbol
from symbol.errors import SymbolError
from symbol.graph import Graph
from symbol.symbol import Symbol
from symbol.units import format_bytes

from .flags import PlannerFlags, read_flags
from .mirror import MirrorError, forward_flops

__all__ = ["FitCandidate", "FitResult", "TimeModel", "fit_plan", "FitError"]

log = logging.getLogger(__name__)

DTYPES = ("float32", "bfloat16")


class FitError(MirrorError):
    """No combination fits the budget (the message names the smallest step found)."""


@dataclass(frozen=True)
class TimeModel:
    """The predicted step time: ``(3 + recompute) * forward_flops / (flops_per_s * speedup)
    + slices * ops * op_overhead_s``. Defaults describe a current datacentre GPU: 50 TFLOP/s
    in float32, twice that in bfloat16 (its matrix units), 10 us per operator call. Only the
    ranking of candidates uses it."""

    flops_per_s: float = 50e12
    low_speedup: float = 2.0
    op_overhead_s: float = 10e-6

    def seconds(self, forward_flops: float, recompute: float, dtype: str, slices: int,
                ops: int) -> float:
        speed = self.flops_per_s * (self.low_speedup if dtype != "float32" else 1.0)
        return (3.0 + recompute) * forward_flops / speed + slices * ops * self.op_overhead_s


@dataclass(frozen=True)
class FitCandidate:
    """One combination weighed. ``step_bytes`` is the whole step (see the module docstring);
    ``recompute`` is extra forward work as a fraction of one forward; ``fits``: within the
    budget; ``note``: why it was not planned, or what the planner said."""

    dtype: str
    microbatch: int
    mirror: str
    step_bytes: int
    recompute: float
    seconds: float
    fits: bool
    note: str = ""
    plan: Any = field(default=None, repr=False, compare=False)  # (MirrorPlan, NetworkPlan)
    inputs: Any = field(default=None, repr=False, compare=False)  # (graph, shapes, grad_req)


@dataclass(frozen=True)
class FitResult:
    """The chosen candidate, every candidate weighed, and the float32 ``none`` baseline's
    whole step (the reduction is measured against it)."""

    budget: int
    chosen: FitCandidate
    candidates: tuple[FitCandidate, ...]
    baseline_bytes: int

    @property
    def reduction(self) -> float:
        return self.baseline_bytes / max(self.chosen.step_bytes, 1)

    def summary(self) -> str:
        c = self.chosen
        return (f"fit {format_bytes(self.budget)}: {c.dtype}, {c.microbatch} microbatch(es), "
                f"mirror {c.mirror}: {format_bytes(c.step_bytes)} "
                f"({self.reduction:.1f}x below float32 without planning), "
                f"+{100 * c.recompute:.0f}% forward")


Planner = Callable[..., Any]


def fit_plan(symbol: Symbol, shapes: Mapping[str, tuple[int, ...]], *, budget: int,
             grad_req: Mapping[str, str], aux: Sequence[str] = (), optimizer_slots: int = 1,
             flags: PlannerFlags | None = None, model: TimeModel | None = None,
             dtypes: Sequence[str] = DTYPES, plan: Planner | None = None) -> FitResult:
    """Search {dtype, microbatch count, recompute plan} for the fastest predicted step whose
    whole step fits ``budget`` bytes (see the module docstring).

    Args:
        symbol: the float32 network. shapes: input shapes of the whole batch (every input
            whose first axis is the batch is sliced for microbatches).
        budget: bytes. grad_req, aux: as for planning (``write`` gradients are the
            parameters). optimizer_slots: float32 state arrays per parameter (SGD with
            momentum 1, Adam 2). flags: planner settings. model: the time model.
        plan: the planner (``optim.search.plan_training``; injectable for tests).

    Raises:
        FitError: nothing fits; the message names the smallest whole step found.
    """
    from .search import plan_training
    plan = plan or plan_training
    flags = flags or read_flags()
    model = model or TimeModel()
    batch = _batch(shapes)
    params = [n for n, r in grad_req.items() if r == "write"]
    candidates: list[FitCandidate] = []
    baseline = None
    for dtype in dtypes:
        net = symbol if dtype == "float32" else convert_symbol(symbol, dtype)
        for k in _counts(batch):
            sliced = {n: ((s[0] // k,) + tuple(s[1:]) if s and s[0] == batch else s)
                      for n, s in shapes.items()}
            reqs = dict(grad_req) if k == 1 else {n: "add" if r == "write" else r
                                                  for n, r in grad_req.items()}
            fl = replace(flags, update_in_backward=k == 1)
            first = _try(plan, net.graph, sliced, reqs, aux, fl, "none", None)
            if isinstance(first, str):
                candidates.append(FitCandidate(dtype, k, "none", 0, 0.0, math.inf, False, first))
                continue
            param_bytes = _param_bytes(first[1], params)
            extra = param_bytes * optimizer_slots + (param_bytes if k > 1 else 0)
            ops = len(first[1].plan.liveness.order)
            flops = _forward_flops(net.graph, first[1].shapes) * k
            if dtype == "float32" and k == 1:
                base = _try(plan, symbol.graph, shapes, grad_req, aux,
                            replace(flags, update_in_backward=False), "none", None,
                            strategy="none")
                baseline = (base[1].plan.step_bytes + param_bytes * optimizer_slots
                            if not isinstance(base, str) else None)
            step = first[1].plan.step_bytes + extra
            candidates.append(FitCandidate(dtype, k, "none", step, 0.0,
                                           model.seconds(flops, 0.0, dtype, k, ops),
                                           step <= budget, plan=first,
                                           inputs=(net.graph, sliced, reqs)))
            if step <= budget:
                continue
            got = _try(plan, net.graph, sliced, reqs, aux, fl, "optimal", budget - extra)
            if isinstance(got, str):
                candidates.append(FitCandidate(dtype, k, "optimal", 0, 0.0, math.inf, False,
                                               got))
                continue
            mplan, nplan = got
            step = nplan.plan.step_bytes + extra
            r = float(mplan.recompute_flops)
            candidates.append(FitCandidate(dtype, k, "optimal", step, r,
                                           model.seconds(flops, r, dtype, k,
                                                         len(nplan.plan.liveness.order)),
                                           step <= budget, mplan.note, plan=got))
    fitting = [c for c in candidates if c.fits]
    if not fitting:
        raise FitError(f"no combination of dtype, microbatches and recomputation fits "
                       f"{format_bytes(budget)}{_smallest(candidates, plan, aux, flags)}")
    chosen = min(fitting, key=lambda c: (c.seconds, c.step_bytes))
    return FitResult(budget, chosen, tuple(candidates),
                     baseline if baseline is not None else chosen.step_bytes)


def _try(plan: Planner, graph: Graph, shapes: Mapping[str, Any], reqs: Mapping[str, str],
         aux: Sequence[str], flags: PlannerFlags, mirror: str, budget: int | None,
         strategy: str | None = None) -> Any:
    """``plan(...)``, or the planner's message (a string) when it cannot."""
    got = _attempt(plan, graph, shapes, reqs, aux, flags, mirror, budget, strategy)
    return str(got).split("\n", 1)[0] if isinstance(got, Exception) else got


def _attempt(plan: Planner, graph: Graph, shapes: Mapping[str, Any], reqs: Mapping[str, str],
             aux: Sequence[str], flags: PlannerFlags, mirror: str, budget: int | None,
             strategy: str | None = None) -> Any:
    if budget is not None and budget <= 0:
        return FitError("nothing left for activations after parameters and optimizer state")
    try:
        return plan(graph, shapes, grad_req=reqs, aux=aux, mirror=mirror, budget=budget,
                    budget_scope="step" if budget is not None else None, flags=flags,
                    strategy=strategy)
    except SymbolError as e:
        return e


def _smallest(candidates: Sequence[FitCandidate], plan: Planner, aux: Sequence[str],
              flags: PlannerFlags) -> str:
    """``; the smallest step that fits is ...``: the byte-budget planner asked for the least
    it can do on the combination whose plain plan is smallest."""
    plain = [c for c in candidates if c.mirror == "none" and c.plan is not None]
    if not plain:
        return ""
    c = min(plain, key=lambda c: c.step_bytes)
    net = c.plan[1]
    extra = c.step_bytes - net.plan.step_bytes
    fixed = net.plan.step_bytes - net.plan.planned_bytes
    graph, shapes, reqs = c.inputs
    got = _attempt(plan, graph, shapes, reqs, aux,
                   replace(flags, update_in_backward=c.microbatch == 1), "optimal", fixed + 1)
    least = getattr(got, "smallest", None)
    step = extra + least if least is not None else c.step_bytes
    return (f"; the smallest step found is {format_bytes(step)} ({c.dtype}, "
            f"{c.microbatch} microbatch(es), mirror {'optimal' if least else 'none'})")


def _batch(shapes: Mapping[str, tuple[int, ...]]) -> int:
    firsts = [s[0] for s in shapes.values() if s]
    if not firsts:
        raise FitError("--fit needs the input shapes (the batch is their first axis)")
    return max(set(firsts), key=firsts.count)


def _counts(batch: int) -> list[int]:
    """Microbatch counts: powers of two that divide ``batch``, 1 first."""
    out, k = [], 1
    while k <= batch and batch % k == 0:
        out.append(k)
        k *= 2
    return out


def _param_bytes(net: Any, params: Sequence[str]) -> int:
    """Bytes of the parameters (float32 arrays) of a planned network."""
    by_name = {v.name: v for v in net.joint.graph.inputs}
    total = 0
    from symbol.graph import Entry
    for name in params:
        v = by_name.get(name)
        if v is not None:
            total += net.plan.nbytes.get(Entry(v, 0), 0)
    return total


def _forward_flops(graph: Graph, shapes: Mapping[Any, Any]) -> float:
    """FLOPs of one forward pass of the (slice's) forward graph."""
    return float(sum(forward_flops(graph, shapes).values()))
