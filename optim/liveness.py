"""Liveness: execution order, reader counts and last uses of every entry.

Computes, for one execution order of a graph's operator nodes:
  1. the position of every node (variables are defined before position 0), and a number for
     every entry: variables' first, then each node's outputs in execution order;
  2. ``readers[e]``: how many input slots read entry ``e``'s values (shape-only slots, see
     ``OpDef.shape_only``, do not count), plus one if ``e`` is a graph output;
  3. ``last_use[e]``: the position of the last node that reads ``e``'s values (``len(order)``
     for graph outputs, the defining position for entries nobody reads). A graph output in
     ``released`` (a parameter gradient consumed by an update inside the backward pass) is
     not held to the end: it lives until its update, right after the later of its own
     definition and the last read of its parameter (the update overwrites the parameter).
The planners' hot loops read steps 2-3 as lists indexed by entry number (``num_readers``,
``last_step``); the same facts keyed by entry (``readers``, ``last_use``) are made on first use.
Legality: the order must be topological (checked: every value read has a smaller number than
the reader's outputs); an entry read only for its shape is dead after its definition
(counterexample it avoids: avg-pool backward keeping its input alive).
Complexity: O(nodes + edges).
Invariant: an entry is live exactly on [def_pos, last_use]; ``check_memory_plan`` relies on it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from itertools import chain
from typing import Mapping, Sequence

import numpy as np

from symbol.graph import Entry, Graph, Node
from symbol.registry import no_shape_only

__all__ = ["Liveness", "analyze_liveness", "value_slots", "value_inputs"]


@dataclass(frozen=True, eq=False)
class Liveness:
    """Liveness facts of one execution order.

    Entries are numbered: ``entries[k]`` is entry number k, and output j of node n is number
    ``first[n] + j`` (variables first, then each node's outputs in execution order).

    Attributes:
        order: operator nodes in execution order.
        position: node -> position in ``order`` (variables: -1).
        entries: every entry, by number (the graph's ``node_entries``).
        first: node -> the number of its output 0.
        read_ids: per position, the numbers of the entries its node reads for their values
            (one per value slot).
        num_readers: per number, value-reading input slots (+1 for a graph output).
        last_step: per number, position of the last value read (``len(order)`` for graph
            outputs, the defining position when nobody reads it).
        shape_read: entries some node reads for their shape only.
        def_step: per number, the position of the node defining it (-1 for variables).
    """

    order: tuple[Node, ...]
    position: Mapping[Node, int]
    entries: tuple[Entry, ...]
    first: Mapping[Node, int]
    read_ids: tuple[tuple[int, ...], ...]
    num_readers: tuple[int, ...]
    last_step: tuple[int, ...]
    shape_read: frozenset[Entry]
    def_step: tuple[int, ...]

    @cached_property
    def readers(self) -> Mapping[Entry, int]:
        """Entry -> number of value-reading input slots (+1 for a graph output)."""
        return dict(zip(self.entries, self.num_readers, strict=True))

    @cached_property
    def last_use(self) -> Mapping[Entry, int]:
        """Entry -> position of its last value read (``len(order)`` for graph outputs)."""
        return dict(zip(self.entries, self.last_step, strict=True))

    @cached_property
    def reads(self) -> Mapping[Node, tuple[Entry, ...]]:
        """Node -> the entries it reads for their values (one per value slot)."""
        return {node: tuple([self.entries[k] for k in ids])
                for node, ids in zip(self.order, self.read_ids, strict=True)}

    def entry_id(self, e: Entry) -> int:
        """The number of entry ``e``."""
        return self.first[e.node] + e.index

    def def_pos(self, e: Entry) -> int:
        """Position where ``e`` is produced (-1 for variables)."""
        return self.position[e.node]

    def summary(self) -> str:
        """One line: nodes and entries."""
        return f"liveness: {len(self.order)} ops, {len(self.entries)} entries"


def value_slots(node: Node) -> list[int]:
    """Input slots of ``node`` that read values (all but the op's shape-only slots)."""
    if node.is_variable:
        return []
    skip = node.opdef.shape_only(node.params)
    n = len(node.inputs)
    return list(range(n)) if not skip else [i for i in range(n) if i not in skip]


def reads_every_input(node: Node, plain: dict[str, bool]) -> bool:
    """Whether ``node`` reads every input for its value (its op has no shape-only slot; a
    variable reads none); ``plain`` caches the answer per op for one pass over a graph."""
    every = plain.get(node.op)
    if every is None:
        every = plain[node.op] = (not node.is_variable
                                  and node.opdef.shape_only is no_shape_only)
    return every


def value_inputs(node: Node, plain: dict[str, bool]) -> Sequence[Entry]:
    """The entries ``node`` reads for their values (``value_slots``), the op's test cached in
    ``plain`` (see :func:`reads_every_input`)."""
    if reads_every_input(node, plain):
        return node.inputs
    return [node.inputs[k] for k in value_slots(node)]


def _value_reads(node: Node) -> tuple[tuple[Entry, ...], tuple[Entry, ...]]:
    """(entries read for their values, entries read for their shape only) by ``node``."""
    slots = value_slots(node)
    return (tuple(node.inputs[k] for k in slots),
            tuple(e for k, e in enumerate(node.inputs) if k not in slots))


def analyze_liveness(graph: Graph, order: Sequence[Node] | None = None, *,
                     released: Mapping[Entry, Entry] | None = None) -> Liveness:
    """Liveness of ``graph`` executed in ``order`` (default: ``graph.nodes``).

    ``released``: graph outputs -> the variable their update writes (see the module
    docstring); such an output's last use is ``max(its definition, the variable's last read)``.

    Raises:
        ValueError: ``order`` is not a topological order of the graph's operator nodes.
    """
    order = tuple(graph.nodes if order is None else order)
    end = len(order)
    # step 1: positions and entry numbers (node n's outputs follow those of the nodes before)
    seq = (*graph.inputs, *order)
    position: dict[Node, int] = dict.fromkeys(graph.inputs, -1)
    position.update(zip(order, range(end)))
    outputs = list(map(graph.node_entries.__getitem__, seq))
    widths = np.fromiter(map(len, outputs), dtype=np.int64, count=len(seq))
    starts = np.cumsum(widths) - widths
    first: dict[Node, int] = dict(zip(seq, starts.tolist()))
    entries = tuple(chain.from_iterable(outputs))
    defined_at = np.repeat(np.arange(-len(graph.inputs), end, dtype=np.int64).clip(-1), widths)
    # steps 2-3: readers and last uses (the reads in one flat array: counted by numpy)
    shape_read: set[Entry] = set()
    read_ids: list[tuple[int, ...]] = []
    plain: dict[str, bool] = {}
    for node in order:
        if reads_every_input(node, plain):  # most ops
            values = node.inputs
        else:
            values, shape_only = _value_reads(node)
            shape_read.update(shape_only)
        try:
            read_ids.append(tuple([first[e.node] + e.index for e in values]))
        except KeyError:  # a node outside the graph or the order
            read_ids.append((len(entries),))
    counts = np.fromiter(map(len, read_ids), dtype=np.int64, count=end)
    reads = np.fromiter(chain.from_iterable(read_ids), dtype=np.int64, count=int(counts.sum()))
    at = np.repeat(np.arange(end, dtype=np.int64), counts)
    late = np.flatnonzero(reads >= np.repeat(starts[len(graph.inputs):], counts))
    if late.size:  # a value read at or after its reader's own outputs: not topological
        node = order[int(at[late[0]])]
        _not_topological(node, _value_reads(node)[0], first)
    num_readers = np.bincount(reads, minlength=len(entries)).tolist()
    defined = tuple(defined_at.tolist())
    last = defined_at.copy()
    np.maximum.at(last, reads, at)  # readers come after the definition (checked above)
    last_step = last.tolist()
    for e in graph.outputs:
        k = first[e.node] + e.index
        num_readers[k] += 1
        target = released.get(e) if released else None
        if target is None:
            last_step[k] = end
        else:  # the update, after the output is final and its variable's last read
            t = first[target.node] + target.index
            last_step[k] = max(last_step[k], last_step[t], position[e.node])
    return Liveness(order, position, entries, first, tuple(read_ids), tuple(num_readers),
                    tuple(last_step), frozenset(shape_read), defined)


def _not_topological(reader: Node, values: tuple[Entry, ...], first: Mapping[Node, int]) -> None:
    """Raise ValueError naming the first entry ``reader`` reads before it is defined."""
    late = next(e for e in values if first.get(e.node, first[reader]) >= first[reader])
    raise ValueError(f"execution order is not topological: '{reader.name}' reads "
                     f"'{late.node.name}' before it runs")
