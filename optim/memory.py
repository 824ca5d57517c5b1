"""Static memory planning of a joint graph: in-place, liveness-based sharing and co-share.

``plan_memory`` assigns every planned entry (every operator output that is not bound to a
caller array) a storage, and every storage a byte offset in one arena (``optim.arena``): the
executor allocates the arena once and makes every entry a view of it. The storages come from
steps 1-3 and either the arena's own layout by liveness (``sharing``, the default) or MXNet's
storage pool (``pool``, step 4, as MXNet's PlanMemory does; paper Sec. 3):
  1. liveness of the execution order (``optim.liveness``);
  2. in-place pairs (``optim.inplace``): an output takes its input's storage;
  3. co-share colours (``num_temp`` > 1): the longest not-yet-coloured path gets the next
     colour, up to ``num_temp`` colours, the rest the last one; a freed storage is reused only
     by a node of the colour that freed it, so parallel paths never share (no false
     dependencies);
  4. one sweep in execution order: every other output requests storage from the free pool
     (``match_range`` R: among free storages of size in [s/R, s*R], the smallest >= s, else the
     largest < s grown to s, else a new one); after the node, inputs whose last reader it was
     and outputs nobody reads (both: entries whose ``last_use`` is this step) return their
     storage to the pool of the node's colour, unless an in-place output took it over.
Strategies: ``none`` (every entry its own storage), ``inplace`` (step 2 only), ``pool``
(steps 2-4: MXNet's plan, storages side by side in the arena), ``sharing`` (steps 2-3, then a
storage per in-place group, placed by ``optim.arena.layout_arena``: storages whose lives do
not overlap share bytes, within ALIGN bytes of padding per storage of the liveness bound
``live_peak_bytes``). Kill switch: ``NO_ARENA=1`` plans ``sharing`` as ``pool``.
Legality: storage is reused only after every reader of its previous entry ran (liveness);
shape-only reads do not extend a life; externally bound entries are never planned or reused.
Complexity: O((nodes + edges) + entries * log(entries)); a request or a release costs
O(log(free pool)) (plus O(distinct sizes) when a size appears or disappears); the arena layout
O(storages * (log storages + free gaps)); co-share adds O(num_temp * (nodes + edges)).
Invariant, enforced by ``check_memory_plan``: no two entries that are live at the same time
share a storage unless they are a declared in-place pair, every storage is at least as large as
each entry placed in it, and storages live at the same time occupy disjoint bytes of the arena
(``optim.arena.check_arena``).
"""
from __future__ import annotations

import bisect
import heapq
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import AbstractSet, Mapping, Sequence

import numpy as np

from symbol.gradient import MIRROR_OF
from symbol.graph import Entry, Graph, Node, output_name, topo_sort
from symbol.units import format_bytes

from .arena import (Arena, ArenaError, align, check_arena, layout_arena, live_peak,
                    side_by_side)
from .inplace import plan_inplace
from .liveness import Liveness, analyze_liveness

__all__ = ["STRATEGIES", "MemoryPlan", "PlanError", "plan_memory", "check_memory_plan",
           "entry_bytes", "DTYPE_BYTES", "colour_nodes", "auto_match_range"]

STRATEGIES = ("none", "inplace", "pool", "sharing")
DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
               "uint8": 1, "int8": 1, "bool": 1}
#: Classes of the bytes in a report. Planned: the activations and intermediate gradients live
#: at the plan's peak step, and the arena's other bytes (``unused``: fragmentation, or storages
#: a strategy without sharing keeps for values already dead).
CLASSES = ("activations", "gradients", "unused", "parameters", "parameter_gradients",
           "aux_states", "inputs")


class PlanError(AssertionError):
    """``check_memory_plan`` found a violated invariant."""


def entry_bytes(shapes: Mapping[Entry, Sequence[int] | None],
                dtypes: Mapping[Entry, str | None]) -> dict[Entry, int]:
    """Bytes of every entry with a known shape (dtype default float32)."""
    return {e: math.prod(shape) * DTYPE_BYTES[dtypes.get(e) or "float32"]
            for e, shape in shapes.items() if shape is not None}


