"""The network language's syntax tree and its diagnostics.

The parser (:mod:`symbol.dsl`) turns source text into these frozen dataclasses; the lowering
(:mod:`symbol.dsl_lower`) walks them to build the graph. Every node carries the
:class:`~symbol.errors.Span` it was parsed from, so any later error can point at the source.

A :class:`Diagnostic` is one located message; :func:`make_error` bundles one or more into a
:class:`~symbol.errors.DslError` whose ``report`` renders each as ``file:line:col: error: ...``
followed by the source line and a caret, and whose ``SyntaxError`` fields (``filename``,
``lineno``, ``offset``, ``text``, ``end_lineno``, ``end_offset``) describe the first one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

from .errors import DslError, Span, format_span

__all__ = [
    "Const", "FString", "Name", "TupleExpr", "ListExpr", "ListComp", "Index", "Call", "Keyword",
    "Starred", "BinOp", "Neg", "Not", "BoolOp", "Compare", "IfExp", "Expr",
    "ParamStmt", "InputStmt", "AssignStmt", "OutputStmt", "ReturnStmt", "DefStmt", "ForStmt",
    "IfStmt", "WithStmt", "IncludeStmt", "Modifiers", "Stmt", "Module",
    "Diagnostic", "make_error", "render",
]


# -- expressions ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Const:
    """A literal: integer, float, string, ``True``/``False`` or ``None``."""

    span: Span
    value: object


@dataclass(frozen=True, slots=True)
class FString:
    """``f"t{t}_embed"``: literal text and expressions to format, in order."""

    span: Span
    parts: tuple[Union[str, "Expr"], ...]


@dataclass(frozen=True, slots=True)
class Name:
    """A reference to a parameter, a local or global binding."""

    span: Span
    id: str


@dataclass(frozen=True, slots=True)
class TupleExpr:
    """``(a, b)``; ``(a,)``; ``()``."""

    span: Span
    items: tuple["Expr", ...]


@dataclass(frozen=True, slots=True)
class ListExpr:
    """``[a, b]``: a mutable list (its items may be reassigned: ``h[i] = ...``)."""

    span: Span
    items: tuple["Expr", ...]


@dataclass(frozen=True, slots=True)
class ListComp:
    """``[elt for var in iter if cond]``."""

    span: Span
    elt: "Expr"
    var: str
    iter: "Expr"
    cond: "Expr | None"


@dataclass(frozen=True, slots=True)
class Index:
    """``base[index]``: an output of a multi-output symbol, or an item of a tuple or list."""

    span: Span
    base: "Expr"
    index: "Expr"


@dataclass(frozen=True, slots=True)
class Keyword:
    """``name=value`` in a call, or in an attribute list (``with mirror_stage="True"``)."""

    span: Span
    name: str
    value: "Expr"


@dataclass(frozen=True, slots=True)
class Starred:
    """``*value`` among the positional arguments of a call: the items of a tuple or list."""

    span: Span
    value: "Expr"


@dataclass(frozen=True, slots=True)
class Call:
    """``func(args, name=value)``: an operator, a definition or a builtin.

    ``args`` are the positional arguments in order; a :class:`Starred` one stands for the items
    of its value.
    """

    span: Span
    func: str
    func_span: Span
    args: tuple["Expr | Starred", ...]
    kwargs: tuple[Keyword, ...]


@dataclass(frozen=True, slots=True)
class BinOp:
    """``left op right`` for ``+ - * / // %``."""

    span: Span
    op: str
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True, slots=True)
class Neg:
    """``-operand``."""

    span: Span
    operand: "Expr"


@dataclass(frozen=True, slots=True)
class Not:
    """``not operand``."""

    span: Span
    operand: "Expr"


