"""The planning pipeline, as one readable list of calls (no dependency solver).

    gradient -> verify -> infer_shape -> infer_type -> plan_memory -> check (DEBUG)

Used by the executor at bind time and by the CLI / benchmarks to plan without allocating.
The cyclic garbage collector is paused while planning (``collector_paused``).
Planners that plan many mirror variants of one network pass ``PlanHints`` from the first plan
(shapes and dtypes by node name, which every variant shares; or the first plan itself, from
which a variant's joint graph, shapes and dtypes are derived without a gradient, shape or dtype
rule: ``symbol.gradient.remirror``) and skip ``verify`` on variants they throw away.
Each step failure is wrapped as ``PassError("pass 'x' failed (after: ...)")`` unless it is a
user error (SymbolError), which passes through unchanged.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

from symbol.errors import SymbolError
from symbol.gradient import JointGraph, gradient, remirror
from symbol.graph import Entry, Graph, Node, output_name
from symbol.infer_shape import infer_shape, infer_type, output_hints

from .flags import PlannerFlags, read_flags
from .memory import MemoryPlan, auto_match_range, check_memory_plan, entry_bytes, plan_memory

__all__ = ["PassError", "NetworkPlan", "FirstPlan", "PlanHints", "plan_network", "owned_gradients",
           "external_classes", "update_points", "default_grad_req", "resolve_strategy",
           "collector_paused"]


class PassError(RuntimeError):
    """An internal failure of a pass (a bug, not a user error)."""


@dataclass(frozen=True, eq=False)
class NetworkPlan:
    """Everything planned for one network: the joint graph, shapes, dtypes and memory plan."""

    joint: JointGraph
    shapes: Mapping[Entry, Any]
    dtypes: Mapping[Entry, str | None]
    plan: MemoryPlan

    def summary(self) -> str:
        return f"{self.joint.summary()}; {self.plan.summary()}"


class FirstPlan(NamedTuple):
    """What later variants derive from a first plan (``PlanHints.base``): its joint graph and
    every entry's shape, dtype and bytes; not its memory plan, which may then be freed."""

    joint: JointGraph
    shapes: Mapping[Entry, Any]
    dtypes: Mapping[Entry, str | None]
    nbytes: Mapping[Entry, int]


@dataclass(frozen=True, eq=False)
class PlanHints:
    """What every mirror variant of one network shares, read off a first plan of it.

    The variants' joint graphs name their nodes alike (a recomputed copy names the node it
    copies in ``__mirror_of__``), so output shapes and dtypes by node name carry over and skip
    the shape and dtype rules (``symbol.infer_shape.output_hints``).

    Attributes:
        shapes: output shapes of every operator node, by name.
        dtypes: output dtypes of every operator node, by name.
        forward: the forward graph's own shapes for the same input shapes, if known
            (``infer_shape(graph, shapes)``); used as they are.
        base: a plan of the same network (graph, input shapes and dtypes, gradient
            requests and planner flags; any mirror counts): variants derive their joint graph,
            shapes, dtypes and sizes from it (``symbol.gradient.remirror``), and ``shapes``
            and ``dtypes`` go unused. ``plan_network`` checks that it is the same network
            (``_same_network``) and ignores hints with a base of another one.
    """

    shapes: Mapping[str, tuple[Any, ...]]
    dtypes: Mapping[str, tuple[Any, ...]]
    forward: Mapping[Entry, Any] | None = None
    base: FirstPlan | None = None

    @staticmethod
    def of(net: NetworkPlan, forward: Mapping[Entry, Any] | None = None) -> PlanHints:
        """The hints of a planned network (``forward``: see the attribute): the plan itself
        (``base``), from which variants derive, or read shapes and dtypes by name with
        ``NO_DERIVE`` (``by_name``)."""
        return PlanHints({}, {}, forward,
                         FirstPlan(net.joint, net.shapes, net.dtypes, net.plan.nbytes))

    def by_name(self) -> tuple[Mapping[str, tuple[Any, ...]], Mapping[str, tuple[Any, ...]]]:
        """``(shapes, dtypes)`` by node name, read off ``base`` if they were not given."""
        if self.base is not None and not self.shapes:
            return _by_name(self.base)
        return self.shapes, self.dtypes


