"""Argument types shared by the ``sublinear`` subcommands."""
from __future__ import annotations

import argparse
from typing import Any

__all__ = ["param_arg", "shape_arg"]


def param_arg(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` with VALUE a literal of the language (``3,24,36,3`` is a tuple)."""
    from symbol.dsl import parse_param_value
    name, eq, value = text.partition("=")
    if not eq or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), parse_param_value(value.strip())


def shape_arg(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME=D1,D2,...`` with positive integer sizes."""
    name, eq, dims = text.partition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        shape = ()
    if not eq or not name.strip() or not shape or min(shape) <= 0:
        raise argparse.ArgumentTypeError(f"expected NAME=D1,D2,... with positive sizes, got "
                                         f"{text!r}")
    return name.strip(), shape
