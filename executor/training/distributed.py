"""Data parallel training on ``torch.distributed``, as PyTorch DDP does it (Li et al., "PyTorch
Distributed", VLDB 2020).

Every worker (process) binds the same network to its share of the global batch; after each
``backward()`` the gradients are summed over the workers, so every worker applies the same
update to the same parameters.

1. **Process group.** :func:`from_environment` reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
   ``MASTER_ADDR`` and ``MASTER_PORT`` (what ``torchrun`` sets, and :func:`launch` for local
   workers) and initialises the default group: ``gloo`` on the CPU, ``nccl`` on CUDA.
2. **Same start.** :meth:`DataParallel.broadcast` copies rank 0's arguments and auxiliary
   states to every rank.
3. **Buckets.** The gradients are grouped, in the order the backward pass finishes them
   (``Executor.gradient_order``: the last layer's first; for a chain, the parameters' reverse
   order), into buckets of about ``bucket_bytes`` (25 MiB, DDP's default) of one dtype.
4. **Overlap.** A gradient-ready hook (``Executor.on_gradient_ready``) counts the gradients of
   each bucket; once all are final, the bucket is flattened into its own buffer
   (``torch.cat(out=...)``) and its ``all_reduce(SUM, async_op=True)`` is launched, buckets in
   index order (the same order on every rank), while the backward pass goes on with earlier
   layers.
5. **Finish.** :meth:`DataParallel.finish` (called right after ``backward()``) waits for every
   bucket and copies the sums back into ``grad_dict`` (``torch._foreach_copy_``).

Semantics (MXNet's, with ``kvstore='device'``): gradients are **summed**, not averaged. Give
each worker ``global_batch / workers`` samples (:func:`shard_batch`) and scale by
``rescale_grad = 1 / global_batch``: N workers then take the same steps as one worker with the
whole batch. BatchNorm's batch statistics and moving averages stay per worker (as MXNet and
DDP without SyncBatchNorm do): each worker normalises with its own shard's statistics.

Failures: :func:`launch` raises one :class:`WorkerError` naming the first worker that failed
and its exception (the original exception is the error's ``__cause__``), after stopping the
others; under ``torchrun``, its agent stops the other workers.
"""
from __future__ import annotations

import gc
import logging
import os
import pickle
import socket
import tempfile
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence, TypeVar

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.multiprocessing.spawn import ProcessException

from ..errors import RunError
from ..executor import Executor, ExecutorError

__all__ = ["DataParallel", "DistEnv", "WorkerError", "from_environment", "launch", "leave",
           "shard_batch", "DEFAULT_BUCKET_BYTES"]

log = logging.getLogger(__name__)

#: DDP's default bucket size (``bucket_cap_mb=25``).
DEFAULT_BUCKET_BYTES = 25 * 2**20
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
T = TypeVar("T")


class WorkerError(RunError):
    """A worker process started by :func:`launch` failed.

    Attributes:
        rank: the worker that failed first.
        remote_traceback: its traceback, as text (None if it died without one: a signal).
    """

    def __init__(self, message: str, rank: int, remote_traceback: str | None) -> None:
        super().__init__(message)
        self.rank, self.remote_traceback = rank, remote_traceback


# -- the process group ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in a data parallel run (see :func:`from_environment`).

    Attributes:
        rank: this worker, 0 .. world_size - 1; local_rank: its index on this machine.
        world_size: number of workers (1: not distributed, no process group).
        device: the device to bind on (``cuda:LOCAL_RANK`` on CUDA).
        backend: the process group's backend (``gloo``, ``nccl``), None when world_size is 1.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None


def _env_int(name: str) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value)
    except ValueError:
        raise ExecutorError(f"environment variable {name} must be an integer, got "
                            f"{value!r}") from None