@dataclass(frozen=True, slots=True)
class BoolOp:
    """``left and right`` / ``left or right`` (short-circuit)."""

    span: Span
    op: str
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right`` for ``== != < <= > >=``."""

    span: Span
    op: str
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True, slots=True)
class IfExp:
    """``then if cond else orelse``."""

    span: Span
    cond: "Expr"
    then: "Expr"
    orelse: "Expr"


Expr = Union[Const, FString, Name, TupleExpr, ListExpr, ListComp, Index, Call, BinOp, Neg, Not,
             BoolOp, Compare, IfExp]


# -- statements -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Modifiers:
    """What follows a node-creating expression: ``as NAME share NAME with k=v, ...``."""

    name: Expr | None = None
    share: Expr | None = None
    attrs: tuple[Keyword, ...] = ()


NO_MODIFIERS = Modifiers()


@dataclass(frozen=True, slots=True)
class ParamStmt:
    """``param name = default;``: a net parameter, overridable from the CLI or the API."""

    span: Span
    name: str
    name_span: Span
    value: Expr


@dataclass(frozen=True, slots=True)
class InputStmt:
    """``input name: shape with k=v;``: a variable of the network."""

    span: Span
    name: str
    name_span: Span
    shape: Expr | None
    mods: Modifiers


@dataclass(frozen=True, slots=True)
class AssignStmt:
    """``targets = value as NAME share NAME with k=v;``."""

    span: Span
    targets: tuple[Expr, ...]
    value: Expr
    mods: Modifiers


@dataclass(frozen=True, slots=True)
class OutputStmt:
    """``output a, b;``: append to the network's outputs."""

    span: Span
    values: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class ReturnStmt:
    """``return a, b;`` inside a definition."""

    span: Span
    values: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class DefStmt:
    """``def name(params) { body }``: a reusable definition."""

    span: Span
    name: str
    name_span: Span
    params: tuple[str, ...]
    body: tuple["Stmt", ...]


@dataclass(frozen=True, slots=True)
class ForStmt:
    """``for var in iter { body }``."""

    span: Span
    var: str
    iter: Expr
    body: tuple["Stmt", ...]


@dataclass(frozen=True, slots=True)
class IfStmt:
    """``if cond { body } else { orelse }``."""

    span: Span
    cond: Expr
    body: tuple["Stmt", ...]
    orelse: tuple["Stmt", ...]


@dataclass(frozen=True, slots=True)
class WithStmt:
    """``with k=v, ... { body }``: an attribute scope."""

    span: Span
    attrs: tuple[Keyword, ...]
    body: tuple["Stmt", ...]


@dataclass(frozen=True, slots=True)
class IncludeStmt:
    """``include "path";`` (top level only; the path is relative to the including file)."""

    span: Span
    path: str


Stmt = Union[ParamStmt, InputStmt, AssignStmt, OutputStmt, ReturnStmt, DefStmt, ForStmt, IfStmt,
             WithStmt, IncludeStmt]


@dataclass(frozen=True, slots=True)
class Module:
    """One parsed file."""

    file: str
    source: str
    body: tuple[Stmt, ...]


# -- diagnostics ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located error message, with optional notes (``called from here``)."""

    message: str
    span: Span | None
    notes: tuple[tuple[str, Span], ...] = ()
    file: str | None = None  # for messages about a whole file (no span)


def render(diag: Diagnostic, sources: Mapping[str, str]) -> str:
    """``file:line:col: error: message``, the source line and a caret, then the notes."""
    if diag.span is None:
        return f"{diag.file}: error: {diag.message}" if diag.file else f"error: {diag.message}"
    lines = [format_span(sources.get(diag.span.file), diag.span, diag.message)]
    for note, span in diag.notes:
        text = format_span(sources.get(span.file), span, note)
        lines.append(text.replace(f"{span}: error: ", f"{span}: note: ", 1))
    return "\n".join(lines)


def make_error(diags: list[Diagnostic], sources: Mapping[str, str]) -> DslError:
    """One :class:`DslError` for ``diags`` (at least one); see the module docstring."""
    first = diags[0]
    span = first.span
    text = None
    if span is not None:
        src = sources.get(span.file) or ""
        lines = src.splitlines()
        text = lines[span.line - 1] if 0 < span.line <= len(lines) else None
        err = DslError(first.message, (span.file, span.line, span.col, text,
                                       span.end_line, span.end_col))
    else:
        err = DslError(first.message)
        err.filename = first.file
    err.diagnostics = tuple(diags)  # type: ignore[attr-defined]
    err.report = "\n".join(render(d, sources) for d in diags)  # type: ignore[attr-defined]
    add_note = getattr(err, "add_note", None)  # Python >= 3.11: shown in tracebacks
    if add_note is not None:
        for d in diags[1:]:
            add_note(render(d, sources))
    return err
