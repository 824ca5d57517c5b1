"""Family helpers shared by the op tables (the Python version of NNVM's registration macros)."""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import ShapeError
from ..graph import Entry, Node, make_node
from ..registry import Params, Shape, ShapeList

__all__ = ["backward_node", "same_shape", "identity_shape", "out", "unify", "head",
           "reading_outputs_of"]


def head(ograds: Sequence[Entry | None], index: int = 0) -> Entry:
    """The gradient of output ``index``; the gradient pass guarantees it for one-output ops."""
    g = ograds[index]
    assert g is not None, "gradient rule called without a gradient for its output"
    return g


def backward_node(op: str, node: Node, inputs: Sequence[Entry], *, suffix: str = "_backward",
                  params: Params | None = None) -> Node:
    """A backward node ``<forward name><suffix>`` carrying the forward node's params."""
    return make_node(op, node.name + suffix, inputs,
                     params=dict(node.params if params is None else params))


#: Gradient rules read a node's outputs only through :func:`out`, so that the gradient pass can
#: point them at a recomputed (mirrored) copy of the node (paper Alg. 2); see
#: :func:`reading_outputs_of`.
_OUTPUT_OF: dict[Node, Node] = {}


def out(node: Node, index: int = 0) -> Entry:
    """Entry ``index`` of ``node`` (of the node it stands for, inside a gradient rule)."""
    return Entry(_OUTPUT_OF.get(node, node), index)


class reading_outputs_of:  # noqa: N801  (a context manager, named as one is used)
    """While a gradient rule runs on ``view``, make ``out(view, i)`` mean ``Entry(target, i)``.

    A class rather than a generator-based ``contextmanager``: the gradient pass enters one
    per recomputed node, and this costs a third as much.
    """

    __slots__ = ("view", "target")

    def __init__(self, view: Node, target: Node) -> None:
        self.view, self.target = view, target

    def __enter__(self) -> None:
        if self.view is not self.target:
            _OUTPUT_OF[self.view] = self.target

    def __exit__(self, *exc: object) -> None:
        if self.view is not self.target:
            del _OUTPUT_OF[self.view]


def unify(what: str, shapes: Sequence[Shape | None]) -> Shape | None:
    """The common shape of ``shapes`` (None entries unknown); mismatch raises ShapeError."""
    known = [tuple(s) for s in shapes if s is not None]
    for s in known[1:]:
        if s != known[0]:
            raise ShapeError(f"{what} have different shapes {known[0]} and {s}")
    return known[0] if known else None


def same_shape(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
    """Shape rule: every input and the single output share one shape."""
    s = unify("inputs", ins)
    return [s] * len(ins), [s]


def identity_shape(num_outputs: int = 1) -> Any:
    """Shape rule factory: every output has the shape of input 0; other inputs are free."""
    def rule(params: Params, ins: ShapeList) -> tuple[ShapeList, ShapeList]:
        return list(ins), [ins[0]] * num_outputs
    return rule
