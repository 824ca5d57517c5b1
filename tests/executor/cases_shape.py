"""Op-sweep rows for the shape family: Flatten, Reshape, Concat, SliceChannel."""
from __future__ import annotations

import torch

import symbol as sym

from .harness import Case

X = sym.Variable("x")
Y = sym.Variable("y")
Z = sym.Variable("z")

# (input shape, target, reverse, expected shape): MXNet's documented examples, one per value
_RESHAPES = [
    ((2, 3, 4), (4, 0, 2), False, (4, 3, 2)),
    ((2, 3, 4), (6, 1, -1), False, (6, 1, 4)),
    ((2, 3, 4), (2, -2), False, (2, 3, 4)),
    ((2, 3, 4), (-2, 1, 1), False, (2, 3, 4, 1, 1)),
    ((2, 3, 4, 5), (-3, -3), False, (6, 20)),
    ((2, 3, 4), (0, -3), False, (2, 12)),
    ((2, 3, 4), (-4, 1, 2, -2), False, (1, 2, 3, 4)),
    ((2, 3, 4), (2, -4, -1, 3, -2), False, (2, 1, 3, 4)),
    ((10, 5, 4), (-1, 0), False, (40, 5)),
    ((10, 5, 4), (-1, 0), True, (50, 4)),
    ((2, 3, 4), (-2, -4, 2, -1), True, (2, 3, 2, 2)),
]


def _reshape_case(shape: tuple[int, ...], target: tuple[int, ...], reverse: bool,
                  want: tuple[int, ...]) -> Case:
    rid = ",".join(map(str, target)) + ("-reverse" if reverse else "")
    return Case(f"Reshape-{rid}", lambda: sym.Reshape(X, shape=target, reverse=reverse) * 2.0,
                {"x": shape}, lambda x: x.reshape(want) * 2.0)


def _slice_unused(x: torch.Tensor) -> torch.Tensor:
    a, _, c = torch.chunk(x, 3, dim=1)
    return a * c


CASES = [
    Case("Flatten", lambda: sym.Flatten(X), {"x": (3, 4, 5)}, lambda x: x.reshape(3, -1)),
    Case("flatten-2d", lambda: sym.flatten(X) + 1.0, {"x": (3, 4)}, lambda x: x + 1.0),
    *[_reshape_case(*row) for row in _RESHAPES],
    Case("Concat-2-dim1", lambda: sym.Concat(X, Y), {"x": (2, 3, 4), "y": (2, 5, 4)},
         lambda x, y: torch.cat([x, y], 1)),
    Case("Concat-3-dim0", lambda: sym.Concat(X, Y, Z, dim=0),
         {"x": (2, 3), "y": (1, 3), "z": (4, 3)}, lambda x, y, z: torch.cat([x, y, z], 0)),
    Case("concat-3-dim2", lambda: sym.concat(X, Y, X * Z, dim=2),
         {"x": (2, 3, 4), "y": (2, 3, 1), "z": (2, 3, 4)},
         lambda x, y, z: torch.cat([x, y, x * z], 2)),
    # y gets no gradient: the backward op's second output is None and must be skipped
    Case("Concat-no-grad-input", lambda: sym.Concat(X, Y, dim=-1),
         {"x": (2, 3, 4), "y": (2, 3, 2)}, lambda x, y: torch.cat([x, y], -1), no_grad=("y",)),
    Case("SliceChannel", lambda: sym.SliceChannel(X, num_outputs=3), {"x": (2, 6, 4)},
         lambda x: torch.chunk(x, 3, dim=1)),
    Case("split-axis0-squeeze", lambda: sym.split(X, num_outputs=2, axis=0, squeeze_axis=True),
         {"x": (2, 3, 4)}, lambda x: tuple(x.unbind(0))),
    Case("SliceChannel-axis-1", lambda: sym.SliceChannel(X, num_outputs=2, axis=-1),
         {"x": (2, 3, 4)}, lambda x: torch.chunk(x, 2, dim=-1)),
    # output 1 is unused: its out_grad is None and becomes a zeros_like of that output
    Case("SliceChannel-unused-output",
         lambda: (lambda s: s[0] * s[2])(sym.SliceChannel(X, num_outputs=3)),
         {"x": (2, 6, 4)}, _slice_unused),
]