@dataclass(frozen=True, eq=False)
class MemoryPlan:
    """A static memory plan.

    Attributes:
        strategy: ``none``, ``inplace``, ``pool`` or ``sharing``.
        liveness: the execution order the plan is valid for.
        storage: planned entry -> storage id.
        storage_bytes: size of each storage id.
        arena: the byte offset of each storage in the one buffer that holds them all, the
            buffer's size and the liveness bound (``optim.arena``).
        lives: (first step, last step) of each storage's use.
        inplace: output -> the input whose storage it took.
        nbytes: bytes of every entry.
        external: externally bound entry -> its class (``parameters``, ``inputs`` ...).
        unallocated: entries nobody reads whose kernel may skip them (no storage).
        colour: co-share colour of every node (all 0 without co-share).
        graph, num_forward: the graph planned and its number of forward outputs.
        match_range, num_temp: the settings used.
        released: gradients consumed by an update inside the backward pass -> the parameter
            it writes (planned entries, live until their update; see ``plan_memory``).
        entry_class: see the property (made on first use: a planner that only compares
            ``planned_bytes`` never pays for it).
    """

    strategy: str
    liveness: Liveness
    storage: Mapping[Entry, int]
    storage_bytes: tuple[int, ...]
    inplace: Mapping[Entry, Entry]
    nbytes: Mapping[Entry, int]
    external: Mapping[Entry, str]
    unallocated: frozenset[Entry]
    colour: Mapping[Node, int] = field(repr=False)
    graph: Graph = field(repr=False)
    num_forward: int
    arena: Arena
    lives: tuple[tuple[int, int], ...] = field(repr=False)
    match_range: int = 16
    num_temp: int = 1
    released: Mapping[Entry, Entry] = field(default_factory=dict, repr=False)

    @cached_property
    def entry_class(self) -> Mapping[Entry, str]:
        """Planned entry -> ``activations`` (forward nodes and their recomputed copies) or
        ``gradients``."""
        forward = _classify(self.graph, self.num_forward)
        return {e: ("activations" if e.node in forward else "gradients") for e in self.storage}

    @property
    def planned_bytes(self) -> int:
        """Bytes of the arena: activations + intermediate gradients (paper Fig. 5a), as the
        executor allocates them."""
        return self.arena.size

    @property
    def live_peak_bytes(self) -> int:
        """The least any layout of these storages can take: the most (aligned) bytes live at
        once; storages that are never reused (``none``, ``inplace``) count as live
        throughout."""
        return self.arena.live_peak

    @property
    def offsets(self) -> tuple[int, ...]:
        """Byte offset of each storage in the arena."""
        return self.arena.offsets

    @property
    def num_storage(self) -> int:
        return len(self.storage_bytes)

    @property
    def num_inplace(self) -> int:
        return len(self.inplace)

    def storage_class(self) -> list[str]:
        """Class of each storage: that of the largest entry placed in it."""
        best: dict[int, tuple[int, str]] = {}
        for e, sid in self.storage.items():
            cand = (self.nbytes[e], self.entry_class[e])
            if sid not in best or cand[0] > best[sid][0]:
                best[sid] = cand
        return [best[s][1] if s in best else "activations" for s in range(self.num_storage)]

    def bytes_by_class(self) -> dict[str, int]:
        """Bytes per class: the planned arena split into the activations and gradients live
        at the peak step (a value with the in-place outputs that took over its buffer counts
        once, aligned as the arena places it) and the rest (``unused``); external arrays by
        their class."""
        out = {c: 0 for c in CLASSES}
        groups = self._groups()
        n = len(self.liveness.order) + 2
        delta = [0] * (n + 1)
        for a, b, size, _ in groups:
            delta[a] += size
            delta[b + 1] -= size
        live, best, step = 0, -1, 0
        for i, d in enumerate(delta):
            live += d
            if live > best:
                best, step = live, i
        for a, b, size, cls in groups:
            if a <= step <= b:
                out[cls] += size
        out["unused"] = self.planned_bytes - out["activations"] - out["gradients"]
        for e, cls in self.external.items():
            out[cls] += self.nbytes.get(e, 0)
        return out

    def _groups(self) -> list[tuple[int, int, int, str]]:
        """(first step, last step, aligned bytes, class) of each value with the in-place
        outputs that took over its buffer."""
        live = self.liveness
        root: dict[Entry, Entry] = {}
        groups: dict[Entry, list[int]] = {}
        for e in sorted(self.storage, key=live.entry_id):  # inputs before their outputs
            r = root[e] = root.get(self.inplace[e], self.inplace[e]) if e in self.inplace else e
            pos, last = live.position[e.node], live.last_step[live.entry_id(e)]
            g = groups.setdefault(r, [pos, last, 0])
            g[1] = max(g[1], last, pos)
            g[2] = max(g[2], self.nbytes[e])
        return [(a, b, align(size), self.entry_class[r]) for r, (a, b, size) in groups.items()]

    @property
    def total_bytes(self) -> int:
        """Planned storages plus every externally bound array of the graph."""
        return self.planned_bytes + sum(self.nbytes.get(e, 0) for e in self.external)

    @cached_property
    def workspace_bytes(self) -> int:
        """The largest operator temporary (``OpDef.workspace`` times the node's output bytes;
        an estimate: cuDNN and cuBLAS add their own)."""
        best = 0
        for node in self.liveness.order:
            factor = node.opdef.workspace
            if factor:
                out = sum(self.nbytes.get(Entry(node, i), 0) for i in range(node.num_outputs))
                best = max(best, int(factor * out))
        return best

    @property
    def step_bytes(self) -> int:
        """Everything a training step holds: the arena, the bound arrays (parameters, their
        gradients, inputs, auxiliary states) and the operator workspace."""
        return self.total_bytes + self.workspace_bytes

    def entries_of(self, sid: int) -> list[Entry]:
        """Entries placed in storage ``sid``, in execution order."""
        return sorted((e for e, s in self.storage.items() if s == sid),
                      key=self.liveness.def_pos)

    def timeline(self) -> list[dict[str, int]]:
        """Live planned bytes per class before each step and after the last (for plots)."""
        n = len(self.liveness.order)
        delta = {c: [0] * (n + 2) for c in ("activations", "gradients")}
        for e, cls in self.entry_class.items():
            if e in self.inplace:
                continue  # shares its input's bytes
            start = max(self.liveness.def_pos(e), 0)
            end = self._life_end(e)
            delta[cls][start] += self.nbytes[e]
            delta[cls][end + 1] -= self.nbytes[e]
        rows, live = [], {c: 0 for c in delta}
        for i in range(n + 1):
            for c in delta:
                live[c] += delta[c][i]
            rows.append(dict(live))
        return rows

    def _life_end(self, e: Entry) -> int:
        end = self.liveness.last_use[e]
        nxt = next((o for o, i in self.inplace.items() if i == e), None)
        return max(end, self._life_end(nxt)) if nxt is not None else end

    def settings(self) -> str:
        """How the storages were chosen: ``arena, co-share 1`` or ``match range 16, ...``."""
        how = f"match range {self.match_range}" if self.strategy == "pool" else (
            "arena" if self.strategy == "sharing" else "no sharing")
        return f"{how}, co-share {self.num_temp}"

    def summary(self) -> str:
        """One line, e.g. ``sharing: planned 1.27 GiB in 41 storages (live peak 1.25 GiB),
        18 in-place, total ...``."""
        return (f"{self.strategy}: planned {format_bytes(self.planned_bytes)} in "
                f"{self.num_storage} storages (live peak "
                f"{format_bytes(self.live_peak_bytes)}), {self.num_inplace} in-place, "
                f"total {format_bytes(self.total_bytes)} with bound arrays")


