"""The gradient pass: forward graph -> one joint forward+backward graph (NNVM ``Gradient``).

Algorithm:
  1. mark the nodes on a path from a ``wrt`` variable to an output (only they need gradients);
  2. seed head gradients: an output of a loss op (``OpDef.is_loss``) needs none; any other
     output gets a variable ``<output>_head_grad`` (ones by default at bind time);
  3. visit the marked nodes in reverse topological order; sum the contributions to each output
     gradient (one ``ElementWiseSum`` named ``<node>_grad_sum`` for up to ``grad_sum_cap``
     contributions, as MXNet; beyond that a chain of ``elemwise_add`` nodes
     ``<node>_grad_sum_add<i>`` that the planner can run in place, so each contribution dies as
     soon as it is added: MXNet's ``MXNET_EXEC_INPLACE_GRAD_SUM_CAP``); call the
     op's symbolic rule, which returns graph nodes, one entry or None per input;
  4. the joint graph's outputs are the forward outputs followed by the gradient of each
     ``wrt`` variable (``zeros_like`` of the variable when no path reaches it).
Legality: rules may read only what they need (the paper's minimal backward dependencies);
a rule must return exactly one result per input (checked here).
Complexity: O(nodes + edges).
Invariant (checked by ``Graph.verify`` in tests): the joint graph is well formed, every forward
node appears once, and backward nodes are named deterministically from forward names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from .errors import SymbolError
from .graph import Entry, Graph, Node, make_node, make_variable, output_name

__all__ = ["JointGraph", "gradient", "sum_gradients"]


@dataclass(frozen=True, eq=False)
class JointGraph:
    """A joint forward+backward graph.

    Attributes:
        graph: outputs are the ``num_forward`` forward outputs, then one gradient per ``wrt``.
        num_forward: number of forward outputs.
        wrt: names of the variables whose gradients follow the forward outputs.
        head_grads: per forward output, the name of its head-gradient variable (None for loss
            heads, whose gradient ignores the head gradient).
    """

    graph: Graph
    num_forward: int
    wrt: tuple[str, ...]
    head_grads: tuple[str | None, ...]

    @property
    def forward_outputs(self) -> tuple[Entry, ...]:
        return self.graph.outputs[:self.num_forward]

    @property
    def grad_outputs(self) -> tuple[Entry, ...]:
        return self.graph.outputs[self.num_forward:]

    def summary(self) -> str:
        """One line: node counts of the forward and backward parts."""
        nback = sum(1 for n in self.graph.nodes if n.opdef.is_backward
                    or n.name.endswith(("_backward", "_grad_sum")))
        return (f"joint graph: {len(self.graph.nodes)} ops ({nback} backward), "
                f"{len(self.graph.inputs)} variables, {len(self.wrt)} gradients")


def sum_gradients(name: str, grads: Sequence[Entry], cap: int = 8) -> Entry:
    """One entry for the sum of ``grads``: itself, one ``ElementWiseSum`` of up to ``cap``
    entries, or a left-to-right chain of ``elemwise_add`` (in-place candidates) beyond."""
    if len(grads) == 1:
        return grads[0]
    if len(grads) <= cap:
        return Entry(make_node("ElementWiseSum", name, grads), 0)
    total = grads[0]
    for i, g in enumerate(grads[1:]):
        total = Entry(make_node("elemwise_add", f"{name}_add{i}", [total, g]), 0)
    return total


def _needs_gradient(graph: Graph, wrt: set[Node]) -> set[Node]:
    need: set[Node] = set(wrt)
    for node in graph.nodes:
        if any(e.node in need for e in node.inputs):
            need.add(node)
    return need


def gradient(graph: Graph, wrt: Sequence[str] | None = None, *,
             grad_sum_cap: int = 8) -> JointGraph:
    """Build the joint forward+backward graph of ``graph``. See the module docstring.

    Args:
        graph: the forward graph.
        wrt: variable names to differentiate with respect to (default: every variable that is
            not an auxiliary state).
        grad_sum_cap: most contributions summed by one ElementWiseSum (see step 3).

    Raises:
        SymbolError: an unknown ``wrt`` name.
    """
    variables = {v.name: v for v in graph.inputs}
    if wrt is None:
        wrt = [v.name for v in graph.inputs if v not in graph.aux_variables]
    for name in wrt:
        if name not in variables:
            raise SymbolError(f"gradient: '{name}' is not a variable of the graph")
    # step 1: mark
    need = _needs_gradient(graph, {variables[n] for n in wrt})
    # step 2: head gradients
    contrib: dict[Entry, list[Entry]] = {}
    head_names: list[str | None] = []
    for e in graph.outputs:
        if not e.node.is_variable and e.node.opdef.is_loss:
            head_names.append(None)
            continue
        hname = f"{output_name(e)}_head_grad"
        head_names.append(hname)
        if e.node in need:
            contrib.setdefault(e, []).append(Entry(make_variable(hname), 0))
    # step 3: reverse sweep
    for node in reversed(graph.nodes):
        if node not in need:
            continue
        out_grads = [_total(node, i, contrib, grad_sum_cap) for i in range(node.num_outputs)]
        opdef = node.opdef
        if not opdef.is_loss and all(g is None for g in out_grads):
            continue
        if opdef.gradient is None:
            raise SymbolError(f"operator '{node.name}' ({node.op}) is not differentiable")
        in_grads = list(opdef.gradient(node, out_grads))
        if len(in_grads) != len(node.inputs):
            raise AssertionError(f"gradient rule of {node.op} returned {len(in_grads)} "
                                 f"gradients for {len(node.inputs)} inputs")
        for e, g in zip(node.inputs, in_grads, strict=True):
            if g is not None and e.node in need:
                contrib.setdefault(e, []).append(g)
    # step 4: outputs
    grads = []
    for name in wrt:
        v = variables[name]
        total = _total(v, 0, contrib, grad_sum_cap)
        if total is None:
            total = Entry(make_node("zeros_like", f"{name}_grad_zeros", [Entry(v, 0)]), 0)
        grads.append(total)
    joint = Graph.from_outputs([*graph.outputs, *grads])
    return JointGraph(joint, len(graph.outputs), tuple(wrt), tuple(head_names))


def _total(node: Node, index: int, contrib: dict[Entry, list[Entry]],
           cap: int) -> Entry | None:
    grads = contrib.get(Entry(node, index))
    if not grads:
        return None
    suffix = f"_out{index}" if node.num_outputs > 1 else ""
    total = sum_gradients(f"{node.name}{suffix}_grad_sum", grads, cap)
    contrib[Entry(node, index)] = [total]
    return total