def _by_name(first: FirstPlan) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    """A first plan's output shapes and dtypes by node name (``output_hints``)."""
    graph = first.joint.graph
    return output_hints(graph, first.shapes), output_hints(graph, first.dtypes)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector inside the block, as ``timeit`` does.

    Planning a long LSTM makes millions of small objects (nodes, entries, maps keyed by entry)
    that live until the plan is done. The collector would traverse them over and over as they
    accumulate (a third of the planning time) and find nothing: no pass makes a reference
    cycle, so reference counting frees everything. The previous state is restored on exit.

    On exit the objects still alive (the plan) would all be young, and the collector's next
    young collection would traverse every one of them once more. Unless the caller froze
    objects itself, ``gc.freeze()`` + ``gc.unfreeze()`` moves them straight to the oldest
    generation instead, without a traversal (their cycles, if any, are found by the next full
    collection).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _run(name: str, done: list[str], fn: Callable[[], Any]) -> Any:
    try:
        out = fn()
    except SymbolError:
        raise
    except Exception as e:
        raise PassError(f"pass {name!r} failed (after: {', '.join(done) or 'nothing'})") from e
    done.append(name)
    return out


def resolve_strategy(strategy: str | None, flags: PlannerFlags) -> str:
    """The memory strategy in force: the caller's, else from the environment (MXNet names).

    ``NO_MEMORY_PLAN=1`` -> ``none``; ``MXNET_EXEC_MATCH_RANGE=0`` -> ``inplace`` (``none``
    when in-place is off too); otherwise ``sharing`` (the arena; MXNet's default shares too,
    with its storage pool: ``pool``). ``NO_ARENA=1`` turns ``sharing`` into ``pool``.
    """
    from .memory import STRATEGIES
    if strategy is not None:
        if strategy not in STRATEGIES:
            raise SymbolError(f"unknown memory strategy '{strategy}'; expected one of "
                              f"{', '.join(STRATEGIES)}")
        return "pool" if strategy == "sharing" and flags.no_arena else strategy
    if flags.no_memory_plan:
        return "none"
    if flags.match_range == 0:
        return "inplace" if flags.inplace else "none"
    return "pool" if flags.no_arena else "sharing"


def default_grad_req(arguments: Sequence[str], inputs: Sequence[str]) -> dict[str, str]:
    """``null`` for data inputs (``inputs``, and names ending in ``data``/``label``),
    ``write`` for every other argument (the parameters)."""
    given = set(inputs)
    return {a: "null" if a in given or a.endswith(("data", "label")) else "write"
            for a in arguments}


def owned_gradients(joint: JointGraph, grad_req: Mapping[str, str]) -> dict[Entry, str]:
    """Gradient entries written straight into the caller's gradient array (``write``).

    An entry can own one array only; an entry that is a forward output or a variable, or
    that a second argument also needs, is copied after backward instead.
    """
    owned: dict[Entry, str] = {}
    for name, e in zip(joint.wrt, joint.grad_outputs, strict=True):
        if (grad_req.get(name) == "write" and not e.node.is_variable and e not in owned
                and e not in joint.forward_outputs):
            owned[e] = name
    return owned


def update_points(joint: JointGraph, owned: Mapping[Entry, str]) -> dict[Entry, Entry]:
    """The optimizer inside the backward pass: owned gradient entry -> its parameter.

    With ``SUBLINEAR_UPDATE_IN_BACKWARD=1`` (``--update-in-backward``) a parameter's update
    runs as soon as its gradient is final and no later step reads the parameter (the update
    overwrites it): right after step ``max(def(g), last read of w)``. The gradient ``g`` is
    then an ordinary planned entry live from its definition to that step (not an external
    array held to the end of the pass), so its storage is shared like any other's.
    Legality: only ``write`` gradients that the backward pass writes directly
    (:func:`owned_gradients`): ``add`` gradients accumulate across passes and must persist.
    """
    variables = {v.name: v for v in joint.graph.inputs}
    return {e: Entry(variables[name], 0) for e, name in owned.items() if name in variables}


