"""Human and machine reports of an executor's memory: plan, classes, measured peak."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from symbol.graph import Entry, format_node
from symbol.units import format_bytes

if TYPE_CHECKING:
    from .executor import Executor

__all__ = ["debug_str", "memory_report", "workspace_estimate"]

MiB = 2**20


def workspace_estimate(exe: Executor) -> int:
    """Bytes of the largest operator temporary (``MemoryPlan.workspace_bytes``: an estimate;
    cuDNN/cuBLAS add their own)."""
    return exe.plan.workspace_bytes


def memory_report(exe: Executor) -> dict[str, Any]:
    """Planned bytes by class and totals; with CUDA, the last measured training-step peak.

    ``planned_bytes`` is the paper's panel-(a) quantity: activations + intermediate gradients
    (no parameters, parameter gradients or workspace).
    """
    plan = exe.plan
    classes = plan.bytes_by_class()
    # gradients copied into grad_dict (grad_req 'add', or shared entries) are arrays too
    classes["parameter_gradients"] += sum(
        t.numel() * t.element_size() for n, t in exe.grad_dict.items()
        if not any(exe._buffers.get(e) is t for e in exe._owned))
    work = workspace_estimate(exe)
    total = sum(classes.values()) + work
    report: dict[str, Any] = {
        "strategy": plan.strategy, "match_range": plan.match_range, "num_temp": plan.num_temp,
        "planned_bytes": plan.planned_bytes, "num_storage": plan.num_storage,
        "num_inplace": plan.num_inplace, "bytes_by_class": classes,
        "workspace_estimate": work, "total_bytes": total, "device": str(exe.device),
    }
    peak = exe.last_step_peak
    if peak is not None:
        # everything on the device at the step's peak vs everything the plan accounts for
        report["measured_step_peak"] = peak
        report["measured_workspace"] = exe.last_step_workspace
        report["measured_over_plan"] = round(peak / max(total - work, 1), 4)
    return report


def debug_str(exe: Executor) -> str:
    """The executed graph (shapes, storage ids, in-place), then MXNet's allocation total."""
    plan = exe.plan
    lines = [f"Symbol outputs: {', '.join(exe.symbol.list_outputs())}",
             f"Memory strategy: {plan.strategy} ({plan.settings()})"]
    for node in plan.liveness.order:
        outs = []
        for i in range(node.num_outputs):
            e = Entry(node, i)
            where = (f"sid={plan.storage[e]}@{plan.offsets[plan.storage[e]]}"
                     if e in plan.storage
                     else "bound" if e in plan.external else "skipped")
            if e in plan.inplace:
                where += f" inplace:{plan.inplace[e].node.name}"
            outs.append(f"{exe.shapes[e]} {where}")
        lines.append(f"{format_node(node)}  -> {'; '.join(outs)}")
    rep = memory_report(exe)
    by_class = rep["bytes_by_class"].items()
    lines.append("Bytes by class: " + ", ".join(f"{k} {format_bytes(v)}" for k, v in by_class))
    # MXNet's own closing line, word for word (its "MB" are MiB), for side-by-side comparison
    lines.append(f"Total {plan.planned_bytes / MiB:.0f} MB allocated "
                 f"({plan.num_storage} storages, {plan.num_inplace} in-place)")
    return "\n".join(lines)
