"""``sublinear memcost``: the paper's memory and time figures, side by side with the paper.

    sublinear memcost --net resnet                       # 6 depths x 5 strategies, planning only
    sublinear memcost --net lstm --json                  # 6 lengths x 4 strategies, as JSON
    sublinear memcost --net resnet --strategies sharing,sublinear --measure --out results/
    sublinear memcost --net examples/lstm.sym --sweep-param steps --sweep 10,20 --param hidden=64

For every size of the sweep and every strategy the joint forward+backward graph is planned once
(``optim.search.plan_training``; one network is built per size and shared by the strategies).
The reported quantity is the paper's panel (a): bytes of the static plan for activations and
intermediate gradients (fp32), without weights, weight gradients, inputs or workspace. The
paper's values (``executor/app/data/paper_figures.json``, digitised from Figs. 5-7, +-2-5%) are
shown only for the paper's setup (its batch, image and hidden sizes) at its sizes.

Strategies, paper name -> (memory strategy, mirror strategy): ``no_optimization`` (none,
none), ``inplace`` (inplace, none), ``sharing`` (sharing, none), ``drop_bn_relu`` (sharing,
drop-cheap), ``sublinear`` (sharing, sublinear), and ``recursive`` (sharing, recursive; not in
the paper's figures). The LSTM has no ``drop_bn_relu`` by default, as in the paper.

Networks: ``resnet`` is ``examples/resnet.py`` (pre-activation bottleneck, ReLU, batch 32,
3x224x224); a depth d becomes the unit lists of its ``units_for_depth`` (d = 3 * units + 2,
rounded; the standard depths keep their published lists, others the released 200-layer
example's proportions: 3 units in the first and last stage, the rest split 2:3 between stages 2
and 3), and every table lists the units used. ``lstm`` is ``examples/lstm.py`` (4 layers x
1024, batch 64, 50-d inputs, 5000 labels); both are installed with the package (see
:func:`example`). A FILE is a network in the sublinear language whose ``param`` named by
``--sweep-param`` takes each size (a ``units`` parameter takes the depth's unit list).

``--measure`` (CUDA only; see ``executor.app.memcost_measure``) binds each point whose predicted
footprint fits the device, runs real training steps and adds the measured step peak, the bytes
allocated, the time per batch and its forward / recompute / backward breakdown.
"""
from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence, TextIO

import numpy as np

from optim.flags import read_flags
from optim.pipeline import default_grad_req
from optim.search import plan_training
from symbol import Symbol, SymbolError

from .cliargs import non_negative_int, positive_int
from .nets import example_module, load_net, resolve_net
from ..progress import progress_bar

__all__ = ["STRATEGIES", "PAPER_FILE", "Workload", "Built", "Point", "Report", "paper_figures",
           "example", "paper_value", "plan_point", "run_sweep", "add_memcost_parser",
           "workload_from_args", "run_memcost", "load_report", "main"]

log = logging.getLogger(__name__)
GiB = 2**30
PAPER_FILE = Path(__file__).resolve().parent / "data" / "paper_figures.json"
#: Paper name -> (memory strategy, mirror strategy).
STRATEGIES: dict[str, tuple[str, str]] = {
    "no_optimization": ("none", "none"), "inplace": ("inplace", "none"),
    "sharing": ("sharing", "none"), "drop_bn_relu": ("sharing", "drop-cheap"),
    "sublinear": ("sharing", "sublinear"), "recursive": ("sharing", "recursive")}
DEFAULTS = {"resnet": ("no_optimization", "inplace", "sharing", "drop_bn_relu", "sublinear"),
            "lstm": ("no_optimization", "inplace", "sharing", "sublinear")}
#: The paper's setup per network: a different one is not compared with its figures.
PAPER_SETUP = {"resnet": {"batch": 32, "image": 224}, "lstm": {"batch": 64, "hidden": 1024}}


