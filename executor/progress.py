"""Progress bars for the command line: tqdm on stderr, shown only for work over a second."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Iterator

__all__ = ["Bar", "progress_bar"]


class Bar:
    """A tqdm bar (or nothing, when quiet) that a planner can report to.

    It is an :class:`optim.parallel.Progress` (``add_total``, ``advance``) and offers what a
    sweep needs of tqdm (``update``, ``set_postfix_str``).
    """

    def __init__(self, bar: Any = None) -> None:
        self._bar = bar

    def add_total(self, n: int) -> None:
        if self._bar is not None:
            self._bar.total = (self._bar.total or 0) + n  # shown at the next update

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    update = advance

    def set_postfix_str(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def progress_bar(desc: str, *, total: int = 0, quiet: bool = False, unit: str = "plan",
                 delay: float = 1.0, leave: bool = False) -> Iterator[Bar]:
    """A bar on stderr that appears once the work has run for ``delay`` seconds (never when
    ``quiet``, e.g. under ``--json``); closed (and erased unless ``leave``) on leaving the
    block."""
    bar = Bar()
    if not quiet:
        from tqdm import tqdm
        # no monitor thread: a running thread would keep the planner's search from forking
        # (optim.parallel.available_jobs), and the bars here are updated often enough
        tqdm.monitor_interval = 0
        bar = Bar(tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, delay=delay,
                       leave=leave, dynamic_ncols=True))
    try:
        yield bar
    finally:
        bar.close()
