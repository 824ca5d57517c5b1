"""The ``sublinear`` command line.

    sublinear demo [--steps N] [--batch N] [--lr X] [--ctx cpu|cuda] [--json]
    sublinear check NET [--param units=3,4,6,3] [--shape data=32,3,224,224] [--json]
    sublinear plan NET [--param ..] [--shape ..] [--strategy S] [--mirror M] [--budget 3GiB]
    sublinear train NET --data synthetic|digits|FILE.npz [--epochs E] [--save DIR] [--json]
    sublinear memcost --net resnet|lstm|NET [--sweep ..] [--strategies ..] [--measure] [--json]
    sublinear pareto NET [--param ..] [--budgets N] [--segments S,S,..] [--out DIR] [--json]

``NET`` is a network file or an example name (:mod:`executor.app.nets`).

One error path: a mistake in what the user gave (a file, an option, an environment variable)
is printed on stderr as ``file:line:col: error: ...`` (with the source line and a caret) or
``sublinear: error: ...`` and exits with status 2; a run that fails after a correct start
(:class:`~executor.errors.RunError`: training diverged, out of memory) exits with 1. With
``--json`` the error is also printed on stdout as ``{"error": ..., "errors": [...]}``. Anything
else is a bug: ``sublinear: internal error: ...``, status 70, and no Python traceback unless
``-v`` is given. torch is imported only by the commands that run tensors.
"""
from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import traceback
from typing import Any, NoReturn

from .cliargs import (add_net_options, non_negative_int, positive_float, positive_int)
from ..errors import RunError, UsageError
from .memcost import add_memcost_parser
from .pareto import add_pareto_parser
from .plan import add_plan_parser
from .train import add_train_parser

__all__ = ["main", "build_parser"]

#: Exit statuses.
USER_ERROR, RUN_FAILED, INTERNAL_ERROR, INTERRUPTED = 2, 1, 70, 130


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors raised (and reported like every other error)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.split(" ", 1)[1] if " " in self.prog else None
        raise UsageError(message, command)


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    run_demo(steps=args.steps, batch=args.batch, ctx=args.ctx, lr=args.lr, seed=args.seed,
             as_json=args.json)
    return 0


def _check(args: argparse.Namespace) -> int:
    from symbol.dsl_check import check_symbol

    from .nets import load_net
    net, params = load_net(args.net, dict(args.param))
    report = check_symbol(net, file=args.net, params=params, shapes=dict(args.shape))
    print(json.dumps({"ok": True, **report.to_json()}) if args.json else report.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    p = _Parser(prog="sublinear", description="Symbolic deep learning with sublinear memory "
                "cost (Chen et al. 2016): check, plan and train networks written in a small "
                "language or as MXNet symbol JSON.")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more logging (-vv: debug); show the traceback of an internal error")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    d = sub.add_parser("demo", help="train a small network on synthetic data",
                       description="Train a small MLP (FC, BatchNorm, ReLU, Dropout, softmax) "
                       "on synthetic Gaussian clusters and print the loss falling.")
    d.add_argument("--steps", type=positive_int, default=300, help="training steps "
                   "(default 300)")
    d.add_argument("--batch", type=positive_int, default=64, help="batch size (default 64)")
    d.add_argument("--lr", type=positive_float, default=0.02,
                   help="SGD learning rate (default 0.02; momentum 0.9)")
    d.add_argument("--ctx", default="auto", help="device: cpu, cuda, cuda:N or auto "
                   "(default: cuda when available)")
    d.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=_demo)
    c = sub.add_parser("check", help="parse a network, infer shapes, print a summary",
                       description="Load NET, infer every shape and summarise the network "
                       "(operators, parameters, inputs, outputs); errors point at the line.")
    add_net_options(c)
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=_check)
    add_plan_parser(sub)
    add_train_parser(sub)
    add_memcost_parser(sub)
    add_pareto_parser(sub)
    p.set_defaults(commands=tuple(sub.choices))
    return p


_UNLOCATED = re.compile(r"^(?P<file>.+?): error: (?P<message>.*)$")
_LOCATION = re.compile(r":\d+:\d+$")


def _report(e: BaseException) -> str:
    """The error as people read it: ``file:line:col: error: ...`` or ``sublinear: error: ...``
    (an error about a whole file, with no line to point at, names the file after that)."""
    from symbol.dsl import format_error
    text = format_error(e)
    if text.startswith("error: "):
        return f"sublinear: {text}"
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = _UNLOCATED.match(line)
        if m and not _LOCATION.search(m["file"]) and not line.startswith("sublinear: "):
            lines[i] = f"sublinear: error: {m['file']}: {m['message']}"
    text = "\n".join(lines)
    return text if "error: " in lines[0][:300] else f"sublinear: error: {text}"


def _json_error(e: BaseException, text: str, command: str | None) -> str:
    from symbol.dsl_check import error_records
    from symbol.errors import SymbolError
    records = error_records(e) if isinstance(e, SymbolError) else [{"message": str(e)}]
    doc: dict[str, Any] = {"ok": False, "command": command, "error": text, "errors": records}
    return json.dumps(doc)


def _fail(e: BaseException, status: int, argv: list[str], command: str | None,
          text: str | None = None) -> int:
    text = text or _report(e)
    print(text, file=sys.stderr)
    if "--json" in argv:
        print(_json_error(e, text, command))
    return status


def _os_error(e: OSError) -> str:
    where = f"{e.filename}: " if e.filename else ""
    return f"sublinear: error: {where}{e.strerror or e}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sublinear`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    verbose = 0
    try:
        parser = build_parser()
        if command not in parser.get_default("commands"):
            command = None
        args = parser.parse_args(argv)
        verbose, command = args.verbose, args.command
        logging.basicConfig(level=logging.WARNING - 10 * verbose, format="%(message)s")
        return int(args.func(args))
    except UsageError as e:
        command = e.command or command
        where = f"sublinear {command}" if command else "sublinear"
        text = f"sublinear: error: {e} (see '{where} --help')"
        return _fail(e, USER_ERROR, argv, command, text)
    except RunError as e:
        return _fail(e, RUN_FAILED, argv, command, f"sublinear: error: {e}")
    except BrokenPipeError:  # output piped into a command that stopped reading (| head)
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("sublinear: interrupted", file=sys.stderr)
        return INTERRUPTED
    except MemoryError as e:
        return _fail(e, RUN_FAILED, argv, command, "sublinear: error: out of host memory")
    except OSError as e:
        return _fail(e, USER_ERROR, argv, command, _os_error(e))
    except Exception as e:  # noqa: BLE001 - classified below
        from symbol.errors import SymbolError
        if isinstance(e, SymbolError):
            return _fail(e, USER_ERROR, argv, command)
        if _out_of_device_memory(e):
            return _fail(e, RUN_FAILED, argv, command,
                         f"sublinear: error: the device ran out of memory: {_first_line(e)}")
        if verbose:  # a bug, not a user error: no traceback unless asked for
            traceback.print_exc()
        return _fail(e, INTERNAL_ERROR, argv, command,
                     f"sublinear: internal error: {type(e).__name__}: {_first_line(e)} "
                     "(a bug; run with -v for the traceback)")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().split("\n", 1)[0] or type(e).__name__)[:500]


def _out_of_device_memory(e: BaseException) -> bool:
    """torch's out-of-memory errors (CUDA or the CPU allocator), without importing torch."""
    return type(e).__name__ == "OutOfMemoryError" or (
        isinstance(e, RuntimeError) and "out of memory" in str(e).lower())


if __name__ == "__main__":
    sys.exit(main())