@lru_cache(maxsize=1)
def paper_figures() -> dict[str, Any]:
    """The digitised figures of the paper (this package's copy)."""
    with open(PAPER_FILE) as f:
        data: dict[str, Any] = json.load(f)
    return data


@dataclass(frozen=True)
class Built:
    """One network of the sweep: the symbol, its input shapes and what the size means."""

    symbol: Symbol
    shapes: Mapping[str, tuple[int, ...]]
    inputs: list[str]
    info: dict[str, Any]


@dataclass(frozen=True)
class Workload:
    """What a sweep plans: the network, its fixed settings, and how a size builds it.

    Attributes:
        net: ``resnet``, ``lstm`` or the path of a network file.
        batch, image, hidden: batch size, ResNet image side, LSTM hidden size.
        sweep_param: the FILE parameter that takes each size.
        params: other FILE parameters.
        paper: which of the paper's figures to compare with (None: none).
    """

    net: str
    batch: int
    image: int = 224
    hidden: int = 1024
    sweep_param: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    paper: str | None = None
    dtype: str = "float32"

    @property
    def kind(self) -> str:
        return self.net if self.net in ("resnet", "lstm") else "file"

    @property
    def size_name(self) -> str:
        """What a size counts: ``depth``, ``steps`` or the FILE parameter."""
        if self.kind == "resnet" or self.sweep_param == "units":
            return "depth"
        return "steps" if self.kind == "lstm" else str(self.sweep_param)

    def paper_series(self) -> dict[str, Any] | None:
        """The paper's section for this workload, or None if the setup is not the paper's."""
        return paper_figures()[self.paper] if self.paper else None

    def describe(self) -> str:
        if self.kind == "resnet":
            return (f"ResNet (pre-activation bottleneck), batch {self.batch}, "
                    f"3x{self.image}x{self.image}, {self.dtype}")
        if self.kind == "lstm":
            return (f"LSTM 4 x {self.hidden}, batch {self.batch}, 50-d inputs, 5000 labels, "
                    f"{self.dtype}")
        extra = ", ".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.net} ({self.sweep_param} swept{'; ' + extra if extra else ''})"

    def build(self, size: int) -> Built:
        """The network of one size (with ``dtype`` bfloat16/float16: mixed precision)."""
        built = self._build(size)
        if self.dtype == "float32":
            return built
        from symbol.amp import convert_symbol
        return Built(convert_symbol(built.symbol, self.dtype), built.shapes, built.inputs,
                     built.info)

    def _build(self, size: int) -> Built:
        if self.kind == "resnet":
            units = _units(size)
            image = (3, self.image, self.image)
            net = example("resnet").get_symbol(units=units, image_shape=image)
            return Built(net, {"data": (self.batch, 3, self.image, self.image)}, ["data"],
                         {"layers": 3 * sum(units) + 2, "units": list(units)})
        if self.kind == "lstm":
            net = example("lstm").get_symbol(seq_len=size, num_hidden=self.hidden)
            shapes = {f"t{t}_data": (self.batch, 50) for t in range(size)}
            shapes.update({f"l{i}_init_{k}": (self.batch, self.hidden)
                           for i in range(4) for k in "ch"})
            return Built(net, shapes, list(shapes), {"steps": size})
        return self._build_file(size)

    def _build_file(self, size: int) -> Built:
        assert self.sweep_param is not None
        params = dict(self.params)
        units = _units(size) if self.sweep_param == "units" else None
        params[self.sweep_param] = units or size
        net, _ = load_net(self.net, params)
        declared = [v.name for v in net.graph.inputs if "__shape__" in v.attrs]
        info: dict[str, Any] = ({"layers": 3 * sum(units) + 2, "units": list(units)} if units
                                else {self.sweep_param: size})
        return Built(net, {}, declared, info)


def example(name: str) -> ModuleType:
    """The Python builder ``examples/<name>.py`` (installed as ``sublinear_examples``)."""
    return example_module(name)