class _Pool:
    """Free storages of one colour, ordered by (size, id) (NNVM's ``free_`` multimap).

    The distinct sizes are kept sorted; per size, two heaps give the smallest and the largest
    free id in O(log n), where one sorted list of (size, id) would shift O(n) items per change.
    An id taken through one heap is left in the other and skipped there later: ``free`` says
    which ids are in the pool, and at which size.
    """

    def __init__(self) -> None:
        self.sizes: list[int] = []  # distinct sizes with a free storage, sorted
        self.count: dict[int, int] = {}  # size -> free storages of that size
        self.low: dict[int, list[int]] = {}  # size -> min-heap of ids
        self.high: dict[int, list[int]] = {}  # size -> min-heap of negated ids
        self.free: dict[int, int] = {}  # id -> its size, for the ids in the pool

    def add(self, size: int, sid: int) -> None:
        if not self.count.get(size):
            bisect.insort(self.sizes, size)
            self.count[size] = 0
            self.low.setdefault(size, [])
            self.high.setdefault(size, [])
        self.count[size] += 1
        heapq.heappush(self.low[size], sid)
        heapq.heappush(self.high[size], -sid)
        self.free[sid] = size

    def take(self, size: int, match_range: int) -> tuple[int, int] | None:
        """(sid, old size) of the best free storage for ``size``, removed; None if none fits:
        the smallest >= size (lowest id first) within ``size * match_range``, else the largest
        < size (highest id first) down to ``size // match_range``, to be grown."""
        sizes = self.sizes
        i = bisect.bisect_left(sizes, size)
        if i < len(sizes) and sizes[i] <= size * match_range:
            found, sid = sizes[i], self._pop(self.low[sizes[i]], sizes[i], 1)
        elif i > 0 and sizes[i - 1] >= size // match_range:
            found, sid = sizes[i - 1], self._pop(self.high[sizes[i - 1]], sizes[i - 1], -1)
        else:
            return None
        self.count[found] -= 1
        if not self.count[found]:
            sizes.pop(bisect.bisect_left(sizes, found))
        return sid, found

    def _pop(self, heap: list[int], size: int, sign: int) -> int:
        while True:
            sid = sign * heapq.heappop(heap)
            if self.free.get(sid) == size:
                del self.free[sid]
                return sid


