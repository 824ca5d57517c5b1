"""Time one training step (forward + backward) of our executor against torch eager + autograd.

    python bench/step.py                       # small ResNet on CPU (prints JSON)
    python bench/step.py --net mlp --batch 1   # MLP 784-128-64-10
    python bench/step.py --net resnet50 --ctx cuda --batch 32
    python bench/step.py --net resnet1001 --ctx cuda --batch 32 --strategy sharing
    python bench/step.py --net resnet1001 --ctx cuda --batch 32 --mirror sublinear --skip-eager
    python bench/step.py --net resnet50 --ctx cuda --batch 32 --cuda-graph

Both sides run the same network (``examples.resnet`` or ``examples.mlp``, and
``examples.torch_reference``) on the same device and dtype (float32); the reported time is the
median over ``--steps`` steps after ``--warmup`` steps (with ``--rounds R``, the two sides
alternate R times and the medians are over all R * steps steps). torch eager uses
``F.batch_norm`` with running statistics, ReLU, conv2d. On CUDA it also reports memory: our
measured step peak against the plan (planned storages + parameters + gradients + inputs + aux
states) plus the measured workspace, and torch eager's step peak
(``torch.cuda.max_memory_allocated``, reset before each step). With ``--mirror`` it also times
our own run without mirroring in the same process (``mirror_over_sharing``).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import executor  # noqa: E402,F401
from examples import mlp, resnet, torch_reference  # noqa: E402
from executor import initialize, resolve_device  # noqa: E402

NETS = {
    "small": dict(units=(2, 2, 2), filter_list=(16, 64, 128, 256), image_shape=(3, 32, 32)),
    **{f"resnet{d}": dict(units=resnet.units_for_depth(d),
                          filter_list=(64, 256, 512, 1024, 2048), image_shape=(3, 224, 224))
       for d in (50, 101, 152, 200, 1001)},
}
MLP = dict(hidden=(128, 64), num_classes=10, input_dim=784)  # --net mlp: 784-128-64-10


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _times(step, device, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def _median_ms(step, device, warmup: int, steps: int) -> float:
    for _ in range(warmup):
        step()
    return 1000 * statistics.median(_times(step, device, steps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--net", choices=sorted(NETS) + ["mlp"], default="small")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ctx", default="cpu")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--strategy", choices=("none", "inplace", "sharing"), default="sharing")
    ap.add_argument("--mirror", default="none",
                    choices=("none", "drop-cheap", "drop-cheap-keep-bn", "sublinear", "recursive"))
    ap.add_argument("--threads", type=int, default=0,
                    help="torch.set_num_threads for both sides (default: torch's choice)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="alternate the two sides this many times, --steps steps each, and take "
                    "the medians over all rounds (fairer on a shared, loaded host)")
    ap.add_argument("--skip-eager", action="store_true", help="do not time torch eager")
    ap.add_argument("--cuda-graph", action="store_true",
                    help="run our training steps as CUDA graphs (Executor.enable_cuda_graphs)")
    args = ap.parse_args()
    device = resolve_device(args.ctx)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.net == "mlp":
        cfg: dict = {}
        net = mlp.get_symbol(num_classes=MLP["num_classes"], hidden=MLP["hidden"])
        shape = (args.batch, MLP["input_dim"])
    else:
        cfg = NETS[args.net]
        net = resnet.get_symbol(num_classes=10 if args.net == "small" else 1000, **cfg)
        shape = (args.batch, *cfg["image_shape"])
    reqs = {n: "null" if n in ("data", "softmax_label") else "write" for n in net.list_arguments()}

    def bind(mirror: str):
        exe = net.simple_bind(device, grad_req=reqs, strategy=args.strategy, mirror=mirror,
                              data=shape)
        initialize(exe, seed=0)
        exe.arg_dict["data"].normal_(generator=torch.Generator(device).manual_seed(0))
        exe.arg_dict["softmax_label"].random_(0, 10)
        if args.cuda_graph:
            exe.enable_cuda_graphs()
        return exe

    def stepper(exe):
        def step() -> None:
            exe.forward(is_train=True)
            exe.backward()
        return step

    baseline = None
    if args.mirror != "none":
        base = bind("none")
        baseline = _median_ms(stepper(base), device, args.warmup, args.steps)
        base_peak = base.memory_report().get("measured_step_peak")
        del base
    exe = bind(args.mirror)
    ours = stepper(exe)

    for _ in range(args.warmup):
        ours()
    ours_times = _times(ours, device, args.steps)
    ours_ms = 1000 * statistics.median(ours_times)
    result = {
        "net": args.net, "batch": args.batch, "device": str(device), "strategy": args.strategy,
        "mirror": args.mirror, "cuda_graph": args.cuda_graph,
        "mirror_summary": exe.mirror_plan.summary(),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else "cpu"),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "steps": args.steps * args.rounds, "ours_ms": round(ours_ms, 3)}
    rep = exe.memory_report()
    result["planned_bytes"] = rep["planned_bytes"]
    if baseline is not None:
        result.update(no_mirror_ms=round(baseline, 2),
                      mirror_over_sharing=round(ours_ms / baseline, 3),
                      no_mirror_step_peak=base_peak)
    if "measured_step_peak" in rep:
        bound = rep["total_bytes"] - rep["workspace_estimate"]
        result.update(measured_step_peak=rep["measured_step_peak"],
                      measured_workspace=rep["measured_workspace"], plan_and_bound=bound,
                      peak_over_plan_plus_workspace=round(
                          rep["measured_step_peak"] / (bound + rep["measured_workspace"]), 4))
    if not args.skip_eager:
        # torch's own copies of the inputs and parameters, made after our run was measured
        params = {n: t.detach().clone().requires_grad_(n in exe.grad_dict)
                  for n, t in exe.arg_dict.items()}
        aux = {n: t.detach().clone() for n, t in exe.aux_dict.items()}
        label = params["softmax_label"].long()
        weights = [params[n] for n in exe.grad_dict]

        def eager() -> None:
            if args.net == "mlp":
                logits = torch_reference.mlp_logits(params, len(MLP["hidden"]) + 1)
            else:
                logits = torch_reference.resnet_logits(params, cfg["units"],
                                                       cfg["image_shape"], aux)
            loss = F.cross_entropy(logits, label, reduction="sum")
            torch.autograd.grad(loss, weights, allow_unused=True)

        if args.rounds == 1:
            ours = exe = None  # free our buffers before timing torch
        for _ in range(args.warmup):
            eager()
        eager_times = _times(eager, device, args.steps)
        for _ in range(args.rounds - 1):
            ours_times += _times(ours, device, args.steps)
            eager_times += _times(eager, device, args.steps)
        ours_ms = 1000 * statistics.median(ours_times)
        eager_ms = 1000 * statistics.median(eager_times)
        result.update(ours_ms=round(ours_ms, 3), torch_eager_ms=round(eager_ms, 3),
                      ratio=round(ours_ms / eager_ms, 3))
        ours = exe = None  # free our buffers before measuring torch's peak
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            eager()
            torch.cuda.synchronize(device)
            result["torch_eager_peak"] = torch.cuda.max_memory_allocated(device)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