def _units(depth: int) -> tuple[int, int, int, int]:
    try:
        units: tuple[int, int, int, int] = example("resnet").units_for_depth(depth)
        return units
    except ValueError as e:
        raise SymbolError(f"--sweep {depth}: {e}") from None


@dataclass
class Point:
    """One (size, strategy) of the sweep: the plan's numbers, the paper's, and measurements."""

    size: int
    strategy: str
    info: dict[str, Any]
    planned_bytes: int
    paper_gib: float | None
    plan_s: float
    num_storage: int
    num_inplace: int
    bytes_by_class: dict[str, int]
    recompute_flops: float
    num_recomputed: int
    measured: dict[str, Any] | None = None

    @property
    def gib(self) -> float:
        return self.planned_bytes / GiB

    @property
    def x(self) -> int:
        """The x of the log-log plots and slopes: real layers (ResNet) or the size."""
        return int(self.info.get("layers", self.size))

    @property
    def ratio(self) -> float | None:
        return self.gib / self.paper_gib if self.paper_gib else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Point:
        """The Point that :meth:`to_json` wrote (derived fields are recomputed)."""
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_json(self) -> dict[str, Any]:
        memory, mirror = STRATEGIES[self.strategy]
        out = asdict(self)
        out.update(memory_strategy=memory, mirror=mirror, planned_gib=round(self.gib, 4),
                   ratio=None if self.ratio is None else round(self.ratio, 4),
                   recompute_flops=round(self.recompute_flops, 4), plan_s=round(self.plan_s, 3))
        return out


@dataclass
class Report:
    """Everything one sweep found (see :meth:`to_json` for the machine form)."""

    workload: Workload
    sizes: list[int]
    strategies: list[str]
    points: list[Point]
    seconds: float
    device: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    complete: bool = True  # False while the sweep runs (a partial report written per point)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        """The Report that :meth:`to_json` wrote.

        Raises:
            SymbolError: ``data`` is not such a report (names what is missing or wrong).
        """
        try:
            workload = Workload(**data["workload"])
            points = [Point.from_json(p) for p in data["points"]]
            strategies = list(data["strategies"])
            unknown = [s for s in strategies if s not in STRATEGIES]
            if unknown:
                raise SymbolError(f"unknown strategies {', '.join(map(str, unknown))}")
            return cls(workload, [int(s) for s in data["sizes"]], strategies, points,
                       float(data["seconds"]), dict(data["device"]),
                       dict(data.get("options", {})), bool(data.get("complete", True)))
        except (KeyError, TypeError, ValueError) as e:
            what = f"missing {e}" if isinstance(e, KeyError) else str(e)
            raise SymbolError(f"not a memcost report ({what})") from None

    def point(self, size: int, strategy: str) -> Point | None:
        return next((p for p in self.points if p.size == size and p.strategy == strategy), None)

    def paper_value(self, key: str, strategy: str, size: int) -> float | None:
        """The paper's value of figure ``key`` (e.g. ``time_per_batch_s``) at ``size``."""
        return paper_value(self.workload.paper_series(), key, strategy, size)

    def slopes(self) -> dict[str, dict[str, float | None]]:
        """Fitted log-log slope of planned memory against depth/length, ours and the paper's."""
        out: dict[str, dict[str, float | None]] = {}
        for s in self.strategies:
            pts = [p for p in self.points if p.strategy == s]
            ref = [(p.size, p.paper_gib) for p in pts if p.paper_gib]
            out[s] = {"ours": _slope([(p.x, p.gib) for p in pts]), "paper": _slope(ref)}
        return out

    def savings(self) -> list[dict[str, Any]]:
        """sharing / sublinear planned memory per size, ours and the paper's."""
        rows = []
        for size in self.sizes:
            a, b = self.point(size, "sharing"), self.point(size, "sublinear")
            if a and b:
                paper = (a.paper_gib / b.paper_gib if a.paper_gib and b.paper_gib else None)
                rows.append({"size": size, "ours": round(a.gib / b.gib, 3),
                             "paper": None if paper is None else round(paper, 3)})
        return rows

    def time_ratios(self) -> list[dict[str, Any]]:
        """Measured sublinear / sharing time per batch per size, ours and the paper's."""
        rows = []
        for size in self.sizes:
            a, b = self.point(size, "sharing"), self.point(size, "sublinear")
            ta, tb = (_measured(a, "time_per_batch_s"), _measured(b, "time_per_batch_s"))
            if ta and tb:
                pa = self.paper_value("time_per_batch_s", "sharing", size)
                pb = self.paper_value("time_per_batch_s", "sublinear", size)
                rows.append({"size": size, "ours": round(tb / ta, 3),
                             "paper": round(pb / pa, 3) if pa and pb else None})
        return rows

    def to_json(self) -> dict[str, Any]:
        return {"net": self.workload.net, "workload": asdict(self.workload),
                "setup": self.workload.describe(), "size_name": self.workload.size_name,
                "sizes": self.sizes, "strategies": self.strategies,
                "strategy_map": {s: dict(zip(("memory", "mirror"), STRATEGIES[s], strict=True))
                                 for s in self.strategies},
                "quantity": "planned bytes of activations + intermediate gradients (paper "
                            "Fig. 5a/6a); GiB = 2**30 bytes",
                "points": [p.to_json() for p in self.points], "slopes": self.slopes(),
                "sharing_over_sublinear": self.savings(),
                "time_sublinear_over_sharing": self.time_ratios(),
                "seconds": round(self.seconds, 2), "device": self.device,
                "options": self.options, "complete": self.complete}


