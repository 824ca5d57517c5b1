"""``sublinear demo``: train a small network on synthetic data and show the loss falling."""
from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
import torch

import symbol as sym

from ..binding import resolve_device
from ..errors import RunError
from ..executor import ExecutorError
from ..initializer import initialize
from ..optimizer import SGD

__all__ = ["demo_network", "make_data", "run_demo"]


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


def make_data(n: int, dim: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters: one random centre per class plus noise (numpy)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 1.0, (classes, dim))
    labels = rng.integers(0, classes, n)
    points = centres[labels] + rng.normal(0.0, 2.0, (n, dim))
    return points.astype(np.float32), labels.astype(np.float32)


def run_demo(*, steps: int = 300, batch: int = 64, ctx: str = "auto", lr: float = 0.02,
             seed: int = 0, every: int = 25, as_json: bool = False, out: Any = None) -> dict:
    """Train and report; returns ``{"device", "steps", "first_loss", "final_loss", "seconds"}``.

    Raises:
        ExecutorError: a bad ``steps``, ``batch``, ``lr`` or device. RunError: the loss became
            NaN or infinite (too large a learning rate).
    """
    import sys
    out = out or sys.stdout
    for name, value in (("steps", steps), ("batch", batch), ("every", every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ExecutorError(f"demo: {name} must be a positive integer, got {value!r}")
    if not (isinstance(lr, (int, float)) and np.isfinite(lr) and lr > 0):
        raise ExecutorError(f"demo: lr must be a positive number, got {lr!r}")
    torch.manual_seed(seed)
    dim, classes = 20, 10
    x, y = make_data(4096, dim, classes, seed)
    net = demo_network(classes)
    device = resolve_device(ctx)
    exe = net.simple_bind(device, grad_req={n: "write" for n in net.list_arguments()
                                            if n not in ("data", "softmax_label")},
                          data=(batch, dim))
    initialize(exe, seed=seed)
    opt = SGD(lr=lr, momentum=0.9, rescale_grad=1.0 / batch)
    rng = np.random.default_rng(seed + 1)
    losses: list[float] = []
    if not as_json:
        print(f"training {net.list_outputs()[0]} on {device}: {steps} steps, batch {batch}",
              file=out)
        print(f"{'step':>6} {'loss':>8} {'accuracy':>9}", file=out)
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        idx = rng.integers(0, len(x), batch)
        label = torch.from_numpy(y[idx])
        prob = exe.forward(is_train=True, data=torch.from_numpy(x[idx]),
                           softmax_label=label)[0]
        exe.backward()
        opt.update(exe)
        picked = prob.gather(1, label.to(device).long()[:, None]).clamp_min(1e-12)
        losses.append(float(-picked.log().mean()))
        if not np.isfinite(losses[-1]):
            raise RunError(f"training diverged at step {step}: the loss is {losses[-1]}; "
                           "try a smaller --lr")
        if not as_json and (step % every == 0 or step == 1):
            acc = float((prob.argmax(1).cpu() == label.long()).float().mean())
            print(f"{step:>6} {losses[-1]:>8.4f} {acc:>9.3f}", file=out)
    seconds = time.perf_counter() - t0
    result = {"device": str(device), "steps": steps, "first_loss": losses[0],
              "final_loss": float(np.mean(losses[-every:])), "seconds": round(seconds, 3)}
    if as_json:
        print(json.dumps({**result, "losses": losses}), file=out)
    else:
        print(f"loss {result['first_loss']:.3f} -> {result['final_loss']:.3f} "
              f"(mean of the last {every} steps) in {seconds:.1f} s", file=out)
    return result