def colour_nodes(order: Sequence[Node], num_colours: int) -> dict[Node, int]:
    """Co-share colours: repeatedly give the longest uncoloured path the next colour.

    Path length counts uncoloured nodes (reward 1 each), computed by DP in reverse topological
    order; after ``num_colours - 1`` paths every remaining node gets the last colour.
    """
    last = num_colours - 1
    colour = dict.fromkeys(order, last)
    if num_colours <= 1:
        return colour
    succs: dict[Node, list[Node]] = {n: [] for n in order}
    for n in order:
        for e in n.inputs:
            if e.node in succs:
                succs[e.node].append(n)
    for c in range(last):
        best: dict[Node, int] = {}
        nxt: dict[Node, Node | None] = {}
        for n in reversed(order):
            reward = 1 if colour[n] == last else 0
            follow = max(succs[n], key=lambda s: best[s], default=None)
            best[n] = reward + (best[follow] if follow is not None else 0)
            nxt[n] = follow
        start = max(order, key=lambda n: best[n], default=None)
        if start is None or best[start] == 0:
            break
        node: Node | None = start
        while node is not None:
            if colour[node] == last:
                colour[node] = c
            node = nxt[node]
    return colour


def _classify(graph: Graph, num_forward: int) -> set[Node]:
    """Nodes whose outputs are activations: forward nodes and their recomputed copies."""
    forward = set(topo_sort(graph.outputs[:num_forward]))
    forward.update(n for n in graph.nodes if MIRROR_OF in n.attrs)
    return forward


