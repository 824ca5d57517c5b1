"""``sublinear train``: train a network on a data set (a thin layer over
:class:`executor.training.trainer.Trainer`).

    sublinear train examples/mlp.sym --param input_dim=64 --data digits --epochs 30
    sublinear train resnet --param units=1,1,1 --param image_shape=3,32,32 --data synthetic
    sublinear train net.sym --data mine.npz --save ckpt/ ; sublinear train ... --resume ckpt/
    sublinear train mlp --data digits --workers 2          # 2 processes, half a batch each
    torchrun --nnodes 2 --nproc-per-node 4 ... -m executor.app.cli train net.sym --data ...

NET's inputs: the arguments named ``*data`` take the data set's samples (digits and ``.npz``
need exactly one), the single ``*label`` argument its labels; other inputs the network declares
(initial RNN states) stay at zero. ``--epochs`` counts every epoch of the run, resumed ones
included (MXNet's ``num_epoch``): ``--resume`` continues from the checkpoint's epoch up to it.
Checkpoints: ``--save DIR`` writes ``DIR/epoch-NNNN.safetensors`` after every epoch;
``--resume DIR`` takes the newest one there (or the FILE named). Data parallel (``--workers``
or ``torchrun``): ``--batch`` is the global batch, split evenly among the workers; see
docs/distributed.md.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from symbol import Symbol, SymbolError

from ..errors import RunError

from .cliargs import (add_memory_options, add_net_options, non_negative_float,
                      non_negative_int, positive_float, positive_int)
from .nets import load_net

__all__ = ["add_train_parser", "run_train", "dataset_for"]

log = logging.getLogger(__name__)


def add_train_parser(sub: Any) -> None:
    """Register ``sublinear train`` on an argparse subparsers object."""
    p = sub.add_parser("train", help="train a network on a data set",
                       description="Train NET on synthetic data, scikit-learn's digits or a "
                       "FILE.npz (data/label arrays), with the memory plan and recomputation "
                       "of your choice; progress per epoch, checkpoints, resume.")
    add_net_options(p)
    p.add_argument("--data", default="synthetic", metavar="synthetic|digits|FILE.npz",
                   help="training data (default synthetic: class-conditional samples shaped "
                   "from the network's inputs)")
    p.add_argument("--batch", type=positive_int, default=64, help="batch size (default 64)")
    p.add_argument("--epochs", type=positive_int, default=10,
                   help="epochs in all, resumed ones included (default 10)")
    p.add_argument("--optimizer", choices=("sgd", "nag", "adam", "adamw", "rmsprop"),
                   default="sgd", help="torch.optim optimizer (default sgd)")
    p.add_argument("--lr", type=positive_float, default=0.1, help="learning rate (default 0.1)")
    p.add_argument("--momentum", type=non_negative_float, default=0.9,
                   help="momentum of sgd, nag and rmsprop (default 0.9)")
    p.add_argument("--wd", type=non_negative_float, default=0.0,
                   help="weight decay (default 0)")
    p.add_argument("--lr-schedule", choices=("constant", "step", "cosine"), default="constant",
                   help="learning-rate schedule after warm-up (default constant; step: x0.1 "
                   "at 50%% and 75%% of the steps)")
    p.add_argument("--warmup", type=non_negative_int, default=0,
                   help="steps of linear learning-rate warm-up (default 0)")
    p.add_argument("--ctx", default="auto", help="device: cpu, cuda, cuda:N or auto (default)")
    add_memory_options(p)
    p.add_argument("--update-in-backward", action=argparse.BooleanOptionalAction, default=None,
                   help="update each parameter inside the backward pass as soon as its "
                   "gradient is final, so parameter gradients take no memory of their own "
                   "(default: on, except with data parallel workers)")
    p.add_argument("--microbatch", type=positive_int, default=1, metavar="K",
                   help="split each batch into K slices run in turn, gradients accumulated, "
                   "one update per batch; the plan is made for the slice (default 1)")
    p.add_argument("--bn-stats", choices=("slice", "exact"), default="slice",
                   help="BatchNorm under --microbatch: each slice's own statistics (slice, "
                   "default), or the whole batch's, as without microbatching, at the cost of "
                   "extra passes over the slices (exact)")
    p.add_argument("--save", metavar="DIR", help="write a checkpoint into DIR after every "
                   "epoch (DIR/epoch-NNNN.safetensors)")
    p.add_argument("--resume", metavar="DIR|FILE", help="continue from a checkpoint (the "
                   "newest in DIR)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of initialisation, data and shuffling (default 0)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="data-parallel worker processes on this machine (default 1); under "
                   "torchrun leave it out: every process torchrun starts is one worker")
    p.add_argument("--json", action="store_true", help="one JSON object per epoch and a "
                   "final one (errors too)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)


def _inputs(net: Symbol, shapes: dict[str, tuple[int, ...]]) -> tuple[dict[str, Any], str]:
    """(data input -> declared sample shape or None, the label input) of ``net``."""
    args = net.list_arguments()
    labels = [a for a in args if a.endswith("label")]
    if len(labels) != 1:
        raise SymbolError(f"sublinear train needs a network with one label input (an argument "
                          f"named *label); this one has {len(labels)}"
                          + (f": {', '.join(labels[:6])}" if labels else ""))
    declared = {v.name: v.attrs.get("__shape__") for v in net.graph.inputs}
    data: dict[str, Any] = {}
    for a in args:
        if a.endswith("data"):
            shape = shapes.get(a) or declared.get(a)
            data[a] = None if shape is None else _shape(shape)[1:]
    if not data:
        raise SymbolError("sublinear train needs a network with a data input (an argument "
                          "named *data)")
    return data, labels[0]


def _shape(value: Any) -> tuple[int, ...]:
    if isinstance(value, tuple):
        return value
    text = str(value).strip("()[] ")
    return tuple(int(d) for d in text.split(",") if d.strip())


def dataset_for(net: Symbol, spec: str, *, shapes: dict[str, tuple[int, ...]], seed: int) -> Any:
    """The data set ``--data spec`` names, matched to ``net``'s inputs."""
    from executor.training import data as D
    inputs, label = _inputs(net, shapes)
    if spec == "synthetic":
        missing = [k for k, v in inputs.items() if v is None]
        if missing:
            raise SymbolError(f"synthetic data needs the shape of {', '.join(missing)}: "
                              "declare it in the network or give --shape NAME=D1,D2,...")
        classes = _classes(net, {k: (1, *v) for k, v in inputs.items()}, shapes)
        return D.synthetic(inputs, label, classes, seed=seed)
    if len(inputs) != 1:
        raise SymbolError(f"--data {spec} feeds one data input; this network has "
                          f"{len(inputs)}: {', '.join(inputs)}")
    (name,) = inputs
    if spec == "digits":
        return D.digits(name, label, seed=seed)
    if spec.endswith(".npz") or Path(spec).is_file():
        return D.from_npz(spec, name, label, seed=seed)
    raise SymbolError(f"--data {spec!r}: expected synthetic, digits or a FILE.npz")


