"""Environment settings of the planners, read and validated in one place.

Kill switches (for bisecting): ``NO_INPLACE``, ``NO_MEMORY_PLAN``, ``NO_MIRROR``, ``NO_ARENA``
(the ``sharing`` strategy planned as MXNet's storage pool, ``pool``), ``NO_MILP``
(``optimal`` keeps its dynamic program on graphs that are not a chain), ``NO_DERIVE``
(every mirror variant differentiated and shaped from scratch, not derived from a first plan:
``symbol.gradient.remirror``), ``DEBUG``.
MXNet's names, both generations, with MXNet's defaults:

| variable | default | meaning |
|---|---|---|
| ``MXNET_EXEC_ENABLE_INPLACE`` | 1 | 0 turns in-place off |
| ``MXNET_EXEC_MATCH_RANGE`` / ``NNVM_EXEC_MATCH_RANGE`` | 16 | ``pool`` match range; 0 = off |
| ``MXNET_EXEC_NUM_TEMP`` / ``NNVM_EXEC_NUM_TEMP`` | 1 | co-share colours (1 = off) |
| ``NNVM_AUTO_SEARCH_MATCH_RANGE`` | 0 | 1: ``pool`` tries ranges 1..16, keeps the smallest |
| ``MXNET_EXEC_INPLACE_GRAD_SUM_CAP`` | 8 | max contributions summed by one ElementWiseSum |
| ``SUBLINEAR_SEARCH_JOBS`` | 0 | processes scoring the sublinear search's candidates; 0 = auto |
| ``SUBLINEAR_UPDATE_IN_BACKWARD`` | 0 | 1: updates inside the backward pass (``update_points``) |

Bad values fail with one message naming the variable and the accepted values, before anything
is allocated.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from symbol.errors import SymbolError

__all__ = ["FlagError", "PlannerFlags", "read_flags", "env_int"]


class FlagError(SymbolError, ValueError):
    """An environment variable has a value the planners cannot accept."""


def env_int(env: Mapping[str, str], names: tuple[str, ...], default: int, *, minimum: int = 0,
            accepted: str = "a non-negative integer") -> int:
    """The integer value of the first set variable among ``names`` (aliases of one setting).

    Raises:
        FlagError: a value is not an integer >= ``minimum``, or two aliases disagree.
    """
    values: dict[str, int] = {}
    for name in names:
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = int(raw.strip())
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise FlagError(f"environment variable {name}={raw!r} is invalid: expected "
                            f"{accepted}")
        values[name] = value
    if len(set(values.values())) > 1:
        shown = ", ".join(f"{k}={v}" for k, v in values.items())
        raise FlagError(f"environment variables {shown} name one setting but disagree; "
                        "unset one or give both the same value")
    return next(iter(values.values()), default)


@dataclass(frozen=True)
class PlannerFlags:
    """The planner settings in force (see the module docstring)."""

    inplace: bool = True
    match_range: int = 16
    num_temp: int = 1
    auto_search_match_range: bool = False
    grad_sum_cap: int = 8
    no_memory_plan: bool = False
    no_arena: bool = False
    no_mirror: bool = False
    no_milp: bool = False
    no_derive: bool = False
    debug: int = 0
    search_jobs: int = 0
    update_in_backward: bool = False


def read_flags(env: Mapping[str, str] | None = None) -> PlannerFlags:
    """Read and validate every planner variable from ``env`` (default ``os.environ``).

    Raises:
        FlagError: an invalid value (one message naming the variable and the accepted values).
    """
    env = os.environ if env is None else env
    return PlannerFlags(
        inplace=_check01(env, "MXNET_EXEC_ENABLE_INPLACE", 1) and not _check01(env, "NO_INPLACE"),
        match_range=env_int(env, ("MXNET_EXEC_MATCH_RANGE", "NNVM_EXEC_MATCH_RANGE"), 16),
        num_temp=env_int(env, ("MXNET_EXEC_NUM_TEMP", "NNVM_EXEC_NUM_TEMP"), 1, minimum=1,
                         accepted="an integer >= 1"),
        auto_search_match_range=_check01(env, "NNVM_AUTO_SEARCH_MATCH_RANGE"),
        grad_sum_cap=env_int(env, ("MXNET_EXEC_INPLACE_GRAD_SUM_CAP",), 8, minimum=1,
                             accepted="an integer >= 1"),
        no_memory_plan=_check01(env, "NO_MEMORY_PLAN"),
        no_arena=_check01(env, "NO_ARENA"),
        no_mirror=_check01(env, "NO_MIRROR"),
        no_milp=_check01(env, "NO_MILP"),
        no_derive=_check01(env, "NO_DERIVE"),
        debug=env_int(env, ("DEBUG",), 0),
        search_jobs=env_int(env, ("SUBLINEAR_SEARCH_JOBS",), 0),
        update_in_backward=_check01(env, "SUBLINEAR_UPDATE_IN_BACKWARD"),
    )


def _check01(env: Mapping[str, str], name: str, default: int = 0) -> bool:
    v = env_int(env, (name,), default, accepted="0 or 1")
    if v > 1:
        raise FlagError(f"environment variable {name}={env[name]!r} is invalid: expected 0 or 1")
    return bool(v)