def external_classes(joint: JointGraph, *, aux: Sequence[str], with_grad: Sequence[str],
                     owned: Mapping[Entry, str]) -> dict[Entry, str]:
    """Class of every externally bound entry: variables and owned gradients."""
    aux_set, grad_set = set(aux), set(with_grad)
    classes: dict[Entry, str] = {}
    for v in joint.graph.inputs:
        cls = ("aux_states" if v.name in aux_set else "parameters" if v.name in grad_set
               else "inputs")
        classes[Entry(v, 0)] = cls
    classes.update({e: "parameter_gradients" for e in owned})
    return classes


@collector_paused()
def plan_network(graph: Graph, shapes: Mapping[str, Any], *, grad_req: Mapping[str, str],
                 aux: Sequence[str] = (), dtypes: Mapping[str, str] | None = None,
                 strategy: str | None = None, flags: PlannerFlags | None = None,
                 default_dtype: str = "float32",
                 mirror: Mapping[Node, int] | None = None, hints: PlanHints | None = None,
                 verify: bool = True) -> NetworkPlan:
    """Differentiate, shape and plan ``graph`` without allocating anything.

    Args:
        graph: the forward graph.
        shapes: input shapes by variable name (weights are inferred).
        grad_req: argument name -> ``write``/``add``/``null``.
        aux: auxiliary state names.
        dtypes: variable dtypes by name (default ``default_dtype``).
        strategy: memory strategy (default from the environment).
        flags: planner settings (default: read from the environment).
        mirror: mirror counts of forward nodes to recompute (see ``optim.mirror``).
        hints: shapes and dtypes by node name from a previous plan of the same network
            (``PlanHints.of``), which skip most shape and dtype rules; or that plan itself
            (``PlanHints.base``), from which the variant is derived without any rule.
        verify: check the joint graph's IR invariants (``Graph.verify``); a planner may skip
            it for variants it discards, as long as it verifies the plan it returns.

    Raises:
        SymbolError: a user error (shapes, strategy, environment values).
    """
    flags = flags or read_flags()
    strategy = resolve_strategy(strategy, flags)
    done: list[str] = []
    wrt = [n for n, r in grad_req.items() if r != "null"]
    mirror = None if flags.no_mirror else mirror
    base = hints.base if hints else None
    if base is not None and not _same_network(base, graph, shapes, dtypes, wrt, flags):
        hints = base = None  # hints of another network: not trusted, planned from scratch
    if base is not None and not flags.no_derive:
        joint, origin = _run("gradient", done, lambda: remirror(base.joint, graph, mirror))
        if verify:
            _run("verify", done, joint.graph.verify)
        all_shapes, types, nbytes = _derived(base, joint, origin)
        return _planned(joint, all_shapes, types, nbytes, grad_req, wrt, aux, strategy, flags,
                        done)
    joint = _run("gradient", done,
                 lambda: gradient(graph, wrt, grad_sum_cap=flags.grad_sum_cap, mirror=mirror))
    if verify:
        _run("verify", done, joint.graph.verify)
    shape_hints, dtype_hints = hints.by_name() if hints else (None, None)
    known = dict(shapes)
    fwd = (hints.forward if hints and hints.forward is not None
           else _run("infer_shape", done, lambda: infer_shape(graph, known, shape_hints)))
    for name, e in zip(joint.head_grads, joint.forward_outputs, strict=True):
        if name is not None:
            known[name] = fwd[e]
    all_shapes = _run("infer_shape", done,
                      lambda: infer_shape(joint.graph, known, shape_hints, given=fwd))
    missing = [output_name(e) for e, s in all_shapes.items() if s is None]
    if missing:
        raise SymbolError("cannot infer the shape of " + ", ".join(missing[:8])
                          + (" ..." if len(missing) > 8 else "") + "; give the input shapes")
    types = _run("infer_type", done,
                 lambda: infer_type(joint.graph, dict(dtypes or {}), default=default_dtype,
                                    hints=dtype_hints))
    return _planned(joint, all_shapes, types, entry_bytes(all_shapes, types), grad_req, wrt,
                    aux, strategy, flags, done)


