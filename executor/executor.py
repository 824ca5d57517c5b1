"""The executor: runs a joint forward+backward graph op by op on torch tensors.

No torch.autograd: the backward pass is the symbolic gradient graph built by
:func:`symbol.gradient`, executed with the kernel table. Every entry (node output) is written by
its kernel into a buffer chosen once at bind time, so a training step allocates nothing beyond
operator workspace.

Gradient-ready hooks (:meth:`Executor.on_gradient_ready`) are called during ``backward()`` as
soon as a gradient in ``grad_dict`` is final, which lets data parallel training start reducing
the last layers' gradients while the first layers' are still being computed. Which gradients
become final after which step is decided at bind time (:meth:`Executor._mark_ready`).
"""
from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Callable, Collection, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch.utils.hooks import RemovableHandle

from optim.flags import PlannerFlags, read_flags
from optim.memory import MemoryPlan
from optim.mirror import MirrorPlan
from optim.pipeline import NetworkPlan, owned_gradients
from optim.search import plan_training
from symbol import Symbol
from symbol.gradient import MIRROR_OF, JointGraph
from symbol.graph import Entry, Node, topo_sort

from .arrays import (SUPPORTED_DTYPES, ExecutorError, check_labels, dtype_name, kind_of,
                     label_rules, source, torch_dtype)
from .cuda_graph import CudaGraphs, random_nodes
from .kernels import Call, KernelContext, prepare

__all__ = ["Executor", "ExecutorError", "GRAD_REQS", "SUPPORTED_DTYPES", "kind_of",
           "torch_dtype", "dtype_name"]

log = logging.getLogger(__name__)
GRAD_REQS = ("write", "add", "null")


@dataclass(frozen=True, eq=False)
class _Step:
    """One node's kernel, prepared at bind time (:func:`executor.kernels.prepare`): ``calls``
    run it on the node's buffers."""

    node: Node
    ctx: KernelContext
    calls: tuple[Call, ...]
    origin: str | None = None  # the node a recomputed copy recomputes
    ready: tuple[str, ...] = ()  # grad_dict names final after this step (gradient-ready hooks)


@dataclass(frozen=True, eq=False)
class _Phase:
    """A run of steps as :meth:`Executor._run` runs it: every call of every step in one flat
    tuple, and what one run adds to the counters (per op, per recomputed node), so that they
    are advanced once per run rather than once per op."""

    steps: tuple[_Step, ...]
    calls: tuple[Call, ...]
    kernel_calls: Counter[str]
    recompute_calls: Counter[str]

    @classmethod
    def of(cls, steps: Sequence[_Step]) -> _Phase:
        return cls(tuple(steps), tuple(c for s in steps for c in s.calls),
                   Counter(s.node.op for s in steps),
                   Counter(s.origin for s in steps if s.origin is not None))


