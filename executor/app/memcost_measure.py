"""``sublinear memcost --measure``: real training steps on a CUDA device, per planned point.

For each point of the sweep (already planned by ``executor.app.memcost``):
  1. predict what binding would reserve from the plan alone: planned storages + inputs + aux
     states + parameters and their gradients, each rounded as the caching allocator rounds
     it, + the largest operator temporary + a fixed allowance for cuDNN/cuBLAS workspace; if
     that exceeds the device's free memory, report ``OOM`` without allocating anything;
  2. bind an Executor to the plan already made (no second planning), initialise parameters,
     fill data inputs with noise (labels stay 0, valid for any class count);
  3. run ``warmup`` steps, then ``repeat`` plain steps (forward + backward, synchronised at the
     ends only; replays of CUDA graphs with ``--cuda-graph``) for the time per batch and the
     step peak (``torch.cuda.max_memory_allocated``, reset by ``Executor.forward`` before each
     step), then ``repeat`` phase-timed steps op by op (``Executor.timed_step``) for the
     forward / recompute / backward breakdown;
  4. free everything (``torch.cuda.empty_cache``) before the next point.
An out-of-memory error at run time is caught and reported as ``OOM (run time)``.
"""
from __future__ import annotations

import gc
import statistics
import time
from typing import Any, Callable

import torch

from optim.pipeline import NetworkPlan
from symbol import Symbol
from symbol.graph import Entry

from ..binding import resolve_device
from ..executor import Executor, ExecutorError, torch_dtype
from ..initializer import initialize

__all__ = ["require_cuda", "device_block", "predicted_bytes", "bind_planned", "make_measure",
           "LIBRARY_WORKSPACE"]

#: Allowance for library workspace beyond our own temporaries (cuDNN convolutions took ~124 MiB
#: and cuBLAS 32 MiB on an H100), added to the prediction.
LIBRARY_WORKSPACE = 256 * 2**20
_LARGE_ALLOC, _LARGE_ROUND = 10 * 2**20, 2 * 2**20


def require_cuda(ctx: str) -> torch.device:
    """The CUDA device to measure on.

    Raises:
        ExecutorError: no CUDA device, or ``ctx`` names another kind of device.
    """
    if not torch.cuda.is_available():
        raise ExecutorError("memcost --measure runs real training steps on a CUDA device, and "
                            "none is available here (torch.cuda.is_available() is False); "
                            "drop --measure to plan only")
    device = resolve_device(ctx)
    if device.type != "cuda":
        raise ExecutorError(f"memcost --measure needs a CUDA device, got --device {ctx}")
    return device