def paper_value(section: Mapping[str, Any] | None, key: str, strategy: str,
                size: int) -> float | None:
    """The value of the paper's series ``section[key][strategy]`` at ``size``, if it has one."""
    if section is None:
        return None
    xs = section["layers" if "layers" in section else "steps"]
    series = section.get(key, {}).get(strategy)
    return series[xs.index(size)] if series and size in xs else None


def _measured(p: Point | None, key: str) -> float | None:
    if p is None or not p.measured or p.measured.get("status") != "ok":
        return None
    value = p.measured.get(key)
    return float(value) if value is not None else None


def _slope(points: Sequence[tuple[float, float | None]]) -> float | None:
    pts = [(x, y) for x, y in points if y and y > 0 and x > 0]
    if len({x for x, _ in pts}) < 2:
        return None
    xs, ys = np.log([x for x, _ in pts]), np.log([y for _, y in pts])
    return round(float(np.polyfit(xs, ys, 1)[0]), 3)


# -- the sweep ----------------------------------------------------------------------------------
def plan_point(built: Built, size: int, strategy: str, paper: float | None) -> tuple[Point, Any]:
    """Plan one point; returns the Point and ``(MirrorPlan, NetworkPlan)`` for measuring."""
    memory, mirror = STRATEGIES[strategy]
    net = built.symbol
    reqs = default_grad_req(net.list_arguments(), built.inputs)
    t0 = time.perf_counter()
    mplan, nplan = plan_training(net.graph, built.shapes, grad_req=reqs,
                                 aux=net.list_auxiliary_states(), strategy=memory,
                                 mirror=mirror, flags=read_flags())
    seconds = round(time.perf_counter() - t0, 3)  # as the JSON keeps it: tables agree
    plan = nplan.plan
    point = Point(size, strategy, dict(built.info), plan.planned_bytes, paper, seconds,
                  plan.num_storage, plan.num_inplace, plan.bytes_by_class(),
                  mplan.recompute_flops, len(mplan.recomputed))
    return point, (mplan, nplan)