def _same_network(base: FirstPlan, graph: Graph, shapes: Mapping[str, Any],
                  dtypes: Mapping[str, str] | None, wrt: Sequence[str],
                  flags: PlannerFlags) -> bool:
    """Whether a variant of ``graph`` may use ``base``'s facts: a plan by ``gradient`` of the
    same forward graph, gradients and ``grad_sum_cap``, with the same input shapes and given
    dtypes."""
    replay, joint = base.joint.replay, base.joint
    if replay is None or replay.grad_sum_cap != flags.grad_sum_cap:
        return False
    if joint.wrt != tuple(wrt) or joint.graph.nodes[:len(graph.nodes)] != graph.nodes:
        return False
    inputs = {v.name: Entry(v, 0) for v in joint.graph.inputs}
    return (all(n in inputs and base.shapes[inputs[n]] == tuple(s) for n, s in shapes.items())
            and all(n in inputs and base.dtypes[inputs[n]] == t
                    for n, t in (dtypes or {}).items()))


def _derived(base: FirstPlan, joint: JointGraph, origin: Mapping[Node, Node]
             ) -> tuple[Mapping[Entry, Any], Mapping[Entry, str | None], dict[Entry, int]]:
    """Shapes, dtypes and bytes of every entry of ``joint``, a variant of ``base.joint``
    (``remirror``): each node's outputs have those of the node of ``base`` it stands for.
    Bytes and dtypes, which the memory plan reads, are dicts; shapes are read through
    ``origin`` on demand (``_Through``)."""
    entries = list(joint.graph.entries())
    olds = [e if e.node not in origin else Entry(origin[e.node], e.index) for e in entries]
    return (_Through(base.shapes, origin, joint.graph.node_entries, len(entries)),
            dict(zip(entries, map(base.dtypes.__getitem__, olds))),
            dict(zip(entries, map(base.nbytes.__getitem__, olds))))


class _Through(Mapping[Entry, Any]):
    """Facts of a derived joint graph's entries, read from its base's through ``origin``
    (see ``_derived``); the entries are those of ``table`` (the graph's ``node_entries``)."""

    __slots__ = ("_facts", "_origin", "_table", "_count")

    def __init__(self, facts: Mapping[Entry, Any], origin: Mapping[Node, Node],
                 table: Mapping[Node, tuple[Entry, ...]], count: int) -> None:
        self._facts, self._origin, self._table, self._count = facts, origin, table, count

    def __getitem__(self, e: Entry) -> Any:
        if e.node not in self._table:
            raise KeyError(e)
        old = self._origin.get(e.node)
        return self._facts[e if old is None else Entry(old, e.index)]

    def __iter__(self) -> Iterator[Entry]:
        return chain.from_iterable(self._table.values())

    def __len__(self) -> int:
        return self._count


def _planned(joint: JointGraph, all_shapes: Mapping[Entry, Any],
             types: Mapping[Entry, str | None], nbytes: Mapping[Entry, int],
             grad_req: Mapping[str, str], wrt: Sequence[str], aux: Sequence[str],
             strategy: str, flags: PlannerFlags, done: list[str]) -> NetworkPlan:
    """The memory plan of a differentiated, shaped and typed network (``wrt``: the arguments
    of ``grad_req`` that get a gradient)."""
    owned = owned_gradients(joint, grad_req)
    released = update_points(joint, owned) if flags.update_in_backward else {}
    ext = external_classes(joint, aux=aux, with_grad=wrt,
                           owned={e: n for e, n in owned.items() if e not in released})

    def plan(match_range: int) -> MemoryPlan:
        return plan_memory(joint.graph, nbytes, types, num_forward=joint.num_forward,
                           external=ext, strategy=strategy, match_range=match_range,
                           num_temp=flags.num_temp, inplace=flags.inplace,
                           released=released)
    if strategy == "pool" and flags.auto_search_match_range:
        mplan = _run("plan_memory", done, lambda: auto_match_range(plan))
    else:
        mplan = _run("plan_memory", done, lambda: plan(flags.match_range))
    if flags.debug:
        _run("check_memory_plan", done, lambda: check_memory_plan(mplan))
    return NetworkPlan(joint, all_shapes, types, mplan)
