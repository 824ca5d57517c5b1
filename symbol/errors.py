"""User-facing errors of the symbol layer.

Every error a user can cause while building, checking or shaping a network derives from
:class:`SymbolError`, so callers catch one type. Errors that know where in a DSL file they come
from carry a :class:`~symbol.graph.Span` and render it with :func:`format_span` in the compiler
convention (``file:line:col: error: message``, the source line, a caret).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Span", "SymbolError", "DslError", "ShapeError", "GraphError", "AttrError",
    "OpError", "format_span",
]


@dataclass(frozen=True, slots=True)
class Span:
    """A source range in a DSL file: 1-based ``line``/``col``, inclusive start, exclusive end."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def format_span(source: str | None, span: Span | None, message: str) -> str:
    """Render ``message`` as ``file:line:col: error: message`` plus source line and caret.

    Without a span the message is returned as ``error: message``; without source text only the
    first line is printed.
    """
    if span is None:
        return f"error: {message}"
    head = f"{span}: error: {message}"
    if not source:
        return head
    lines = source.splitlines()
    if not 1 <= span.line <= len(lines):
        return head
    text = lines[span.line - 1].expandtabs(4)
    width = 1
    if span.end_line == span.line and span.end_col is not None and span.end_col > span.col:
        width = span.end_col - span.col
    caret = " " * (span.col - 1) + "^" + "~" * (width - 1)
    return f"{head}\n    {text}\n    {caret}"


class SymbolError(Exception):
    """Base of every user-facing error raised by :mod:`symbol`."""


class OpError(SymbolError, ValueError):
    """An operator was used wrongly: unknown op, wrong number of inputs, missing input."""


class AttrError(SymbolError, ValueError):
    """An operator attribute is unknown, missing, or does not parse as its declared type.
    """


class ShapeError(SymbolError, ValueError):
    """Shapes are inconsistent. Carries the operator, the node and, when known, the DSL span.

    Shape rules raise it with a short message about shapes only; the ``infer_shape`` pass fills in
    ``op``, ``node`` and ``span`` and re-raises.
    """

    def __init__(self, message: str, *, op: str | None = None, node: str | None = None,
                 span: Span | None = None) -> None:
        self.message, self.op, self.node, self.span = message, op, node, span
        super().__init__(self._render())

    def _render(self) -> str:
        where = f"in operator '{self.node}' ({self.op}): " if self.node else ""
        text = where + self.message
        return f"{self.span}: error: {text}" if self.span else text

    def locate(self, *, op: str, node: str, span: Span | None) -> ShapeError:
        """Return a copy of this error that names the operator, node and source location."""
        return ShapeError(self.message, op=op, node=node, span=span)


class GraphError(SymbolError):
    """A graph fails :meth:`~symbol.graph.Graph.verify` (or cannot be built)."""


class DslError(SymbolError, SyntaxError):
    """An error in DSL source text (syntax or semantics), with file, line and column."""