def from_environment(ctx: str = "auto", *, backend: str | None = None,
                     timeout: timedelta = timedelta(minutes=10)) -> DistEnv:
    """Join the process group described by ``torchrun``'s environment variables.

    Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) the run is not distributed: nothing is
    initialised and the result says rank 0 of 1. Otherwise the default process group is
    initialised (``env://``) unless it already is.

    Args:
        ctx: ``auto`` (CUDA if available), ``cpu`` or ``cuda``; on CUDA each worker takes
            device ``cuda:LOCAL_RANK``.
        backend: default ``nccl`` on CUDA, ``gloo`` on the CPU.
        timeout: how long a collective may wait for the other workers.

    Raises:
        ExecutorError: a variable missing or not an integer, RANK outside the world.
    """
    world = _env_int("WORLD_SIZE") if "WORLD_SIZE" in os.environ else 1
    cuda = ctx.startswith(("cuda", "gpu")) or ctx == "auto" and torch.cuda.is_available()
    if world <= 1:
        return DistEnv(0, 1, 0, torch.device("cuda" if cuda else "cpu"), None)
    missing = [v for v in _ENV if v not in os.environ and v != "LOCAL_RANK"]
    if missing:
        raise ExecutorError(f"WORLD_SIZE is {world} but {', '.join(missing)} is not set "
                            "(start the workers with torchrun, or with launch())")
    rank = _env_int("RANK")
    local = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else rank
    if not 0 <= rank < world:
        raise ExecutorError(f"RANK is {rank}, outside 0 .. {world - 1} (WORLD_SIZE={world})")
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    backend = backend or ("nccl" if cuda else "gloo")
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world,
                                timeout=timeout)
    return DistEnv(rank, world, local, device, backend)


def leave() -> None:
    """Leave the process group together with the other workers, then destroy it (nothing
    to do without one). A worker that exits while its peers still hold the group, or with a
    Work still referenced, can abort in gloo's destructors at interpreter exit."""
    if not dist.is_initialized():
        return
    gc.collect()  # nothing (a Work, a hook cycle) may keep the group alive past exit
    dist.barrier()
    dist.destroy_process_group()


