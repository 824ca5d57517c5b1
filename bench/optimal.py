"""The ``optimal`` planner against the paper's Alg. 3 (+ Appendix A search) and tuned PyTorch.

    python bench/optimal.py                         # ResNet-1001, then LSTM-1600 (slow)
    python bench/optimal.py --net resnet            # prints one JSON object per check

Checks (planning only; batch 32 / 64, fp32; times on the machine that runs it):

* ``under_checkpoint_sequential`` (ResNet-1001, units 3,131,196,3): the least recompute whose
  activations + gradients fit 0.9 x 2,058 MiB, the bytes tuned
  ``torch.utils.checkpoint.checkpoint_sequential`` needs on this network (37 segments,
  +94% forward; measured with FakeTensor runs of ``examples/torch_reference.py``);
* ``at_appendix_a_budget`` (ResNet-1001 and LSTM-1600): the sublinear plan's planned bytes M
  and extra forward FLOPs R, then ``optimal`` at budget M (activations scope): its R;
* ``largest_batch_12GiB`` (ResNet-1001): the largest batch whose whole step (activations,
  gradients, parameters, their gradients, inputs, aux states, workspace) plans within 12 GiB
  at no more than one extra forward, for the sublinear plan and for ``optimal``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from examples import lstm, resnet  # noqa: E402
from optim.mirror import MirrorError  # noqa: E402
from optim.pipeline import default_grad_req  # noqa: E402
from optim.search import plan_training  # noqa: E402

MiB, GiB = 2**20, 2**30
TORCH_CHECKPOINT_SEQUENTIAL_MIB = 2058
UNITS_1001 = (3, 131, 196, 3)


def _resnet(batch: int) -> tuple[Any, dict[str, tuple[int, ...]]]:
    return resnet.get_symbol(units=UNITS_1001), {"data": (batch, 3, 224, 224)}


def _lstm(steps: int = 1600) -> tuple[Any, dict[str, tuple[int, ...]]]:
    shapes = {f"t{t}_data": (64, 50) for t in range(steps)}
    shapes.update({f"l{i}_init_{k}": (64, 1024) for i in range(4) for k in "ch"})
    return lstm.get_symbol(seq_len=steps, num_hidden=1024), shapes


def plan(net: Any, shapes: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """One plan: its bytes, whole-step bytes, extra FLOPs and seconds."""
    reqs = default_grad_req(net.list_arguments(), list(shapes))
    t0 = time.perf_counter()
    mplan, nplan = plan_training(net.graph, shapes, grad_req=reqs,
                                 aux=net.list_auxiliary_states(), **kw)
    return {"mirror": mplan.strategy, "planned_MiB": round(nplan.plan.planned_bytes / MiB, 1),
            "step_GiB": round(nplan.plan.step_bytes / GiB, 3),
            "extra_forward": round(mplan.recompute_flops, 4), "note": mplan.note,
            "plan_s": round(time.perf_counter() - t0, 2)}


def at_appendix_a_budget(name: str, net: Any, shapes: dict[str, Any]) -> dict[str, Any]:
    sub = plan(net, shapes, mirror="sublinear")
    budget = int(sub["planned_MiB"] * MiB)
    opt = plan(net, shapes, mirror="optimal", budget=budget, budget_scope="activations")
    return {"check": "at_appendix_a_budget", "net": name, "sublinear": sub, "optimal": opt,
            "optimal_recomputes_less": opt["extra_forward"] < sub["extra_forward"]}


def largest_batch(method: str, limit: int = 12 * GiB, start: int = 32) -> dict[str, Any]:
    """The largest batch (binary search) whose whole step fits ``limit`` at <= 1 extra
    forward with ``method`` (sublinear: its own plan must fit; optimal: asked for it)."""
    def fits(batch: int) -> dict[str, Any] | None:
        net, shapes = _resnet(batch)
        try:
            row = (plan(net, shapes, mirror="optimal", budget=limit) if method == "optimal"
                   else plan(net, shapes, mirror="sublinear"))
        except MirrorError:
            return None
        ok = row["step_GiB"] * GiB <= limit and row["extra_forward"] <= 1.0
        return row if ok else None
    lo, hi, best = 0, start, None
    while (row := fits(hi)) is not None:  # grow until it no longer fits
        lo, best, hi = hi, row, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        row = fits(mid)
        if row is not None:
            lo, best = mid, row
        else:
            hi = mid
    return {"method": method, "batch": lo, "plan": best}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--net", choices=("resnet", "lstm", "both"), default="both",
                    help="which checks to run (default both; the LSTM-1600 takes minutes)")
    args = ap.parse_args()
    if args.net in ("resnet", "both"):
        net, shapes = _resnet(32)
        budget = int(0.9 * TORCH_CHECKPOINT_SEQUENTIAL_MIB * MiB)
        row = plan(net, shapes, mirror="optimal", budget=budget, budget_scope="activations")
        print(json.dumps({"check": "under_checkpoint_sequential", "net": "resnet-1001",
                          "budget_MiB": round(budget / MiB, 1), "optimal": row,
                          "met": row["extra_forward"] <= 1.0}), flush=True)
        print(json.dumps(at_appendix_a_budget("resnet-1001", net, shapes)), flush=True)
        rows = [largest_batch("sublinear"), largest_batch("optimal")]
        print(json.dumps({"check": "largest_batch_12GiB", "net": "resnet-1001", "rows": rows,
                          "ratio": round(rows[1]["batch"] / max(rows[0]["batch"], 1), 3)}),
              flush=True)
    if args.net in ("lstm", "both"):
        net, shapes = _lstm()
        print(json.dumps(at_appendix_a_budget("lstm-1600", net, shapes)), flush=True)


if __name__ == "__main__":
    main()
