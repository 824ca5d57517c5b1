"""``sublinear demo``: a short ``train`` run (:class:`~executor.training.trainer.Trainer`) of a
small network on synthetic data, printing the loss falling step by step."""
from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

import symbol as sym

from ..executor import ExecutorError

__all__ = ["demo_network", "run_demo"]


def demo_network(num_classes: int, hidden: int = 64) -> sym.Symbol:
    """An MLP: FC-BatchNorm-ReLU, FC-ReLU, Dropout, FC, SoftmaxOutput."""
    data = sym.Variable("data")
    x = sym.FullyConnected(data, num_hidden=hidden, name="fc1")
    x = sym.Activation(sym.BatchNorm(x, fix_gamma=False, name="bn1"), act_type="relu",
                       name="relu1")
    x = sym.Activation(sym.FullyConnected(x, num_hidden=hidden, name="fc2"), act_type="relu",
                       name="relu2")
    x = sym.Dropout(x, p=0.1, name="drop")
    x = sym.FullyConnected(x, num_hidden=num_classes, name="fc3")
    return sym.SoftmaxOutput(x, name="softmax")


def run_demo(*, steps: int = 300, batch: int = 64, ctx: str = "auto", lr: float = 0.02,
             seed: int = 0, every: int = 25, as_json: bool = False, out: Any = None) -> dict:
    """Train :func:`demo_network` on 20-dimensional synthetic data (10 classes, the ``train``
    command's class-conditional generator) for ``steps`` SGD steps (momentum 0.9) and report;
    returns ``{"device", "steps", "first_loss", "final_loss", "seconds"}``.

    Raises:
        ExecutorError: a bad ``steps``, ``batch``, ``lr`` or device. RunError: the loss became
            NaN or infinite (too large a learning rate).
    """
    import sys

    from ..training.data import synthetic
    from ..training.trainer import TrainConfig, Trainer
    out = out or sys.stdout
    for name, value in (("steps", steps), ("batch", batch), ("every", every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ExecutorError(f"demo: {name} must be a positive integer, got {value!r}")
    if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
        raise ExecutorError(f"demo: lr must be a positive number, got {lr!r}")
    data = synthetic({"data": (20,)}, "softmax_label", 10, samples=max(4096, batch),
                     test_samples=0, noise=2.0, seed=seed)
    trainer = Trainer(demo_network(10), data, TrainConfig(
        batch=batch, epochs=-(-steps * batch // data.num_train), lr=lr, momentum=0.9, ctx=ctx,
        seed=seed))
    device = trainer.exe.device
    losses: list[float] = []
    if not as_json:
        print(f"training softmax_output on {device}: {steps} steps, batch {batch}", file=out)
        print(f"{'step':>6} {'loss':>8} {'accuracy':>9}", file=out)
    t0 = time.perf_counter()
    while trainer.step < steps:
        for b in data.batches(batch, trainer.rng):
            loss, hits = trainer.train_step(b, steps)
            losses.append(loss)
            step = trainer.step
            if not as_json and (step % every == 0 or step == 1):
                print(f"{step:>6} {loss:>8.4f} {(hits or 0) / batch:>9.3f}", file=out)
            if step == steps:
                break
    seconds = time.perf_counter() - t0
    result = {"device": str(device), "steps": steps, "first_loss": losses[0],
              "final_loss": float(np.mean(losses[-every:])), "seconds": round(seconds, 3)}
    if as_json:
        print(json.dumps({**result, "losses": losses}), file=out)
    else:
        print(f"loss {result['first_loss']:.3f} -> {result['final_loss']:.3f} "
              f"(mean of the last {every} steps) in {seconds:.1f} s", file=out)
    return result