class Executor:
    """A bound network (MXNet ``Executor``). Create it with ``Symbol.simple_bind`` or ``bind``.

    Attributes:
        arg_dict: argument name -> tensor (inputs and parameters).
        grad_dict: argument name -> gradient tensor, for arguments whose grad_req is not null.
        aux_dict: auxiliary state name -> tensor (batch-norm moving statistics).
        outputs: the symbol's output tensors, valid after :meth:`forward`.
        joint: the joint forward+backward graph being executed.
        plan: the static memory plan the buffers realise.
        mirror_plan: what is kept and what is recomputed in the backward pass.
        kernel_calls: op name -> number of kernel calls so far (for tests and profiling).
        recompute_calls: forward node name -> how often it was recomputed so far.
        gradient_order: the ``grad_dict`` names in the order ``backward()`` makes them final
            (the order gradient-ready hooks are called in; see :meth:`on_gradient_ready`).
    """

    def __init__(self, symbol: Symbol, device: torch.device,
                 arg_dict: dict[str, torch.Tensor], grad_dict: dict[str, torch.Tensor],
                 aux_dict: dict[str, torch.Tensor], grad_req: Mapping[str, str], *,
                 strategy: str | None = None, mirror: str | None = None,
                 budget: str | int | None = None, budget_scope: str | None = None,
                 flags: PlannerFlags | None = None,
                 planned: tuple[MirrorPlan, NetworkPlan] | None = None) -> None:
        self.symbol, self.device = symbol, device
        self.arg_dict, self.grad_dict, self.aux_dict = arg_dict, grad_dict, aux_dict
        self.grad_req = dict(grad_req)
        self.flags = flags or read_flags()
        if planned is None:
            bound = {**arg_dict, **aux_dict}
            planned = plan_training(
                symbol.graph, {k: tuple(v.shape) for k, v in bound.items()},
                grad_req={a: self.grad_req.get(a, "null") for a in symbol.list_arguments()},
                aux=list(aux_dict), strategy=strategy, mirror=mirror, budget=budget,
                budget_scope=budget_scope,
                flags=self.flags, dtypes={k: dtype_name(v.dtype) for k, v in bound.items()},
                default_dtype=dtype_name(_float_dtype(arg_dict)))
        self.mirror_plan, net = planned
        # what only planning needs goes: the gradient pass's replay, and a derived plan's
        # shapes read through its planner's first plan (which they would keep alive)
        self.joint: JointGraph = replace(net.joint, replay=None)
        self.shapes = net.shapes if isinstance(net.shapes, dict) else dict(net.shapes)
        self.dtypes, self.plan = net.dtypes, net.plan
        self.strategy = self.plan.strategy
        self.state: dict[str, Any] = {"is_train": False, "step": 0,
                                      "seed": int(torch.randint(0, 2**31 - 1, ()).item())}
        self.kernel_calls: Counter[str] = Counter()
        self.recompute_calls: Counter[str] = Counter()
        self._labels = label_rules(self.joint, self.shapes)
        self._buffers = self._bind_external()
        self._realise(self.plan)
        self._forward_steps, self._backward_steps = self._compile()
        self._grad_tail = self._gradient_tail()
        self._grad_moves = tuple(call for _, call in self._grad_tail if call is not None)
        # an OrderedDict: torch's RemovableHandle holds it by weak reference
        self._grad_hooks: OrderedDict[int, Callable[[str, torch.Tensor], None]] = OrderedDict()
        self.outputs = [self._buffers[e] for e in self.joint.forward_outputs]
        variables = {v.name: v for v in self.joint.graph.inputs}
        # a head gradient nobody reads (no argument needs a gradient) is not in the graph
        self._head_grads = {name: self._buffers[Entry(variables[name], 0)]
                            for name in self.joint.head_grads if name in variables}
        self._trained_forward = False
        self.last_step_peak: int | None = None  # CUDA: bytes allocated at the step's peak
        self.last_step_workspace: int | None = None  # CUDA: of which beyond bound buffers
        self._step_base = 0
        self.cuda_graphs: CudaGraphs | None = None  # see enable_cuda_graphs
        self._truncated = False  # see truncated()

    # -- bind-time work -------------------------------------------------------------------------
    def _new_buffer(self, e: Entry) -> torch.Tensor:
        return torch.empty(self.shapes[e], dtype=torch_dtype(self.dtypes[e] or "float32"),
                           device=self.device)

    def _bind_external(self) -> dict[Entry, torch.Tensor]:
        """Buffers of externally bound entries: arguments, aux states, head gradients, and
        gradients written straight into ``grad_dict`` (``grad_req='write'``)."""
        buffers: dict[Entry, torch.Tensor] = {}
        for v in self.joint.graph.inputs:
            e = Entry(v, 0)
            bound = self.arg_dict.get(v.name, self.aux_dict.get(v.name))
            if bound is None:  # a head gradient
                bound = self._new_buffer(e).fill_(1)
            buffers[e] = bound
        owned = owned_gradients(self.joint, self.grad_req)
        # planned, not bound: gradients consumed by an update inside the backward pass
        self._released = {e: n for e, n in owned.items() if e not in self.plan.external}
        for e, name in owned.items():
            if e not in self._released:
                buffers[e] = self.grad_dict[name]
        self._owned = owned
        return buffers

    def _realise(self, plan: MemoryPlan) -> None:
        """One uint8 arena of ``plan.planned_bytes``; every planned entry is a typed view at
        its storage's offset (offsets are aligned for every dtype)."""
        self._arena = torch.empty(plan.planned_bytes, dtype=torch.uint8, device=self.device)
        for e, sid in plan.storage.items():
            dtype = torch_dtype(self.dtypes[e] or "float32")
            start = plan.offsets[sid]
            view = self._arena[start:start + plan.nbytes[e]].view(dtype).view(self.shapes[e])
            self._buffers[e] = view
        for e, name in self._released.items():  # valid inside gradient-ready hooks only
            self.grad_dict[name] = self._buffers[e]

    def _compile(self) -> tuple[_Phase, _Phase]:
        """The forward and the backward phase: each node's kernel prepared once on its
        buffers (parameters parsed, views made, torch functions chosen), in plan order."""
        g = self.joint.graph
        forward_nodes = {n for n in topo_sort(self.joint.forward_outputs) if not n.is_variable}
        index = g.node_index
        fwd: list[_Step] = []
        bwd: list[_Step] = []
        by_name = {n.name: n for n in g.nodes}
        for node in self.plan.liveness.order:
            original = by_name.get(node.attrs.get(MIRROR_OF, ""))
            ctx = KernelContext(node.name, node.params, index[original or node], self.state,
                                recompute=original is not None)
            ins = [self._buffers[e] for e in node.inputs]
            outs = [self._buffers.get(Entry(node, i)) for i in range(node.num_outputs)]
            if node in forward_nodes and bwd:
                raise AssertionError("execution order interleaves backward and forward nodes")
            step = _Step(node, ctx, prepare(node.op, ctx, ins, outs),
                         original.name if original else None)
            (fwd if node in forward_nodes else bwd).append(step)
        return _Phase.of(fwd), _Phase.of(self._mark_ready(bwd))

    def _mark_ready(self, steps: list[_Step]) -> list[_Step]:
        """Tag each backward step with the gradients that are final after it; set
        ``gradient_order`` and ``_late_ready``.

        A gradient written straight into ``grad_dict`` (``_owned``) is final after the last
        step that writes its buffer. That is its own node's step: an owned buffer is external,
        so the planner never lets a later step overwrite it in place (an in-place sum chain
        ends in the node writing it). Any other gradient (``add``, a copied entry) is final
        after its copy or add in :meth:`_backward_body`: those names are ``_late_ready``.
        """
        released = set(self._released.values())
        by_ptr = {self.grad_dict[n].data_ptr(): n for n in self._owned.values()
                  if self.grad_dict[n].numel() and n not in released}
        last: dict[str, int] = {}
        for i, s in enumerate(steps):
            for k in range(s.node.num_outputs):
                o = self._buffers.get(Entry(s.node, k))
                name = by_ptr.get(o.data_ptr()) if o is not None else None
                if name is not None:
                    last[name] = i
        if released:  # the plan's update point: after max(definition, last read of w)
            live = self.plan.liveness
            first = len(live.order) - len(steps)
            for e, name in self._released.items():
                last[name] = live.last_step[live.entry_id(e)] - first
        ready: dict[int, list[str]] = {}
        for name, i in last.items():
            ready.setdefault(i, []).append(name)
        late = [n for n in self.joint.wrt if n not in last]
        self._late_ready = frozenset(late)
        self.gradient_order = tuple([n for i in sorted(ready) for n in ready[i]] + late)
        return [replace(s, ready=tuple(ready[i])) if i in ready else s
                for i, s in enumerate(steps)]

    # -- running --------------------------------------------------------------------------------
    def _run(self, phase: _Phase) -> None:
        """Run every call of ``phase``, then advance the counters by the phase's tallies (a
        kernel that raises leaves them where they were)."""
        if self._grad_hooks and not self._truncated:  # one test per call, not per op
            self._run_hooked(phase)
            return
        for call in phase.calls:
            call()
        self.kernel_calls.update(phase.kernel_calls)
        self.recompute_calls.update(phase.recompute_calls)

    def _run_hooked(self, phase: _Phase) -> None:
        """:meth:`_run`, calling the gradient-ready hooks after each step that finishes
        gradients; the counters advance step by step, so a hook sees how far the pass is."""
        calls, again = self.kernel_calls, self.recompute_calls
        for s in phase.steps:
            for call in s.calls:
                call()
            calls[s.node.op] += 1
            if s.origin is not None:
                again[s.origin] += 1
            if s.ready:
                self._gradients_ready(s.ready)

    def _gradients_ready(self, names: Sequence[str]) -> None:
        for name in names:
            grad = self.grad_dict[name]
            for hook in list(self._grad_hooks.values()):
                hook(name, grad)

    def forward(self, is_train: bool = False, **inputs: Any) -> list[torch.Tensor]:
        """Run the forward part; ``inputs`` are checked, then copied into ``arg_dict``.

        Inputs are passed by name only: ``forward(is_train=True, data=x, softmax_label=y)``.
        Each value must have the argument's shape and be a torch tensor (on any device), a
        numpy array, a nested list or a number. It is cast to the argument's dtype: a float
        or integer array into a float argument (numpy float64 into float32, as MXNet does), an
        integer array into an integer argument; a float array into an integer argument is
        refused (it would be truncated), except for a label, whose values are checked.

        Labels of ``SoftmaxOutput`` and ``softmax_cross_entropy`` must be whole numbers in
        ``[0, classes)`` (or ``ignore_label`` with ``use_ignore``); float labels holding whole
        numbers are fine (MXNet passes labels as floats). Host data (numpy, lists, CPU tensors)
        is checked on the host before the copy, a min/max over a batch-sized vector; a tensor
        on another device (CUDA) is checked only when the executor was bound with ``DEBUG>=1``,
        since the check waits for the device. Values written into ``arg_dict`` directly are
        not checked.

        Args:
            is_train: training mode (batch statistics, dropout, moving-average updates); a
                bool (or 0 / 1).
            **inputs: argument name -> array.

        Returns:
            ``self.outputs``.

        Raises:
            ExecutorError: ``is_train`` is not a bool (an array passed positionally), an
                unknown name, a value that is not a numeric array of the argument's shape, a
                float array for an integer argument, a label out of range; nothing is run.
        """
        if not (isinstance(is_train, (bool, np.bool_))
                or isinstance(is_train, int) and is_train in (0, 1)):
            raise ExecutorError(self._is_train_message(is_train))
        if inputs:
            with torch.no_grad():
                for name, value in inputs.items():
                    self._assign_input(name, value)
        self.state["is_train"] = bool(is_train)
        if is_train:
            self.state["step"] += 1
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
                self._step_base = torch.cuda.memory_allocated(self.device)
                torch.cuda.reset_peak_memory_stats(self.device)
        with torch.no_grad():
            if is_train and self.cuda_graphs is not None and not self._truncated:
                self.cuda_graphs.run("forward", lambda: self._run(self._forward_steps),
                                     (self.kernel_calls, self.recompute_calls))
            else:
                self._run(self._forward_steps)
        self._trained_forward = bool(is_train)
        return self.outputs

    def _assign_input(self, name: str, value: Any) -> None:
        """Check ``value`` (see :meth:`forward`) and copy it into ``arg_dict[name]``."""
        dst = self.arg_dict.get(name)
        if dst is None:
            raise ExecutorError(f"forward: '{name}' is not an argument (arguments: "
                                f"{', '.join(self.arg_dict)})")
        rules = self._labels.get(name)
        src = source(value, dst, f"forward: input '{name}'", label=rules is not None)
        if rules is not None and (src.device.type == "cpu" or self.flags.debug):
            check_labels(src, rules, name)
        dst.copy_(src)

    def _is_train_message(self, got: Any) -> str:
        first = next(iter(self.arg_dict), "data")
        arrays = (torch.Tensor, np.ndarray, list, tuple)
        said = kind_of(got) if isinstance(got, arrays) else repr(got)[:60]
        return (f"forward: is_train must be True or False, got {said}; inputs are passed by "
                f"name, e.g. forward(is_train=True, {first}=x)")

    def backward(self, out_grads: Any = None) -> None:
        """Run the backward part and fill ``grad_dict`` according to ``grad_req``.

        Args:
            out_grads: head gradients: a list with one array (or None: ones) per output, or
                an array for a single output; loss outputs ignore theirs. Default: ones. Each
                is checked and cast as the inputs of :meth:`forward` are.

        Raises:
            ExecutorError: no preceding ``forward(is_train=True)``; out_grads of the wrong
                type, count or shape.
        """
        self._backward(out_grads, None)

    def _backward(self, out_grads: Any, run: Callable[[_Phase], None] | None) -> None:
        """``backward``, its steps run by ``run`` (default: :meth:`_run`, or the CUDA graph)."""
        if not self._trained_forward:
            raise ExecutorError("backward() needs a preceding forward(is_train=True)")
        self._set_head_grads(out_grads)
        with torch.no_grad():
            if run is None and self.cuda_graphs is not None and not self._truncated:
                self.cuda_graphs.run("backward", lambda: self._backward_body(self._run),
                                     (self.kernel_calls, self.recompute_calls))
            else:
                self._backward_body(run or self._run)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.last_step_peak = torch.cuda.max_memory_allocated(self.device)
            self.last_step_workspace = self.last_step_peak - self._step_base

    def _gradient_tail(self) -> tuple[tuple[str, Call | None], ...]:
        """What ``backward`` does after its steps, per gradient in ``wrt`` order: add it into
        ``grad_dict`` (``grad_req='add'``), copy it there (a gradient the plan kept in its own
        buffers), or nothing (None: a step wrote ``grad_dict`` itself)."""
        tail: list[tuple[str, Call | None]] = []
        for name, e in zip(self.joint.wrt, self.joint.grad_outputs, strict=True):
            src, dst = self._buffers[e], self.grad_dict[name]
            if self.grad_req[name] == "add":
                tail.append((name, partial(dst.add_, src)))
            else:
                tail.append((name, None if e in self._owned else partial(dst.copy_, src)))
        return tuple(tail)

    def _backward_body(self, run: Callable[[_Phase], None]) -> None:
        run(self._backward_steps)
        if self._truncated:
            return
        if not self._grad_hooks:
            for move in self._grad_moves:
                move()
            return
        for name, call in self._grad_tail:
            if call is not None:
                call()
            if name in self._late_ready:
                self._gradients_ready((name,))

    @contextmanager
    def truncated(self, forward_until: Collection[str] = (),
                  backward_until: Collection[str] = ()) -> Iterator[None]:
        """Within the block, passes stop early: ``forward`` after the last step that runs a node
        named in ``forward_until`` (all of it when empty), ``backward`` after the last step that
        runs a node named in ``backward_until`` (all of its steps when empty). The passes are
        prefixes of the planned order, so the memory plan holds; they are run for their side
        effects on the ops they reach (the statistics passes of exact microbatched BatchNorm,
        ``executor.training.microbatch``): ``backward`` then leaves ``grad_dict`` unfinished
        (no copy or accumulation into it), and gradient-ready hooks and CUDA graphs are not
        used. Outputs past the cut are stale.

        Raises:
            ExecutorError: a name no step of the pass runs.
        """
        saved = self._forward_steps, self._backward_steps, self._truncated
        try:
            self._forward_steps = _prefix(self._forward_steps, forward_until, "forward")
            self._backward_steps = _prefix(self._backward_steps, backward_until, "backward")
            self._truncated = True
            yield
        finally:
            self._forward_steps, self._backward_steps, self._truncated = saved

    def on_gradient_ready(self, hook: Callable[[str, torch.Tensor], None]) -> RemovableHandle:
        """Call ``hook(name, grad)`` during every ``backward()`` as soon as ``grad_dict[name]``
        is final (PyTorch's ``register_post_accumulate_grad_hook``, for the whole executor).

        Each ``grad_dict`` name is passed exactly once per ``backward()``, in the order of
        ``gradient_order``: a gradient the backward pass writes straight into ``grad_dict``
        right after the op writing it (so the last layer's come first, long before the pass
        ends), the others (``grad_req='add'``, gradients copied out of the plan's buffers)
        right after their copy or add at the end of the pass. Nothing writes ``grad`` again
        in that ``backward()``; the hook may read it (and copy it elsewhere), but must not
        write it. Hooks run in the order they were added, with torch's gradient mode off.
        Without hooks the executor runs exactly as before.

        Returns:
            a handle; ``handle.remove()`` removes the hook.

        Raises:
            ExecutorError: CUDA graphs are enabled (a replayed graph runs no Python between
                its ops, so it could not call the hook).
        """
        if self.cuda_graphs is not None:
            raise ExecutorError("gradient-ready hooks cannot run inside a replayed CUDA graph; "
                                "add them before (or instead of) enable_cuda_graphs()")
        handle = RemovableHandle(self._grad_hooks)
        self._grad_hooks[handle.id] = hook
        return handle

    def enable_cuda_graphs(self, warmup: int = 1) -> None:
        """Run training steps as CUDA graphs: ``warmup`` eager steps, then the next
        ``forward(is_train=True)`` and ``backward()`` are captured and replayed from then on
        (see :mod:`executor.cuda_graph`). Results are those of the eager steps.

        Raises:
            ExecutorError: not a CUDA device, or the network draws random numbers (Dropout),
                which a replayed graph would draw identically every step.
        """
        if self.device.type != "cuda":
            raise ExecutorError(f"CUDA graphs need a CUDA device; this executor is bound to "
                                f"{self.device}")
        drawn = random_nodes(list(self.joint.graph.nodes))
        if drawn:
            raise ExecutorError("CUDA graphs would replay the same random numbers every step; "
                                f"these nodes draw them: {', '.join(drawn)}")
        if warmup < 1:
            raise ExecutorError(f"enable_cuda_graphs: warmup must be >= 1, got {warmup}")
        if self._grad_hooks:
            raise ExecutorError("CUDA graphs replay the backward pass without running Python, "
                                "so gradient-ready hooks could not run; remove them first")
        self.cuda_graphs = CudaGraphs(warmup)

    def timed_step(self, sync: Any = None) -> dict[str, float]:
        """One training step, ``forward(is_train=True)`` then ``backward()``, timed by phase.

        The backward pass alternates runs of recompute steps (copies of dropped forward nodes,
        ``origin`` set) and runs of backward steps; each recompute run is bracketed by
        ``sync`` calls, so the timing costs two synchronisations per run, not one per op.

        Args:
            sync: a no-argument callable that waits for queued device work (default:
                ``torch.cuda.synchronize`` on CUDA, nothing on the CPU).

        Returns:
            seconds spent in ``forward``, in ``recompute`` and in ``backward`` (the rest of
            the backward pass: gradient ops and gradient copies).
        """
        import time  # local: this method is all that memcost adds to this module
        from itertools import groupby
        if self.cuda_graphs is not None:
            raise ExecutorError("timed_step times ops one by one; it cannot split a CUDA graph")
        if sync is None:
            cuda = self.device.type == "cuda"
            sync = (lambda: torch.cuda.synchronize(self.device)) if cuda else (lambda: None)
        spent = {"forward": 0.0, "recompute": 0.0, "backward": 0.0}

        def timed_run(phase: _Phase) -> None:
            for again, group in groupby(phase.steps, key=lambda s: s.origin is not None):
                part = _Phase.of(list(group))
                if not again:
                    self._run(part)
                    continue
                sync()
                t = time.perf_counter()
                self._run(part)
                sync()
                spent["recompute"] += time.perf_counter() - t

        sync()
        t0 = time.perf_counter()
        self.forward(is_train=True)
        sync()
        t1 = time.perf_counter()
        self._backward(None, timed_run)
        sync()
        spent["forward"] = t1 - t0
        spent["backward"] = time.perf_counter() - t1 - spent["recompute"]
        return spent

    def _set_head_grads(self, out_grads: Any) -> None:
        n = len(self.outputs)
        if out_grads is None:  # the common case, without the checks below
            for t in self._head_grads.values():
                t.fill_(1)
            return
        if isinstance(out_grads, (torch.Tensor, np.ndarray)):
            grads = [out_grads]
        elif isinstance(out_grads, (list, tuple)):
            grads = list(out_grads)
        else:
            raise ExecutorError(f"backward: out_grads must be a list with one array (or None) "
                                f"per output, or an array for a single output; got "
                                f"{kind_of(out_grads)}")
        if len(grads) != n:
            raise ExecutorError(f"backward: {len(grads)} out_grads for {n} outputs "
                                f"({', '.join(self.symbol.list_outputs())})")
        with torch.no_grad():
            for i, (head, g) in enumerate(zip(self.joint.head_grads, grads, strict=True)):
                if g is None:
                    if head in self._head_grads:
                        self._head_grads[head].fill_(1)
                    continue
                what = (f"backward: out_grads[{i}] (the gradient of output "
                        f"'{self.symbol.list_outputs()[i]}')")
                src = source(g, self.outputs[i], what)
                if head in self._head_grads:
                    self._head_grads[head].copy_(src)

    # -- reporting ------------------------------------------------------------------------------
    def debug_str(self) -> str:
        """MXNet-like: the executed graph with output shapes and storage ids, then totals."""
        from .report import debug_str
        return debug_str(self)

    def memory_report(self) -> dict[str, Any]:
        """Planned bytes per class, storage counts and, on CUDA, the last measured step peak."""
        from .report import memory_report
        return memory_report(self)

    def __repr__(self) -> str:
        return (f"<Executor {len(self.joint.graph.nodes)} ops on {self.device}: "
                f"{', '.join(self.symbol.list_outputs())}>")


def _prefix(phase: _Phase, until: Collection[str], which: str) -> _Phase:
    """``phase`` up to its last step running a node named in ``until`` (all of it if empty)."""
    if not until:
        return phase
    wanted = set(until)
    last = max((i for i, s in enumerate(phase.steps) if s.node.name in wanted), default=None)
    found = {s.node.name for s in phase.steps} & wanted
    if last is None or found != wanted:
        missing = ", ".join(sorted(wanted - found))
        raise ExecutorError(f"truncated: the {which} pass runs no node named {missing}")
    return _Phase.of(phase.steps[:last + 1])


def _float_dtype(arrays: Mapping[str, torch.Tensor]) -> torch.dtype:
    for t in arrays.values():
        if t.is_floating_point():
            return t.dtype
    return torch.float32
