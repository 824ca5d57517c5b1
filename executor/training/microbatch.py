"""Exact BatchNorm statistics for microbatched training (``TrainConfig(bn_stats='exact')``).

A microbatched step runs the K slices of a batch in turn through a network bound for one
slice. By default each BatchNorm layer normalises a slice with the slice's own statistics.
The exact mode makes every slice see the whole batch's, forward and backward, so that the
step equals the one on the whole batch:

1. statistics passes: forward pass d over all slices folds the statistics of the layers of
   forward depth d (``optim.microbatch``), normalising with the whole-batch statistics of the
   shallower layers, already known; it stops after the last of those layers
   (``Executor.truncated``);
2. gradient-sum passes: forward + backward pass d over all slices folds the sums of dy and
   dy * xhat of the layers of backward depth d, the deeper ones' being known; the backward
   pass stops after the last of those layers' backward steps;
3. the final pass: forward + backward over all slices, every layer exact, the parameter
   gradients accumulated (``grad_req='add'``, zeroed just before);
4. each layer's moving statistics are updated once, from the whole batch's mean and biased
   variance (MXNet's rule), as the unsplit step does.

A slice keeps its random stream in every pass (Dropout draws the same mask each time). The
cost is the passes: at most ``BatchNormDepths.passes()`` forward and backward passes instead
of one each, the truncated ones shorter; the memory, a few (C,) vectors per layer.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from optim.microbatch import BatchNormDepths, batch_norm_depths
from symbol.gradient import MIRROR_OF

from ..executor import Executor
from ..kernels.nn import WHOLE_BATCH_STATE, WholeBatchStats

__all__ = ["ExactBatchNorm"]


class ExactBatchNorm:
    """The whole-batch statistics of an executor's BatchNorm layers, and the passes that make
    them (see the module docstring).

    Attributes:
        depths: the layers' forward and backward depths.
        layers: forward node name -> its :class:`WholeBatchStats`.
    """

    def __init__(self, exe: Executor) -> None:
        self.exe = exe
        self.depths: BatchNormDepths = batch_norm_depths(exe.symbol.graph)
        self.layers: dict[str, WholeBatchStats] = {}
        self._moving: list[tuple[WholeBatchStats, torch.Tensor, torch.Tensor, float]] = []
        self._by_node: dict[str, WholeBatchStats] = {}
        self._backward_of: dict[str, str] = {}  # layer -> its _backward_BatchNorm node
        for node in exe.joint.graph.nodes:
            if node.op == "BatchNorm" and node.name in self.depths.forward:
                mean, var = (exe.aux_dict[e.node.name] for e in node.inputs[3:5])
                whole = WholeBatchStats(mean, node.params["eps"])
                self.layers[node.name] = whole
                self._moving.append((whole, mean, var, 1 - node.params["momentum"]))
        for node in exe.joint.graph.nodes:  # recomputed copies and backward nodes too
            forward = node.inputs[3].node if node.op == "_backward_BatchNorm" else node
            if node.op in ("BatchNorm", "_backward_BatchNorm"):
                layer = forward.attrs.get(MIRROR_OF, forward.name)
                if layer in self.layers:
                    self._by_node[node.name] = self.layers[layer]
                    if node.op == "_backward_BatchNorm":
                        self._backward_of[layer] = node.name

    @contextmanager
    def batch(self, slices: Sequence[Any], forward: Callable[[int, Any], object],
              backward: Callable[[], None]) -> Iterator[None]:
        """One exact step over ``slices``: on entry the statistics and gradient-sum passes run
        (``forward(i, slice)`` runs slice ``i`` forward in training mode with slice i's random
        stream, ``backward()`` the backward pass after it); inside, the caller runs the final
        pass (zeroing the gradients first), every layer then exact; on a normal exit the moving
        statistics are updated once, from the whole batch's."""
        for whole in self.layers.values():
            whole.reset()
        self.exe.state[WHOLE_BATCH_STATE] = self._by_node
        try:
            for d in range(1, self.depths.forward_passes + 1):
                names = self._collect(self.depths.forward, d, "collect")
                with self.exe.truncated(forward_until=names):
                    for i, s in enumerate(slices):
                        forward(i, s)
                self._finish(self.depths.forward, d, WholeBatchStats.finish_statistics)
            for d in range(1, self.depths.backward_passes + 1):
                names = self._collect(self.depths.backward, d, "collect_grads")
                until = [self._backward_of[n] for n in names if n in self._backward_of]
                if until:  # else no gradient reaches these layers: nothing to sum
                    with self.exe.truncated(backward_until=until):
                        for i, s in enumerate(slices):
                            forward(i, s)
                            backward()
                self._finish(self.depths.backward, d, WholeBatchStats.finish_gradients)
            yield
        finally:
            del self.exe.state[WHOLE_BATCH_STATE]
        with torch.no_grad():
            for whole, mean, var, keep in self._moving:
                mean.lerp_(whole.mean, keep)
                var.lerp_(whole.var, keep)

    def _collect(self, table: Mapping[str, int], depth: int, flag: str) -> list[str]:
        """Set ``flag`` on the layers of ``depth`` only; their names."""
        for name, d in table.items():
            setattr(self.layers[name], flag, d == depth)
        return [name for name, d in table.items() if d == depth]

    def _finish(self, table: Mapping[str, int], depth: int,
                finish: Callable[[WholeBatchStats], None]) -> None:
        for name, d in table.items():
            if d == depth:
                finish(self.layers[name])

    def summary(self) -> str:
        return self.depths.summary()