# -- local workers --------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(index: int, fn: Callable[..., Any], args: tuple[Any, ...], workers: int,
            port: int, threads: int, folder: str) -> None:
    """One spawned worker: torchrun's environment, then ``fn(*args)``; its result or its
    exception is saved in ``folder`` for the parent."""
    os.environ.update({"RANK": str(index), "LOCAL_RANK": str(index),
                       "WORLD_SIZE": str(workers), "LOCAL_WORLD_SIZE": str(workers),
                       "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "OMP_NUM_THREADS": str(threads)})
    torch.set_num_threads(threads)
    out = Path(folder)
    try:
        result = fn(*args)
        leave()
    except Exception as e:
        try:
            exc: bytes | None = pickle.dumps(e)
        except Exception:  # an exception that does not pickle: its text is still reported
            exc = None
        record = {"time": time.time(), "type": type(e).__name__, "message": str(e),
                  "traceback": traceback.format_exc(), "exception": exc}
        (out / f"{index}.error").write_bytes(pickle.dumps(record))
        raise
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    (out / f"{index}.result").write_bytes(pickle.dumps(result))


def launch(fn: Callable[..., T], workers: int, *args: Any, threads: int | None = None,
           port: int | None = None) -> list[T]:
    """Run ``fn(*args)`` in ``workers`` new local processes (``torch.multiprocessing``, spawn)
    that form one data parallel run; returns each worker's result, by rank.

    Each worker sees ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``,
    ``MASTER_ADDR=127.0.0.1`` and ``MASTER_PORT`` as ``torchrun`` sets them, so ``fn`` calls
    :func:`from_environment` exactly as it would under ``torchrun``. ``fn``, ``args`` and the
    results must pickle (``fn`` a module-level function). The process group, if ``fn`` made
    one, is destroyed when ``fn`` returns.

    Args:
        fn: the worker's body.
        workers: number of processes.
        threads: torch threads per worker (default: the CPU count divided among workers).
        port: ``MASTER_PORT`` (default: a free port).

    Raises:
        WorkerError: a worker raised or died; the others are stopped. The message names the
            first worker that failed (by time), its exception and its traceback.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ExecutorError(f"launch: workers must be a positive integer, got {workers!r}")
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    with tempfile.TemporaryDirectory(prefix="sublinear-workers-") as folder:
        ctx = mp.start_processes(_worker, args=(fn, args, workers, port or _free_port(),
                                                threads, folder),
                                 nprocs=workers, join=False, start_method="spawn")
        spawn_log = logging.getLogger("torch.multiprocessing.spawn")
        level = spawn_log.level  # its "Terminating process ..." warning: we report the cause
        spawn_log.setLevel(logging.ERROR)
        try:
            while not ctx.join():
                pass
        except ProcessException as e:  # join() has stopped the other workers
            raise _first_failure(Path(folder), workers, e) from _cause(Path(folder))
        finally:
            spawn_log.setLevel(level)
            for p in ctx.processes:
                if p.is_alive():
                    p.terminate()
                    p.join()
        return [pickle.loads((Path(folder) / f"{i}.result").read_bytes())
                for i in range(workers)]


def _failures(folder: Path) -> list[tuple[int, dict[str, Any]]]:
    """(rank, record) of the workers that raised, earliest first."""
    found = [(int(p.stem), pickle.loads(p.read_bytes())) for p in folder.glob("*.error")]
    return sorted(found, key=lambda f: f[1]["time"])


def _first_failure(folder: Path, workers: int, e: ProcessException) -> WorkerError:
    failed = _failures(folder)
    if not failed:  # died without a Python exception: a signal (out of memory?) or exit code
        return WorkerError(f"worker {e.error_index} of {workers} failed: {e}", e.error_index,
                           None)
    rank, r = failed[0]
    tb = r["traceback"].rstrip()
    return WorkerError(f"worker {rank} of {workers} failed: {r['type']}: {r['message']}\n"
                       f"\nworker {rank}'s traceback:\n{tb}", rank, tb)


def _cause(folder: Path) -> BaseException | None:
    failed = _failures(folder)
    if not failed or failed[0][1]["exception"] is None:
        return None
    try:
        cause = pickle.loads(failed[0][1]["exception"])
    except Exception:
        return None
    return cause if isinstance(cause, BaseException) else None


# -- sharding -------------------------------------------------------------------------------------
def shard_batch(arrays: Mapping[str, T], rank: int, world_size: int) -> dict[str, T]:
    """Worker ``rank``'s share of a global batch: the contiguous rows ``[rank * n / world,
    (rank + 1) * n / world)`` of every array (numpy arrays or torch tensors; views, no copy).

    Raises:
        ExecutorError: arrays of different lengths, a length not divisible by ``world_size``,
            a rank outside the world.
    """
    if not 0 <= rank < world_size:
        raise ExecutorError(f"shard_batch: rank {rank} outside 0 .. {world_size - 1}")
    sizes = {k: len(v) for k, v in arrays.items()}  # type: ignore[arg-type]
    if len(set(sizes.values())) > 1:
        raise ExecutorError(f"shard_batch: arrays of different lengths: {sizes}")
    n = next(iter(sizes.values()), 0)
    if n % world_size:
        raise ExecutorError(f"shard_batch: a global batch of {n} does not split into "
                            f"{world_size} equal shares; use a multiple of {world_size}")
    share = n // world_size
    return {k: v[rank * share:(rank + 1) * share] for k, v in arrays.items()}  # type: ignore


# -- gradient buckets -----------------------------------------------------------------------------
@dataclass(eq=False)
class _Bucket:
    """Gradients reduced together: their flat buffer, its views, the pending reduction."""

    names: list[str]
    grads: list[torch.Tensor]
    flat: torch.Tensor
    views: list[torch.Tensor]
    future: Any = None
    times: list[float] = field(default_factory=lambda: [0.0, 0.0])  # launched, reduced


def _pack(named: Sequence[tuple[str, torch.Tensor]], cap: int) -> list[_Bucket]:
    """Consecutive tensors in buckets of one dtype and device, each closed at ``cap`` bytes."""
    groups: list[list[tuple[str, torch.Tensor]]] = []
    size = cap
    for name, t in named:
        last = groups[-1][-1][1] if groups else None
        if size >= cap or last is None or (t.dtype, t.device) != (last.dtype, last.device):
            groups.append([])
            size = 0
        groups[-1].append((name, t))
        size += t.numel() * t.element_size()
    buckets = []
    for g in groups:
        flat = torch.empty(sum(t.numel() for _, t in g), dtype=g[0][1].dtype,
                           device=g[0][1].device)
        parts = flat.split([t.numel() for _, t in g])
        buckets.append(_Bucket([n for n, _ in g], [t for _, t in g], flat,
                               [p.view(t.shape) for p, (_, t) in zip(parts, g, strict=True)]))
    return buckets


def _covered(intervals: Sequence[tuple[float, float]], until: float = float("inf")) -> float:
    """Seconds covered by the union of ``intervals``, counting only time before ``until``."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        start, end = max(start, reach), min(end, until)
        if end > start:
            total += end - start
        reach = max(reach, end)
    return total


class DataParallel:
    """Sum an executor's gradients over the workers of a process group, overlapped with the
    backward pass (see the module docstring).

    Use, in every worker::

        env = from_environment()
        exe = net.simple_bind(env.device, data=(global_batch // env.world_size, ...), ...)
        initialize(exe)
        dp = DataParallel(exe)
        dp.broadcast()
        for batch in batches:                     # global batches
            exe.forward(is_train=True, **dp.shard(batch))
            exe.backward()                        # buckets are reduced while this runs
            dp.finish()                           # grad_dict now holds the sums
            ...  # optimizer step with rescale_grad = 1 / global_batch

    Attributes:
        exe, group: the executor and the process group (None: the default group).
        rank, world_size: this worker's rank in ``group`` and the group's size.
        params: the gradients it reduces, in bucket order.
        bucket_sizes: bytes of each bucket.
    """

    def __init__(self, exe: Executor, group: Any = None, *,
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES,
                 params: Sequence[str] | None = None) -> None:
        """Build the buckets, check that every worker built the same, install the hook.

        Args:
            exe: the bound executor (not yet using CUDA graphs).
            group: the process group (default: the default group, e.g. from
                :func:`from_environment`).
            bucket_bytes: target bucket size; a bucket closes once it holds this much.
            params: the ``grad_dict`` names to reduce (default: all of them; bind inputs with
                ``grad_req='null'``, as the trainer does, so that none is reduced).

        Raises:
            ExecutorError: no process group; an unknown name; a bad ``bucket_bytes``; the
                workers' executors bind different gradients (names, shapes or dtypes).
        """
        if not (dist.is_available() and dist.is_initialized()):
            raise ExecutorError("DataParallel needs a process group: call from_environment() "
                                "in a worker started by torchrun or launch()")
        if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, int) \
                or bucket_bytes < 1:
            raise ExecutorError(f"bucket_bytes must be a positive integer, got {bucket_bytes!r}")
        chosen = set(exe.grad_dict if params is None else params)
        unknown = sorted(chosen - set(exe.grad_dict))
        if unknown:
            raise ExecutorError(f"DataParallel: no gradient for {', '.join(unknown)} (grad_dict "
                                f"holds {', '.join(exe.grad_dict)})")
        self.exe, self.group, self.bucket_bytes = exe, group, bucket_bytes
        self.rank, self.world_size = dist.get_rank(group), dist.get_world_size(group)
        self.params = [n for n in exe.gradient_order if n in chosen]
        self._buckets = _pack([(n, exe.grad_dict[n]) for n in self.params], bucket_bytes)
        self.bucket_sizes = [b.flat.numel() * b.flat.element_size() for b in self._buckets]
        self._bucket_of = {n: i for i, b in enumerate(self._buckets) for n in b.names}
        self._check_same_everywhere()
        self._left = [len(b.names) for b in self._buckets]
        self._next = 0  # the next bucket to launch
        self._launch_s = self._last_ready = 0.0
        self._syncing = True  # see no_sync()
        self.reset_stats()
        self._handle = exe.on_gradient_ready(self._ready)

    def _check_same_everywhere(self) -> None:
        mine = [(n, tuple(self.exe.grad_dict[n].shape), str(self.exe.grad_dict[n].dtype))
                for n in self.params]
        everyone: list[Any] = [None] * self.world_size
        dist.all_gather_object(everyone, mine, group=self.group)
        for rank, theirs in enumerate(everyone):
            if theirs != mine:
                diff = next((f"{a} against {b}" for a, b in zip(mine, theirs) if a != b),
                            f"{len(mine)} gradients against {len(theirs)}")
                raise ExecutorError(f"DataParallel: worker {rank} binds other gradients than "
                                    f"worker {self.rank}: {diff}")

    # -- the step ---------------------------------------------------------------------------------
    def broadcast(self, names: Sequence[str] | None = None, src: int = 0) -> None:
        """Copy rank ``src``'s tensors to every worker (call once, after initialising).

        Args:
            names: arguments and auxiliary states to copy (default: every argument and every
                auxiliary state: parameters, frozen parameters, BatchNorm's moving statistics;
                the inputs too, which costs one batch and is harmless).
            src: the rank in ``group`` whose values everyone takes.
        """
        exe = self.exe
        pool = {**exe.arg_dict, **exe.aux_dict}
        chosen = list(pool) if names is None else list(names)
        root = src if self.group is None else dist.get_global_rank(self.group, src)
        with torch.no_grad():
            for b in _pack([(n, pool[n]) for n in chosen], self.bucket_bytes):
                torch.cat([t.reshape(-1) for t in b.grads], out=b.flat)
                dist.broadcast(b.flat, src=root, group=self.group)
                torch._foreach_copy_(b.grads, b.views)

    @contextmanager
    def no_sync(self) -> Iterator[None]:
        """Within the block, backward passes reduce nothing (torch DDP's ``no_sync``): for
        gradient accumulation, e.g. the first K - 1 of K microbatches, with ``grad_req='add'``;
        the backward pass after the block reduces the accumulated gradients, then
        :meth:`finish`."""
        saved, self._syncing = self._syncing, False
        try:
            yield
        finally:
            self._syncing = saved

    def _ready(self, name: str, grad: torch.Tensor) -> None:
        """The gradient-ready hook: launch every bucket that is complete, in index order."""
        i = self._bucket_of.get(name)
        if i is None or not self._syncing:
            return
        self._last_ready = time.perf_counter()
        if self._left[i] == 0:
            raise ExecutorError(f"DataParallel: the gradient of '{name}' was computed twice "
                                "without finish() in between; call finish() after every "
                                "backward()")
        self._left[i] -= 1
        while self._next < len(self._buckets) and self._left[self._next] == 0:
            self._launch(self._buckets[self._next])
            self._next += 1

    def _launch(self, b: _Bucket) -> None:
        t = time.perf_counter()
        torch.cat([g.reshape(-1) for g in b.grads], out=b.flat)
        b.times[:] = [time.perf_counter(), 0.0]
        work = dist.all_reduce(b.flat, group=self.group, async_op=True)
        b.future = work.get_future().then(partial(_reduced, b.times))
        self._launch_s += time.perf_counter() - t

    def finish(self) -> None:
        """Wait for every bucket's all-reduce and write the sums into ``grad_dict``.

        Call it right after ``exe.backward()`` (its start is taken as the end of the backward
        pass in :attr:`stats`), before the optimizer step.

        Raises:
            ExecutorError: the backward pass has not finished every gradient (no
                ``backward()`` since the last ``finish()``).
        """
        end = time.perf_counter()
        if self._next < len(self._buckets):
            pending = [n for b in self._buckets[self._next:] for n in b.names]
            raise ExecutorError(f"DataParallel.finish(): {len(pending)} gradients are not "
                                f"ready ({', '.join(pending[:3])}, ...); call exe.backward() "
                                "before finish()")
        for b in self._buckets:
            b.future.wait()
            b.future = None  # a held future keeps its Work, and so the process group, alive
        waited = time.perf_counter()
        with torch.no_grad():
            for b in self._buckets:
                torch._foreach_copy_(b.grads, b.views)
        self._record(min(end, self._last_ready), end, waited, time.perf_counter())
        self._left = [len(b.names) for b in self._buckets]
        self._next = 0

    def shard(self, arrays: Mapping[str, T]) -> dict[str, T]:
        """This worker's share of a global batch (:func:`shard_batch`)."""
        return shard_batch(arrays, self.rank, self.world_size)

    def close(self) -> None:
        """Remove the gradient-ready hook (the executor then runs without reducing)."""
        self._handle.remove()

    # -- statistics -------------------------------------------------------------------------------
    def reset_stats(self) -> None:
        """Forget the steps measured so far (e.g. after warm-up steps)."""
        self._sums: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._steps = 0

    def _record(self, produced: float, end: float, waited: float, done: float) -> None:
        spans = [(b.times[0], b.times[1] or waited) for b in self._buckets]
        last = {"comm_s": _covered(spans), "overlap_s": _covered(spans, produced),
                "tail_s": waited - max((s for s, _ in spans), default=waited),
                "wait_s": waited - end, "finish_s": done - end, "launch_s": self._launch_s}
        self._launch_s = 0.0
        self._last = last
        self._sums = {k: self._sums.get(k, 0.0) + v for k, v in last.items()}
        self._steps += 1

    @property
    def stats(self) -> dict[str, Any]:
        """What was reduced and how well it overlapped the backward pass.

        Keys: ``world_size``, ``buckets``, ``bucket_bytes`` (each bucket's size),
        ``reduced_bytes`` (per step), ``steps`` (measured since :meth:`reset_stats`), then the
        mean per step of:

        * ``comm_s``: time at least one all-reduce was in flight (launch to completion);
        * ``overlap_s``: the part of it while the backward pass was still computing, i.e.
          before its last reduced gradient became ready;
        * ``tail_s``: from the last bucket's launch to the end of waiting in ``finish()``;
        * ``wait_s``: ``finish()`` blocked waiting; ``finish_s``: all of ``finish()``
          (waiting, then copying the sums back);
        * ``launch_s``: flattening and launching, inside the backward pass;

        ``overlap_fraction``: overlap_s / comm_s over all measured steps; ``last``: the last
        step's values. On CUDA (NCCL) a bucket counts as complete when the host learns it is,
        so these times are approximate there.
        """
        n = max(self._steps, 1)
        comm = self._sums.get("comm_s", 0.0)
        return {"world_size": self.world_size, "buckets": len(self._buckets),
                "bucket_bytes": list(self.bucket_sizes),
                "reduced_bytes": sum(self.bucket_sizes), "steps": self._steps,
                **{k: v / n for k, v in self._sums.items()},
                "overlap_fraction": self._sums.get("overlap_s", 0.0) / comm if comm else None,
                "last": dict(self._last)}


def _reduced(times: list[float], future: Any) -> Any:
    """Future callback (runs in the communication thread): the bucket's completion time."""
    times[1] = time.perf_counter()
    return future.value()
