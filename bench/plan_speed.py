"""Planning speed of the paper's sweeps: seconds per (network, size, strategy), and totals.

    python bench/plan_speed.py                        # LSTM and ResNet, prints JSON
    python bench/plan_speed.py --net lstm --steps 50,400 --repeat 3

LSTM: the unrolled 4 x 1024 LSTM (``examples.lstm``), batch 64, lengths 50 .. 1600, strategies
``none`` / ``inplace`` / ``sharing`` (one ``plan_network`` each) and ``sublinear``
(``plan_training(mirror='sublinear')``: the Appendix A search, six exact plans).
ResNet: the ImageNet bottleneck ResNet (``examples.resnet``, ``units_for_depth``), batch 32,
3x224x224, depths 100 .. 1000, the same three memory strategies plus ``drop-cheap`` and
``sublinear`` (``plan_training``, sharing).

``seconds`` is the planning time of one point (building the symbol is reported separately as
``build_s``); with ``--repeat N`` each point runs N times and the minimum is kept, since the
machine may be shared. ``planned_bytes`` is printed so that a speed change can be checked not
to change a plan.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from examples import lstm, resnet  # noqa: E402
from optim.pipeline import default_grad_req, plan_network  # noqa: E402
from optim.search import plan_training  # noqa: E402

MEMORY = ("none", "inplace", "sharing")
STRATEGIES = {"lstm": (*MEMORY, "sublinear"), "resnet": (*MEMORY, "drop-cheap", "sublinear")}


def build(net: str, size: int) -> tuple[Any, dict[str, tuple[int, ...]]]:
    """The symbol and input shapes of one sweep point."""
    if net == "resnet":
        return (resnet.get_symbol(units=resnet.units_for_depth(size)),
                {"data": (32, 3, 224, 224)})
    shapes = {f"t{t}_data": (64, 50) for t in range(size)}
    shapes.update({f"l{i}_init_{k}": (64, 1024) for i in range(4) for k in "ch"})
    return lstm.get_symbol(seq_len=size), shapes


def planner(net: Any, shapes: dict[str, tuple[int, ...]], strategy: str) -> Callable[[], int]:
    """A call planning ``net`` with ``strategy``; it returns the planned bytes."""
    reqs = default_grad_req(net.list_arguments(), list(shapes))
    aux = net.list_auxiliary_states()
    if strategy in MEMORY:
        return lambda: plan_network(net.graph, shapes, grad_req=reqs, aux=aux,
                                    strategy=strategy).plan.planned_bytes
    return lambda: plan_training(net.graph, shapes, grad_req=reqs, aux=aux,
                                 mirror=strategy)[1].plan.planned_bytes


def sweep(net_name: str, sizes: list[int], repeat: int) -> dict[str, Any]:
    """Rows for every (size, strategy) of one network, with totals."""
    rows = []
    build_s = 0.0
    for size in sizes:
        t0 = time.perf_counter()
        net, shapes = build(net_name, size)
        _ = net.graph  # built lazily: count it as building
        build_s += time.perf_counter() - t0
        for strategy in STRATEGIES[net_name]:
            run = planner(net, shapes, strategy)
            times, planned = [], 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                planned = run()
                times.append(time.perf_counter() - t0)
            rows.append({"net": net_name, "size": size, "strategy": strategy,
                         "seconds": round(min(times), 3), "planned_bytes": planned})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    total = sum(r["seconds"] for r in rows)
    by_strategy = {s: round(sum(r["seconds"] for r in rows if r["strategy"] == s), 3)
                   for s in STRATEGIES[net_name]}
    return {"rows": rows, "plan_s": round(total, 3), "build_s": round(build_s, 3),
            "total_s": round(total + build_s, 3), "by_strategy": by_strategy}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=("lstm", "resnet", "both"), default="both")
    ap.add_argument("--steps", default="50,100,200,400,800,1600")
    ap.add_argument("--depths", default="100,200,400,600,800,1000")
    ap.add_argument("--repeat", type=int, default=1, help="runs per point; the minimum is kept")
    args = ap.parse_args()
    out = {}
    if args.net in ("lstm", "both"):
        out["lstm"] = sweep("lstm", [int(s) for s in args.steps.split(",")], args.repeat)
    if args.net in ("resnet", "both"):
        out["resnet"] = sweep("resnet", [int(s) for s in args.depths.split(",")], args.repeat)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
