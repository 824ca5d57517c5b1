"""In-place pass: which outputs may overwrite the storage of one of their node's inputs.

Algorithm (the in-place half of MXNet's PlanMemory, paper Sec. 3):
  1. visit the nodes in execution order, skipping those whose op declares no pair;
  2. for each (input i, output o) pair the op declares (``OpDef.inplace``), take the pair when
     it is legal (below); a taken input is consumed.
MXNet counts the readers left of every input as it goes; "one reader left, and it is this node"
is the same as "this node is the input's last reader (``liveness.last_use``) and reads it
once", which needs no counting.
Legality conditions, each with the counterexample it excludes:
  * the node is the input's last reader and reads it once — else a later reader would see the
    overwritten value (paper Fig. 2: C cannot overwrite B, F still reads B);
  * the input is not a graph output (its last use is after the last node) — the user reads it;
  * neither the input nor the output is externally bound (arguments, auxiliary states, head
    gradients, gradients written into ``grad_dict``) — never overwrite a user's array;
  * equal byte size and dtype — a smaller buffer cannot hold the output;
  * the output has a reader — an output nobody reads gets no storage (its kernel skips it), so
    it would take the input's buffer away and hold nothing (BatchNorm's data gradient on a
    network's input);
  * each input is taken by at most one output, each output takes at most one input.
Complexity: O(nodes + declared pairs).
Invariant (checked by ``check_memory_plan``): an output shares its input's storage only when
the input dies at that node.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import AbstractSet, Any, Mapping

from symbol.graph import Entry
from symbol.registry import no_inplace

from .liveness import Liveness

__all__ = ["InplacePlan", "plan_inplace"]


@dataclass(frozen=True, eq=False)
class InplacePlan:
    """``pairs[output] = input`` for every output computed in place of an input; ``pair_ids``
    holds the same pairs by entry number (``Liveness.entry_id``)."""

    pairs: Mapping[Entry, Entry]
    pair_ids: Mapping[int, int]

    def summary(self) -> str:
        """One line: how many outputs run in place."""
        return f"in-place: {len(self.pairs)} outputs overwrite an input"


def plan_inplace(liveness: Liveness, nbytes: Mapping[Entry, int], dtypes: Mapping[Entry, object],
                 external: AbstractSet[Entry], *, enabled: bool = True) -> InplacePlan:
    """Choose in-place pairs for ``liveness.order`` (see the module docstring).

    Args:
        liveness: the execution order, reads and last uses.
        nbytes: bytes of every entry.
        dtypes: dtype of every entry (compared for equality).
        external: entries bound to caller arrays.
        enabled: kill switch (False: no pairs).
    """
    pair_ids: dict[int, int] = {}
    if enabled:
        _take_pairs(liveness, nbytes, dtypes, external, pair_ids)
    entries = liveness.entries
    return InplacePlan({entries[o]: entries[i] for o, i in pair_ids.items()}, pair_ids)


def _take_pairs(liveness: Liveness, nbytes: Mapping[Entry, int], dtypes: Mapping[Entry, object],
                external: AbstractSet[Entry], pair_ids: dict[int, int]) -> None:
    """Steps 1-2, by entry number: add every legal (output -> input) pair to ``pair_ids``."""
    entries, first, last_step = liveness.entries, liveness.first, liveness.last_step
    readers = liveness.num_readers
    bound = bytearray(len(entries))  # externally bound, by entry number
    for e in external:
        if e.node in first:
            bound[first[e.node] + e.index] = 1
    rules: dict[str, Any] = {}  # op -> its pair rule (None: it declares no pair)
    read_ids = liveness.read_ids
    for step, node in enumerate(liveness.order):
        rule = rules.get(node.op, _UNSEEN)
        if rule is _UNSEEN:
            rule = node.opdef.inplace
            rule = rules[node.op] = None if rule is no_inplace else rule
        if rule is None:  # step 1
            continue
        reads, outputs = read_ids[step], first[node]
        taken: list[int] = []
        for i, o in rule(node.params):  # step 2
            e = node.inputs[i]
            src, dst = first[e.node] + e.index, outputs + o
            if (last_step[src] == step and not bound[src] and not bound[dst] and readers[dst]
                    and reads.count(src) == 1 and src not in taken and dst not in pair_ids
                    and nbytes[entries[src]] == nbytes[entries[dst]]
                    and dtypes[entries[src]] == dtypes[entries[dst]]):
                pair_ids[dst] = src
                taken.append(src)


_UNSEEN = object()