def _classes(net: Symbol, inputs: dict[str, tuple[int, ...]],
             shapes: dict[str, tuple[int, ...]]) -> int:
    """Classes of the network's first output (SoftmaxOutput: its last axis)."""
    _, outs, _ = net.infer_shape_partial(**{**shapes, **inputs})
    out = outs[0] if outs else None
    if out is None or len(out) < 2:
        raise SymbolError("cannot tell the network's number of classes from its first output "
                          f"(shape {out}); synthetic data needs a classifier head")
    return int(out[-1])


def _checkpoint_file(spec: str) -> Path:
    path = Path(spec)
    if path.is_dir():
        found = sorted(path.glob("epoch-*.safetensors"))
        if not found:
            raise SymbolError(f"--resume {spec}: no checkpoint (epoch-*.safetensors) in it")
        return found[-1]
    if not path.exists():
        raise SymbolError(f"--resume {spec}: no such file or folder")
    return path


def run_train(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``sublinear train``: one process, ``--workers N`` local processes, or
    one worker of a ``torchrun`` launch (``WORLD_SIZE`` in the environment)."""
    from executor.training.distributed import from_environment
    out = out or sys.stdout
    config = _config(args)
    resume = _checkpoint_file(args.resume) if args.resume else None
    if args.workers > 1:
        if "WORLD_SIZE" in os.environ:
            raise SymbolError("--workers starts workers on this machine; under torchrun "
                              "(WORLD_SIZE is set), let torchrun start them and leave --workers "
                              "out")
        if args.workers > config.batch:
            raise SymbolError(f"--workers {args.workers} is larger than --batch {config.batch}: "
                              "every worker needs at least one sample of each batch")
        if args.update_in_backward:
            raise SymbolError("--update-in-backward and --workers exclude each other "
                              "(gradients must be summed over the workers before any update)")
        if config.batch % args.workers:
            raise SymbolError(f"--batch {config.batch} does not split into {args.workers} "
                              f"equal worker shares; use a multiple of {args.workers}")
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
    if args.workers > 1:
        return _run_workers(args, out)
    env = from_environment(args.ctx)  # under torchrun: this process's worker
    code = _train(args, out, resume, env)
    if env.world_size > 1:
        from executor.training.distributed import leave
        leave()
    return code


def _config(args: argparse.Namespace) -> Any:
    from executor.training.trainer import TrainConfig
    config = TrainConfig(batch=args.batch, epochs=args.epochs, optimizer=args.optimizer,
                         lr=args.lr, momentum=args.momentum, wd=args.wd,
                         lr_schedule=args.lr_schedule, warmup=args.warmup, ctx=args.ctx,
                         dtype=args.dtype, strategy=args.strategy, mirror=args.mirror,
                         budget=args.budget, budget_scope=args.budget_scope, seed=args.seed,
                         update_in_backward=args.update_in_backward,
                         microbatch=args.microbatch, bn_stats=args.bn_stats)
    config.check()
    return config


def _train(args: argparse.Namespace, out: TextIO, resume: Path | None, env: Any) -> int:
    """Train in this process (one worker of ``env``; only rank 0 prints and saves)."""
    from executor.training.trainer import Trainer
    config = _config(args)
    net, _ = load_net(args.net, dict(args.param))
    shapes = dict(args.shape)
    dataset = dataset_for(net, args.data, shapes=shapes, seed=args.seed)
    fit = None
    if args.fit is not None:
        config, fit = _fitted(net, dataset, config, int(args.fit))
    trainer = Trainer(net, dataset, config, env=env)
    if resume is not None:
        trainer.resume(str(resume))
    lead = trainer.rank == 0
    if not args.json and lead:
        where = (f"{env.world_size} workers ({env.backend}), {trainer.local_batch} samples each"
                 if trainer.parallel else str(trainer.exe.device))
        print(f"training {Path(args.net).stem} on {dataset.name}: {dataset.num_train} "
              f"samples ({dataset.num_test} test), batch {config.batch}, {where}", file=out)
        if fit is not None:
            print(fit.summary(), file=out)
        print(trainer.plan_report(), file=out)
        if resume is not None:
            print(f"resumed from {resume} (epoch {trainer.epoch})", file=out)

    def save(t: Trainer, record: dict[str, Any]) -> None:
        if args.save and lead:
            record["checkpoint"] = t.save(str(Path(args.save) / f"epoch-{t.epoch:04d}"
                                              ".safetensors"))
    try:
        final = trainer.fit(out=out, as_json=args.json, quiet=args.quiet, on_epoch=save)
    finally:
        trainer.close()
    if not lead:
        return 0
    rep = trainer.exe.memory_report()
    final.update(data=dataset.name, mirror=trainer.exe.mirror_plan.strategy,
                 planned_bytes=rep["planned_bytes"], total_bytes=trainer.exe.plan.total_bytes,
                 update_in_backward=trainer.update_in_backward, workers=env.world_size,
                 dtype=config.dtype, microbatch=config.microbatch)
    if args.json:
        print(json.dumps({"final": True, **final}), file=out)
    else:
        acc = final["test_accuracy"]
        tail = f", test accuracy {100 * acc:.2f}%" if acc is not None else ""
        if final["checkpoint"]:
            tail += f"; checkpoint {final['checkpoint']}"
        print(f"trained {final['epochs']} epochs ({final['steps']} steps): final loss "
              f"{final['final_loss']:.4f}{tail}", file=out)
    return 0


def _fitted(net: Symbol, dataset: Any, config: Any, budget: int) -> tuple[Any, Any]:
    """``--fit``: the dtype, microbatch count and recompute plan :func:`optim.fit.fit_plan`
    chooses for this data's batch, as a new TrainConfig (and the search's result)."""
    from dataclasses import replace

    from optim.fit import fit_plan
    from optim.pipeline import default_grad_req
    from executor.training.trainer import OPTIMIZER_SLOTS
    shapes = {k: (config.batch, *v) for k, v in dataset.sample_shapes().items()}
    declared = [v.name for v in net.graph.inputs if "__shape__" in v.attrs]
    reqs = default_grad_req(net.list_arguments(), [*shapes, *declared])
    result = fit_plan(net, shapes, budget=budget, grad_req=reqs,
                      aux=net.list_auxiliary_states(),
                      optimizer_slots=OPTIMIZER_SLOTS[config.optimizer])
    c = result.chosen
    extra = c.step_bytes - c.plan[1].plan.step_bytes  # optimizer state, accumulated grads
    return replace(config, dtype=c.dtype, microbatch=c.microbatch,
                   mirror=c.mirror, budget=budget - extra if c.mirror == "optimal" else None,
                   budget_scope="step" if c.mirror == "optimal" else config.budget_scope,
                   update_in_backward=c.microbatch == 1 and None), result


def _run_workers(args: argparse.Namespace, out: TextIO) -> int:
    """``--workers N``: N local processes (``launch``), rank 0 printing. A worker's user error
    (bad data, a checkpoint of another net) is raised as it is; any other failure as one
    RunError naming the worker (its traceback logged, shown with -v)."""
    from executor.training.distributed import WorkerError, launch
    direct = out is sys.__stdout__  # workers inherit it; else rank 0 returns its text
    resume = _checkpoint_file(args.resume) if args.resume else None
    try:
        texts = launch(_worker, args.workers, args, resume, direct)
    except WorkerError as e:
        cause = e.__cause__
        if isinstance(cause, (SymbolError, OSError)):
            raise cause from None
        if e.remote_traceback:
            log.info("worker %d's traceback:\n%s", e.rank, e.remote_traceback)
        raise RunError(str(e).split("\n", 1)[0]) from None
    if texts[0]:
        out.write(texts[0])
    return 0


def _worker(args: argparse.Namespace, resume: Path | None, direct: bool) -> str:
    """One ``--workers`` process: join the group, train; rank 0's output (when not direct)."""
    from executor.training.distributed import from_environment
    out: TextIO = sys.stdout if direct else io.StringIO()
    _train(args, out, resume, from_environment(args.ctx))
    return "" if direct else out.getvalue()  # type: ignore[attr-defined]
