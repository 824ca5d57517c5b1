"""Data parallel step time: 1 worker against N local CPU workers (gloo), with overlap statistics.

    python bench/distributed.py                          # MLP and small CIFAR ResNet, 2 workers
    python bench/distributed.py --net resnet --batch 64 --steps 20 --buckets 25,1,0.25

Every run trains on the same global batch (``--batch``): 1 worker takes all of it with all the
CPU's threads; N workers (``--workers``, started by ``executor.training.distributed.launch``)
take ``batch / N`` each, with the threads divided among them, and sum their gradients with
``DataParallel`` at each bucket size of ``--buckets`` (MiB; DDP's default is 25). A step is
forward, backward, ``finish()`` (N workers) and an SGD update; the time is rank 0's median over
``--steps`` steps after ``--warmup`` steps. The overlap statistics are ``DataParallel.stats``
means over the measured steps (see its docstring). Prints JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import executor  # noqa: E402,F401
from examples import mlp, resnet  # noqa: E402
from executor import SGD, initialize  # noqa: E402
from executor.training.distributed import DataParallel, from_environment, launch  # noqa: E402

NETS = {
    "mlp": (lambda: mlp.get_symbol(num_classes=10, hidden=(1024, 1024, 512)), (784,)),
    "resnet": (lambda: resnet.get_symbol(num_classes=10, units=(1, 1, 1),
                                         filter_list=(16, 64, 128, 256), image_shape=(3, 32, 32)),
               (3, 32, 32)),
}


def worker(net: str, batch: int, steps: int, warmup: int, bucket_bytes: int) -> dict[str, Any]:
    """One worker's run: median step time, and DataParallel's statistics when distributed."""
    env = from_environment("cpu")
    build, sample = NETS[net]
    symbol = build()
    reqs = {n: "null" if n in ("data", "softmax_label") else "write"
            for n in symbol.list_arguments()}
    exe = symbol.simple_bind("cpu", grad_req=reqs, data=(batch // env.world_size, *sample))
    initialize(exe, seed=0)
    dp = DataParallel(exe, bucket_bytes=bucket_bytes) if env.world_size > 1 else None
    if dp is not None:
        dp.broadcast()
    opt = SGD(lr=0.01, momentum=0.9, rescale_grad=1.0 / batch)
    rng = np.random.default_rng(env.rank)
    x = rng.normal(size=(batch // env.world_size, *sample)).astype(np.float32)
    y = rng.integers(0, 10, batch // env.world_size).astype(np.float32)
    times = []
    for i in range(warmup + steps):
        if i == warmup and dp is not None:
            dp.reset_stats()
        t = time.perf_counter()
        exe.forward(is_train=True, data=x, softmax_label=y)
        exe.backward()
        if dp is not None:
            dp.finish()
        opt.update(exe)
        times.append(time.perf_counter() - t)
    out: dict[str, Any] = {"step_ms": round(1000 * statistics.median(times[warmup:]), 2)}
    if dp is not None:
        out["stats"] = {_in_ms(k): round(1000 * v, 3) if k.endswith("_s") else v
                        for k, v in dp.stats.items() if k != "last"}
    return out


def _in_ms(key: str) -> str:
    return key[:-2] + "_ms" if key.endswith("_s") else key


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--net", choices=[*NETS, "both"], default="both")
    p.add_argument("--batch", type=int, default=64, help="global batch")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--buckets", default="25,1", help="bucket sizes in MiB, comma-separated")
    args = p.parse_args()
    cpus = os.cpu_count() or 1
    for net in NETS if args.net == "both" else [args.net]:
        one = launch(worker, 1, net, args.batch, args.steps, args.warmup, 0, threads=cpus)[0]
        runs = []
        for mib in (float(b) for b in args.buckets.split(",")):
            many = launch(worker, args.workers, net, args.batch, args.steps, args.warmup,
                          int(mib * 2**20))[0]
            runs.append({"bucket_mib": mib, **many,
                         "speedup": round(one["step_ms"] / many["step_ms"], 3)})
        print(json.dumps({"net": net, "global_batch": args.batch, "workers": args.workers,
                          "steps": args.steps, "warmup": args.warmup,
                          "machine": f"{platform.machine()}, {cpus} CPUs",
                          "torch": torch.__version__, "one_worker_step_ms": one["step_ms"],
                          "n_workers": runs}))


if __name__ == "__main__":
    main()
