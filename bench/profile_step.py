"""Where one training step's time goes: our executor against torch eager, by kernel.

    python bench/profile_step.py --net resnet50 --ctx cuda --batch 32

Runs ``--warmup`` steps of each, then profiles ``--steps`` steps with ``torch.profiler`` and
prints JSON: per side the wall time per step, the device (CUDA) or CPU kernel time per step,
the number of kernels per step and the ``--top`` aten ops by self time, so that a gap between
the two sides can be put on extra kernels (copies, fills) or on host-side dispatch.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Callable

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import executor  # noqa: E402,F401
from bench.step import NETS  # noqa: E402  (the same networks as the step benchmark)
from examples import resnet, torch_reference  # noqa: E402
from executor import initialize, resolve_device  # noqa: E402


def _profile(step: Callable[[], None], device: torch.device, warmup: int, steps: int,
             top: int) -> dict[str, Any]:
    cuda = device.type == "cuda"
    sync = (lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    wall = (time.perf_counter() - t0) / steps
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        sync()
    events = prof.key_averages()
    attr = "self_device_time_total" if cuda else "self_cpu_time_total"
    kernels = [e for e in events if getattr(e, attr, 0) > 0 and e.key.startswith("aten::")]
    kernels.sort(key=lambda e: getattr(e, attr), reverse=True)
    return {"wall_ms": round(1000 * wall, 2),
            "kernel_ms": round(sum(getattr(e, attr) for e in kernels) / 1000 / steps, 2),
            "aten_calls": round(sum(e.count for e in events if e.key.startswith("aten::"))
                                / steps),
            "top": [{"op": e.key, "calls": e.count // steps,
                     "ms": round(getattr(e, attr) / 1000 / steps, 3)} for e in kernels[:top]]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=sorted(NETS), default="small")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ctx", default="cpu")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()
    cfg = NETS[args.net]
    device = resolve_device(args.ctx)
    net = resnet.get_symbol(num_classes=10 if args.net == "small" else 1000, **cfg)
    reqs = {n: "null" if n in ("data", "softmax_label") else "write" for n in net.list_arguments()}
    exe = net.simple_bind(device, grad_req=reqs, data=(args.batch, *cfg["image_shape"]))
    initialize(exe, seed=0)
    exe.arg_dict["data"].normal_(generator=torch.Generator(device).manual_seed(0))

    def ours() -> None:
        exe.forward(is_train=True)
        exe.backward()

    result: dict[str, Any] = {"net": args.net, "batch": args.batch, "device": str(device),
                              "torch": torch.__version__,
                              "ours": _profile(ours, device, args.warmup, args.steps, args.top)}
    params = {n: t.detach().clone().requires_grad_(n in exe.grad_dict)
              for n, t in exe.arg_dict.items()}
    aux = {n: t.detach().clone() for n, t in exe.aux_dict.items()}
    weights = [params[n] for n in exe.grad_dict]
    label = params["softmax_label"].long()

    def eager() -> None:
        logits = torch_reference.resnet_logits(params, cfg["units"], cfg["image_shape"], aux)
        torch.autograd.grad(F.cross_entropy(logits, label, reduction="sum"), weights,
                            allow_unused=True)

    result["eager"] = _profile(eager, device, args.warmup, args.steps, args.top)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
