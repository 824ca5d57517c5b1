"""What a kernel may know besides its tensors, and the prepared form of a kernel."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Mapping, Sequence

import torch

__all__ = ["Call", "KernelContext", "Prepare", "aten_op", "contiguous_late", "copy_call",
           "copy_into", "kernel_of", "overlaps"]

#: One prepared torch call: everything it reads and writes was bound when it was made (mostly a
#: ``functools.partial`` of a torch function, a C type: calling it adds no Python frame).
Call = Callable[[], object]
#: ``prepare(ctx, ins, outs) -> calls``: resolves a node's parameters, views of its buffers
#: and the torch functions to call, once; running the calls in order is the kernel. A call may
#: still read ``ctx.state`` (``is_train``, ``step``), which changes between runs.
Prepare = Callable[["KernelContext", list[torch.Tensor], list[Any]], Sequence[Call]]


def copy_into(dst: torch.Tensor, src: torch.Tensor) -> None:
    """``dst[...] = src`` (same number of elements; ``dst``'s shape wins); nothing to do when
    the plan put both in one buffer (an in-place pair)."""
    if dst.data_ptr() != src.data_ptr():
        dst.view(src.shape).copy_(src)


def aten_op(overload: Any) -> Callable[..., Any]:
    """The C++ callable behind an aten ``OpOverload``: what ``OpOverload.__call__`` calls,
    without that Python frame per call (the overload itself where torch has no ``_op``)."""
    return getattr(overload, "_op", overload)


def copy_call(dst: torch.Tensor, src: torch.Tensor) -> tuple[Call, ...]:
    """:func:`copy_into` prepared: no call at all when the plan put both in one buffer."""
    if dst.data_ptr() == src.data_ptr():
        return ()
    return (partial(dst.view(src.shape).copy_, src),)


def overlaps(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether the bytes of ``a`` and ``b`` may overlap (exact for contiguous tensors; any
    other pair of one storage counts as overlapping)."""
    if a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr():
        return False
    if not (a.is_contiguous() and b.is_contiguous()):
        return True
    a0, b0 = a.data_ptr(), b.data_ptr()
    return a0 < b0 + b.numel() * b.element_size() and b0 < a0 + a.numel() * a.element_size()


def contiguous_late(prepare: Prepare, ctx: KernelContext, ins: list[torch.Tensor],
                    outs: list[Any]) -> tuple[Call, ...]:
    """For a kernel whose prepared calls hold views of its inputs: nothing when every input
    is contiguous (prepare as usual), else one call that prepares ``prepare`` anew on
    contiguous copies made at each call (a caller-bound argument may be a strided view, of
    which no fixed view exists)."""
    if all(t.is_contiguous() for t in ins):
        return ()

    def call() -> None:
        for c in prepare(ctx, [t.contiguous() for t in ins], outs):
            c()
    return (call,)


def kernel_of(prepare: Prepare) -> Callable[..., None]:
    """The plain kernel ``kernel(ctx, ins, outs)`` of a prepared one: prepare, then run (tests
    and one-off calls; the executor prepares once at bind time)."""
    def kernel(ctx: KernelContext, ins: list[torch.Tensor], outs: list[Any]) -> None:
        for call in prepare(ctx, ins, outs):
            call()
    kernel.__doc__ = prepare.__doc__
    kernel.__name__ = prepare.__name__.replace("prepare_", "")
    setattr(kernel, "prepare", prepare)
    return kernel


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
