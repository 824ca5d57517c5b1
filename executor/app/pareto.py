"""``sublinear pareto``: memory against extra compute on one network, every planner side by side.

    sublinear pareto resnet --param units=3,131,196,3 --out docs/plots
    sublinear pareto lstm --param steps=200 --budgets 8 --segments 7,14,28 --json

Every point is one exact plan of the joint forward+backward graph: its planned bytes
(activations and intermediate gradients, the arena: ``MemoryPlan.planned_bytes``) and its extra
forward FLOPs as a fraction of one forward pass (``MirrorPlan.recompute_flops``: what the joint
graph really recomputes). The methods:

  * the fixed strategies ``none``, ``drop-cheap``, ``sublinear``, ``recursive``
    (``optim.search.plan_training``, as ``sublinear plan --mirror`` plans them);
  * ``alg3``: every candidate the sublinear search scored (Alg. 3 at each budget B of the
    Appendix A search, ``MirrorPlan.searched``), planned again to read its FLOPs; ``sublinear``
    is the smallest of them (or its fall-back);
  * ``optimal`` at ``--budgets`` budgets, geometric between the smallest plan of the fixed
    strategies (which ``optimal`` falls back to, so it is feasible) and the plan without
    recomputation; a budget no plan meets is reported as infeasible;
  * ``uniform``: PyTorch's ``checkpoint_sequential`` at ``--segments`` segment counts
    (``optim.baselines``; default a sweep around sqrt(cut groups), x1/4 .. x4).

Budgets count activations and intermediate gradients only (``budget_scope="activations"``),
the quantity on the x axis. A point is on the *frontier* when no other point has both fewer or
equal bytes and less or equal recomputation (one of them strictly). No torch is imported.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

from optim.baselines import plan_uniform, plan_with_counts
from optim.mirror import MirrorError, MirrorPlan, alg3_scan, apply_attributes, cut_groups
from optim.pipeline import NetworkPlan, PlanHints
from optim.search import plan_training
from symbol import Symbol, SymbolError
from symbol.infer_shape import infer_shape
from symbol.units import format_bytes

from .cliargs import add_net_options, non_negative_int
from .plan import format_table, planning_inputs
from ..progress import Bar, progress_bar

__all__ = ["Point", "add_pareto_parser", "segment_list", "budget_sweep", "default_segments",
           "mark_frontier", "run_sweep", "pareto_table", "plot_pareto", "run_pareto",
           "FIXED", "METHODS"]

#: The fixed strategies planned as single points.
FIXED = ("none", "drop-cheap", "sublinear", "recursive")
#: Every method, in the order of the table and the plot legend.
METHODS = (*FIXED, "alg3", "uniform", "optimal")
#: Seconds before the progress bar shows (``progress_bar``'s default delay).
_BAR_DELAY = 1.0
_STYLE = {"none": ("k", "s"), "drop-cheap": ("tab:brown", "D"), "sublinear": ("tab:red", "*"),
          "recursive": ("tab:purple", "P"), "alg3": ("tab:orange", "^"),
          "uniform": ("tab:blue", "o"), "optimal": ("tab:green", "v")}


@dataclass
class Point:
    """One plan of the sweep (``planned_bytes`` and ``recompute`` None when infeasible).

    Attributes:
        method: one of ``METHODS``.
        setting: what the method was given, for people (``2.00 GiB``, ``18 segments``).
        planned_bytes: the exact planned bytes (activations + intermediate gradients).
        recompute: extra forward FLOPs as a fraction of one forward pass.
        seconds: wall time of planning the point.
        budget / segments / alg3_budget: the method's own setting, in numbers.
        error: why no plan met the budget (``optimal``), else empty.
        note: the MirrorPlan's note (a fall-back, the model's error, the pieces).
        frontier: on the lower-left frontier of all feasible points.
    """

    method: str
    setting: str
    planned_bytes: int | None
    recompute: float | None
    seconds: float
    budget: int | None = None
    segments: int | None = None
    alg3_budget: int | None = None
    error: str = ""
    note: str = ""
    frontier: bool = False

    @property
    def feasible(self) -> bool:
        return self.planned_bytes is not None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(feasible=self.feasible, seconds=round(self.seconds, 3),
                   recompute=None if self.recompute is None else round(self.recompute, 6),
                   extra_forward_pct=None if self.recompute is None
                   else round(100 * self.recompute, 2))
        return out


def segment_list(text: str) -> tuple[int, ...]:
    """``S,S,..``: positive segment counts (argparse type)."""
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, "
                                         f"got {text!r}")
    return values


def add_pareto_parser(sub: Any) -> None:
    """Register ``sublinear pareto`` on an argparse subparsers object."""
    p = sub.add_parser("pareto", help="memory against extra compute for every planner",
                       description="Plan NET with every recomputation method (the fixed "
                       "strategies, every candidate of the sublinear search, optimal at a "
                       "sweep of budgets, uniform checkpointing as PyTorch's "
                       "checkpoint_sequential) and show planned activations + gradients "
                       "against extra forward compute, the lower-left frontier marked.")
    add_net_options(p)
    p.add_argument("--budgets", type=non_negative_int, default=12, metavar="N",
                   help="optimal at N budgets, geometric between the smallest fixed plan and "
                   "the plan without recomputation (default 12; 0: no optimal points)")
    p.add_argument("--segments", type=segment_list, default=None, metavar="S,S,..",
                   help="uniform checkpointing at these segment counts (default: 9 counts "
                   "around sqrt(cut groups), x1/4 to x4)")
    p.add_argument("--out", metavar="DIR", help="write pareto_<net>.json and pareto_<net>.png "
                   "into DIR (created if missing)")
    p.add_argument("--json", action="store_true", help="machine-readable output (errors too)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_pareto)


def budget_sweep(low: int, high: int, n: int) -> list[int]:
    """``n`` budgets from ``low`` to ``high`` (both included), geometric, without repeats."""
    if n <= 0:
        return []
    if n == 1 or low >= high:
        return [min(low, high)]
    ratio = high / low
    out = [low] + [round(low * ratio ** (i / (n - 1))) for i in range(1, n - 1)] + [high]
    return sorted(set(out))


def default_segments(num_groups: int) -> list[int]:
    """Segment counts sqrt(K) x 2^(i/2), i = -4..4 (K cut groups), rounded, within [1, K]."""
    if num_groups == 0:
        return [1]
    root = math.sqrt(num_groups)
    return sorted({min(num_groups, max(1, round(root * 2 ** (i / 2)))) for i in range(-4, 5)})


def mark_frontier(points: Sequence[Point]) -> None:
    """Set ``frontier`` on the feasible points no other point dominates."""
    xy = [(p, (p.planned_bytes, p.recompute)) for p in points
          if p.planned_bytes is not None and p.recompute is not None]
    for p, (b, r) in xy:
        p.frontier = not any(qb <= b and qr <= r and (qb, qr) != (b, r) for _, (qb, qr) in xy)


class _Sweep:
    """Plans the points of one network, each timed and reported to the progress bar."""

    def __init__(self, net: Symbol, shapes: dict[str, Any], grad_req: dict[str, str],
                 bar: Bar) -> None:
        self.graph, self.shapes, self.grad_req = net.graph, shapes, grad_req
        self.aux = net.list_auxiliary_states()
        self.bar = bar
        self.points: list[Point] = []
        self.forward = infer_shape(net.graph, shapes)
        self.groups = cut_groups(net.graph, self.forward)
        self.hints: PlanHints | None = None
        self.start = time.perf_counter()

    def point(self, method: str, setting: str,
              plan: Callable[[], tuple[MirrorPlan, NetworkPlan]],
              **given: Any) -> tuple[Point, tuple[MirrorPlan, NetworkPlan] | None]:
        """Plan one point; a MirrorError (a budget no plan meets) makes it infeasible."""
        start = time.perf_counter()
        if start - self.start > _BAR_DELAY:  # a postfix draws the bar, delay or not
            self.bar.set_postfix_str(f"{method} {setting}")
        result: tuple[MirrorPlan, NetworkPlan] | None = None
        try:
            result = plan()
        except MirrorError as e:
            point = Point(method, setting, None, None, time.perf_counter() - start,
                          error=str(e), **given)
        else:
            mplan, net = result
            point = Point(method, setting, net.plan.planned_bytes, mplan.recompute_flops,
                          time.perf_counter() - start, note=mplan.note, **given)
        self.points.append(point)
        self.bar.advance()
        return point, result

    def training(self, **kw: Any) -> Callable[[], tuple[MirrorPlan, NetworkPlan]]:
        return lambda: plan_training(self.graph, self.shapes, grad_req=self.grad_req,
                                     aux=self.aux, **kw)

    def fixed(self) -> MirrorPlan | None:
        """The fixed strategies; returns the sublinear MirrorPlan (None if it failed)."""
        searched = None
        for name in FIXED:
            _, result = self.point(name, name, self.training(mirror=name))
            if result and name == "none":
                self.hints = PlanHints.of(result[1], forward=self.forward)
            if result and name == "sublinear":
                searched = result[0]
        return searched

    def counted(self, counts: Any, name: str) -> Callable[[], tuple[MirrorPlan, NetworkPlan]]:
        return lambda: plan_with_counts(self.graph, self.shapes, counts, grad_req=self.grad_req,
                                        aux=self.aux, hints=self.hints, name=name)

    def alg3(self, sublinear: MirrorPlan) -> None:
        """Every candidate of the search, planned again (Alg. 3 counts at its budget B)."""
        scan = alg3_scan(self.graph, self.forward, self.groups)
        self.bar.add_total(len(sublinear.searched))
        for b, scored in sublinear.searched:
            counts = apply_attributes(self.graph, scan(b)[0])
            point, _ = self.point("alg3", f"B={format_bytes(b)}",
                                  self.counted(counts, "sublinear"), alg3_budget=b)
            if point.planned_bytes != scored:  # the search and this plan must agree
                point.note = f"the search scored {scored:,} bytes"

    def uniform(self, segments: Sequence[int]) -> None:
        for s in segments:
            self.point("uniform", f"{s} segments", self._uniform(s), segments=s)

    def _uniform(self, segments: int) -> Callable[[], tuple[MirrorPlan, NetworkPlan]]:
        return lambda: plan_uniform(self.graph, self.shapes, self.groups, segments,
                                    grad_req=self.grad_req, aux=self.aux, hints=self.hints)

    def optimal(self, budgets: Sequence[int]) -> None:
        for b in budgets:
            self.point("optimal", f"budget {format_bytes(b)}",
                       self.training(mirror="optimal", budget=b, budget_scope="activations"),
                       budget=b)


def run_sweep(net: Symbol, shapes: dict[str, Any], grad_req: dict[str, str], *,
              budgets: int = 12, segments: Sequence[int] | None = None,
              bar: Bar | None = None) -> dict[str, Any]:
    """Plan every point (see the module docstring) and return the report as JSON data.

    Raises:
        SymbolError: a user error (shapes, the network); a budget no plan meets is a point.
    """
    start = time.perf_counter()
    bar = bar or Bar()
    sweep = _Sweep(net, shapes, grad_req, bar)
    seg = list(segments) if segments else default_segments(len(sweep.groups))
    bar.add_total(len(FIXED) + len(seg))
    sublinear = sweep.fixed()
    if sublinear is not None:
        sweep.alg3(sublinear)
    sweep.uniform(seg)
    # optimal falls back to the smallest fixed plan, so budgets from there up are feasible
    fixed = {p.method: p.planned_bytes for p in sweep.points[:len(FIXED)]
             if p.planned_bytes is not None}
    sweep_budgets = budget_sweep(min(fixed.values()), fixed["none"], budgets)
    bar.add_total(len(sweep_budgets))
    sweep.optimal(sweep_budgets)
    mark_frontier(sweep.points)
    return {"ok": True, "cut_groups": len(sweep.groups), "forward_nodes": len(net.graph.nodes),
            "budgets": sweep_budgets, "segments": seg,
            "points": [p.to_json() for p in sweep.points],
            "seconds": round(time.perf_counter() - start, 2), "machine": _machine()}


def _machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version()}


def pareto_table(report: dict[str, Any], out: TextIO) -> None:
    """The report for people: one row per point, bytes auto-scaled, the frontier starred."""
    print(f"network {report['net']}: {report['forward_nodes']} forward nodes, "
          f"{report['cut_groups']} candidate cut groups; planned bytes = activations + "
          "intermediate gradients", file=out)
    rows = [("method", "setting", "planned", "extra forward", "seconds", "frontier")]
    for p in report["points"]:
        planned = (format_bytes(p["planned_bytes"]) if p["feasible"] else "infeasible")
        extra = f"+{p['extra_forward_pct']:.1f}%" if p["feasible"] else "-"
        rows.append((p["method"], p["setting"], planned, extra, f"{p['seconds']:.1f}",
                     "*" if p["frontier"] else ""))
    for line in format_table(rows, right=2):
        print(line, file=out)
    for p in report["points"]:
        if p["error"]:
            print(f"{p['method']} {p['setting']}: {p['error']}", file=out)
    print(f"{len(report['points'])} plans in {report['seconds']:.1f} s", file=out)


def plot_pareto(report: dict[str, Any], path: Path) -> None:
    """PNG: planned bytes (log x) against extra forward % (y), one series per method, the
    lower-left frontier as a step line; left all points, right up to one extra forward pass
    (where every plan that recomputes a node at most once lies)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    points = [p for p in report["points"] if p["feasible"]]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    for ax in axes:
        _draw(ax, points)
    top = max([p["extra_forward_pct"] for p in points if p["extra_forward_pct"] <= 110] + [1])
    axes[1].set_ylim(-0.04 * top, 1.08 * top)
    params = " ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                      for k, v in report.get("params", {}).items())
    axes[0].set_title(f"{report['net']}{' ' + params if params else ''}: memory against "
                      f"recomputation ({report['cut_groups']} cut groups)")
    axes[1].set_title("the same, up to one extra forward pass (uniform: segments)")
    for p in points:
        if p["method"] == "uniform" and p["extra_forward_pct"] <= 1.08 * top:
            axes[1].annotate(str(p["segments"]), (p["planned_bytes"] / 2**20,
                                                  p["extra_forward_pct"]),
                             xytext=(3, 4), textcoords="offset points", fontsize=7,
                             color=_STYLE["uniform"][0])
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw(ax: Any, points: Sequence[dict[str, Any]]) -> None:
    import matplotlib.ticker
    for method in METHODS:
        mine = sorted((p for p in points if p["method"] == method),  # uniform: the sweep
                      key=lambda p: p["segments"] or 0 if method == "uniform"
                      else p["planned_bytes"])
        if not mine:
            continue
        colour, marker = _STYLE[method]
        xs = [p["planned_bytes"] / 2**20 for p in mine]
        ys = [p["extra_forward_pct"] for p in mine]
        line = "-" if method in ("uniform", "optimal") else ""
        ax.plot(xs, ys, line, color=colour, marker=marker, ms=9 if method in FIXED else 6,
                alpha=0.85, lw=1, label=method if method != "alg3" else "alg3 candidates")
    front = sorted((p for p in points if p["frontier"]), key=lambda p: p["planned_bytes"])
    xs = [p["planned_bytes"] / 2**20 for p in front]
    ys = [p["extra_forward_pct"] for p in front]
    ax.step(xs, ys, "--", where="post", color="0.4", lw=1, label="frontier (lower left)")
    ax.scatter(xs, ys, s=130, facecolors="none", edgecolors="0.3", lw=1)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_tick))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(
        lambda v, pos: _tick(v, pos) if f"{v:e}"[0] in "25" else ""))  # 2 and 5 x 10^k
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel("planned activations + intermediate gradients (MiB, log)")
    ax.set_ylabel("extra forward compute (% of one forward pass)")
    ax.grid(True, which="both", alpha=0.3)


