"""Byte sizes for people: one way to print them and one way to read them.

``format_bytes(1536) == "1.5 KiB"``: binary units (1 KiB = 1024 B), auto-scaled so that the
number shown is below 1024, three significant figures (``"12.0 MiB"``, ``"118 MiB"``), bytes
shown exactly below 1 KiB.

``parse_bytes(text)`` reads what a user types for a size (``--budget``,
``SUBLINEAR_MEMORY_BUDGET``):

| suffix | meaning |
|---|---|
| none, ``B`` | bytes |
| ``KiB`` ``MiB`` ``GiB`` ``TiB`` | powers of 1024 (IEC) |
| ``K`` ``M`` ``G`` ``T`` | powers of 1024 too (as ``free -h`` and ``docker`` read them) |
| ``KB`` ``MB`` ``GB`` ``TB`` | powers of 1000 (SI) |

Suffixes are case-insensitive, a space may separate number and unit, and the number may have
a fraction (``1.5GiB``) or an exponent (``2e9``).
"""
from __future__ import annotations

import math
import re

from .errors import SymbolError

__all__ = ["format_bytes", "parse_bytes", "SizeError", "SIZE_HELP"]

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_FACTORS = {"": 1, "b": 1,
            "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30, "gib": 2**30,
            "t": 2**40, "tib": 2**40,
            "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
#: One line for help texts and error messages.
SIZE_HELP = ("bytes, or with a unit: KiB/MiB/GiB (or K/M/G) = powers of 1024, "
             "KB/MB/GB = of 1000")


class SizeError(SymbolError, ValueError):
    """A size that does not read as a positive number of bytes."""


def format_bytes(n: float) -> str:
    """``n`` bytes with the largest binary unit that keeps the number below 1024."""
    if not math.isfinite(n):
        return str(n)
    size, unit = float(abs(n)), 0
    while size >= 1024 and unit < len(_BINARY) - 1:
        size /= 1024
        unit += 1
    sign = "-" if n < 0 else ""
    if unit == 0:
        return f"{sign}{int(round(size))} B"
    digits = 2 if size < 10 else 1 if size < 100 else 0
    return f"{sign}{size:.{digits}f} {_BINARY[unit]}"


def parse_bytes(text: str | int, what: str = "size") -> int:
    """The number of bytes ``text`` names (see the module docstring).

    Args:
        text: the size as typed, or an int (bytes).
        what: what the size is, for the error message (``"memory budget"``).

    Raises:
        SizeError: not a positive, finite size, or an unknown unit.
    """
    if isinstance(text, bool):
        raise SizeError(f"{what} {text!r} is invalid: expected {SIZE_HELP}")
    if isinstance(text, int):
        if text <= 0:
            raise SizeError(f"{what} {text} is invalid: expected a positive number of bytes")
        return text
    match = _SIZE.match(str(text))
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _FACTORS:
        raise SizeError(f"{what} {str(text)!r} is invalid: expected {SIZE_HELP}, such as "
                        "3GiB, 512MB or 1000000")
    value = float(match.group(1)) * _FACTORS[unit]
    if not math.isfinite(value) or value < 1:
        raise SizeError(f"{what} {str(text)!r} is invalid: expected at least one byte")
    if value > 2**62:
        raise SizeError(f"{what} {str(text)!r} is too large")
    return int(value)
