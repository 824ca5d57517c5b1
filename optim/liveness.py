"""Liveness: execution order, reader counts and last uses of every entry.

Computes, for one execution order of a graph's operator nodes:
  1. the position of every node (variables are defined before position 0);
  2. ``readers[e]``: how many input slots read entry ``e``'s values (shape-only slots, see
     ``OpDef.shape_only``, do not count), plus one if ``e`` is a graph output;
  3. ``last_use[e]``: the position of the last node that reads ``e``'s values (``len(order)``
     for graph outputs, the defining position for entries nobody reads).
Legality: the order must be topological (checked); an entry read only for its shape is dead
after its definition (counterexample it avoids: avg-pool backward keeping its input alive).
Complexity: O(nodes + edges).
Invariant: an entry is live exactly on [def_pos, last_use]; ``check_memory_plan`` relies on it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from symbol.graph import Entry, Graph, Node

__all__ = ["Liveness", "analyze_liveness", "value_slots"]


@dataclass(frozen=True, eq=False)
class Liveness:
    """Liveness facts of one execution order.

    Attributes:
        order: operator nodes in execution order.
        position: node -> position in ``order`` (variables: -1).
        readers: entry -> number of value-reading input slots (+1 for a graph output).
        last_use: entry -> position of its last value read (``len(order)`` for outputs).
        shape_read: entries some node reads for their shape only.
        reads: node -> the entries it reads for their values (one per value slot).
    """

    order: tuple[Node, ...]
    position: Mapping[Node, int]
    readers: Mapping[Entry, int]
    last_use: Mapping[Entry, int]
    shape_read: frozenset[Entry]
    reads: Mapping[Node, tuple[Entry, ...]]

    def def_pos(self, e: Entry) -> int:
        """Position where ``e`` is produced (-1 for variables)."""
        return self.position[e.node]

    def summary(self) -> str:
        """One line: nodes and entries."""
        return f"liveness: {len(self.order)} ops, {len(self.readers)} entries"


def value_slots(node: Node) -> list[int]:
    """Input slots of ``node`` that read values (all but the op's shape-only slots)."""
    if node.is_variable:
        return []
    skip = node.opdef.shape_only(node.params)
    n = len(node.inputs)
    return list(range(n)) if not skip else [i for i in range(n) if i not in skip]


def analyze_liveness(graph: Graph, order: Sequence[Node] | None = None) -> Liveness:
    """Liveness of ``graph`` executed in ``order`` (default: ``graph.nodes``).

    Raises:
        ValueError: ``order`` is not a topological order of the graph's operator nodes.
    """
    order = tuple(graph.nodes if order is None else order)
    # step 1: positions
    position: dict[Node, int] = {v: -1 for v in graph.inputs}
    for i, node in enumerate(order):
        position[node] = i
    readers: dict[Entry, int] = {}
    last_use: dict[Entry, int] = {}
    for node in (*graph.inputs, *order):
        for k in range(node.num_outputs):
            e = Entry(node, k)
            readers[e] = 0
            last_use[e] = position[node]
    # steps 2-3: readers and last uses
    shape_read: set[Entry] = set()
    reads: dict[Node, tuple[Entry, ...]] = {}
    for i, node in enumerate(order):
        slots = value_slots(node)
        if len(slots) < len(node.inputs):
            shape_read.update(e for k, e in enumerate(node.inputs) if k not in slots)
        reads[node] = tuple(node.inputs[k] for k in slots)
        for e in reads[node]:
            if position.get(e.node, len(order)) >= i:
                raise ValueError(f"execution order is not topological: '{node.name}' reads "
                                 f"'{e.node.name}' before it runs")
            readers[e] += 1
            last_use[e] = i
    for e in graph.outputs:
        readers[e] += 1
        last_use[e] = len(order)
    return Liveness(order, position, readers, last_use, frozenset(shape_read), reads)