def plan_memory(graph: Graph, nbytes: Mapping[Entry, int], dtypes: Mapping[Entry, object], *,
                num_forward: int | None = None, external: Mapping[Entry, str] | None = None,
                strategy: str = "sharing", match_range: int = 16, num_temp: int = 1,
                inplace: bool = True, order: Sequence[Node] | None = None,
                released: Mapping[Entry, Entry] | None = None) -> MemoryPlan:
    """Plan the memory of ``graph`` (see the module docstring).

    Args:
        graph: a joint forward+backward graph (or a forward graph).
        nbytes: bytes of every entry; dtypes: dtype of every entry.
        num_forward: how many leading graph outputs are forward outputs (entries of their
            ancestors are activations, the rest gradients); default all.
        external: entries bound to caller arrays -> their class; every variable is external.
        strategy: ``none``, ``inplace``, ``pool`` or ``sharing``.
        match_range: R of MXNet's storage pool (``pool``; 0 disables its sharing).
        num_temp: co-share colours (1 = no co-share).
        inplace: kill switch for in-place (also off under ``none``).
        order: execution order (default ``graph.nodes``).
        released: graph outputs consumed by an update inside the backward pass -> the
            variable the update writes; planned like any entry, live until the update
            (``optim.liveness``), not to the end.

    Raises:
        ValueError: an unknown strategy or a bad setting.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown memory strategy {strategy!r}; expected one of "
                         f"{', '.join(STRATEGIES)}")
    if match_range < 0 or num_temp < 1:
        raise ValueError("match_range must be >= 0 and num_temp >= 1")
    ext = dict(external or {})
    for v in graph.inputs:
        ext.setdefault(Entry(v, 0), "inputs")
    # step 1: liveness
    live = analyze_liveness(graph, order, released=released)
    unallocated = frozenset(e for e, r in zip(live.entries, live.num_readers, strict=True)
                            if r == 0 and not e.node.is_variable and e.node.opdef.is_backward
                            and e not in live.shape_read)
    # step 2: in-place
    pairs = plan_inplace(live, nbytes, dtypes, frozenset(ext),
                         enabled=inplace and strategy != "none")
    # step 3: colours
    sharing = strategy in ("pool", "sharing")
    colour = colour_nodes(live.order, num_temp if sharing else 1)
    share = match_range if strategy == "pool" else 0
    # step 4: the pool's sweep (without sharing: one storage per in-place group)
    storage, sizes, ids = _sweep(live, nbytes, unallocated.union(ext), pairs.pair_ids, colour,
                                 share)
    lives = _lives_by_number(live, ids, len(sizes))
    if strategy == "sharing":  # the arena places the in-place groups by liveness
        starts, ends = zip(*lives) if lives else ((), ())
        colours = _storage_colours(live, storage, colour, len(sizes))
        arena = layout_arena(sizes, starts, ends, colours)
    else:
        arena = side_by_side(sizes, _storage_colours(live, storage, colour, len(sizes)))
        if sharing:  # the pool: storages side by side; the bound is that of its groups
            groups = _sweep(live, nbytes, unallocated.union(ext), pairs.pair_ids, colour, 0)
            glives = _lives_by_number(live, groups[2], len(groups[1]))
            arena = Arena(arena.offsets, arena.size, live_peak(
                [align(x) for x in groups[1]], [a for a, _ in glives], [b for _, b in glives]))
    return MemoryPlan(strategy, live, storage, tuple(sizes), pairs.pairs, nbytes, ext,
                      unallocated, colour, graph,
                      len(graph.outputs) if num_forward is None else num_forward, arena,
                      lives, share, num_temp, dict(released or {}))


def _lives(live: Liveness, storage: Mapping[Entry, int],
           count: int) -> tuple[tuple[int, int], ...]:
    """(first, last) step of each storage's entries: definitions to last value reads."""
    first = [len(live.order)] * count
    last = [-1] * count
    for e, sid in storage.items():
        k = live.entry_id(e)
        pos = live.position[e.node]
        first[sid] = min(first[sid], pos)
        last[sid] = max(last[sid], live.last_step[k], pos)
    return tuple(zip(first, last))


def _lives_by_number(live: Liveness, storage: Sequence[int],
                     count: int) -> tuple[tuple[int, int], ...]:
    """:func:`_lives` from the storage of every entry number (-1: none), with numpy."""
    sid = np.asarray(storage, dtype=np.int64)
    planned = sid >= 0
    sid = sid[planned]
    defined = np.asarray(live.def_step, dtype=np.int64)[planned]
    used = np.maximum(np.asarray(live.last_step, dtype=np.int64)[planned], defined)
    first = np.full(count, len(live.order), dtype=np.int64)
    last = np.full(count, -1, dtype=np.int64)
    np.minimum.at(first, sid, defined)
    np.maximum.at(last, sid, used)
    return tuple(zip(first.tolist(), last.tolist()))