def run_sweep(workload: Workload, sizes: Sequence[int], strategies: Sequence[str], *,
              measure: Any = None, progress: bool = True,
              options: Mapping[str, Any] | None = None,
              on_point: Callable[[Report], None] | None = None) -> Report:
    """Plan (and with ``measure``, a ``(built, planned) -> dict`` callable, run) every point.

    The network of each size is built once and planned once per strategy. ``on_point`` is
    called with the partial report (``complete`` False) after each point.
    """
    report = Report(workload, list(sizes), list(strategies), [], 0.0, _device_info(),
                    dict(options or {}), complete=False)
    t0 = time.perf_counter()
    paper = workload.paper_series()
    with progress_bar(f"memcost {Path(workload.net).stem}", total=len(sizes) * len(strategies),
                      quiet=not progress, delay=0, leave=True) as bar:
        for size in sizes:
            built = workload.build(size)
            for strategy in strategies:
                bar.set_postfix_str(f"{workload.size_name} {size} {strategy}")
                ref = paper_value(paper, "feature_map_plan_GB", strategy, size)
                point, planned = plan_point(built, size, strategy, ref)
                if measure is not None:
                    point.measured = measure(built, planned)
                del planned  # the largest plans hold ~10^5 nodes: free before the next one
                report.points.append(point)
                bar.update(1)
                if on_point is not None:
                    report.seconds = time.perf_counter() - t0
                    on_point(report)
    report.seconds = time.perf_counter() - t0
    report.complete = True
    return report


def _cpu_name() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    except OSError:
        names = []
    return names[0] if names else platform.processor() or None


def _device_info() -> dict[str, Any]:
    """The machine planned on; torch's version from its metadata (planning never imports it)."""
    import os
    from importlib import metadata
    try:
        torch_version: str | None = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = None
    return {"platform": platform.platform(), "processor": _cpu_name(),
            "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "torch": torch_version}


# -- the command --------------------------------------------------------------------------------
#: Defaults of the options that are not None / False.
_OPTION_DEFAULTS: dict[str, Any] = {"net": "resnet", "device": "cuda", "warmup": 2, "repeat": 5,
                                    "measure": False, "cuda_graph": False}
#: Options that say what to plan or measure (meaningless with ``--from-json``).
_PLANNING_OPTIONS = {"--net": "net", "--sweep": "sweep", "--strategies": "strategies",
                     "--batch": "batch", "--image": "image", "--hidden": "hidden",
                     "--sweep-param": "sweep_param", "--param": "param", "--paper": "paper",
                     "--measure": "measure", "--device": "device", "--warmup": "warmup",
                     "--repeat": "repeat", "--cuda-graph": "cuda_graph"}


def add_memcost_parser(sub: Any) -> None:
    """Register ``sublinear memcost`` on an argparse subparsers object."""
    p = sub.add_parser(
        "memcost", help="the paper's memory (and time) figures beside the paper's values",
        description="Plan every size of the paper's sweeps under every strategy and print the "
        "planned activations + intermediate gradients beside the paper's values (Chen et al. "
        "2016, Figs. 5-7); with --measure, run real training steps on a CUDA device.")
    p.add_argument("--net", default=_OPTION_DEFAULTS["net"], metavar="resnet|lstm|NET",
                   help="resnet or lstm (the paper's networks), or a network file in the "
                   "sublinear language or the name of another example (with --sweep-param)")
    p.add_argument("--sweep", metavar="N,N,..", help="sizes: ResNet depths, LSTM steps or "
                   "values of --sweep-param (default: the paper's)")
    p.add_argument("--strategies", metavar="S,S,..", help="among " + ", ".join(STRATEGIES)
                   + " (default: the paper's five; four for the LSTM)")
    p.add_argument("--batch", type=positive_int, help="batch size (default: the paper's, 32 / 64)")
    p.add_argument("--image", type=positive_int, help="ResNet image side (default 224; <= 32 "
                   "selects the CIFAR stem)")
    p.add_argument("--hidden", type=positive_int, help="LSTM hidden size (default 1024)")
    p.add_argument("--sweep-param", metavar="NAME", help="FILE: the param that takes each "
                   "size ('units' takes a depth, mapped as for resnet)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="FILE: a fixed param")
    p.add_argument("--paper", choices=("resnet", "lstm"),
                   help="FILE: compare with this network's figures")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                   help="float32 (default, the paper's) or mixed precision (docs/precision.md)")
    p.add_argument("--measure", action="store_true", help="run training steps (CUDA only)")
    p.add_argument("--device", default=_OPTION_DEFAULTS["device"],
                   help="--measure device (default cuda)")
    p.add_argument("--warmup", type=non_negative_int, default=_OPTION_DEFAULTS["warmup"],
                   help="--measure warm-up steps (default 2)")
    p.add_argument("--repeat", type=positive_int, default=_OPTION_DEFAULTS["repeat"],
                   help="--measure timed steps (default 5)")
    p.add_argument("--cuda-graph", action="store_true", help="--measure: time steps as CUDA "
                   "graph replays (no per-op dispatch; the breakdown stays op by op)")
    p.add_argument("--out", metavar="DIR", help="write PNG plots, JSON and Markdown tables (the "
                   "JSON and tables are rewritten after every point, so a long sweep that is "
                   "stopped keeps what it measured)")
    p.add_argument("--from-json", metavar="FILE", help="show (and with --out, plot) a report "
                   "saved with --json or --out, instead of planning")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_memcost)


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) <= 0:
        raise SymbolError(f"{what} {text!r}: expected positive integers such as 100,200")
    return values


