"""``sublinear plan``: print a network's static memory plan (and draw its timeline)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

from optim.flags import read_flags
from optim.memory import MemoryPlan
from optim.mirror import MirrorPlan, executed_saved
from optim.parallel import Progress
from optim.pipeline import NetworkPlan, default_grad_req
from optim.search import plan_training
from symbol import Symbol
from symbol.gradient import MIRROR_OF, JointGraph
from symbol.units import format_bytes

from .cliargs import (add_memory_options, add_net_options, image_path, non_negative_int,
                      positive_int)
from .nets import load_net
from ..progress import progress_bar

__all__ = ["add_plan_parser", "plan_table", "format_table", "draw_timeline", "make_plan",
           "planning_inputs", "report_dict", "run_plan"]


def add_plan_parser(sub: Any) -> None:
    """Register ``sublinear plan`` on an argparse subparsers object."""
    p = sub.add_parser("plan", help="print the static memory plan of a network",
                       description="Plan the joint forward+backward graph of NET (a .sym DSL "
                       "file, an MXNet -symbol.json file, or an example name) and print "
                       "planned bytes by class.")
    add_net_options(p)
    add_memory_options(p)
    p.add_argument("--co-share", type=positive_int, default=None, metavar="K",
                   help="co-share colours: no sharing across K parallel paths "
                   "(MXNET_EXEC_NUM_TEMP; default 1 = off)")
    p.add_argument("--optimizer-slots", type=non_negative_int, default=1, metavar="N",
                   help="with --fit: float32 optimizer state arrays per parameter (SGD with "
                   "momentum 1, Adam 2; default 1)")
    p.add_argument("--update-in-backward", action="store_true", default=None,
                   help="plan the optimizer inside the backward pass: each parameter's update "
                   "runs as soon as its gradient is final, so parameter gradients are "
                   "short-lived planned entries (default: SUBLINEAR_UPDATE_IN_BACKWARD)")
    p.add_argument("--saved", action="store_true", help="list every forward node as the "
                   "backward pass uses it: saved, recomputed (how often) or not needed")
    p.add_argument("--json", action="store_true", help="machine-readable output (errors too)")
    p.add_argument("--timeline", metavar="IMAGE", type=image_path,
                   help="draw live bytes along the execution order into IMAGE (.png, .pdf, "
                   ".svg, ...)")
    p.set_defaults(func=run_plan)


def planning_inputs(args: argparse.Namespace
                    ) -> tuple[Symbol, dict[str, Any], dict[str, str]]:
    """The network ``args`` names (``net``, ``param``, ``shape``), its input shapes and the
    gradient requests every planning command uses (data inputs, labels and inputs with a
    declared shape get none)."""
    net, _ = load_net(args.net, dict(args.param))
    shapes: dict[str, Any] = dict(args.shape)
    declared = [v.name for v in net.graph.inputs if "__shape__" in v.attrs]
    return net, shapes, default_grad_req(net.list_arguments(), [*shapes, *declared])


def compute_dtype(net: Symbol, dtype: str) -> tuple[Symbol, str]:
    """(the network to bind, the dtype of its variables) for ``--dtype``: bfloat16 and
    float16 convert it to mixed precision (:func:`symbol.amp.convert_symbol`), with float32
    variables; float32 and float64 leave it as it is."""
    from symbol.amp import LOW_DTYPES, convert_symbol
    if dtype in LOW_DTYPES:
        return convert_symbol(net, dtype), "float32"
    return net, dtype


def make_plan(args: argparse.Namespace,
              progress: Progress | None = None) -> tuple[Symbol, MirrorPlan, NetworkPlan]:
    """Load and plan the network described by ``args``."""
    import dataclasses
    net, shapes, reqs = planning_inputs(args)
    net, default_dtype = compute_dtype(net, getattr(args, "dtype", None) or "float32")
    flags = read_flags()
    if args.co_share is not None:
        flags = dataclasses.replace(flags, num_temp=args.co_share)
    if getattr(args, "update_in_backward", None):
        flags = dataclasses.replace(flags, update_in_backward=True)
    mplan, nplan = plan_training(net.graph, shapes, grad_req=reqs,
                                 aux=net.list_auxiliary_states(), strategy=args.strategy,
                                 mirror=getattr(args, "mirror", None),
                                 budget=getattr(args, "budget", None),
                                 budget_scope=getattr(args, "budget_scope", None), flags=flags,
                                 default_dtype=default_dtype, progress=progress)
    return net, mplan, nplan


def report_dict(plan: MemoryPlan, mirror: MirrorPlan | None = None,
                saved: bool = False, joint: JointGraph | None = None) -> dict[str, Any]:
    """The machine-readable plan report (``saved``: the executed listing, needs ``joint``)."""
    out: dict[str, Any] = {
        "strategy": plan.strategy, "match_range": plan.match_range, "num_temp": plan.num_temp,
        "planned_bytes": plan.planned_bytes, "live_peak_bytes": plan.live_peak_bytes,
        "total_bytes": plan.total_bytes,
        "num_storage": plan.num_storage, "num_inplace": plan.num_inplace,
        "workspace_bytes": plan.workspace_bytes, "step_bytes": plan.step_bytes,
        "bytes_by_class": plan.bytes_by_class(), "num_ops": len(plan.liveness.order),
        "updates_in_backward": len(plan.released)}
    if mirror is not None:
        out.update(mirror=mirror.strategy, recompute_flops=round(mirror.recompute_flops, 4),
                   num_recomputed=mirror.num_recomputed, num_copies=mirror.num_copies,
                   mirror_note=mirror.note, cut_points=mirror.cuts, kept_bytes=mirror.kept_bytes,
                   recomputed_bytes=mirror.recomputed_bytes, mirror_budget=mirror.budget,
                   search=[{"budget": b, "planned_bytes": p} for b, p in mirror.searched])
        if joint is not None:
            out["recompute_ops"] = sum(1 for n in joint.graph.nodes if MIRROR_OF in n.attrs)
        if saved and joint is not None:
            out["saved"] = executed_saved(mirror, joint)
    return out


def format_table(rows: Sequence[tuple[str, ...]], right: int = 1) -> list[str]:
    """Rows as aligned text columns (the first ``right`` left-aligned), two spaces apart, so
    that no two columns run together whatever their width."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) if i < right else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
            for r in rows]


