"""How many passes over the slices exact BatchNorm statistics need under microbatching.

With a batch split into K slices, a BatchNorm layer can normalise with the statistics of the
whole batch only once the statistics of every BatchNorm before it are known: its input depends
on theirs. The same holds backwards: a layer's data gradient needs the whole-batch sums of
``dy`` and ``dy * xhat`` (``mean(dy)``, ``mean(dy * xhat)`` in
``dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat))``), which are exact only
once those of every BatchNorm after it are known. So the layers fall into *depths*: the
forward depth of a layer is 1 + the largest forward depth among the BatchNorm layers it reads
from (through any path), its backward depth 1 + the largest backward depth among the
BatchNorm layers that read from it. Pass d over all slices completes the statistics of the
layers of depth d.

``batch_norm_depths`` computes both for the layers that normalise with batch statistics
(``use_global_stats`` off); nothing else in the graph matters.

Algorithm: one sweep of the topologically ordered operator nodes carrying, per node, the
largest forward depth of a BatchNorm at or above it (a BatchNorm's own depth is 1 + what its
inputs carry), and one sweep in reverse carrying the largest backward depth at or below it.
Legality: the graph is acyclic and ordered inputs-first (``Graph.nodes``), so each sweep sees a
node after (before) every node it depends on. Complexity: O(n + e).
Invariant (``check_batch_norm_depths``): every layer's depths exceed those of the BatchNorm
layers it reads from (forward) and is read by (backward), and every depth from 1 to the
largest is taken.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from symbol.graph import Graph, Node

__all__ = ["BatchNormDepths", "batch_norm_depths", "check_batch_norm_depths"]


@dataclass(frozen=True)
class BatchNormDepths:
    """The depths of a graph's batch-statistics BatchNorm layers, by node name.

    Attributes:
        forward: layer -> forward depth (1 = reads no other such layer).
        backward: layer -> backward depth (1 = no other such layer reads it).
    """

    forward: Mapping[str, int]
    backward: Mapping[str, int]

    @property
    def forward_passes(self) -> int:
        """Forward passes over the slices that complete every layer's statistics."""
        return max(self.forward.values(), default=0)

    @property
    def backward_passes(self) -> int:
        """Forward + backward passes that complete every layer's gradient sums."""
        return max(self.backward.values(), default=0)

    def passes(self) -> tuple[int, int]:
        """(forward passes, backward passes) of one exact step, the final pass included: the
        statistics passes, the gradient-sum passes (each a forward and a backward), and the
        pass that accumulates the parameter gradients. Without such layers: (1, 1)."""
        if not self.forward:
            return 1, 1
        return self.forward_passes + self.backward_passes + 1, self.backward_passes + 1

    def summary(self) -> str:
        fwd, bwd = self.passes()
        return (f"{len(self.forward)} BatchNorm layers with batch statistics, forward depth "
                f"{self.forward_passes}, backward depth {self.backward_passes}: an exact "
                f"microbatched step runs up to {fwd} forward and {bwd} backward passes over "
                "the slices")


def _batch_stats(node: Node) -> bool:
    return node.op == "BatchNorm" and not node.params.get("use_global_stats", False)


def batch_norm_depths(graph: Graph) -> BatchNormDepths:
    """The forward and backward depths of ``graph``'s batch-statistics BatchNorm layers (see
    the module docstring)."""
    above: dict[Node, int] = {}
    forward: dict[str, int] = {}
    for node in graph.nodes:
        depth = max((above.get(e.node, 0) for e in node.inputs), default=0)
        if _batch_stats(node):
            depth += 1
            forward[node.name] = depth
        above[node] = depth
    below: dict[Node, int] = {}
    backward: dict[str, int] = {}
    for node in reversed(graph.nodes):
        depth = below.get(node, 0)
        if _batch_stats(node):
            depth += 1
            backward[node.name] = depth
        for e in node.inputs:
            if below.get(e.node, 0) < depth:
                below[e.node] = depth
    return BatchNormDepths(forward, backward)


def check_batch_norm_depths(graph: Graph, depths: BatchNormDepths) -> None:
    """Raise AssertionError unless ``depths`` orders ``graph``'s layers (module docstring)."""
    layers = [n for n in graph.nodes if _batch_stats(n)]
    assert set(depths.forward) == set(depths.backward) == {n.name for n in layers}
    for table in (depths.forward, depths.backward):
        assert set(table.values()) == set(range(1, max(table.values(), default=0) + 1))
    for node in layers:
        seen: set[Node] = set()
        stack = [e.node for e in node.inputs]
        while stack:  # every batch-statistics layer above ``node``
            up = stack.pop()
            if up in seen:
                continue
            seen.add(up)
            if _batch_stats(up):
                pair = (up.name, node.name)
                assert depths.forward[up.name] < depths.forward[node.name], pair
                assert depths.backward[up.name] > depths.backward[node.name], pair
            stack.extend(e.node for e in up.inputs)
