"""The arena against MXNet's storage pool and the liveness bound, on the paper's sweeps.

    python bench/arena.py                                  # both sweeps, prints JSON lines
    python bench/arena.py --net resnet --sizes 200,1001 --mirrors sublinear

For every size, mirror strategy and memory strategy (``pool``: MXNet's storage pool;
``sharing``: the arena), the joint graph is planned with ``optim.search.plan_training`` and one
JSON object per plan is printed (as soon as it is made): planned bytes, the liveness bound
``live_peak_bytes``, their ratio, the storages and the planning time. ResNet: the ImageNet
pre-activation bottleneck ResNet (``examples.resnet``; depths by ``units_for_depth``), batch
32, 3x224x224, fp32; LSTM: the unrolled 4 x 1024 LSTM (``examples.lstm``), batch 64.
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
from optim.pipeline import default_grad_req  # noqa: E402
from optim.search import plan_training  # noqa: E402

SIZES = {"resnet": (100, 200, 400, 600, 800, 1000), "lstm": (50, 100, 200, 400, 800, 1600)}
MIRRORS = ("none", "drop-cheap", "sublinear", "recursive")


def build(net: str, size: int):
    """(symbol, input shapes) of one point of a sweep."""
    if net == "resnet":
        return (resnet.get_symbol(units=resnet.units_for_depth(size)),
                {"data": (32, 3, 224, 224)})
    shapes = {f"t{t}_data": (64, 50) for t in range(size)}
    shapes.update({f"l{i}_init_{k}": (64, 1024) for i in range(4) for k in "ch"})
    return lstm.get_symbol(seq_len=size, num_hidden=1024), shapes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--net", choices=("resnet", "lstm", "both"), default="both",
                    help="which sweep (default both)")
    ap.add_argument("--sizes", help="comma-separated depths or steps (default: the paper's)")
    ap.add_argument("--mirrors", default=",".join(MIRRORS),
                    help=f"mirror strategies (default {','.join(MIRRORS)})")
    ap.add_argument("--memory", default="pool,sharing", help="memory strategies")
    args = ap.parse_args()
    nets = ("resnet", "lstm") if args.net == "both" else (args.net,)
    for net in nets:
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else SIZES[net]
        for size in sizes:
            symbol, shapes = build(net, size)
            reqs = default_grad_req(symbol.list_arguments(), list(shapes))
            for mirror in args.mirrors.split(","):
                for memory in args.memory.split(","):
                    t0 = time.perf_counter()
                    _, nplan = plan_training(symbol.graph, shapes, grad_req=reqs,
                                             aux=symbol.list_auxiliary_states(),
                                             strategy=memory, mirror=mirror)
                    plan = nplan.plan
                    print(json.dumps({
                        "net": net, "size": size, "mirror": mirror, "memory": memory,
                        "planned_MiB": round(plan.planned_bytes / 2**20, 1),
                        "live_peak_MiB": round(plan.live_peak_bytes / 2**20, 1),
                        "ratio": round(plan.planned_bytes / plan.live_peak_bytes, 4),
                        "num_storage": plan.num_storage,
                        "plan_s": round(time.perf_counter() - t0, 2)}), flush=True)


if __name__ == "__main__":
    main()