def _storage_colours(live: Liveness, storage: Mapping[Entry, int], colour: Mapping[Node, int],
                     count: int) -> list[int]:
    """The co-share colour of each storage (that of the nodes writing it)."""
    if not any(colour.values()):  # no co-share: every node has colour 0
        return [0] * count
    out = [0] * count
    for e, sid in storage.items():
        out[sid] = colour[e.node]
    return out


def _sweep(live: Liveness, nbytes: Mapping[Entry, int], skip: AbstractSet[Entry],
           pair_ids: Mapping[int, int], colour: Mapping[Node, int],
           match_range: int) -> tuple[dict[Entry, int], list[int], list[int]]:
    """Step 4, by entry number: (storage of every planned entry, size of every storage, the
    storage of every entry number or -1)."""
    entries, first = live.entries, live.first
    skipped = bytearray(len(entries))  # no planned storage: external or unallocated
    for e in skip:
        if e.node in first:
            skipped[first[e.node] + e.index] = 1
    if not match_range:
        return _own_storages(live, nbytes, skipped, pair_ids)
    dying = _dying(live, skipped, set(pair_ids.values()))
    storage = [-1] * len(entries)
    sizes: list[int] = []
    pools: dict[int, _Pool] = {}
    for step, node in enumerate(live.order):
        c = colour[node]
        pool = pools.get(c) if match_range else None
        for k in range(first[node], first[node] + node.num_outputs):
            if skipped[k]:
                continue
            if k in pair_ids:
                storage[k] = storage[pair_ids[k]]
                continue
            size = nbytes[entries[k]]
            got = pool.take(size, match_range) if pool is not None else None
            if got is None:
                storage[k] = len(sizes)
                sizes.append(size)
            else:
                storage[k] = got[0]
                sizes[got[0]] = max(sizes[got[0]], size)
        dead = dying[step] if match_range else ()
        if dead:
            pool = pools.setdefault(c, _Pool())
            for k in dead:
                pool.add(sizes[storage[k]], storage[k])
    return {entries[k]: sid for k, sid in enumerate(storage) if sid >= 0}, sizes, storage


def _own_storages(live: Liveness, nbytes: Mapping[Entry, int], skipped: bytearray,
                  pair_ids: Mapping[int, int]) -> tuple[dict[Entry, int], list[int], list[int]]:
    """:func:`_sweep` without sharing (``match_range`` 0), with numpy: every operator output
    that is neither skipped nor in place gets the next storage id, in entry-number order (the
    sweep's order); an in-place output takes its input's."""
    entries, n = live.entries, len(live.entries)
    start = live.first[live.order[0]] if live.order else n  # variables are numbered first
    own = np.frombuffer(skipped, dtype=np.uint8) == 0
    own[:start] = False  # the sweep visits operator outputs only
    own[np.fromiter(pair_ids, dtype=np.int64, count=len(pair_ids))] = False
    numbers = np.flatnonzero(own)
    storage = np.full(n, -1, dtype=np.int64)
    storage[numbers] = np.arange(len(numbers), dtype=np.int64)
    ids = storage.tolist()
    for k in sorted(pair_ids):  # an input is numbered before its node's outputs
        if not skipped[k]:
            ids[k] = ids[pair_ids[k]]
    sizes = [nbytes[entries[k]] for k in numbers.tolist()]
    placed = np.flatnonzero(np.array(ids, dtype=np.int64) >= 0).tolist()
    return {entries[k]: ids[k] for k in placed}, sizes, ids


