"""Argument types and options shared by the ``sublinear`` subcommands.

Each type turns the text of one option into its value or raises ``ArgumentTypeError`` with a
message naming what was expected; the parser reports it as a usage error (exit status 2).
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Callable

__all__ = ["param_arg", "shape_arg", "size_arg", "positive_int", "non_negative_int",
           "positive_float", "non_negative_float", "image_path", "add_net_options",
           "IMAGE_SUFFIXES"]

#: File types ``--timeline`` can write (matplotlib's Agg backend without extra libraries).
IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".eps", ".ps", ".tif", ".tiff",
                  ".webp")


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


def size_arg(text: str) -> int:
    """A byte size: ``3GiB``, ``512MB``, ``1000000`` (see :mod:`symbol.units`)."""
    from symbol.units import SizeError, parse_bytes
    try:
        return parse_bytes(text, "size")
    except SizeError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _number(kind: Callable[[str], Any], test: Callable[[Any], bool],
            expected: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not test(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    convert.__name__ = expected  # argparse names the type in some messages
    return convert


positive_int = _number(int, lambda v: v > 0, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: math.isfinite(v) and v > 0, "a positive number")
non_negative_float = _number(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")


def image_path(text: str) -> str:
    """A file to draw into: a known image suffix and an existing folder."""
    path = Path(text)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise argparse.ArgumentTypeError(
            f"cannot draw into {text!r}: expected a file name ending in "
            f"{', '.join(IMAGE_SUFFIXES)}")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot draw into {text!r}: no folder "
                                         f"{str(path.parent)!r}")
    return text


def add_net_options(p: argparse.ArgumentParser) -> None:
    """``NET``, ``--param`` and ``--shape``: what every command that reads a network takes."""
    from .nets import example_names
    p.add_argument("net", metavar="NET", help="a network file (.sym in the sublinear "
                   "language, or an MXNet -symbol.json file) or an example name: "
                   + ", ".join(example_names()))
    p.add_argument("--param", type=param_arg, action="append", default=[], metavar="NAME=VALUE",
                   help="override a 'param' of the network file (repeatable): units=3,4,6,3 "
                   "steps=1600")
    p.add_argument("--shape", type=shape_arg, action="append", default=[], metavar="NAME=D1,D2",
                   help="shape of an input (repeatable): data=32,3,224,224")
