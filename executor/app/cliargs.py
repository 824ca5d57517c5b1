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
           "add_memory_options", "DTYPES", "IMAGE_SUFFIXES"]

#: ``--dtype`` choices: one dtype everywhere, or mixed precision in a low one.
DTYPES = ("float32", "float64", "bfloat16", "float16")

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


def add_memory_options(p: argparse.ArgumentParser) -> None:
    """``--strategy``, ``--mirror``, ``--budget``, ``--budget-scope``, ``--dtype`` and
    ``--fit``: how a command that plans a network may plan it (``plan`` and ``train``)."""
    from optim.memory import STRATEGIES
    from optim.mirror import ALL_STRATEGIES
    from optim.search import BUDGET_SCOPES
    from symbol.units import SIZE_HELP
    p.add_argument("--strategy", choices=STRATEGIES, default=None,
                   help="memory strategy (default: from the environment, else sharing)")
    p.add_argument("--mirror", choices=ALL_STRATEGIES, default=None,
                   help="recompute strategy (default: SUBLINEAR_MIRROR, "
                   "MXNET_BACKWARD_DO_MIRROR=1 = drop-cheap, else none); optimal: the least "
                   "recomputation whose plan fits --budget")
    p.add_argument("--budget", type=size_arg, default=None, metavar="SIZE",
                   help="memory budget: the plan with the least recomputation that fits "
                   "(mirror optimal; with another --mirror, the cheapest fixed strategy that "
                   "fits) (default: SUBLINEAR_MEMORY_BUDGET); "
                   f"{SIZE_HELP}, e.g. 3GiB")
    p.add_argument("--budget-scope", choices=BUDGET_SCOPES, default=None,
                   help="what --budget counts: step (default, or SUBLINEAR_BUDGET_SCOPE): the "
                   "whole training step, parameters, their gradients, inputs, auxiliary states "
                   "and operator workspace included; activations: activations and "
                   "intermediate gradients only")
    p.add_argument("--dtype", choices=DTYPES, default="float32",
                   help="float32 (default) or float64 everywhere; bfloat16 or float16: mixed "
                   "precision (matrix products and stored activations in the low dtype, "
                   "float32 parameters, BatchNorm statistics, loss and optimizer; float16 "
                   "with dynamic loss scaling; see docs/precision.md)")
    p.add_argument("--fit", type=size_arg, default=None, metavar="SIZE",
                   help="choose the dtype (float32, bfloat16), the microbatch count and the "
                   "recomputation together: the fastest predicted step whose whole step "
                   "(optimizer state included) fits SIZE")