def _dying(live: Liveness, skipped: bytearray, moved: AbstractSet[int]) -> list[list[int]]:
    """Entry numbers whose storage returns to the pool after each step: their last value read,
    or their definition if nobody reads them; not those an in-place output took over. The
    order within a step does not matter: a pool is sorted by size and storage id."""
    dying: list[list[int]] = [[] for _ in live.order]
    steps = len(dying)
    for k, step in enumerate(live.last_step):
        if 0 <= step < steps and not skipped[k] and k not in moved:
            dying[step].append(k)
    return dying


def auto_match_range(plan_fn, ranges: Sequence[int] = (1, 2, 4, 8, 16)) -> MemoryPlan:
    """``NNVM_AUTO_SEARCH_MATCH_RANGE``: the smallest plan over ``ranges`` (first on ties)."""
    plans = [plan_fn(r) for r in ranges]
    return min(plans, key=lambda p: p.planned_bytes)


def check_memory_plan(plan: MemoryPlan) -> None:
    """Verify the plan's invariants; raise PlanError naming the offending entries.

    Checks: every operator output is planned, external or unallocated; storage sizes hold
    their entries; entries sharing a storage have disjoint lives, except a declared in-place
    pair (output defined at the node where its input dies, the op declaring that pair); no
    external entry is overwritten in place; storages live at the same time occupy disjoint
    bytes of the arena (``optim.arena.check_arena``), and the arena is at least the bound; a
    gradient updated inside the backward pass (``released``) is planned and lives until no
    later step reads its parameter.
    """
    live = plan.liveness
    for g, w in plan.released.items():
        k, t = live.entry_id(g), live.entry_id(w)
        if g not in plan.storage or live.last_step[k] < max(live.last_step[t], live.def_pos(g)):
            raise PlanError(f"{output_name(g)} is updated into {output_name(w)} before its "
                            "last read, or has no storage")
    for e in live.entries:
        if (not e.node.is_variable and e not in plan.storage and e not in plan.external
                and e not in plan.unallocated):
            raise PlanError(f"entry {output_name(e)} has no storage")
    by_sid: dict[int, list[Entry]] = {}
    for e, sid in plan.storage.items():
        if not 0 <= sid < plan.num_storage or plan.storage_bytes[sid] < plan.nbytes[e]:
            raise PlanError(f"storage {sid} cannot hold {output_name(e)} "
                            f"({plan.nbytes[e]} bytes)")
        by_sid.setdefault(sid, []).append(e)
    for o, i in plan.inplace.items():
        if i in plan.external or o in plan.external:
            raise PlanError(f"{output_name(o)} overwrites external {output_name(i)}")
    for sid, entries in by_sid.items():
        entries.sort(key=lambda e: (live.def_pos(e), e.index))
        holder = entries[0]  # the entry with the latest last use so far
        for cur in entries[1:]:
            _check_pair(plan, sid, holder, cur)
            if live.last_use[cur] >= live.last_use[holder]:
                holder = cur
    if plan.lives != _lives(live, plan.storage, plan.num_storage):
        raise PlanError("the storages' lives do not match the entries placed in them")
    starts, ends = zip(*plan.lives) if plan.lives else ((), ())
    try:
        check_arena(plan.arena, plan.storage_bytes, starts, ends,
                    _storage_colours(live, plan.storage, plan.colour, plan.num_storage))
    except ArenaError as e:
        raise PlanError(f"arena: {e}") from None
    if plan.planned_bytes < plan.live_peak_bytes:
        raise PlanError(f"the arena ({plan.planned_bytes} bytes) is below the bound "
                        f"({plan.live_peak_bytes} bytes)")


def _check_pair(plan: MemoryPlan, sid: int, prev: Entry, cur: Entry) -> None:
    live = plan.liveness
    end, start = live.last_use[prev], live.def_pos(cur)
    if start > end:
        return
    if start == end and plan.inplace.get(cur) == prev and _declared(cur, prev):
        return
    raise PlanError(f"storage {sid}: {output_name(cur)} (defined at step {start}) overwrites "
                    f"{output_name(prev)}, still live until step {end}")


def _declared(out: Entry, src: Entry) -> bool:
    node = out.node
    return any(node.inputs[i] == src and o == out.index
               for i, o in node.opdef.inplace(node.params))
