"""``sublinear plan``: print a network's static memory plan (and draw its timeline)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from optim.flags import read_flags
from optim.memory import STRATEGIES, MemoryPlan
from optim.mirror import MIRROR_STRATEGIES, MirrorPlan
from optim.pipeline import NetworkPlan, default_grad_req
from optim.search import plan_training
from symbol.gradient import MIRROR_OF

from .cliargs import param_arg, shape_arg
from symbol import Symbol, SymbolError

__all__ = ["add_plan_parser", "load_net", "plan_table", "draw_timeline", "make_plan",
           "report_dict", "run_plan"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GiB, MiB = 2**30, 2**20


def load_net(spec: str, params: dict[str, Any]) -> Symbol:
    """A network from a DSL file, an MXNet symbol JSON file or an example name
    (``mlp``, ``resnet``, ``lstm``, ``inception`` = ``examples/<name>.sym``)."""
    import symbol as sym
    path = Path(spec)
    if not path.exists() and (EXAMPLES / f"{spec}.sym").exists():
        path = EXAMPLES / f"{spec}.sym"
    if not path.exists():
        raise SymbolError(f"no such network file or example: {spec}")
    if path.suffix == ".json":
        if params:
            raise SymbolError("--param applies to DSL files, not to MXNet JSON")
        return sym.load_json(str(path))
    return sym.load(str(path), params=params)


def add_plan_parser(sub: Any) -> None:
    """Register ``sublinear plan`` on an argparse subparsers object."""
    p = sub.add_parser("plan", help="print the static memory plan of a network",
                       description="Plan the joint forward+backward graph of NET (a .sym DSL "
                       "file, an MXNet -symbol.json file, or an example name) and print "
                       "planned bytes by class.")
    p.add_argument("net")
    p.add_argument("--param", type=param_arg, action="append", default=[], metavar="K=V",
                   help="override a net parameter (repeatable): units=3,24,36,3")
    p.add_argument("--shape", type=shape_arg, action="append", default=[],
                   metavar="NAME=D1,D2", help="input shape (repeatable): data=32,3,224,224")
    p.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="memory strategy (default: from the environment, else sharing)")
    p.add_argument("--co-share", type=int, default=None, metavar="K",
                   help="co-share colours (MXNET_EXEC_NUM_TEMP)")
    p.add_argument("--mirror", choices=MIRROR_STRATEGIES, default=None,
                   help="recompute strategy (default: SUBLINEAR_MIRROR, "
                   "MXNET_BACKWARD_DO_MIRROR=1 = drop-cheap, else none)")
    p.add_argument("--budget", default=None, metavar="SIZE",
                   help="memory budget for activations + gradients, e.g. 3GB "
                   "(default: SUBLINEAR_MEMORY_BUDGET); picks the cheapest plan that fits")
    p.add_argument("--saved", action="store_true", help="list every node: kept or recomputed")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--timeline", metavar="PNG", help="draw live bytes along the execution order")
    p.set_defaults(func=run_plan)


def make_plan(args: argparse.Namespace) -> tuple[Symbol, MirrorPlan, NetworkPlan]:
    """Load and plan the network described by ``args``."""
    import dataclasses
    net = load_net(args.net, dict(args.param))
    shapes: dict[str, Any] = dict(args.shape)
    flags = read_flags()
    if args.co_share is not None:
        if args.co_share < 1:
            raise SymbolError("--co-share must be >= 1")
        flags = dataclasses.replace(flags, num_temp=args.co_share)
    declared = [v.name for v in net.graph.inputs if "__shape__" in v.attrs]
    reqs = default_grad_req(net.list_arguments(), [*shapes, *declared])
    mplan, nplan = plan_training(net.graph, shapes, grad_req=reqs,
                                 aux=net.list_auxiliary_states(), strategy=args.strategy,
                                 mirror=getattr(args, "mirror", None),
                                 budget=getattr(args, "budget", None), flags=flags)
    return net, mplan, nplan


def report_dict(plan: MemoryPlan, mirror: MirrorPlan | None = None,
                saved: bool = False) -> dict[str, Any]:
    """The machine-readable plan report."""
    out: dict[str, Any] = {
        "strategy": plan.strategy, "match_range": plan.match_range, "num_temp": plan.num_temp,
        "planned_bytes": plan.planned_bytes, "total_bytes": plan.total_bytes,
        "num_storage": plan.num_storage, "num_inplace": plan.num_inplace,
        "bytes_by_class": plan.bytes_by_class(), "num_ops": len(plan.liveness.order)}
    if mirror is not None:
        out.update(mirror=mirror.strategy, recompute_flops=round(mirror.recompute_flops, 4),
                   num_recomputed=len(mirror.recomputed), kept_bytes=mirror.kept_bytes,
                   recomputed_bytes=mirror.recomputed_bytes, mirror_budget=mirror.budget,
                   search=[{"budget": b, "planned_bytes": p} for b, p in mirror.searched])
        if saved:
            out["saved"] = mirror.saved()
    return out


def plan_table(name: str, plan: MemoryPlan, out: TextIO,
               mirror: MirrorPlan | None = None) -> None:
    """The plan as a table for people."""
    rep = report_dict(plan)
    print(f"network {name}: {rep['num_ops']} ops in the joint graph, strategy "
          f"{plan.strategy} (match range {plan.match_range}, co-share {plan.num_temp})", file=out)
    if mirror is not None:
        print(mirror.summary(), file=out)
    print(f"{'class':<22}{'MiB':>12}{'GiB':>10}", file=out)
    for cls, b in rep["bytes_by_class"].items():
        print(f"{cls:<22}{b / MiB:>12.1f}{b / GiB:>10.3f}", file=out)
    print(f"{'planned (a+g)':<22}{plan.planned_bytes / MiB:>12.1f}"
          f"{plan.planned_bytes / GiB:>10.3f}", file=out)
    print(f"{'total':<22}{plan.total_bytes / MiB:>12.1f}{plan.total_bytes / GiB:>10.3f}",
          file=out)
    print(f"{plan.num_storage} storages, {plan.num_inplace} in-place", file=out)


def draw_timeline(plan: MemoryPlan, path: str, title: str) -> None:
    """PNG of live planned bytes per class along the execution order, peak marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = plan.timeline()
    steps = list(range(len(rows)))
    fixed = sum(plan.nbytes.get(e, 0) for e in plan.external) / GiB
    act = [r["activations"] / GiB for r in rows]
    grad = [r["gradients"] / GiB for r in rows]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.stackplot(steps, [fixed] * len(rows), act, grad,
                 labels=["bound arrays (params, grads, inputs, aux)", "activations",
                         "intermediate gradients"], alpha=0.8)
    total = [fixed + a + g for a, g in zip(act, grad)]
    peak = max(range(len(total)), key=total.__getitem__)
    ax.annotate(f"peak {total[peak]:.2f} GiB", (peak, total[peak]),
                xytext=(0.6, 0.92), textcoords="axes fraction",
                arrowprops=dict(arrowstyle="->"))
    recompute = [i for i, n in enumerate(plan.liveness.order) if MIRROR_OF in n.attrs]
    for i in recompute:
        ax.axvspan(i - 0.5, i + 0.5, color="tab:red", alpha=0.15, lw=0)
    if recompute:
        ax.plot([], [], color="tab:red", alpha=0.3, lw=6, label="recompute")
    ax.set_xlabel("execution step (joint graph order)")
    ax.set_ylabel("live bytes (GiB)")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_plan(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``sublinear plan``."""
    out = out or sys.stdout
    net, mplan, nplan = make_plan(args)
    plan = nplan.plan
    if args.timeline:
        draw_timeline(plan, args.timeline, f"{Path(args.net).stem}: {plan.strategy}, "
                                           f"mirror {mplan.strategy}")
    if args.json:
        print(json.dumps(report_dict(plan, mplan, saved=args.saved), indent=2), file=out)
    else:
        plan_table(Path(args.net).stem, plan, out, mplan)
        if args.saved:
            print(mplan.print_saved(), file=out)
    return 0