def workload_from_args(args: argparse.Namespace) -> Workload:
    """The Workload the options describe; option mistakes are SymbolErrors."""
    builtin = args.net in ("resnet", "lstm")
    for flag, value, ok in (("--image", args.image, args.net == "resnet"),
                            ("--hidden", args.hidden, args.net == "lstm"),
                            ("--sweep-param", args.sweep_param, not builtin),
                            ("--param", args.param, not builtin),
                            ("--paper", args.paper, not builtin)):
        if value is not None and not ok:
            raise SymbolError(f"{flag} does not apply to --net {args.net}")
    for flag, value in (("--batch", args.batch), ("--image", args.image),
                        ("--hidden", args.hidden)):
        if value is not None and value <= 0:
            raise SymbolError(f"{flag} must be positive, got {value}")
    if builtin:
        batch = args.batch or (32 if args.net == "resnet" else 64)
        wl = Workload(args.net, batch, args.image or 224, args.hidden or 1024)
        setup = {"batch": wl.batch, "image": wl.image, "hidden": wl.hidden}
        same = all(setup[k] == v for k, v in PAPER_SETUP[args.net].items()) \
            and args.dtype == "float32"  # the paper's figures are float32
        return Workload(wl.net, wl.batch, wl.image, wl.hidden, paper=args.net if same else None,
                        dtype=args.dtype)
    return _file_workload(args)


def _file_workload(args: argparse.Namespace) -> Workload:
    from symbol.dsl import parse_param_value
    path = resolve_net(args.net)
    if path.suffix.lower() == ".json":
        raise SymbolError("memcost sweeps a param of a network in the sublinear language; an "
                          "MXNet JSON net has none (use 'sublinear plan' for one net)")
    if not args.sweep_param or not args.sweep:
        raise SymbolError(f"--net {args.net} needs --sweep-param NAME and --sweep N,N,..")
    params: dict[str, Any] = {}
    for item in args.param or []:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise SymbolError(f"--param {item!r}: expected NAME=VALUE")
        params[name.strip()] = parse_param_value(value.strip())
    if args.batch:
        params["batch"] = args.batch
    return Workload(str(path), args.batch or 0, sweep_param=args.sweep_param, params=params,
                    paper=args.paper, dtype=args.dtype)


