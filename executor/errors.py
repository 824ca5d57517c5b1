"""Errors of the command line that are neither a user's mistake nor a bug.

A :class:`~symbol.errors.SymbolError` is a mistake in what the user gave (exit status 2); a
:class:`RunError` is a run that started correctly and then failed (training diverged, the
device ran out of memory; exit status 1). Anything else reaching the command line is a bug.
This module imports no torch, so the command line can name these errors before loading it.
"""
from __future__ import annotations

from symbol.errors import SymbolError

__all__ = ["RunError", "UsageError"]


class RunError(Exception):
    """A command that started correctly failed while running (exit status 1)."""


class UsageError(SymbolError):
    """The command line itself is malformed: an unknown option, a bad option value."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command
