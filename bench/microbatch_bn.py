"""What exact BatchNorm statistics cost under microbatching: step time and distance from the
unsplit step, per-slice (``bn_stats='slice'``) against whole-batch (``'exact'``) statistics.

    python bench/microbatch_bn.py                              # WRN-10-1, batch 32, CPU
    python bench/microbatch_bn.py --depth 16 --widen 2 --ctx cuda --dtype float32

For K = 1 and each K in ``--microbatch``, both modes train the same network (``examples/
wrn.sym``) from the same initialisation on the same batches for ``--steps`` steps; each run
prints one JSON line: the median step time after one warm-up step, the most passes over the
slices per step (forward, backward; the statistics and gradient-sum passes stop early), the
BatchNorm kernel calls per step, the planned activation bytes, and how far the losses and
the parameters end from the K = 1 run (largest relative loss difference; relative norm of
the parameter difference).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import executor  # noqa: E402,F401
import symbol as sym  # noqa: E402
from executor.training.data import synthetic  # noqa: E402
from executor.training.trainer import TrainConfig, Trainer  # noqa: E402

WRN = Path(__file__).resolve().parents[1] / "examples" / "wrn.sym"


def run(args: argparse.Namespace, k: int, mode: str) -> tuple[dict, list[float], torch.Tensor]:
    net = sym.load(str(WRN), params=dict(depth=args.depth, widen=args.widen,
                                         image_shape=(3, args.image, args.image)))
    data = synthetic({"data": (3, args.image, args.image)}, "softmax_label", 10,
                     samples=args.batch * (args.steps + 1), test_samples=0, seed=1)
    trainer = Trainer(net, data, TrainConfig(batch=args.batch, epochs=1, dtype=args.dtype,
                                             ctx=args.ctx, lr=0.05, microbatch=k, seed=3,
                                             bn_stats=mode))
    rng = np.random.default_rng(0)
    losses, times = [], []
    for _, batch in zip(range(args.steps + 1), trainer.dataset.batches(args.batch, rng)):
        if trainer.exe.device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        losses.append(trainer.train_step(batch, args.steps + 1)[0])
        if trainer.exe.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    params = torch.cat([trainer.exe.arg_dict[n].detach().flatten().double()
                        for n in trainer.params])
    passes = trainer.exact_bn.depths.passes() if trainer.exact_bn else (1, 1)
    calls = {op: trainer.exe.kernel_calls[op] // (args.steps + 1)
             for op in ("BatchNorm", "_backward_BatchNorm")}
    record = {"net": f"wrn-{args.depth}-{args.widen}", "batch": args.batch, "microbatch": k,
              "bn_stats": mode, "dtype": args.dtype, "device": str(trainer.exe.device),
              "step_ms": round(1e3 * statistics.median(times[1:]), 2),
              "passes": list(passes), "batchnorm_calls_per_step": calls,
              "activations_bytes": trainer.exe.plan.bytes_by_class()["activations"]}
    return record, losses, params


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--widen", type=int, default=1)
    p.add_argument("--image", type=int, default=32)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--microbatch", type=int, nargs="+", default=[2, 4])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--dtype", default="float64", help="float64 (default) shows exactness")
    p.add_argument("--ctx", default="cpu")
    args = p.parse_args(argv)
    base, base_losses, base_params = run(args, 1, "slice")
    print(json.dumps(base), flush=True)
    for k in args.microbatch:
        for mode in ("slice", "exact"):
            record, losses, params = run(args, k, mode)
            record["loss_rel_diff"] = float(np.max(np.abs(np.subtract(losses, base_losses))
                                                   / np.abs(base_losses)))
            record["params_rel_diff"] = float((params - base_params).norm()
                                              / base_params.norm())
            record["time_over_unsplit"] = round(record["step_ms"] / base["step_ms"], 2)
            print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
