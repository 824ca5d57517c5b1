"""What a kernel may know besides its tensors."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

__all__ = ["KernelContext", "copy_into"]


def copy_into(dst: torch.Tensor, src: torch.Tensor) -> None:
    """``dst[...] = src`` (same number of elements; ``dst``'s shape wins); nothing to do when
    the plan put both in one buffer (an in-place pair)."""
    if dst.data_ptr() != src.data_ptr():
        dst.view(src.shape).copy_(src)


@dataclass(eq=False)
class KernelContext:
    """Per-node execution context, built once at bind time.

    Attributes:
        name: node name (for messages).
        params: the node's typed op params.
        node_index: position of the node in the graph; with ``seed`` and ``step`` it keys the
            node's random stream, so a recomputed node draws exactly what the original drew.
        state: executor-wide mutable state: ``is_train`` (bool), ``step`` (int), ``seed`` (int),
            ``loss_scale`` (float, optional: multiplies the loss layers' gradients).
        recompute: this node is a recomputed (mirrored) copy: it draws the random stream of the
            node it copies (``node_index`` is that node's) and must not update state a second
            time (batch-norm moving statistics).
    """

    name: str
    params: Mapping[str, Any]
    node_index: int
    state: dict[str, Any] = field(default_factory=dict)
    recompute: bool = False

    @property
    def is_train(self) -> bool:
        return bool(self.state.get("is_train", False))

    def generator(self, device: torch.device, key: int | None = None) -> torch.Generator:
        """A generator seeded from (executor seed, step, node), identical on every replay.

        ``key`` selects the stream of another node (a recomputed copy draws from the stream of
        the node it mirrors).
        """
        g = torch.Generator(device=device)
        node = self.node_index if key is None else key
        mix = (self.state.get("seed", 0) * 1_000_003 + self.state.get("step", 0)) * 1_000_033
        g.manual_seed((mix + node) % (2**63 - 1))
        return g
