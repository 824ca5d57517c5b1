"""In-place pass: which outputs may overwrite the storage of one of their node's inputs.

Algorithm (the in-place half of MXNet's PlanMemory, paper Sec. 3):
  1. ``remaining[e]`` starts at the liveness reader count of every entry;
  2. for each node in execution order, for each (input i, output o) pair its op declares
     (``OpDef.inplace``), take the pair when it is legal (below); a taken input is consumed;
  3. then every value-reading input slot of the node decrements ``remaining``.
Legality conditions, each with the counterexample it excludes:
  * the node is the input's last reader and reads it once (``remaining == 1``) — else a later
    reader would see the overwritten value (paper Fig. 2: C cannot overwrite B, F still reads B);
  * the input is not a graph output (outputs count one extra reader) — the user reads it later;
  * neither the input nor the output is externally bound (arguments, auxiliary states, head
    gradients, gradients written into ``grad_dict``) — never overwrite a user's array;
  * equal byte size and dtype — a smaller buffer cannot hold the output;
  * each input is taken by at most one output, each output takes at most one input.
Complexity: O(nodes + edges).
Invariant (checked by ``check_memory_plan``): an output shares its input's storage only when
the input dies at that node.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import AbstractSet, Mapping

from symbol.graph import Entry

from .liveness import Liveness

__all__ = ["InplacePlan", "plan_inplace"]


@dataclass(frozen=True, eq=False)
class InplacePlan:
    """``pairs[output] = input`` for every output computed in place of an input."""

    pairs: Mapping[Entry, Entry]

    def summary(self) -> str:
        """One line: how many outputs run in place."""
        return f"in-place: {len(self.pairs)} outputs overwrite an input"


def plan_inplace(liveness: Liveness, nbytes: Mapping[Entry, int], dtypes: Mapping[Entry, object],
                 external: AbstractSet[Entry], *, enabled: bool = True) -> InplacePlan:
    """Choose in-place pairs for ``liveness.order`` (see the module docstring).

    Args:
        liveness: the execution order and reader counts.
        nbytes: bytes of every entry.
        dtypes: dtype of every entry (compared for equality).
        external: entries bound to caller arrays.
        enabled: kill switch (False: no pairs).
    """
    pairs: dict[Entry, Entry] = {}
    if not enabled:
        return InplacePlan(pairs)
    remaining = dict(liveness.readers)  # step 1
    for node in liveness.order:
        reads = liveness.reads[node]
        taken: set[Entry] = set()
        for i, o in node.opdef.inplace(node.params):  # step 2
            src, dst = node.inputs[i], Entry(node, o)
            if (src in reads and remaining[src] == 1 and src not in taken and dst not in pairs
                    and src not in external and dst not in external
                    and nbytes[src] == nbytes[dst] and dtypes[src] == dtypes[dst]):
                pairs[dst] = src
                taken.add(src)
        for e in reads:  # step 3
            remaining[e] -= 1
    return InplacePlan(pairs)