def _strategies(args: argparse.Namespace, wl: Workload) -> list[str]:
    if not args.strategies:
        return list(DEFAULTS["resnet" if wl.kind == "resnet" or wl.paper == "resnet"
                             else "lstm"])
    names = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown or not names:
        raise SymbolError(f"--strategies: unknown {', '.join(unknown) or 'empty list'}; "
                          f"expected among {', '.join(STRATEGIES)}")
    return list(dict.fromkeys(names))


def run_memcost(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``sublinear memcost`` (see the module docstring)."""
    out = out or sys.stdout
    if args.from_json:
        given = [flag for flag, dest in _PLANNING_OPTIONS.items()
                 if getattr(args, dest) != _OPTION_DEFAULTS.get(dest)]
        if given:
            raise SymbolError(f"--from-json shows a saved report and plans nothing; drop "
                              f"{', '.join(given)}")
        return _show(load_report(args.from_json), args, out)
    measure = device = None
    if args.measure:  # before anything else: no GPU, nothing done
        from .memcost_measure import make_measure, require_cuda
        device = require_cuda(args.device)
        if args.warmup < 0 or args.repeat < 1:
            raise SymbolError("--warmup must be >= 0 and --repeat >= 1")
        measure = make_measure(device, warmup=args.warmup, repeat=args.repeat,
                               cuda_graph=args.cuda_graph)
    elif args.cuda_graph:
        raise SymbolError("--cuda-graph times the steps of --measure; add --measure")
    wl = workload_from_args(args)
    sizes = (_ints(args.sweep, "--sweep") if args.sweep
             else list(paper_figures()[wl.kind]["layers" if wl.kind == "resnet" else "steps"]))
    options = {k: v for k, v in vars(args).items() if k != "func"}
    cuda = {}
    if device is not None:
        import torch
        cuda["cuda_device"] = torch.cuda.get_device_name(device)

    def save_partial(partial: Report) -> None:
        partial.device.update(cuda)
        _write_tables(partial, Path(args.out))

    report = run_sweep(wl, sizes, _strategies(args, wl), measure=measure,
                       progress=not args.quiet, options=options,
                       on_point=save_partial if args.out else None)
    report.device.update(cuda)
    return _show(report, args, out)


def load_report(path: str | Path) -> Report:
    """A report saved by ``--json`` or ``--out`` (``memcost_<net>.json``).

    Raises:
        SymbolError: the file cannot be read or is not such a report.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SymbolError(f"--from-json {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        return Report.from_json(data)
    except SymbolError as e:
        raise SymbolError(f"--from-json {path}: {e}") from None


def _show(report: Report, args: argparse.Namespace, out: TextIO) -> int:
    if args.out:
        folder = Path(args.out)
        _write_tables(report, folder)
        from .memcost_report import plot_report
        plot_report(report, folder)
    from .memcost_report import format_report
    print(json.dumps(report.to_json(), indent=1) if args.json else format_report(report),
          file=out)
    return 0


def _write_tables(report: Report, folder: Path) -> None:
    """``memcost_<net>.json`` and ``.md`` in ``folder``: each written whole, then renamed, so
    that a stopped sweep leaves a readable report of the points done."""
    from .memcost_report import format_report
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(report.workload.net).stem
    for suffix, text in ((".json", json.dumps(report.to_json(), indent=1)),
                         (".md", format_report(report, markdown=True))):
        path = folder / f"memcost_{stem}{suffix}"
        tmp = path.with_suffix(suffix + ".tmp")
        tmp.write_text(text + "\n")
        tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m executor.app.memcost [options]``: the command on its own (for tests and use
    before it is registered in ``sublinear``)."""
    parser = argparse.ArgumentParser(prog="sublinear")
    add_memcost_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["memcost", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        return run_memcost(args)
    except SymbolError as e:
        from symbol.dsl import format_error
        print(f"sublinear: {format_error(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
