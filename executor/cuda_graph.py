"""CUDA graphs for a bound executor: capture a training step's ops once, then replay them.

Every entry of a bound network lives in a buffer fixed at bind time, so the kernels of a
training step always read and write the same addresses: exactly what a CUDA graph records.
After ``warmup`` eager training steps (cuDNN picks its algorithms, torch allocates its
workspace), the next ``forward(is_train=True)`` and ``backward()`` are each captured into one
graph (``torch.cuda.graph``, one private memory pool shared by both) and replayed from then
on, which removes the per-op Python and launch cost. Inference forwards stay eager.

Legality: nothing in the step may synchronise with the host, and every random draw would be
replayed identically, so a network with a random op (Dropout with p > 0) is refused. Inputs,
head gradients and parameters are updated in place (``forward(**inputs)``, ``arg_dict[...]
.copy_()``, optimizers), never by rebinding a tensor.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import torch

__all__ = ["CudaGraphs", "random_nodes"]


def random_nodes(nodes: list[Any]) -> list[str]:
    """Names of the nodes whose kernels draw random numbers (would replay the same draws)."""
    return [n.name for n in nodes if n.op == "Dropout" and float(n.params.get("p", 0)) > 0]


class CudaGraphs:
    """Capture-then-replay of the two phases of a training step (see the module doc).

    Attributes:
        warmup: eager training steps before capture.
        replays: phase -> number of replays so far.
    """

    def __init__(self, warmup: int = 1) -> None:
        self.warmup = warmup
        self.eager_steps = 0
        self.replays: Counter[str] = Counter()
        self._graphs: dict[str, torch.cuda.CUDAGraph] = {}
        self._counts: dict[str, list[Counter[str]]] = {}
        self._pool: Any = None

    @property
    def captured(self) -> bool:
        return len(self._graphs) == 2

    def run(self, phase: str, body: Callable[[], None],
            counters: tuple[Counter[str], Counter[str]]) -> None:
        """Run ``body`` (one phase: ``forward`` or ``backward``): eagerly while warming up,
        captured and replayed on the first step after, replayed from then on. ``counters``
        (kernel calls, recomputes) are advanced as if the ops had run."""
        graph = self._graphs.get(phase)
        if graph is not None:
            graph.replay()
            for total, step in zip(counters, self._counts[phase], strict=True):
                total.update(step)
            self.replays[phase] += 1
            return
        if self.eager_steps < self.warmup or (phase == "backward" and "forward" not in
                                              self._graphs):
            body()
            if phase == "backward":
                self.eager_steps += 1
            return
        before = [Counter(c) for c in counters]
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self._pool):
            body()
        self._pool = self._pool or graph.pool()
        self._counts[phase] = [c - b for c, b in zip(counters, before, strict=True)]
        self._graphs[phase] = graph
        graph.replay()  # capture only records: this step's work runs now
