"""What ``sublinear memcost`` shows people: tables (text or Markdown) and log-log plots.

Every table puts our value, the paper's and our/paper ratio in adjacent columns. The plots
follow the paper's Figs. 5-7: log-log, our series as solid lines with markers, the paper's as
dashed lines of the same colour.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from .memcost import Report

__all__ = ["memory_rows", "summary_rows", "measured_rows", "render", "format_report",
           "plot_report"]

GiB = 2**30
Table = tuple[list[str], list[list[str]]]


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:.0f}"


def _gib(value: float | None) -> str:
    """GiB with three significant decimals below 1 (the LSTM's sublinear plans)."""
    return _fmt(value, 3 if value is not None and value < 1 else 2)


#: A fixed colour per strategy (matplotlib's C0, C1, ...), whichever strategies are plotted.
COLOURS = ("no_optimization", "inplace", "sharing", "drop_bn_relu", "sublinear", "recursive")
#: Short column labels for a terminal (the Markdown tables use the full names).
SHORT = {"no_optimization": "no-opt", "drop_bn_relu": "drop-bn"}


def _layers(report: Report, size: int) -> dict[str, Any]:
    return next((p.info for p in report.points if p.size == size), {})


def _sizes(report: Report) -> list[int]:
    """The sizes with at least one point (all of them, unless the sweep was stopped)."""
    return [s for s in report.sizes if any(p.size == s for p in report.points)]


def memory_rows(report: Report, short: bool = False) -> Table:
    """The planned-memory table: per size, (ours, paper, ratio) per strategy; then slopes."""
    resnet = bool(report.points) and "units" in report.points[0].info
    lead = ["depth", "layers"] if resnet else [report.workload.size_name]
    head = lead + [c for s in report.strategies
                   for c in (SHORT.get(s, s) if short else s, "paper", "ratio")]
    rows = []
    for size in _sizes(report):
        row = [str(size), str(_layers(report, size).get("layers", "-"))][:len(lead)]
        for s in report.strategies:
            p = report.point(size, s)
            row += ([_gib(p.gib), _gib(p.paper_gib), _fmt(p.ratio)] if p
                    else ["-", "-", "-"])
        rows.append(row)
    if len(rows) < 2:
        return head, rows
    slopes = report.slopes()
    rows.append(["slope"] + [""] * (len(lead) - 1)
                + [c for s in report.strategies
                   for c in (_fmt(slopes[s]["ours"]), _fmt(slopes[s]["paper"]), "")])
    return head, rows


def summary_rows(report: Report) -> Table:
    """Per size: the ResNet units, sharing / sublinear planned memory (ours, paper) and the
    planning time of all strategies."""
    savings = {r["size"]: r for r in report.savings()}
    resnet = bool(report.points) and "units" in report.points[0].info
    head = ([report.workload.size_name] + (["layers", "units per stage"] if resnet else [])
            + ["sharing/sublinear", "paper", "plan s"])
    rows = []
    for size in _sizes(report):
        info, r = _layers(report, size), savings.get(size, {})
        seconds = sum(p.plan_s for p in report.points if p.size == size)
        rows.append([str(size)]
                    + ([str(info["layers"]), ",".join(map(str, info["units"]))] if resnet
                       else [])
                    + [_fmt(r.get("ours"), 1), _fmt(r.get("paper"), 1), f"{seconds:.1f}"])
    return head, rows


def measured_rows(report: Report) -> Table:
    """Measured step peak and time per batch beside the paper's panel (b) and Fig. 7."""
    head = [report.workload.size_name, "strategy", "peak GiB", "paper", "ratio", "allocated GiB",
            "s/batch", "paper", "ratio", "forward s", "recompute s", "backward s"]
    rows = []
    for p in report.points:
        m = p.measured
        if not m:
            continue
        if m.get("status") != "ok":
            rows.append([str(p.size), p.strategy, str(m.get("status"))] + ["-"] * 9)
            continue
        peak = m["step_peak_bytes"] / GiB
        paper_peak = report.paper_value("runtime_total_GB", p.strategy, p.size)
        t = m["time_per_batch_s"]
        paper_t = report.paper_value("time_per_batch_s", p.strategy, p.size)
        phase = m["breakdown_s"]
        rows.append([str(p.size), p.strategy, _fmt(peak), _fmt(paper_peak),
                     _fmt(peak / paper_peak if paper_peak else None),
                     _fmt(m["allocated_bytes"] / GiB), _fmt(t, 3), _fmt(paper_t),
                     _fmt(t / paper_t if paper_t else None), _fmt(phase["forward"], 3),
                     _fmt(phase["recompute"], 3), _fmt(phase["backward"], 3)])
    return head, rows


def render(head: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    """A table as right-aligned text columns, or as Markdown."""
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(c) for c in col) for col in zip(head, *rows, strict=True)]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in [list(head), *rows])