def plan_table(name: str, plan: MemoryPlan, out: TextIO, mirror: MirrorPlan | None = None,
               joint: JointGraph | None = None) -> None:
    """The plan as a table for people: bytes exactly and auto-scaled, per class."""
    rep = report_dict(plan, mirror, joint=joint)
    print(f"network {name}: {rep['num_ops']} ops in the joint graph, strategy "
          f"{plan.strategy} ({plan.settings()})", file=out)
    if mirror is not None:
        ran = rep.get("recompute_ops")
        print(mirror.summary() + ("" if ran is None else
                                  f"; the backward pass runs {ran} recompute ops"), file=out)
    rows = [("class", "bytes", "size")]
    for cls, b in [*rep["bytes_by_class"].items(), ("planned (a+g)", plan.planned_bytes),
                   ("live peak (bound)", plan.live_peak_bytes), ("total", plan.total_bytes),
                   ("workspace (estimate)", plan.workspace_bytes),
                   ("whole step", plan.step_bytes)]:
        rows.append((cls, f"{b:,}", format_bytes(b)))
    for line in format_table(rows):
        print(line, file=out)
    print(f"{plan.num_storage} storages, {plan.num_inplace} in-place", file=out)


def draw_timeline(plan: MemoryPlan, path: str, title: str) -> None:
    """PNG of live planned bytes per class along the execution order, peak marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = plan.timeline()
    steps = list(range(len(rows)))
    fixed_bytes = sum(plan.nbytes.get(e, 0) for e in plan.external)
    peak_bytes = max(fixed_bytes + r["activations"] + r["gradients"] for r in rows)
    # the axis in the unit format_bytes would give the peak: "peak 12.3 MiB", not "0.01 GiB"
    unit = format_bytes(peak_bytes).split()[-1]
    scale = float(2 ** (10 * ["B", "KiB", "MiB", "GiB", "TiB", "PiB"].index(unit)))
    fixed = fixed_bytes / scale
    act = [r["activations"] / scale for r in rows]
    grad = [r["gradients"] / scale for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.stackplot(steps, [fixed] * len(rows), act, grad,
                 labels=["bound arrays (params, grads, inputs, aux)", "activations",
                         "intermediate gradients"], alpha=0.8)
    total = [fixed + a + g for a, g in zip(act, grad)]
    peak = max(range(len(total)), key=total.__getitem__)
    ax.annotate(f"peak {format_bytes(peak_bytes)}", (peak, total[peak]),
                xytext=(0.6, 0.92), textcoords="axes fraction",
                arrowprops=dict(arrowstyle="->"))
    recompute = [i for i, n in enumerate(plan.liveness.order) if MIRROR_OF in n.attrs]
    for i in recompute:
        ax.axvspan(i - 0.5, i + 0.5, color="tab:red", alpha=0.15, lw=0)
    if recompute:
        ax.plot([], [], color="tab:red", alpha=0.3, lw=6, label="recompute")
    ax.set_xlabel("execution step (joint graph order)")
    ax.set_ylabel(f"live bytes ({unit})")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_plan(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``sublinear plan``."""
    out = out or sys.stdout
    if args.fit is not None:
        return run_fit(args, out)
    with progress_bar("planning", quiet=args.json) as bar:
        net, mplan, nplan = make_plan(args, bar)
    plan = nplan.plan
    if args.timeline:
        draw_timeline(plan, args.timeline, f"{Path(args.net).stem}: {plan.strategy}, "
                                           f"mirror {mplan.strategy}")
    if args.json:
        print(json.dumps(report_dict(plan, mplan, saved=args.saved, joint=nplan.joint),
                         indent=2), file=out)
    else:
        plan_table(Path(args.net).stem, plan, out, mplan, nplan.joint)
        if args.saved:
            print(mplan.print_saved(executed_saved(mplan, nplan.joint)), file=out)
    return 0


