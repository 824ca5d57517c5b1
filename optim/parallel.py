"""Scoring search candidates in forked processes: only integers come back.

``score_all(candidates, score, jobs)`` returns ``[score(c) for c in candidates]``:
  1. candidates with equal counts are scored once (a score is a pure function of the counts);
  2. the distinct candidates are split into ``jobs`` shares: this process takes the first and
     the last ones (in the paper's networks the best budget is usually at an end of the
     searched range, so the caller usually holds the winning plan already), forked children
     take the middle ones in contiguous blocks;
  3. each child scores its share, writes the integers to a pipe and exits at once
     (``os._exit``: no cleanup of the parent's state runs twice); this process scores its own
     share meanwhile, then reads the children's scores.
Legality: a score must depend on the counts only, never on which process computed it or what
it computed before (the search's plans differ only in time); a child that fails is replaced by
scoring its share here, and a failure here stops the children.
Complexity: the same total work as a sequential loop, spread over ``jobs`` processes, plus one
fork per child (copy-on-write; the children touch the parent's pages only by reading them).
Invariant: the result equals the sequential ``[score(c) for c in candidates]``.
"""
from __future__ import annotations

import json
import os
import signal
import threading
from typing import Any, Callable, Hashable, Mapping, Protocol, Sequence, TypeVar

__all__ = ["score_all", "available_jobs", "Progress"]

C = TypeVar("C", bound=Mapping[Any, Any])


class Progress(Protocol):
    """Where a search reports how far it is (the command line shows a progress bar).

    Only the process that started the search reports; forked children never do.
    """

    def add_total(self, n: int) -> None:
        """``n`` more units of work are known."""

    def advance(self, n: int = 1) -> None:
        """``n`` units of work are done."""


def available_jobs(requested: int, *, auto_limit: int = 3) -> int:
    """Processes to score with: ``requested`` if set (> 0), else one per usable CPU, at most
    ``auto_limit``; always 1 where ``fork`` is missing or other Python threads run (a forked
    child could block on a lock one of them held)."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return 1
    if requested > 0:
        return requested
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(auto_limit, cpus or 1))


def score_all(candidates: Sequence[C], score: Callable[[C], int], jobs: int = 1,
              progress: Progress | None = None) -> list[int]:
    """``[score(c) for c in candidates]``, computed as the module docstring says; ``progress``
    learns the number of distinct candidates, then each score as it arrives here."""
    keys = [_key(c) for c in candidates]
    distinct: dict[Hashable, C] = {}
    for k, c in zip(keys, candidates, strict=True):
        distinct.setdefault(k, c)  # step 1
    order = list(distinct)
    own, shares = _split(order, jobs)  # step 2
    if progress is not None:
        progress.add_total(len(order))
    children = [_Child(score, [distinct[k] for k in share]) for share in shares]  # step 3
    scores: dict[Hashable, int] = {}
    try:
        for k in own:
            scores[k] = score(distinct[k])
            if progress is not None:
                progress.advance()
        for share, child in zip(shares, children, strict=True):
            got = child.result()
            if got is None:  # the child failed: score its share here
                got = [score(distinct[k]) for k in share]
            scores.update(zip(share, got, strict=True))
            if progress is not None:
                progress.advance(len(share))
    finally:
        for child in children:
            child.stop()
    return [scores[k] for k in keys]


def _key(counts: Mapping[Any, Any]) -> Hashable:
    return frozenset(counts.items())


def _split(order: list[Hashable], jobs: int) -> tuple[list[Hashable], list[list[Hashable]]]:
    """(this process's share: the first and last items, the children's: blocks between)."""
    jobs = max(1, min(jobs, len(order)))
    if jobs == 1:
        return order, []
    size = -(-len(order) // jobs)  # ceil
    own = [order[0], *order[len(order) - (size - 1):]] if size > 1 else [order[0]]
    middle = [k for k in order if k not in own]
    per = -(-len(middle) // (jobs - 1))
    return own, [middle[i:i + per] for i in range(0, len(middle), per)]


class _Child:
    """A forked process scoring ``candidates``; ``result()`` waits for its integers."""

    def __init__(self, score: Callable[[Any], int], candidates: list[Any]) -> None:
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: score, send the integers, leave without any cleanup
            code = 1
            try:
                os.close(read_end)
                with os.fdopen(write_end, "w") as out:
                    json.dump([score(c) for c in candidates], out)
                code = 0
            finally:
                os._exit(code)
        os.close(write_end)
        self.read_end: int | None = read_end

    def result(self) -> list[int] | None:
        """The child's scores, or None if it failed."""
        assert self.read_end is not None
        with os.fdopen(self.read_end) as inp:
            self.read_end = None
            text = inp.read()
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        return json.loads(text) if status == 0 else None

    def stop(self) -> None:
        """Kill and reap the child if ``result`` was not collected (an error in the parent)."""
        if self.read_end is not None:
            os.close(self.read_end)
            self.read_end = None
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = 0