def format_report(report: Report, markdown: bool = False) -> str:
    """The whole report for people: memory table, summary, and measurements if any."""
    wl = report.workload
    source = ("paper = Chen et al. 2016, digitised (+-2-5%)" if wl.paper
              else "no paper values (not the paper's setup)")
    planning = sum(p.plan_s for p in report.points)
    used = [f"{SHORT[s]} = {s.replace('_', ' ')}" for s in report.strategies if s in SHORT]
    legend = "" if markdown or not used else "; " + ", ".join(used)
    parts = [f"{wl.describe()}: planned activations + intermediate gradients, GiB (2**30 "
             f"bytes)\nper strategy: ours, the paper's, ours/paper; {source}{legend}",
             render(*memory_rows(report, short=not markdown), markdown=markdown),
             render(*summary_rows(report), markdown=markdown),
             f"{len(report.points)} plans: {planning:.1f} s planning, {report.seconds:.1f} s "
             "in all"]
    if not report.complete:
        total = len(report.sizes) * len(report.strategies)
        parts.insert(0, f"PARTIAL: the sweep stopped after {len(report.points)} of {total} "
                        "points")
    if any(p.measured for p in report.points):
        dev = report.device.get("cuda_device", "the device")
        graphs = any(p.measured and p.measured.get("cuda_graph") for p in report.points)
        timing = ("time per batch = median of CUDA graph replays after warm-up; its split into "
                  "forward / recompute / backward is timed op by op" if graphs else
                  "time per batch = median after warm-up, split into forward / recompute / "
                  "backward")
        parts += [f"measured on {dev}: step peak = torch.cuda.max_memory_allocated over one "
                  "training step (paper: nvidia-smi total); allocated = all arrays after binding; "
                  + timing,
                  render(*measured_rows(report), markdown=markdown)]
        ratios = report.time_ratios()
        if ratios:
            parts.append("sublinear / sharing time per batch: " + ", ".join(
                f"{r['size']}: {r['ours']:.2f}x (paper {_fmt(r['paper'])}x)" for r in ratios))
    return "\n\n".join(parts)


def _series(report: Report, strategy: str, ours: Any, paper: Any) -> tuple[list[Any], ...]:
    pts = [p for p in report.points if p.strategy == strategy]
    mine = [(p.x, ours(p)) for p in pts if ours(p) is not None]
    ref = [(p.size, paper(p)) for p in pts if paper(p) is not None]
    return ([x for x, _ in mine], [y for _, y in mine], [x for x, _ in ref],
            [y for _, y in ref])


def _panel(ax: Any, report: Report, ours: Any, paper: Any, ylabel: str, title: str) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, NullFormatter
    handles = []
    for s in report.strategies:
        x, y, px, py = _series(report, s, ours, paper)
        colour = f"C{COLOURS.index(s) if s in COLOURS else len(COLOURS)}"
        if x:
            ax.plot(x, y, "-o", color=colour, markersize=4)
        if px:
            ax.plot(px, py, "--", color=colour, alpha=0.8)
        if x or px:
            handles.append(Line2D([], [], color=colour, marker="o", markersize=4, label=s))
    handles += [Line2D([], [], color="k", label="ours (solid)"),
                Line2D([], [], color="k", ls="--", label="paper (dashed)")]
    ax.set_xscale("log")
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    ax.set_xticks(report.sizes)
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(plain)
    # label the 2s and 5s between powers of ten: readable over one decade or three
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25"
                                               else ""))
    ax.set_xlabel("layers" if report.workload.size_name == "depth"
                  else report.workload.size_name)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(handles=handles, fontsize=8)


def _measured(key: str, scale: float = 1.0) -> Any:
    def get(p: Any) -> float | None:
        m = p.measured
        return m[key] / scale if m and m.get("status") == "ok" else None
    return get


def plot_report(report: Report, out_dir: Path) -> list[Path]:
    """PNG figures: memory (planned; with measurements also the step peak) and time per batch.

    Returns:
        the paths written: ``<net>_memory.png`` and, when measured, ``<net>_time.png``.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    stem = Path(report.workload.net).stem
    measured = any(p.measured and p.measured.get("status") == "ok" for p in report.points)
    fig, axes = plt.subplots(1, 2 if measured else 1, figsize=(12 if measured else 6.5, 5),
                             squeeze=False)
    _panel(axes[0][0], report, lambda p: p.gib, lambda p: p.paper_gib, "GiB",
           f"(a) planned feature maps\n{report.workload.describe()}")
    if measured:
        _panel(axes[0][1], report, _measured("step_peak_bytes", GiB),
               lambda p: report.paper_value("runtime_total_GB", p.strategy, p.size), "GiB",
               "(b) measured step peak (paper: runtime total)")
    fig.tight_layout()
    paths = [out_dir / f"{stem}_memory.png"]
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)
    if measured:
        fig, ax = plt.subplots(figsize=(6.5, 5))
        _panel(ax, report, _measured("time_per_batch_s"),
               lambda p: report.paper_value("time_per_batch_s", p.strategy, p.size),
               "seconds per batch", f"time per batch\n{report.device.get('cuda_device', '')}")
        fig.tight_layout()
        paths.append(out_dir / f"{stem}_time.png")
        fig.savefig(paths[1], dpi=110)
        plt.close(fig)
    return paths