def search_fit(args: argparse.Namespace) -> Any:
    """The ``--fit`` search (:func:`optim.fit.fit_plan`) for the network ``args`` names."""
    from optim.fit import fit_plan
    net, shapes, reqs = planning_inputs(args)
    full = dict(shapes)
    args_shapes, _, _ = net.infer_shape_partial(**shapes)
    for name, shape in zip(net.list_arguments(), args_shapes, strict=True):
        if reqs.get(name) == "null" and shape is not None and not name.endswith("label"):
            full.setdefault(name, tuple(shape))
    return fit_plan(net, full, budget=int(args.fit), grad_req=reqs,
                    aux=net.list_auxiliary_states(), optimizer_slots=args.optimizer_slots)


def fit_dict(result: Any) -> dict[str, Any]:
    """The machine-readable ``--fit`` report."""
    def row(c: Any) -> dict[str, Any]:
        return {"dtype": c.dtype, "microbatch": c.microbatch, "mirror": c.mirror,
                "step_bytes": c.step_bytes, "recompute": round(c.recompute, 4),
                "predicted_s": None if c.seconds == float("inf") else c.seconds,
                "fits": c.fits, "note": c.note}
    return {"budget": result.budget, "chosen": row(result.chosen),
            "baseline_bytes": result.baseline_bytes,
            "reduction": round(result.reduction, 2),
            "candidates": [row(c) for c in result.candidates]}


def run_fit(args: argparse.Namespace, out: TextIO) -> int:
    """``sublinear plan NET --fit SIZE``: the choice, then every alternative weighed."""
    result = search_fit(args)
    if args.json:
        print(json.dumps(fit_dict(result), indent=2), file=out)
        return 0
    print(result.summary(), file=out)
    rows = [("dtype", "microbatches", "mirror", "whole step", "recompute", "predicted",
             "fits")]
    for c in result.candidates:
        rows.append((c.dtype, str(c.microbatch), c.mirror,
                     format_bytes(c.step_bytes) if c.step_bytes else "-",
                     f"+{100 * c.recompute:.0f}%" if c.step_bytes else "-",
                     f"{1e3 * c.seconds:.2f} ms" if c.seconds != float("inf") else "-",
                     ("yes" if c.fits else "no") + (" *" if c is result.chosen else "")))
    for line in format_table(rows, right=3):
        print(line, file=out)
    print(f"float32 without planning (strategy none): {format_bytes(result.baseline_bytes)}; "
          "predicted times: a model (docs/precision.md)", file=out)
    return 0
