"""The training loop: bind a network to a data set, then fit it epoch by epoch (MXNet
``Module.fit``). The ``sublinear train`` command is a thin layer over :class:`Trainer`.

What it binds: every network input the data set provides gets the shape ``(batch, *sample)``;
other inputs the network declares (initial RNN states) keep their declared shape and stay at
zero; everything else is a parameter with ``grad_req='write'``. Only parameters are ever
updated: never inputs, labels or auxiliary states (BatchNorm's moving statistics change only
through the forward pass).

The optimizer is ``torch.optim`` (``sgd``, ``nag``, ``adam``, ``adamw``, ``rmsprop``) over the
executor's parameter tensors, whose ``.grad`` are the executor's gradient tensors; gradients
are the sum over the batch (as MXNet's loss layers give them) and are scaled by
``rescale_grad = 1 / batch`` before each step, as MXNet does. Weight decay is torch's
(``grad += wd * w``, MXNet's ``wd``; decoupled for ``adamw``). The learning rate follows
:func:`learning_rate` (warm-up, then constant, step or cosine), set on the optimizer each step.

The update inside the backward pass (``update_in_backward``, on by default except with data
parallel workers): the plan makes every parameter gradient a short-lived entry of its arena
(``optim.pipeline.update_points``) and each parameter is updated from a gradient-ready hook as
soon as its gradient is final and no later step reads the parameter, by stepping only its own
param group (one per parameter) — for these element-wise optimizers exactly the update after
the backward pass, in less memory. Off, one param group holds every parameter and
``optimizer.step()`` runs after ``backward()``.

Data parallel (``env``, a :class:`~executor.training.distributed.DistEnv` with more than one
worker): every worker binds ``batch / workers`` samples, walks the same shuffled global batches
(same seed) and takes its contiguous share of each; gradients are summed over the workers by
:class:`~executor.training.distributed.DataParallel` during the backward pass and scaled by
``1 / batch`` (the global batch), so the workers take the steps one process would take on the
whole batch. Parameters start from rank 0's; BatchNorm statistics stay per worker. Losses and
accuracies are summed over the workers (every worker sees the same numbers); only rank 0 prints
and writes checkpoints.

Microbatching (``microbatch`` K > 1): the network is bound for ``batch / K`` samples and the
K slices of each batch run in turn, gradients summed over them (``grad_req='add'``), one update
per batch. BatchNorm then uses each slice's statistics (``bn_stats='slice'``), or the whole
batch's (``'exact'``: more passes over the slices, see ``executor.training.microbatch``).

Each epoch: one tqdm bar (loss, accuracy, samples/s), then one summary line (or one JSON
object). A loss that is not finite stops training with :class:`~executor.errors.RunError`
naming the epoch and step; checkpoints already written are left as they are.
"""
from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any, Callable, Mapping, TextIO

import numpy as np
import torch

import symbol as sym
from optim.pipeline import default_grad_req
from symbol.units import format_bytes

from ..errors import RunError
from ..executor import Executor, ExecutorError
from ..initializer import initialize
from ..progress import progress_bar
from .data import Dataset, DataError, check_against
from .distributed import DataParallel, DistEnv
from .microbatch import ExactBatchNorm

__all__ = ["TrainConfig", "Trainer", "LossScaler", "learning_rate", "OPTIMIZERS", "SCHEDULES",
           "DTYPES", "BN_STATS"]

OPTIMIZERS = ("sgd", "nag", "adam", "adamw", "rmsprop")
#: float32 state arrays each optimizer keeps per parameter (momentum; Adam's two moments)
OPTIMIZER_SLOTS = {"sgd": 1, "nag": 1, "adam": 2, "adamw": 2, "rmsprop": 2}
DTYPES = ("float32", "float64", "bfloat16", "float16")
SCHEDULES = ("constant", "step", "cosine")
#: BatchNorm statistics under microbatching: each slice's own, or the whole batch's (exact)
BN_STATS = ("slice", "exact")


