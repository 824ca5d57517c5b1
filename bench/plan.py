"""Planned memory of the paper's sweeps for the strategies none / inplace / sharing.

    python bench/plan.py [--depths 100,200,...] [--batch 32]          # ResNet, prints JSON
    python bench/plan.py --net lstm [--steps 50,200] [--batch 64]      # 4 x 1024 LSTM

ImageNet pre-activation bottleneck ResNet (``examples.resnet``, ReLU), 3x224x224, fp32, or the
unrolled 4 x 1024 LSTM (``examples.lstm``). ``planned_GiB`` is the paper's Fig. 5a quantity
(activations + intermediate gradients); ``paper_GiB`` is the digitised value from the paper
(``executor/app/data/paper_figures.json``); ``mxnet_MiB`` is what real MXNet 1.9.1 plans for the
same network ("Total N MB allocated"; measured values recorded below, where known).
``plan_s`` is the time of differentiating, shape-inferring and planning the joint graph.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from examples import lstm, resnet  # noqa: E402
from optim.pipeline import default_grad_req, plan_network  # noqa: E402

PAPER = os.path.join(ROOT, "executor", "app", "data", "paper_figures.json")
NAMES = {"none": "no_optimization", "inplace": "inplace", "sharing": "sharing"}
#: Real MXNet 1.9.1 "Total N MB allocated" (MiB) for the same networks: default env (sharing)
#: and NNVM_EXEC_MATCH_RANGE=0 (in-place only); keyed by (net, ResNet units or LSTM steps).
MXNET_MIB = {("resnet", 66): {"sharing": 10481, "inplace": 20605},
             ("resnet", 333): {"sharing": 47135, "inplace": 93912},
             ("lstm", 50): {"sharing": 1201, "inplace": 8978},
             ("lstm", 200): {"sharing": 3972, "inplace": 35912}}


def _row(net, size, key, strategy, plan, seconds, paper, extra):
    gib = plan.planned_bytes / 2**30
    ref = None
    if size in paper["layers" if net == "resnet" else "steps"]:
        xs = paper["layers" if net == "resnet" else "steps"]
        series = paper["feature_map_plan_GB"].get(NAMES[strategy])
        ref = series[xs.index(size)] if series else None
    mx = MXNET_MIB.get((net, key), {}).get(strategy)
    return {"net": net, "size": size, **extra, "strategy": strategy,
            "planned_GiB": round(gib, 3), "paper_GiB": ref,
            "ratio": round(gib / ref, 3) if ref else None,
            "planned_MiB": round(plan.planned_bytes / 2**20), "mxnet_MiB": mx,
            "num_storage": plan.num_storage, "num_inplace": plan.num_inplace,
            "plan_s": round(seconds, 3)}


def _sweep(net_name, sizes, build, paper):
    rows = []
    for size in sizes:
        net, shapes, key, extra = build(size)
        reqs = default_grad_req(net.list_arguments(), list(shapes))
        for strategy in ("none", "inplace", "sharing"):
            t0 = time.perf_counter()
            plan = plan_network(net.graph, shapes, grad_req=reqs,
                                aux=net.list_auxiliary_states(), strategy=strategy).plan
            rows.append(_row(net_name, size, key, strategy, plan, time.perf_counter() - t0,
                             paper, extra))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=("resnet", "lstm"), default="resnet")
    ap.add_argument("--depths", default="100,200,400,600,800,1000")
    ap.add_argument("--steps", default="50,200")
    ap.add_argument("--batch", type=int, default=None)
    args = ap.parse_args()
    with open(PAPER) as f:
        paper = json.load(f)
    if args.net == "resnet":
        batch = args.batch or 32

        def build(depth):
            units = resnet.units_for_depth(depth)
            return (resnet.get_symbol(units=units), {"data": (batch, 3, 224, 224)}, sum(units),
                    {"layers": 3 * sum(units) + 2, "units": units})
        rows = _sweep("resnet", [int(d) for d in args.depths.split(",")], build,
                      paper["resnet"])
    else:
        batch = args.batch or 64

        def build(steps):
            shapes = {f"t{t}_data": (batch, 50) for t in range(steps)}
            shapes.update({f"l{i}_init_{k}": (batch, 1024) for i in range(4) for k in "ch"})
            return lstm.get_symbol(seq_len=steps), shapes, steps, {}
        rows = _sweep("lstm", [int(d) for d in args.steps.split(",")], build, paper["lstm"])
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
