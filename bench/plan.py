"""Planned memory of the paper's ResNet sweep for the strategies none / inplace / sharing.

    python bench/plan.py [--depths 100,200,...] [--batch 32]     # prints JSON

ImageNet pre-activation bottleneck ResNet (``examples.resnet``, ReLU), 3x224x224, fp32.
``planned_GiB`` is the paper's Fig. 5a quantity (activations + intermediate gradients);
``paper_GiB`` is the digitised value from the paper (``executor/data/paper_figures.json``).
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

from examples import resnet  # noqa: E402
from optim.pipeline import default_grad_req, plan_network  # noqa: E402

PAPER = os.path.join(ROOT, "executor", "data", "paper_figures.json")
NAMES = {"none": "no_optimization", "inplace": "inplace", "sharing": "sharing"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depths", default="100,200,400,600,800,1000")
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    with open(PAPER) as f:
        paper = json.load(f)["resnet"]
    rows = []
    for depth in (int(d) for d in args.depths.split(",")):
        units = resnet.units_for_depth(depth)
        net = resnet.get_symbol(units=units)
        reqs = default_grad_req(net.list_arguments(), ["data"])
        for strategy in ("none", "inplace", "sharing"):
            t0 = time.perf_counter()
            plan = plan_network(net.graph, {"data": (args.batch, 3, 224, 224)}, grad_req=reqs,
                                aux=net.list_auxiliary_states(), strategy=strategy).plan
            seconds = time.perf_counter() - t0
            gib = plan.planned_bytes / 2**30
            ref = None
            if depth in paper["layers"]:
                ref = paper["feature_map_plan_GB"][NAMES[strategy]][paper["layers"].index(depth)]
            rows.append({"depth": depth, "layers": 3 * sum(units) + 2, "units": units,
                         "strategy": strategy, "planned_GiB": round(gib, 3),
                         "paper_GiB": ref, "ratio": round(gib / ref, 3) if ref else None,
                         "num_storage": plan.num_storage, "num_inplace": plan.num_inplace,
                         "plan_s": round(seconds, 3)})
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
