"""Arena layout: every storage of a memory plan gets a byte offset in one buffer.

``layout_arena(sizes, starts, ends, colours)`` places blocks (the storages of a plan: an entry
together with the in-place outputs that take over its buffer) in one arena, so that two blocks
share bytes only if their lives do not overlap; the executor realises the plan as views of one
allocation, so what is planned is what is allocated.

Algorithm (as TFLite's, TVM's and XLA's arena planners place tensors by lifetime and size):
  1. every size is rounded up to ``ALIGN`` bytes (aligned views for every dtype and for
     vectorised kernels);
  2. best fit in execution order: walk the steps; at step i, place each block that starts at i
     (largest first) in the smallest free gap that holds it (the lowest such gap on ties), or
     at the top of the arena; after step i, free the blocks that end at i: their bytes join the
     neighbouring free gaps, and a gap reaching the top lowers it;
  3. the same walking the steps backwards (a backward pass frees its forward pass's values in
     the reverse of their order, which fragments a forward walk more than a backward one);
  4. if the better of the two is more than ``SLACK`` above the bound, greedy by size: blocks
     in decreasing size, each in the smallest gap left by placed blocks whose lives overlap
     (at most ``GREEDY_MAX`` blocks: it is quadratic in the worst case); keep the smallest;
  5. co-share colours (``optim.memory``): each colour has an arena region of its own, laid
     out one after the other, so blocks of different colours never share bytes (no false
     dependencies between parallel paths).
The arena's size is the highest top reached, summed over colours. ``live_peak`` is the lower
bound no layout can beat: the most aligned bytes of blocks live at once (colours apart cost
more than it when parallel paths peak at different steps).
Legality: a block is live on [start, end] (steps, inclusive: an input is read by the node at
``end``, an output written by the node at ``start``); two blocks whose lives intersect never
intersect in bytes. Counterexample it avoids: an output placed over a gap freed after its own
step would be written while the freed block's last reader still reads it.
Complexity: steps 2-3 O(blocks * (log blocks + free gaps)), the free gaps being few (a
handful to a few hundred) on the networks here; step 4 O(blocks * overlapping blocks).
Invariant, enforced by ``check_arena``: blocks live at the same step occupy disjoint byte
ranges of the arena, within its size, and within their colour's region.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["ALIGN", "Arena", "ArenaError", "align", "layout_arena", "side_by_side",
           "live_peak", "check_arena"]

#: Alignment of every block, in bytes (the CUDA allocator's 512 B blocks hold two).
ALIGN = 256
#: Greedy by size runs when the best-fit layouts are more than this fraction above the bound,
#: on at most ``GREEDY_MAX`` blocks (it costs about 1 s per 20,000 blocks here).
SLACK = 0.02
GREEDY_MAX = 30_000


class ArenaError(AssertionError):
    """``check_arena`` found two live blocks sharing bytes (or a block outside the arena)."""


def align(n: int) -> int:
    """``n`` rounded up to a multiple of :data:`ALIGN`."""
    return -(-n // ALIGN) * ALIGN


@dataclass(frozen=True)
class Arena:
    """Byte offsets of blocks in one buffer.

    Attributes:
        offsets: per block, its first byte.
        size: bytes of the arena (the end of its last byte in use, over the whole step).
        live_peak: the most aligned bytes live at once: the bound.
    """

    offsets: tuple[int, ...]
    size: int
    live_peak: int

    def summary(self) -> str:
        """One line: arena size, bound and their ratio."""
        ratio = self.size / self.live_peak if self.live_peak else 1.0
        return (f"arena {self.size:,} bytes for {len(self.offsets)} blocks, live peak "
                f"{self.live_peak:,} bytes ({ratio:.3f}x)")


class _Gaps:
    """Free byte ranges of one region below its top: best fit by size, coalesced by address.

    A gap is kept in ``by_size`` as one integer, ``size << shift | offset`` (``shift``: the
    bits of the largest offset possible), so that integers sort as (size, offset) pairs do,
    faster than tuples.
    """

    def __init__(self, shift: int) -> None:
        self.shift = shift
        self.by_size: list[int] = []  # size << shift | offset, sorted
        self.start: dict[int, int] = {}  # offset -> size of the gap starting there
        self.end: dict[int, int] = {}  # end offset -> start of the gap ending there
        self.top = 0
        self.peak = 0

    def _remove(self, offset: int) -> int:
        size = self.start.pop(offset)
        del self.end[offset + size]
        by_size = self.by_size
        del by_size[bisect.bisect_left(by_size, size << self.shift | offset)]
        return size

    def _add(self, offset: int, size: int) -> None:
        self.start[offset] = size
        self.end[offset + size] = offset
        bisect.insort(self.by_size, size << self.shift | offset)

    def take(self, size: int) -> int:
        """Step 2: the offset of ``size`` bytes, in the best gap or at the top."""
        by_size = self.by_size
        i = bisect.bisect_left(by_size, size << self.shift)
        if i < len(by_size):
            key = by_size[i]
            offset, gap = key & ((1 << self.shift) - 1), key >> self.shift
            del by_size[i]  # (``_remove`` without searching again; the gap's end stays)
            del self.start[offset]
            if gap > size:  # the rest of the gap, from offset + size to the same end
                rest = offset + size
                self.start[rest] = gap - size
                self.end[offset + gap] = rest
                bisect.insort(by_size, (gap - size) << self.shift | rest)
            else:
                del self.end[offset + gap]
            return offset
        offset = self.top
        self.top += size
        if self.top > self.peak:
            self.peak = self.top
        return offset

    def give(self, offset: int, size: int) -> None:
        """Step 3: bytes [offset, offset + size) are free again."""
        before = self.end.get(offset)
        if before is not None:  # a free gap ends where this one starts: merge
            size += self._remove(before)
            offset = before
        if offset + size in self.start:  # and one starts where it ends
            size += self._remove(offset + size)
        if offset + size == self.top:
            self.top = offset
        else:
            self._add(offset, size)


def layout_arena(sizes: Sequence[int], starts: Sequence[int], ends: Sequence[int],
                 colours: Sequence[int] | None = None) -> Arena:
    """Offsets for blocks of ``sizes`` bytes live on steps [``starts``, ``ends``] (see the
    module docstring); ``colours``: co-share colour per block (default all 0)."""
    n = len(sizes)
    colours = list(colours) if colours is not None else [0] * n
    aligned = [align(s) for s in sizes]  # step 1
    members: dict[int, list[int]] = {}
    for b in range(n):
        members.setdefault(colours[b], []).append(b)
    if len(members) == 1:  # one colour (the usual case): its layout and bound are the arena's
        offsets, size, bound = _layout_one(aligned, list(starts), list(ends))
        return Arena(tuple(offsets), size, bound)
    offsets = [0] * n
    at = 0
    for c in sorted(members):  # step 4: colour regions one after the other
        own = members[c]
        local, size, _ = _layout_one([aligned[b] for b in own], [starts[b] for b in own],
                                     [ends[b] for b in own])
        for b, off in zip(own, local, strict=True):
            offsets[b] = at + off
        at += size
    return Arena(tuple(offsets), at, live_peak(aligned, starts, ends))


def _layout_one(sizes: list[int], starts: list[int],
                ends: list[int]) -> tuple[list[int], int, int]:
    """The best of three layouts of one colour's blocks (aligned sizes): best fit in execution
    order, best fit in reverse order (a backward pass frees in the order its forward pass
    allocated), and, when those two are more than ``SLACK`` above the bound and the blocks are
    at most ``GREEDY_MAX``, greedy by size (``_greedy_by_size``). Returns (offsets, size,
    the bound: ``live_peak``)."""
    forward = _best_fit(sizes, starts, ends)
    last = max(ends, default=0)
    back_offsets, back_size = _best_fit(sizes, [last - e for e in ends],
                                        [last - s for s in starts])
    best = min([forward, (back_offsets, back_size)], key=lambda x: x[1])
    bound = live_peak(sizes, starts, ends)
    if best[1] > bound * (1 + SLACK) and len(sizes) <= GREEDY_MAX:
        greedy = _greedy_by_size(sizes, starts, ends)
        best = min([best, greedy], key=lambda x: x[1])
    return best[0], best[1], bound


def _best_fit(sizes: Sequence[int], starts: Sequence[int],
              ends: Sequence[int]) -> tuple[list[int], int]:
    """Steps 2-3 of the module docstring: (offset of each block, highest top reached).

    The walk visits only the steps where blocks start or end: one event list, sorted with
    numpy by (step, births before deaths, births largest first, block number).
    """
    n = len(sizes)
    gaps = _Gaps(sum(sizes).bit_length())  # no offset reaches the sum of the sizes
    offsets = [0] * n
    if not n:
        return offsets, gaps.peak
    size = np.asarray(sizes, dtype=np.int64)
    block = np.arange(n, dtype=np.int64)
    step = np.concatenate((np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)))
    dies = np.repeat(np.array([0, 1], dtype=np.int64), n)
    largest = np.concatenate((-size, np.zeros(n, dtype=np.int64)))
    events = np.lexsort((np.concatenate((block, block)), largest, dies, step))
    take, give = gaps.take, gaps.give
    for k in events.tolist():
        if k < n:
            offsets[k] = take(sizes[k])
        else:
            b = k - n
            give(offsets[b], sizes[b])
    return offsets, gaps.peak


class _Growing:
    """A numpy int64 array that grows by doubling (appends in amortised O(1))."""

    __slots__ = ("data", "count")

    def __init__(self) -> None:
        self.data = np.empty(16, np.int64)
        self.count = 0

    def append(self, x: int) -> None:
        if self.count == len(self.data):
            self.data = np.concatenate((self.data, np.empty(len(self.data), np.int64)))
        self.data[self.count] = x
        self.count += 1

    def view(self) -> np.ndarray:
        return self.data[:self.count]


def _greedy_by_size(sizes: list[int], starts: list[int], ends: list[int],
                    window: int = 256) -> tuple[list[int], int]:
    """Offline greedy by size (Pisarchyk & Lee 2020; XLA's decreasing-size best fit): blocks
    in decreasing size (earlier first on ties), each in the smallest gap left by the placed
    blocks whose lives overlap its own, else above them all.

    Placed blocks whose life spans at most ``window`` steps are indexed by the window their
    life starts in, longer ones kept in one list: a block's candidates are the short blocks
    starting in its window range and all long ones, filtered exactly with numpy.
    O(blocks * candidates) — fine for some ten thousand blocks, hence ``GREEDY_MAX``.
    """
    n = len(sizes)
    order = sorted(range(n), key=lambda b: (-sizes[b], starts[b]))
    begin, finish = np.empty(n, np.int64), np.empty(n, np.int64)
    low, high = np.empty(n, np.int64), np.empty(n, np.int64)
    longs = _Growing()
    buckets: list[_Growing | None] = [None] * (max(ends, default=0) // window + 2)
    offsets = [0] * n
    for m, b in enumerate(order):
        s, e, z = starts[b], ends[b], sizes[b]
        parts = [x.view() for x in buckets[max(s - window, 0) // window:e // window + 1]
                 if x is not None]
        if longs.count:
            parts.append(longs.view())
        off = 0
        if parts:
            idx = np.concatenate(parts) if len(parts) > 1 else parts[0]
            idx = idx[(begin[idx] <= e) & (finish[idx] >= s)]  # lives overlap
            if len(idx):
                order_by_offset = np.argsort(low[idx])
                lo, hi = low[idx][order_by_offset], high[idx][order_by_offset]
                top = np.maximum.accumulate(hi)
                gaps = lo[1:] - top[:-1]  # free bytes between consecutive placed blocks
                fits = np.flatnonzero(gaps >= z)
                best = (int(lo[0]), 0) if lo[0] >= z else None
                if len(fits):
                    j = fits[np.argmin(gaps[fits])]
                    if best is None or gaps[j] < best[0]:
                        best = (int(gaps[j]), int(top[j]))
                off = best[1] if best is not None else int(top[-1])
        offsets[b] = off
        begin[m], finish[m], low[m], high[m] = s, e, off, off + z
        if e - s > window:
            longs.append(m)
        else:
            k = s // window
            bucket = buckets[k]
            if bucket is None:
                bucket = buckets[k] = _Growing()
            bucket.append(m)
    return offsets, max((o + z for o, z in zip(offsets, sizes)), default=0)


def side_by_side(sizes: Sequence[int], colours: Sequence[int] | None = None) -> Arena:
    """Blocks that never share bytes (each storage its own range, as the strategies without
    sharing, and MXNet's storage pool, allocate them): offsets are running sums, colour by
    colour (each colour's range in one piece)."""
    n = len(sizes)
    colours = list(colours) if colours is not None else [0] * n
    offsets, at = [0] * n, 0
    for b in sorted(range(n), key=lambda b: colours[b]):
        offsets[b] = at
        at += align(sizes[b])
    return Arena(tuple(offsets), at, at)


def live_peak(sizes: Sequence[int], starts: Sequence[int], ends: Sequence[int]) -> int:
    """The most bytes live at once: no layout of these blocks is smaller. O(blocks + steps)."""
    if not len(sizes):
        return 0
    size = np.asarray(sizes, dtype=np.int64)
    first, last = np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64)
    delta = np.zeros(int(max(first.max(), last.max())) + 2, dtype=np.int64)
    np.add.at(delta, first, size)
    np.add.at(delta, last + 1, -size)
    return max(0, int(np.cumsum(delta).max()))


def check_arena(arena: Arena, sizes: Sequence[int], starts: Sequence[int],
                ends: Sequence[int], colours: Sequence[int] | None = None) -> None:
    """Blocks live at the same step occupy disjoint bytes inside the arena, and the colours'
    byte ranges do not intersect. O(blocks log blocks): a sweep over the steps keeps the live
    blocks sorted by offset; as they are disjoint, a new block that overlaps any of them
    overlaps its neighbour below or above.

    Raises:
        ArenaError: naming the two blocks and the step.
    """
    n = len(sizes)
    colours = list(colours) if colours is not None else [0] * n
    span: dict[int, tuple[int, int]] = {}
    for b in range(n):
        lo, hi = arena.offsets[b], arena.offsets[b] + sizes[b]
        if lo < 0 or hi > arena.size:
            raise ArenaError(f"block {b} ({sizes[b]} bytes at {lo}) is outside the arena of "
                             f"{arena.size} bytes")
        if sizes[b]:
            old = span.get(colours[b], (lo, hi))
            span[colours[b]] = (min(old[0], lo), max(old[1], hi))
    regions = sorted(span.items(), key=lambda item: item[1])
    for (c1, r1), (c2, r2) in zip(regions, regions[1:]):
        if r2[0] < r1[1]:
            raise ArenaError(f"the byte ranges of colours {c1} and {c2} intersect")
    events = sorted([(starts[b], 0, b) for b in range(n) if sizes[b]]
                    + [(ends[b], 1, b) for b in range(n) if sizes[b]])
    live: list[tuple[int, int]] = []  # (offset, block), sorted
    for step, leaving, b in events:
        key = (arena.offsets[b], b)
        if leaving:
            del live[bisect.bisect_left(live, key)]
            continue
        i = bisect.bisect_left(live, key)
        for j in (i - 1, i):
            if 0 <= j < len(live):
                o = live[j][1]
                if (arena.offsets[o] < arena.offsets[b] + sizes[b]
                        and arena.offsets[b] < arena.offsets[o] + sizes[o]):
                    raise ArenaError(f"blocks {o} and {b} share bytes while both live "
                                     f"(step {step})")
        live.insert(i, key)
