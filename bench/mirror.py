"""Planned memory with recomputation over the paper's sweeps, the O(sqrt n) slope, search time.

    python bench/mirror.py                                   # ResNet 100..1000 layers, JSON
    python bench/mirror.py --net lstm --steps 50,200,1600    # 4 x 1024 LSTM, batch 64
    python bench/mirror.py --net resnet-postact --depths 200 # the post-activation ResNet
    python bench/mirror.py --no-marks                        # cut points found, not marked

For every size and mirror strategy: planned GiB (activations + intermediate gradients, the
paper's Fig. 5a/6a quantity), the paper's value, the extra forward compute of the recomputed
copies the joint graph holds (what the executor runs: ``recompute_flops``, ``copies``,
``recomputed_nodes``; ``requested``: the recomputations Alg. 2 was asked for), any fall-back
note, and the planning time (for sublinear: the whole Appendix A search). Then the fitted
log-log slope of planned memory against depth/length per strategy (the paper's claim: ~0.5 for
sublinear).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from examples import lstm, resnet, resnet_postact  # noqa: E402
from optim.pipeline import default_grad_req  # noqa: E402
from optim.search import plan_training  # noqa: E402

PAPER = os.path.join(ROOT, "executor", "app", "data", "paper_figures.json")
PAPER_NAMES = {"none": "sharing", "drop-cheap": "drop_bn_relu", "sublinear": "sublinear"}


def build(net: str, size: int, batch: int, marks: bool = True):
    if net.startswith("resnet"):
        units = resnet.units_for_depth(size)
        module = resnet_postact if net == "resnet-postact" else resnet
        return (module.get_symbol(units=units, mirror_stage=marks),
                {"data": (batch, 3, 224, 224)})
    shapes = {f"t{t}_data": (batch, 50) for t in range(size)}
    shapes.update({f"l{i}_init_{k}": (batch, 1024) for i in range(4) for k in "ch"})
    return lstm.get_symbol(seq_len=size, mirror_stage=marks), shapes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=("resnet", "resnet-postact", "lstm"), default="resnet")
    ap.add_argument("--depths", default="100,200,400,600,800,1000")
    ap.add_argument("--steps", default="50,100,200,400")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--mirrors", default="none,drop-cheap,sublinear,recursive")
    ap.add_argument("--no-marks", action="store_true",
                    help="build the networks without mirror_stage marks (cut points found)")
    args = ap.parse_args()
    cnn = args.net.startswith("resnet")
    batch = args.batch or (32 if cnn else 64)
    sizes = [int(s) for s in (args.depths if cnn else args.steps).split(",")]
    mirrors = args.mirrors.split(",")
    with open(PAPER) as f:
        paper = json.load(f)["resnet" if cnn else "lstm"]
    xs = paper["layers" if cnn else "steps"]
    rows = []
    for size in sizes:
        net, shapes = build(args.net, size, batch, marks=not args.no_marks)
        reqs = default_grad_req(net.list_arguments(), list(shapes))
        for m in mirrors:
            if args.net == "lstm" and m.startswith("drop-cheap"):
                continue  # the paper has no drop bn-relu for the LSTM
            t0 = time.perf_counter()
            mplan, nplan = plan_training(net.graph, shapes, grad_req=reqs,
                                         aux=net.list_auxiliary_states(), mirror=m)
            seconds = time.perf_counter() - t0
            gib = nplan.plan.planned_bytes / 2**30
            series = paper["feature_map_plan_GB"].get(PAPER_NAMES.get(m, ""))
            ref = series[xs.index(size)] if series and size in xs else None
            rows.append({"net": args.net, "size": size, "mirror": m,
                         "planned_GiB": round(gib, 3), "paper_GiB": ref,
                         "ratio": round(gib / ref, 3) if ref else None,
                         "recompute_flops": round(mplan.recompute_flops, 3),
                         "copies": mplan.num_copies, "recomputed_nodes": mplan.num_recomputed,
                         "requested": sum(mplan.requested.values()), "note": mplan.note,
                         "plan_s": round(seconds, 2)})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    slopes = {}
    for m in mirrors:
        pts = [(r["size"], r["planned_GiB"]) for r in rows if r["mirror"] == m]
        if len(pts) >= 2:
            x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
            slopes[m] = round(float(np.polyfit(x, y, 1)[0]), 3)
    print(json.dumps({"rows": rows, "loglog_slope": slopes}, indent=1))


if __name__ == "__main__":
    main()