@dataclass(frozen=True)
class TrainConfig:
    """How to train (the options of ``sublinear train``; see the module docstring)."""

    batch: int = 64
    epochs: int = 10
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    wd: float = 0.0
    lr_schedule: str = "constant"
    warmup: int = 0
    ctx: str = "auto"
    dtype: str = "float32"
    strategy: str | None = None
    mirror: str | None = None
    budget: str | int | None = None
    budget_scope: str | None = None
    seed: int = 0
    max_steps: int | None = None  # stop after this many steps in all (the demo's short runs)
    update_in_backward: bool | None = None  # None: on, except with data parallel workers
    microbatch: int = 1  # slices per batch, run in turn with gradient accumulation
    bn_stats: str = "slice"  # BatchNorm under microbatches: per-slice or whole-batch statistics

    def check(self) -> None:
        """Raise DataError-like user errors for values no run can use."""
        if self.dtype not in DTYPES:
            raise ExecutorError(f"unknown dtype {self.dtype!r}; expected one of "
                                f"{', '.join(DTYPES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ExecutorError(f"unknown optimizer {self.optimizer!r}; expected one of "
                                f"{', '.join(OPTIMIZERS)}")
        if self.bn_stats not in BN_STATS:
            raise ExecutorError(f"unknown BatchNorm statistics mode {self.bn_stats!r}; "
                                f"expected one of {', '.join(BN_STATS)}")
        if self.lr_schedule not in SCHEDULES:
            raise ExecutorError(f"unknown learning-rate schedule {self.lr_schedule!r}; "
                                f"expected one of {', '.join(SCHEDULES)}")
        for name, value, low in (("batch", self.batch, 1), ("epochs", self.epochs, 1),
                                 ("warmup", self.warmup, 0), ("microbatch", self.microbatch, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ExecutorError(f"{name} must be an integer >= {low}, got {value!r}")
        for key, number in (("lr", self.lr), ("momentum", self.momentum), ("wd", self.wd)):
            if not math.isfinite(number) or number < 0 or (key == "lr" and number == 0):
                raise ExecutorError(f"{key} must be a finite number "
                                    f"{'> 0' if key == 'lr' else '>= 0'}, got {number!r}")


def learning_rate(config: TrainConfig, step: int, total: int) -> float:
    """The learning rate of step ``step`` (0-based) of ``total``: linear warm-up over the first
    ``warmup`` steps, then ``constant``, ``step`` (x0.1 at 50% and again at 75% of the steps)
    or ``cosine`` (half a cosine from lr to 0 over the steps after warm-up)."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    if config.lr_schedule == "step":
        return config.lr * (0.1 ** sum(step >= total * f for f in (0.5, 0.75)))
    if config.lr_schedule == "cosine":
        span = max(total - config.warmup, 1)
        return config.lr * 0.5 * (1 + math.cos(math.pi * min(step - config.warmup, span) / span))
    return config.lr


def _optimizer(config: TrainConfig, params: list[Any]) -> torch.optim.Optimizer:
    name, lr, wd = config.optimizer, config.lr, config.wd
    if name in ("sgd", "nag"):
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum, weight_decay=wd,
                               nesterov=name == "nag" and config.momentum > 0)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.RMSprop(params, lr=lr, weight_decay=wd, momentum=config.momentum)


class Trainer:
    """A network bound for training on a data set (MXNet ``Module`` + ``fit``).

    Attributes:
        exe: the executor (``exe.memory_report()``, ``exe.mirror_plan`` ...).
        optimizer: the ``torch.optim`` optimizer over ``params``.
        params: names of the parameters it updates, in the network's argument order.
        inputs: names of the inputs fed from the data set; ``label``: the label input.
        step: optimizer steps so far; ``epoch``: epochs completed.
    """

    def __init__(self, symbol: sym.Symbol, dataset: Dataset, config: TrainConfig, *,
                 env: DistEnv | None = None) -> None:
        config.check()
        self.env = env if env is not None and env.world_size > 1 else None
        workers = self.env.world_size if self.env else 1
        if config.batch % workers:
            raise DataError(f"batch {config.batch} does not split into {workers} equal worker "
                            f"shares; use a multiple of {workers}")
        self.local_batch = config.batch // workers
        k = config.microbatch
        if self.local_batch % k:
            raise DataError(f"batch {self.local_batch} (per worker) does not split into "
                            f"{k} equal microbatches; use a multiple of {k}")
        self.slice = self.local_batch // k  # the batch the network is bound (and planned) for
        self.symbol, self.dataset, self.config = symbol, dataset, config
        args = symbol.list_arguments()
        self.label = dataset.label
        if self.label not in args:
            labels = [a for a in args if a.endswith("label")]
            raise DataError(f"the network has no input {self.label!r} for the labels "
                            f"(its label inputs: {', '.join(labels) or 'none'})")
        declared = {v.name: _declared(v.attrs.get("__shape__")) for v in symbol.graph.inputs}
        check_against(dataset, declared)
        samples = dataset.sample_shapes()
        unknown = sorted(set(samples) - set(args))
        if unknown:
            raise DataError(f"the data has arrays the network does not take: "
                            f"{', '.join(unknown)} (its inputs: "
                            f"{', '.join(a for a in args if declared.get(a))})")
        self.inputs = [a for a in args if a in samples]
        shapes = {a: (self.slice, *samples[a]) for a in self.inputs}
        self.fixed = [a for a in args if a not in samples and declared.get(a)]
        update = config.update_in_backward
        if update is None:
            update = self.env is None and config.dtype != "float16" and k == 1
        elif update and k > 1:
            raise DataError("microbatches accumulate gradients over the slices before the "
                            "update: leave out --update-in-backward")
        elif update and self.env is not None:
            raise DataError("the update inside the backward pass and data parallel workers "
                            "exclude each other (gradients must be summed over the workers "
                            "before any update); leave out --update-in-backward")
        elif update and config.dtype == "float16":
            raise DataError("float16 training skips a step whose gradients overflow, which it "
                            "knows only after the backward pass: leave out "
                            "--update-in-backward (bfloat16 needs no loss scaling)")
        self.update_in_backward = update
        if config.batch > dataset.num_train:
            raise DataError(f"batch {config.batch} is larger than the {dataset.num_train} "
                            f"training samples of {dataset.name}")
        reqs = default_grad_req(args, [*self.inputs, *self.fixed])
        self.params = [a for a in args if reqs[a] == "write"]
        if k > 1:  # MXNet's gradient accumulation: zeroed before each batch, summed over slices
            reqs = {a: "add" if r == "write" else r for a, r in reqs.items()}
        torch.manual_seed(config.seed)
        self.scaler = LossScaler() if config.dtype == "float16" else None
        bound, var_dtype = symbol, config.dtype
        if config.dtype in ("bfloat16", "float16"):  # mixed precision, float32 parameters
            from symbol.amp import convert_symbol
            bound, var_dtype = convert_symbol(symbol, config.dtype), "float32"
        self.exe: Executor = bound.simple_bind(
            self.env.device if self.env else config.ctx, grad_req=reqs, dtype=var_dtype,
            strategy=config.strategy, mirror=config.mirror, budget=config.budget,
            budget_scope=config.budget_scope, update_in_backward=update, **shapes)
        self._check_classes()
        initialize(self.exe, seed=config.seed)
        self.parallel: DataParallel | None = None
        if self.env is not None:
            self.parallel = DataParallel(self.exe, params=self.params)
            self.parallel.broadcast()
        tensors = [self.exe.arg_dict[n] for n in self.params]
        for n, t in zip(self.params, tensors, strict=True):
            t.grad = self.exe.grad_dict[n]  # torch.optim reads the executor's gradients
        if update:  # one param group per parameter, each stepped from its gradient's hook
            self.optimizer = _optimizer(config, [{"params": [t]} for t in tensors])
            self._group_of = dict(zip(self.params, self.optimizer.param_groups, strict=True))
            self.exe.on_gradient_ready(self._update_one)
        else:
            self.optimizer = _optimizer(config, tensors)
        self.rng = np.random.default_rng(config.seed)
        self.step = self.epoch = self.skipped = 0
        self.head = symbol.graph.outputs[0].node.op
        self.exact_bn = ExactBatchNorm(self.exe) if k > 1 and config.bn_stats == "exact" \
            else None

    def _check_classes(self) -> None:
        out = self.exe.outputs[0]
        if self.symbol.graph.outputs[0].node.op == "SoftmaxOutput" and out.dim() == 2 \
                and self.dataset.classes > out.shape[1]:
            raise DataError(f"{self.dataset.name} has {self.dataset.classes} classes but the "
                            f"network's output has {out.shape[1]}: change its number of "
                            "classes (e.g. --param num_classes=...)")
        self.dataset.check_labels()

    # -- one step -------------------------------------------------------------------------------
    @property
    def rank(self) -> int:
        """This worker's rank (0 when not data parallel)."""
        return self.env.rank if self.env else 0

    def _share(self, batch: Mapping[str, np.ndarray]) -> Mapping[str, np.ndarray]:
        return self.parallel.shard(batch) if self.parallel else batch

    def _feed(self, batch: Mapping[str, np.ndarray], is_train: bool) -> list[torch.Tensor]:
        return self.exe.forward(is_train=is_train, **{k: batch[k] for k in self.inputs})

    def _summed(self, *values: float) -> list[float]:
        """``values`` summed over the workers (themselves when not data parallel)."""
        if self.parallel is None:
            return list(values)
        import torch.distributed as dist
        t = torch.tensor(values, dtype=torch.float64)
        if self.env is not None and self.env.backend == "nccl":
            t = t.to(self.env.device)
        dist.all_reduce(t)
        return t.tolist()

    def _loss_and_hits(self, outs: list[torch.Tensor], labels: np.ndarray,
                       rows: int) -> tuple[float, int | None]:
        """(mean loss, correct predictions) over the first ``rows`` samples."""
        out = outs[0][:rows]
        if out.dtype in (torch.float16, torch.bfloat16):  # mixed precision: read in float32
            out = out.float()
        if self.head == "SoftmaxOutput" and out.dim() == 2:
            y = torch.as_tensor(labels[:rows], device=out.device).long()
            picked = out.gather(1, y[:, None]).clamp_min(1e-30)
            hits = int((out.argmax(1) == y).sum())
            return float(-picked.log().mean()), hits
        return float(torch.stack([o.float().mean() for o in outs]).sum()), None

    def train_step(self, batch: Mapping[str, np.ndarray], total_steps: int) -> tuple[float,
                                                                                     int | None]:
        """Forward, backward and one optimizer step on the global ``batch``: (loss, correct),
        over the whole batch (all workers, all microbatches)."""
        mine = self._share(batch)
        k = self.config.microbatch
        if k > 1:
            return self._microbatch_step(mine, total_steps)
        outs = self._feed(mine, True)
        loss, hits = self._loss_and_hits(outs, mine[self.label], self.local_batch)
        if self.parallel is not None:  # every worker decides alike on divergence
            total, hit_sum = self._summed(loss * self.local_batch, hits or 0)
            loss, hits = total / self.config.batch, (None if hits is None else int(hit_sum))
        self._check_finite(loss, "")
        scale = self._prepare(total_steps)
        self.exe.backward()  # with update_in_backward, every parameter is updated in here
        if self.parallel is not None:
            self.parallel.finish()
        if not self.update_in_backward:
            self._apply(scale)
        self.step += 1
        return loss, hits

    def _check_finite(self, loss: float, where: str) -> None:
        if not math.isfinite(loss):
            raise RunError(f"training diverged at epoch {self.epoch + 1}, step {self.step + 1}"
                           f"{where}: the loss is {loss}; try a smaller --lr")

    def _prepare(self, total_steps: int) -> float:
        """Set this step's learning rate (and float16's loss scale); returns the scale."""
        lr = learning_rate(self.config, self.step, total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.scaler is None:
            return 1.0
        self.exe.state["loss_scale"] = self.scaler.scale  # multiplies the loss gradients
        return self.scaler.scale

    def _apply(self, scale: float) -> None:
        """The update after the backward pass(es): rescale, (float16) skip on overflow, step."""
        with torch.no_grad():
            grads = [self.exe.grad_dict[n] for n in self.params]
            if self.scaler is not None and not self.scaler.update(grads):
                self.skipped += 1  # an overflow: no step, a smaller scale next time
                return
            # rescale_grad = 1 / batch, as MXNet (and 1 / S under loss scaling)
            torch._foreach_mul_(grads, 1.0 / (self.config.batch * scale))
            self.optimizer.step()

    def _microbatch_step(self, batch: Mapping[str, np.ndarray],
                         total_steps: int) -> tuple[float, int | None]:
        """``microbatch`` slices in turn: forward and backward each, the gradients summed
        (``grad_req='add'``), then one update. BatchNorm normalises each slice with its own
        statistics and updates its moving statistics once per slice, or, with
        ``bn_stats='exact'``, with the whole batch's (``executor.training.microbatch``).
        Data parallel workers each run the slices of their share and reduce the accumulated
        gradients once, in the last slice's backward pass (``DataParallel.no_sync``)."""
        k, n = self.config.microbatch, self.slice
        scale = self._prepare(total_steps)
        parts = [{key: v[i * n:(i + 1) * n] for key, v in batch.items()} for i in range(k)]
        base = self.exe.state["step"]

        def forward(i: int, part: Mapping[str, np.ndarray]) -> list[torch.Tensor]:
            self.exe.state["step"] = base + i  # slice i's random stream, in every pass
            return self._feed(part, True)

        with self.exact_bn.batch(parts, forward, self.exe.backward) if self.exact_bn \
                else nullcontext():
            with torch.no_grad():
                for name in self.params:
                    self.exe.grad_dict[name].zero_()
            total, hit_sum, known = 0.0, 0, True
            for i, part in enumerate(parts):
                loss, hits = self._loss_and_hits(forward(i, part), part[self.label], n)
                if self.parallel is None:
                    self._check_finite(loss, f" (microbatch {i + 1})")
                # workers reduce the gradients once, in the backward pass of the last slice
                with self.parallel.no_sync() if self.parallel and i < k - 1 else nullcontext():
                    self.exe.backward()
                total += loss * n
                known = known and hits is not None
                hit_sum += hits or 0
        if self.parallel is not None:  # every worker decides alike on divergence
            self.parallel.finish()
            total, hits_summed = self._summed(total, hit_sum)
            hit_sum = int(hits_summed)
            self._check_finite(total / self.config.batch, "")
        self._apply(scale)
        self.step += 1
        return total / self.config.batch, (hit_sum if known else None)

    def _update_one(self, name: str, grad: torch.Tensor) -> None:
        """The gradient-ready hook with ``update_in_backward``: rescale ``grad`` and step
        only this parameter's param group (the same arithmetic as the step after backward)."""
        group = self._group_of.get(name)
        if group is None:
            return
        grad.mul_(1.0 / self.config.batch)
        opt = self.optimizer
        groups = opt.param_groups
        opt.param_groups = [group]
        try:
            opt.step()
        finally:
            opt.param_groups = groups

    def evaluate(self) -> tuple[float | None, float | None]:
        """(mean loss, accuracy) on the test split (None without one)."""
        if not self.dataset.num_test:
            return None, None
        total = 0.0
        hits = rows_seen = 0
        correct_known = True
        for batch, rows in self.dataset.eval_batches(self.slice * self._workers):
            mine = self._share(batch)  # the padded rows are the last worker's
            rows = min(max(rows - self.rank * self.slice, 0), self.slice)
            if rows == 0:
                continue
            loss, hit = self._loss_and_hits(self._feed(mine, False), mine[self.label], rows)
            total += loss * rows
            rows_seen += rows
            if hit is None:
                correct_known = False
            else:
                hits += hit
        total, hit_sum, seen, known = self._summed(total, hits, rows_seen, correct_known)
        return total / seen, (hit_sum / seen if known == self._workers else None)

    @property
    def _workers(self) -> int:
        return self.env.world_size if self.env else 1

    # -- the loop -------------------------------------------------------------------------------
    def fit(self, *, out: TextIO | None = None, as_json: bool = False, quiet: bool = False,
            on_epoch: Callable[[Trainer, dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Train ``config.epochs`` epochs (from ``self.epoch``); returns the final record.

        ``out``: where lines (or JSON objects) go (None: nowhere; only rank 0 prints);
        ``on_epoch(trainer, record)`` runs after each epoch, on every worker (the command line
        saves checkpoints there, on rank 0).
        """
        if self.rank:
            out = None
        per_epoch = self.dataset.num_train // self.config.batch
        total = per_epoch * self.config.epochs
        if self.config.max_steps is not None:
            total = min(total, self.config.max_steps)
        record: dict[str, Any] = {}
        seconds = samples = 0.0
        while self.epoch < self.config.epochs and self.step < total:
            losses, hits, seen = [], 0, 0
            t0 = time.perf_counter()
            with progress_bar(f"epoch {self.epoch + 1}/{self.config.epochs}", total=per_epoch,
                              quiet=quiet or as_json or out is None, unit="batch",
                              delay=0.5) as bar:
                for batch in self.dataset.batches(self.config.batch, self.rng):
                    if self.step >= total:
                        break
                    loss, hit = self.train_step(batch, total)
                    losses.append(loss)
                    seen += self.config.batch
                    hits += hit or 0
                    bar.advance()
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    acc = f", acc {hits / seen:.3f}" if hit is not None else ""
                    bar.set_postfix_str(f"loss {loss:.4f}{acc}, {rate:,.0f} samples/s")
            spent = time.perf_counter() - t0
            seconds += spent
            samples += seen
            self.epoch += 1
            test_loss, test_acc = self.evaluate()
            record = {"epoch": self.epoch, "steps": self.step,
                      "loss": float(np.mean(losses)) if losses else None,
                      "train_accuracy": hits / seen if seen and self.head == "SoftmaxOutput"
                      else None,
                      "test_loss": test_loss, "test_accuracy": test_acc,
                      "samples_per_s": round(seen / spent, 1) if spent else None,
                      "lr": learning_rate(self.config, max(self.step - 1, 0), total),
                      "seconds": round(spent, 3)}
            if self.scaler is not None:  # float16
                record.update(loss_scale=self.scaler.scale, skipped_steps=self.skipped)
            peak = self.exe.last_step_peak  # CUDA: the last step's measured peak
            if peak is not None:
                rep = self.exe.memory_report()
                record.update(measured_step_peak=peak,
                              measured_over_plan=rep.get("measured_over_plan"))
            if on_epoch is not None:
                on_epoch(self, record)
            _print_epoch(record, self.config.epochs, out, as_json)
        return {"epochs": self.epoch, "steps": self.step,
                "final_loss": record.get("loss"),
                "train_accuracy": record.get("train_accuracy"),
                "test_accuracy": record.get("test_accuracy"),
                "samples_per_s": round(samples / seconds, 1) if seconds else None,
                "checkpoint": record.get("checkpoint")}

    def close(self) -> None:
        """Stop reducing gradients (data parallel): removes the executor's gradient-ready hook,
        so nothing keeps the process group alive after training."""
        if self.parallel is not None:
            self.parallel.close()
            self.parallel = None

    def plan_report(self) -> str:
        """The memory plan, for the start of a run: bytes by class, and on CUDA the measured
        step peak (after the first step); with microbatches, the slices (and the passes of
        exact BatchNorm)."""
        rep = self.exe.memory_report()
        parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in rep["bytes_by_class"].items()
                          if v)
        line = (f"plan: {rep['strategy']}, mirror {self.exe.mirror_plan.strategy}, planned "
                f"{format_bytes(rep['planned_bytes'])} ({parts})")
        if "measured_step_peak" in rep:
            line += f"; measured step peak {format_bytes(rep['measured_step_peak'])}"
        k = self.config.microbatch
        if k > 1:
            line += f"\nmicrobatches: {k} slices of {self.slice} per batch"
            if self.exact_bn is not None:
                line += f"; exact BatchNorm: {self.exact_bn.summary()}"
        return line

    def save(self, path: str) -> str:
        """Write a checkpoint (``executor.training.checkpoint``): parameters, aux states,
        optimizer state, RNGs (the shuffling one too) and where training is."""
        from .checkpoint import save_checkpoint
        state = {"epoch": self.epoch, "step": self.step, "config": asdict(self.config),
                 "skipped": self.skipped}
        if self.scaler is not None:
            state["loss_scaler"] = self.scaler.state_dict()
        return str(save_checkpoint(path, self.exe, optimizer=self.optimizer, state=state,
                                   numpy_rng=self.rng, params=self.params))

    def resume(self, path: str) -> None:
        """Continue from a checkpoint :meth:`save` wrote (one error, nothing changed, if it
        belongs to another network)."""
        from .checkpoint import load_checkpoint, restore
        ckpt = load_checkpoint(path)
        restore(self.exe, ckpt, optimizer=self.optimizer, numpy_rng=self.rng)
        self.epoch, self.step = int(ckpt.state["epoch"]), int(ckpt.state["step"])
        self.skipped = int(ckpt.state.get("skipped", 0))
        if self.scaler is not None and "loss_scaler" in ckpt.state:
            self.scaler.load_state_dict(ckpt.state["loss_scaler"])


class LossScaler:
    """Dynamic loss scaling for float16 (the behaviour of ``torch.amp.GradScaler``): the loss
    layers' gradients are multiplied by ``scale`` so that small gradients survive float16; a
    step whose gradients hold an inf or NaN is skipped and the scale multiplied by
    ``backoff``; after ``interval`` good steps in a row it is multiplied by ``growth``.

    Attributes:
        scale: the current scale; ``good``: good steps since the last change.
    """

    def __init__(self, scale: float = 2.0 ** 16, growth: float = 2.0, backoff: float = 0.5,
                 interval: int = 2000) -> None:
        self.scale, self.growth, self.backoff, self.interval = scale, growth, backoff, interval
        self.good = 0

    def update(self, grads: list[torch.Tensor]) -> bool:
        """After a backward pass: True if every gradient is finite (take the step), else
        False (skip it); adjusts the scale either way."""
        finite = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) \
            if grads else True
        if not finite:
            self.scale *= self.backoff
            self.good = 0
            return False
        self.good += 1
        if self.good >= self.interval:
            self.scale *= self.growth
            self.good = 0
        return True

    def state_dict(self) -> dict[str, float]:
        return {"scale": self.scale, "good": self.good}

    def load_state_dict(self, state: Mapping[str, float]) -> None:
        self.scale, self.good = float(state["scale"]), int(state["good"])


def _declared(shape: Any) -> tuple[int, ...] | None:
    if shape is None:
        return None
    text = str(shape).strip("()[] ")
    return tuple(int(d) for d in text.split(",") if d.strip()) if text else ()


def _print_epoch(record: Mapping[str, Any], epochs: int, out: TextIO | None,
                 as_json: bool) -> None:
    if out is None:
        return
    if as_json:
        print(json.dumps(record), file=out, flush=True)
        return
    pct = (lambda v: "-" if v is None else f"{100 * v:.2f}%")  # noqa: E731
    loss = "-" if record["loss"] is None else f"{record['loss']:.4f}"
    print(f"epoch {record['epoch']}/{epochs}: loss {loss}, train accuracy "
          f"{pct(record['train_accuracy'])}, test accuracy {pct(record['test_accuracy'])}, "
          f"{record['samples_per_s'] or 0:,.0f} samples/s"
          + (f", step peak {format_bytes(record['measured_step_peak'])}"
             if record.get("measured_step_peak") else ""), file=out, flush=True)