def _tick(value: float, _pos: Any = None) -> str:
    """An axis label in plain digits: 300, not 3 x 10^2."""
    return f"{value:,.0f}" if value >= 1 else f"{value:g}"


def write_outputs(report: dict[str, Any], folder: Path) -> list[Path]:
    """``pareto_<net>.json`` and ``pareto_<net>.png`` in ``folder`` (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"pareto_{report['net']}"
    paths = [folder / f"{stem}.json", folder / f"{stem}.png"]
    paths[0].write_text(json.dumps(report, indent=1) + "\n")
    plot_pareto(report, paths[1])
    return paths


def run_pareto(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``sublinear pareto``."""
    out = out or sys.stdout
    if os.environ.get("SUBLINEAR_MEMORY_BUDGET", "").strip():
        raise SymbolError("pareto plans at budgets of its own: unset SUBLINEAR_MEMORY_BUDGET")
    net, shapes, reqs = planning_inputs(args)
    with progress_bar("pareto", quiet=args.json or args.quiet) as bar:
        report = run_sweep(net, shapes, reqs, budgets=args.budgets, segments=args.segments,
                           bar=bar)
    report = {"ok": True, "net": Path(args.net).stem, "params": _jsonable(dict(args.param)),
              "shapes": _jsonable(dict(args.shape)), **report}
    if args.out:
        write_outputs(report, Path(args.out))
    if args.json:
        print(json.dumps(report, indent=1), file=out)
    else:
        pareto_table(report, out)
    return 0


def _jsonable(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
