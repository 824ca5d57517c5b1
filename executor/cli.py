"""The ``sublinear`` command line."""
from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo
    run_demo(steps=args.steps, batch=args.batch, ctx=args.ctx, lr=args.lr, seed=args.seed,
             as_json=args.json)
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
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sublinear`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * args.verbose, format="%(message)s")
    from symbol import SymbolError
    try:
        return int(args.func(args))
    except SymbolError as e:
        print(f"sublinear: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