def device_block(nbytes: int) -> int:
    """Bytes the CUDA caching allocator reserves for one array of ``nbytes``: rounded up to
    512 bytes, and an array of 10 MiB or more gets its own segment, rounded up to 2 MiB."""
    if nbytes >= _LARGE_ALLOC:
        return -(-nbytes // _LARGE_ROUND) * _LARGE_ROUND
    return -(-nbytes // 512) * 512


def predicted_bytes(nplan: NetworkPlan) -> int:
    """Bytes that binding ``nplan`` and running a step would reserve, from the plan alone:
    the planned arena (one array), every input, auxiliary state, parameter and parameter
    gradient as the caching allocator rounds it (:func:`device_block`), the largest operator
    temporary, and :data:`LIBRARY_WORKSPACE`."""
    plan = nplan.plan
    bound = [plan.nbytes.get(e, 0) for e, cls in plan.external.items()
             if cls in ("inputs", "aux_states", "parameters")]
    params = [plan.nbytes.get(e, 0) for e, cls in plan.external.items() if cls == "parameters"]
    return (sum(map(device_block, (plan.planned_bytes, *bound, *params)))
            + device_block(plan.workspace_bytes) + LIBRARY_WORKSPACE)


def bind_planned(symbol: Symbol, device: torch.device, planned: Any,
                 grad_req: dict[str, str]) -> Executor:
    """An Executor for ``planned = (MirrorPlan, NetworkPlan)``, allocated as ``simple_bind``
    does (zeros; moving variances 1), without planning again."""
    _, nplan = planned
    entry = {v.name: Entry(v, 0) for v in nplan.joint.graph.inputs}

    def alloc(name: str, fill: float = 0.0) -> torch.Tensor:
        e = entry[name]
        return torch.full(nplan.shapes[e], fill, device=device,
                          dtype=torch_dtype(nplan.dtypes[e] or "float32"))

    args = [a for a in symbol.list_arguments() if a in entry]
    arg_dict = {a: alloc(a) for a in args}
    grad_dict = {a: torch.zeros_like(arg_dict[a]) for a in args if grad_req.get(a) != "null"}
    aux_dict = {a: alloc(a, 1.0 if a.endswith("_var") else 0.0)
                for a in symbol.list_auxiliary_states()}
    return Executor(symbol, device, arg_dict, grad_dict, aux_dict, grad_req, planned=planned)


def _run_point(exe: Executor, device: torch.device, warmup: int, repeat: int,
               cuda_graph: bool = False) -> dict[str, Any]:
    def sync() -> None:
        torch.cuda.synchronize(device)

    if cuda_graph:  # one eager step, one captured step, then replays
        exe.enable_cuda_graphs(warmup=1)
        warmup = max(warmup, 2)

    def step() -> None:
        exe.forward(is_train=True)
        exe.backward()

    for _ in range(warmup):
        step()
    times, peaks = [], []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
        peaks.append(exe.last_step_peak or 0)
    exe.cuda_graphs = None  # the breakdown is timed op by op
    phases = []
    for _ in range(repeat):
        phases.append(exe.timed_step(sync))
        if cuda_graph:  # a replay allocates nothing: its temporaries sit in the graph's pool
            peaks.append(exe.last_step_peak or 0)
    steps = warmup + 2 * repeat
    return {"status": "ok", "step_peak_bytes": max(peaks),
            "reserved_bytes": torch.cuda.memory_reserved(device),
            "time_per_batch_s": statistics.median(times), "times_s": times,
            "breakdown_s": {k: statistics.median(p[k] for p in phases) for k in phases[0]},
            "recomputed_per_step": sum(exe.recompute_calls.values()) / steps,
            "kernels_per_step": sum(exe.kernel_calls.values()) / steps}


def make_measure(device: torch.device, *, warmup: int = 2, repeat: int = 5,
                 cuda_graph: bool = False) -> Callable[[Any, Any], dict[str, Any]]:
    """The ``measure(built, planned) -> dict`` callable that ``run_sweep`` calls per point.

    With ``cuda_graph`` the timed steps are CUDA graph replays (:meth:`Executor.enable_cuda_graphs`;
    at least 2 warm-up steps: one eager, one captured); the forward / recompute / backward
    breakdown is still timed op by op, and the step peak is the largest of both kinds of step
    (a replay allocates nothing, so ``max_memory_allocated`` does not see its temporaries,
    which were allocated once, while capturing, in the graph's private pool)."""

    def measure(built: Any, planned: Any) -> dict[str, Any]:
        from optim.pipeline import default_grad_req
        symbol = built.symbol
        reqs = default_grad_req(symbol.list_arguments(), built.inputs)
        gc.collect()
        torch.cuda.empty_cache()
        need, free = predicted_bytes(planned[1]), torch.cuda.mem_get_info(device)[0]
        result: dict[str, Any] = {"predicted_bytes": need, "free_bytes": free}
        if need > free:
            return {"status": "OOM", **result}
        exe = None
        try:
            exe = bind_planned(symbol, device, planned, reqs)
            initialize(exe, seed=0)
            gen = torch.Generator(device).manual_seed(0)
            for name in built.inputs:
                if name.endswith("data"):
                    exe.arg_dict[name].normal_(generator=gen)
            result["allocated_bytes"] = torch.cuda.memory_allocated(device)
            result["cuda_graph"] = cuda_graph
            result.update(_run_point(exe, device, warmup, repeat, cuda_graph))
        except torch.cuda.OutOfMemoryError:
            result["status"] = "OOM (run time)"
        finally:
            del exe
            gc.collect()
            torch.cuda.empty_cache()
        return result

    return measure
