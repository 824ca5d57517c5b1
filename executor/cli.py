"""The ``sublinear`` command line.

    sublinear demo                           # train a small network on synthetic data
    sublinear check net.sym [--param units=3,4,6,3] [--shape data=32,3,224,224] [--json]
    sublinear plan NET [--param ..] [--shape ..] [--strategy S] [--mirror M] [--budget 3GB]
    sublinear memcost --net resnet|lstm|FILE [--sweep ..] [--strategies ..] [--measure] [--json]

Errors a user can cause are printed on stderr in the compiler convention
(``file:line:col: error: message``, the source line and a caret) and exit with status 2; no
Python traceback reaches the user (``-v`` shows one for internal errors).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback

from .cliargs import param_arg, shape_arg
from .memcost import add_memcost_parser
from .plan_cli import add_plan_parser

__all__ = ["main", "build_parser"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    run_demo(steps=args.steps, batch=args.batch, ctx=args.ctx, lr=args.lr, seed=args.seed,
             as_json=args.json)
    return 0


def _check(args: argparse.Namespace) -> int:
    from symbol.dsl_check import check_file, error_records
    from symbol.errors import SymbolError
    try:
        report = check_file(args.file, params=dict(args.param), shapes=dict(args.shape))
    except SymbolError as e:
        if args.json:
            print(json.dumps({"file": args.file, "ok": False, "errors": error_records(e)}))
        raise
    print(json.dumps({"ok": True, **report.to_json()}) if args.json else report.summary())
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    p = argparse.ArgumentParser(prog="sublinear", description="Symbolic deep learning with "
                                "sublinear memory cost (Chen et al. 2016).")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="train a small network on synthetic data")
    d.add_argument("--steps", type=int, default=300)
    d.add_argument("--batch", type=int, default=64)
    d.add_argument("--lr", type=float, default=0.02)
    d.add_argument("--ctx", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--json", action="store_true", help="machine-readable output")
    d.set_defaults(func=_demo)
    c = sub.add_parser("check", help="parse a network file, infer shapes, print a summary")
    c.add_argument("file", help="network file in the sublinear language (docs/dsl.md)")
    c.add_argument("--param", type=param_arg, action="append", default=[], metavar="NAME=VALUE",
                   help="override a 'param' default (repeatable): units=3,4,6,3 steps=1600")
    c.add_argument("--shape", type=shape_arg, action="append", default=[], metavar="NAME=D1,D2",
                   help="shape of an input (repeatable): data=32,3,224,224")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(func=_check)
    add_plan_parser(sub)
    add_memcost_parser(sub)
    return p


def _report(e: BaseException) -> str:
    from symbol.dsl import format_error
    text = format_error(e)
    return text if "error: " in text.split("\n", 1)[0][:200] and not text.startswith("error:") \
        else f"sublinear: {text}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sublinear`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * args.verbose, format="%(message)s")
    from symbol import SymbolError
    try:
        return int(args.func(args))
    except SymbolError as e:
        print(_report(e), file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into a command that stopped reading (| head)
        sys.stderr.close()
        return 0
    except OSError as e:
        print(f"sublinear: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 2
    except Exception as e:  # a bug, not a user error: still no traceback unless asked for
        if args.verbose:
            traceback.print_exc()
        print(f"sublinear: internal error: {type(e).__name__}: {e} (run with -v for the "
              "traceback)", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
