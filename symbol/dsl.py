"""The network language: parser, syntax errors and the public entry points.

    net = symbol.load("examples/resnet.sym", params={"units": (3, 4, 6, 3)})
    net = symbol.loads("input data: (32, 100); fc = FullyConnected(data, num_hidden=10); "
                       "output SoftmaxOutput(fc);")
    text = symbol.dumps(net)          # and back: symbol.loads(text) builds the same graph

Two stages, as the style guide asks:

1. :func:`parse`: the LALR grammar ``grammar/net.lark`` (loaded once) and a lark ``Transformer``
   build the syntax tree of :mod:`symbol.dsl_ast`, every node with its source span. Syntax errors
   become :class:`~symbol.errors.DslError` with a message in user spelling (what was found, what
   was expected, ``end of input``), refined by the table of known mistakes
   :data:`KNOWN_MISTAKES` (lark's ``match_examples``).
2. :func:`symbol.dsl_lower.lower` runs the tree in plain Python and builds the graph through
   ``make_node``, reporting semantic errors per statement (see that module).

The language is documented in ``docs/dsl.md``; a test keeps that page and the grammar in step.
"""
from __future__ import annotations

import functools
import linecache
import os
import re
import sys
from typing import Any, Iterable, Mapping

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from . import dsl_ast as A
from .dsl_ast import Diagnostic, make_error
from .dsl_lower import Lowered, lower
from .dsl_print import dumps
from .errors import DslError, ShapeError, Span, SymbolError, format_span
from .symbol import Symbol

__all__ = ["parse", "load", "loads", "lower_text", "read_source", "dumps", "format_error",
           "parse_param_value", "KNOWN_MISTAKES", "grammar_text"]


@functools.cache
def _parser() -> Lark:
    """The grammar, compiled once on first use (and cached across runs by lark: a cache file
    in the temporary folder, keyed by the grammar's hash, saves ~0.2 s per command)."""
    # The basic lexer (not the contextual one) so that every syntax error comes from the parser,
    # with the parser state and the accepted tokens that the messages are built from.
    return Lark.open("grammar/net.lark", rel_to=__file__, parser="lalr", lexer="basic",
                     propagate_positions=True, start=["start", "expr"], cache=True)


def grammar_text() -> str:
    """The text of ``grammar/net.lark`` (for the docs check)."""
    with open(os.path.join(os.path.dirname(__file__), "grammar", "net.lark")) as f:
        return f.read()


# -- stage 1: parse tree -> syntax tree -----------------------------------------------------------
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line or 1, tok.column or 1, tok.end_line, tok.end_column)


@v_args(meta=True)
class _ToAst(Transformer):
    """Parse tree -> :mod:`symbol.dsl_ast` nodes. Raises only for malformed f-strings."""

    def __init__(self, file: str, source: str, col_offset: int = 0, line: int = 0) -> None:
        super().__init__()
        self.file, self.source, self.col_offset, self.line = file, source, col_offset, line

    def _span(self, meta: Any) -> Span:
        if self.line:  # inside an f-string: one line, shifted columns
            return Span(self.file, self.line, meta.column + self.col_offset, self.line,
                        meta.end_column + self.col_offset)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, tok: Token) -> Span:
        if self.line:
            return Span(self.file, self.line, (tok.column or 1) + self.col_offset, self.line,
                        (tok.end_column or 1) + self.col_offset)
        return _tok_span(self.file, tok)

    # statements
    def start(self, meta: Any, c: list[Any]) -> tuple[A.Stmt, ...]:
        return tuple(c)

    block = start

    def include_stmt(self, meta: Any, c: list[Any]) -> A.IncludeStmt:
        return A.IncludeStmt(self._span(meta), _unescape(c[0][1:-1]))

    def param_stmt(self, meta: Any, c: list[Any]) -> A.ParamStmt:
        return A.ParamStmt(self._span(meta), str(c[0]), self._tspan(c[0]), c[1])

    def input_stmt(self, meta: Any, c: list[Any]) -> A.InputStmt:
        return A.InputStmt(self._span(meta), str(c[0]), self._tspan(c[0]), c[1], c[2])

    def assign_stmt(self, meta: Any, c: list[Any]) -> A.AssignStmt:
        return A.AssignStmt(self._span(meta), c[0], c[1], c[2])

    def output_stmt(self, meta: Any, c: list[Any]) -> A.OutputStmt:
        return A.OutputStmt(self._span(meta), c[0])

    def return_stmt(self, meta: Any, c: list[Any]) -> A.ReturnStmt:
        return A.ReturnStmt(self._span(meta), c[0])

    def def_stmt(self, meta: Any, c: list[Any]) -> A.DefStmt:
        return A.DefStmt(self._span(meta), str(c[0]), self._tspan(c[0]), c[1] or (), c[2])

    def for_stmt(self, meta: Any, c: list[Any]) -> A.ForStmt:
        return A.ForStmt(self._span(meta), str(c[0]), c[1], c[2])

    def if_stmt(self, meta: Any, c: list[Any]) -> A.IfStmt:
        orelse = c[2]
        if isinstance(orelse, A.IfStmt):
            orelse = (orelse,)
        return A.IfStmt(self._span(meta), c[0], c[1], orelse or ())

    def with_stmt(self, meta: Any, c: list[Any]) -> A.WithStmt:
        return A.WithStmt(self._span(meta), c[0], c[1])

    def modifiers(self, meta: Any, c: list[Any]) -> A.Modifiers:
        if c[0] is None and c[1] is None and c[2] is None:
            return A.NO_MODIFIERS
        return A.Modifiers(c[0], c[1], c[2] or ())

    def attrs(self, meta: Any, c: list[Any]) -> tuple[A.Keyword, ...]:
        return tuple(c)

    def attr(self, meta: Any, c: list[Any]) -> A.Keyword:
        key = _unescape(c[0][1:-1]) if c[0].type == "STRING" else str(c[0])
        return A.Keyword(self._span(meta), key, c[1])

    def names(self, meta: Any, c: list[Any]) -> tuple[str, ...]:
        return tuple(str(t) for t in c)

    def exprlist(self, meta: Any, c: list[Any]) -> tuple[A.Expr, ...]:
        return tuple(c)

    # expressions
    def ifexp(self, meta: Any, c: list[Any]) -> A.IfExp:
        return A.IfExp(self._span(meta), c[1], c[0], c[2])

    def or_op(self, meta: Any, c: list[Any]) -> A.BoolOp:
        return A.BoolOp(self._span(meta), "or", c[0], c[1])

    def and_op(self, meta: Any, c: list[Any]) -> A.BoolOp:
        return A.BoolOp(self._span(meta), "and", c[0], c[1])

    def not_op(self, meta: Any, c: list[Any]) -> A.Not:
        return A.Not(self._span(meta), c[0])

    def compare(self, meta: Any, c: list[Any]) -> A.Compare:
        return A.Compare(self._span(meta), c[1], c[0], c[2])

    def binop(self, meta: Any, c: list[Any]) -> A.BinOp:
        return A.BinOp(self._span(meta), c[1], c[0], c[2])

    def comp_op(self, meta: Any, c: list[Any]) -> str:
        return str(c[0])

    add_op = mul_op = comp_op

    def neg(self, meta: Any, c: list[Any]) -> A.Neg:
        return A.Neg(self._span(meta), c[0])

    def index(self, meta: Any, c: list[Any]) -> A.Index:
        return A.Index(self._span(meta), c[0], c[1])

    def call(self, meta: Any, c: list[Any]) -> A.Call:
        items = c[1] or []
        args = tuple(a for a in items if not isinstance(a, A.Keyword))
        kwargs = tuple(a for a in items if isinstance(a, A.Keyword))
        return A.Call(self._span(meta), str(c[0]), self._tspan(c[0]), args, kwargs)

    def args(self, meta: Any, c: list[Any]) -> list[Any]:
        return [a for a in c if a is not None]

    def kwarg(self, meta: Any, c: list[Any]) -> A.Keyword:
        return A.Keyword(self._span(meta), str(c[0]), c[1])

    def star_arg(self, meta: Any, c: list[Any]) -> A.Starred:
        return A.Starred(self._span(meta), c[0])

    def tuple_expr(self, meta: Any, c: list[Any]) -> A.TupleExpr:
        return A.TupleExpr(self._span(meta), tuple(x for x in c if x is not None))

    def list_expr(self, meta: Any, c: list[Any]) -> A.ListExpr:
        return A.ListExpr(self._span(meta), tuple(x for x in c if x is not None))

    def listcomp(self, meta: Any, c: list[Any]) -> A.ListComp:
        return A.ListComp(self._span(meta), c[0], str(c[1]), c[2], c[3])

    def integer(self, meta: Any, c: list[Any]) -> A.Const:
        try:
            return A.Const(self._span(meta), int(c[0]))
        except ValueError:  # longer than Python reads (sys.get_int_max_str_digits())
            limit = sys.get_int_max_str_digits()
            raise make_error([Diagnostic(f"integer literal of more than {limit:,} digits",
                                         self._span(meta))], {self.file: self.source}) from None

    def number(self, meta: Any, c: list[Any]) -> A.Const:
        return A.Const(self._span(meta), float(c[0]))

    def string(self, meta: Any, c: list[Any]) -> A.Const:
        return A.Const(self._span(meta), _unescape(c[0][1:-1]))

    def true(self, meta: Any, c: list[Any]) -> A.Const:
        return A.Const(self._span(meta), True)

    def false(self, meta: Any, c: list[Any]) -> A.Const:
        return A.Const(self._span(meta), False)

    def none(self, meta: Any, c: list[Any]) -> A.Const:
        return A.Const(self._span(meta), None)

    def name(self, meta: Any, c: list[Any]) -> A.Name:
        return A.Name(self._span(meta), str(c[0]))

    def fstring(self, meta: Any, c: list[Any]) -> A.FString:
        tok: Token = c[0]
        span = self._tspan(tok)  # the body starts two columns after the 'f'
        return A.FString(self._span(meta), tuple(self._fparts(tok[2:-1], span.line, span.col + 2)))

    def _fparts(self, body: str, line: int, col: int) -> Iterable[str | A.Expr]:
        pos = 0
        for m in re.finditer(r"\{\{|\}\}|\{([^{}]*)\}|[{}]", body):
            if m.start() > pos:
                yield _unescape(body[pos:m.start()])
            pos = m.end()
            text = m.group(0)
            if text in ("{{", "}}"):
                yield text[0]
            elif text in ("{", "}"):
                self._fail(line, col + m.start(), f"single '{text}' in f-string; write "
                           f"'{text * 2}' for a literal brace")
            else:
                yield self._sub_expr(m.group(1), line, col + m.start(1))
        if pos < len(body):
            yield _unescape(body[pos:])

    def _sub_expr(self, text: str, line: int, col: int) -> A.Expr:
        if not text.strip():
            self._fail(line, col - 1, "empty expression in f-string")
        try:
            tree = _parser().parse(text, start="expr")
        except UnexpectedInput as e:
            diag = _syntax_diagnostic(e, text, self.file)
            inner = diag.span or Span(self.file, 1, 1)
            width = max(1, (inner.end_col or 0) - inner.col)
            span = Span(self.file, line, inner.col + col - 1, line, inner.col + col - 1 + width)
            message = diag.message.replace("end of input", "'}'")
            raise make_error([Diagnostic(message, span)], {self.file: self.source}) from None
        return _ToAst(self.file, self.source, col - 1, line).transform(tree)

    def _fail(self, line: int, col: int, message: str) -> None:
        span = Span(self.file, line, col, line, col + 1)
        raise make_error([Diagnostic(message, span)], {self.file: self.source})

    def __default__(self, data: Any, children: Any, meta: Any) -> Any:
        raise AssertionError(f"grammar rule {data!r} has no transformer method")


# -- syntax errors --------------------------------------------------------------------------------
#: Known mistakes (lark's ``match_examples``): label -> (message, malformed examples). A syntax
#: error in the same LALR state as an example, on the same kind of token, gets that message;
#: ``{found}`` is replaced by the token found. Every row is tested
#: (tests/symbol/test_dsl_errors.py).
KNOWN_MISTAKES: dict[str, tuple[str, tuple[str, ...]]] = {
    "colon_for_equals": (
        "attributes are written name=value, not name: value",
        ("x = f(a, k: 1);", "x = f(k: 1);", "with k: 1 { }", "x = y with k: 1;"),
    ),
    "python_block": (
        "a block is written in braces '{ ... }', not after ':'",
        ("def f(x): return x;", "def f(): return 1;"),
    ),
    "bare_expression": (
        "a statement cannot be a bare expression; assign it (y = ...) or use 'output'",
        ("f(x);", "x;", "x + 1;"),
    ),
    "assign_in_condition": (
        "'=' assigns; use '==' to compare",
        ("if x = 1 { }",),
    ),
    "missing_comma": (
        "missing ',' before {found}",
        ("x = f(a b);", "x = f(a, b c);", "x = f(k=a b);"),
    ),
    "unclosed_call": (
        "expected ',' or ')' but found {found}",
        ("x = f(a;", "x = f(a, b;", "x = f(a, k=b;", "x = f(1;"),
    ),
    "include_in_block": (
        "'include' is only allowed at the top level of a file",
        ('def f() { include "a.sym"; }', 'def f() { x = 1; include "a.sym"; }'),
    ),
    "unmatched_brace": (
        "unmatched '}'",
        ("}", "x = 1; }"),
    ),
    "trailing_comma": (
        "trailing ',' before {found}",
        ("output a, ;", "return a, ;", "a, = f(x);", "def f(a,) { }"),
    ),
    "double_star": (
        "'**' does not unpack keyword arguments here; '*xs' unpacks a tuple or list, and "
        "keywords are written name=value",
        ("x = f(**a);", "x = f(a, **b);"),
    ),
}

_ORDER = {"a statement": 0, "an expression": 1, "','": 2, "')'": 3, "']'": 4, "'}'": 5}
_NAMED = {"NAME": "a name", "INT": "an integer", "FLOAT": "a number", "STRING": "a string",
          "FSTRING": "an f-string", "$END": "end of input"}
_EXPR_START = frozenset({"a name", "an integer", "a number", "a string", "an f-string", "'('",
                         "'['", "'-'", "'not'", "'True'", "'False'", "'None'"})
_OPERAND = frozenset({"a name", "an integer", "a number", "a string"})
_STMT_START = frozenset({"'param'", "'input'", "'output'", "'return'", "'def'", "'for'",
                         "'if'", "'with'"})
#: Tokens that would only continue the expression before the error; listing them drowns the
#: closing token the user forgot.
_CONTINUE = frozenset({"'+'", "'-'", "'*'", "'/'", "'//'", "'%'", "'=='", "'!='", "'<'",
                       "'<='", "'>'", "'>='", "'['", "'('", "'if'", "'and'", "'or'", "'for'",
                       "'as'", "'share'", "'with'"})


def _describe(terminal: str) -> str:
    """A terminal as users spell it: ``')'``, ``'param'``, ``a name``, ``end of input``."""
    if terminal in _NAMED:
        return _NAMED[terminal]
    try:
        pattern = _parser().get_terminal(terminal).pattern
    except KeyError:
        return terminal.lower()
    return f"'{pattern.value}'" if pattern.type == "str" else terminal.lower()


def _found(tok: Token) -> str:
    if tok.type == "$END":
        return "end of input"
    text = str(tok)
    return "'" + (text if len(text) <= 20 else text[:17] + "...") + "'"


def _join(items: Iterable[str]) -> str:
    order = sorted(items, key=lambda s: (_ORDER.get(s, 9), s))
    return order[0] if len(order) == 1 else ", ".join(order[:-1]) + " or " + order[-1]


def _shown(expected: set[str]) -> set[str]:
    """The expected tokens worth naming.

    At a statement start, "a statement" (and '}' in a block); where an operand may start, "an
    expression" plus any closing token; elsewhere every token except those that would only
    continue the expression before the error (operators, '(', '['), which drown the closing
    token the user forgot.
    """
    if _STMT_START <= expected:
        return {"a statement"} | (expected & {"'}'"})
    if _OPERAND <= expected:
        return {"an expression"} | (expected - _EXPR_START - _CONTINUE)
    shown = expected - _CONTINUE
    if "'='" in shown and shown & {"')'", "']'"}:
        shown.discard("'='")  # '=' only because the argument could become a keyword
    return shown or expected


def _previous_token(text: str, pos: int) -> Token | None:
    """The last token that ends at or before ``pos``."""
    prev = None
    try:
        for tok in _parser().lex(text):
            if (tok.end_pos or 0) > pos:
                break
            prev = tok
    except UnexpectedInput:
        pass
    return prev


def _token_diagnostic(e: UnexpectedToken, text: str, file: str) -> Diagnostic:
    tok = e.token
    expected = {_describe(t) for t in (e.accepts or e.expected)}
    label = _known_mistake(e)
    if tok.type == "$END":
        line, col = tok.end_line or 1, tok.end_column or 1
        span = Span(file, line, col, line, col + 1)
    else:
        span = _tok_span(file, tok)
    if label is not None:
        return Diagnostic(KNOWN_MISTAKES[label][0].replace("{found}", _found(tok)), span)
    shown = _shown(expected)
    if "';'" in shown:
        end = len(text) if tok.type == "$END" else tok.start_pos or 0
        prev = _previous_token(text, end)
        if tok.type == "$END" or (prev is not None and (tok.line or 0) > (prev.end_line or 0)):
            where = prev or tok
            line, col = where.end_line or 1, where.end_column or 1
            after = f" after {_found(prev)}" if prev is not None else ""
            return Diagnostic(f"expected ';'{after}", Span(file, line, col, line, col + 1))
        shown = {"';'"}
    if not shown:
        return Diagnostic(f"unexpected {_found(tok)}", span)
    return Diagnostic(f"expected {_join(shown)} but found {_found(tok)}", span)


def _syntax_diagnostic(e: UnexpectedInput, text: str, file: str) -> Diagnostic:
    """One diagnostic for a lark error, in user spelling (see the module docstring)."""
    if isinstance(e, UnexpectedToken):
        return _token_diagnostic(e, text, file)
    line, col = e.line if e.line > 0 else 1, e.column if e.column > 0 else 1
    span = Span(file, line, col, line, col + 1)
    if isinstance(e, UnexpectedCharacters):
        char = e.char
        if char in "\"'":
            return Diagnostic("unterminated string", span)
        return Diagnostic(f"unexpected character {char!r}" if char.isprintable()
                          else f"unexpected character U+{ord(char):04X}", span)
    return Diagnostic("unexpected end of input", span)


def _by_position(e: UnexpectedInput) -> UnexpectedInput:
    """Compare errors by LALR state only: lark's ``ParserState`` equality also compares the stack
    depth, so ``f(a b)`` inside a definition would not match the same mistake at top level."""
    state = getattr(e.state, "position", e.state)
    e.state = state
    return e


@functools.cache
def _example_error(example: str) -> UnexpectedInput | None:
    try:
        _parser().parse(example, start="start")
    except UnexpectedInput as e:
        return _by_position(e)
    return None


def _raise_example(example: str) -> Tree:
    """``parse_fn`` for ``match_examples``: re-raise the cached error of ``example``."""
    err = _example_error(example)
    if err is None:
        raise AssertionError(f"known-mistake example parses: {example!r}")
    raise err


def _same_error(a: UnexpectedInput | None, b: UnexpectedToken) -> bool:
    return isinstance(a, UnexpectedToken) and a.state == b.state and a.token.type == b.token.type


def _known_mistake(e: UnexpectedToken) -> str | None:
    """The label of the known mistake in :data:`KNOWN_MISTAKES` that ``e`` is, if any."""
    e = _by_position(e)  # type: ignore[assignment]
    examples = {label: row[1] for label, row in KNOWN_MISTAKES.items()}
    label: str | None = e.match_examples(_raise_example, examples,
                                         token_type_match_fallback=True, use_accepts=True)
    # match_examples falls back to a parser-state-only match; a known mistake also needs the
    # same kind of token ('f(a;' is not 'f(a: 1)').
    if label is None or not any(_same_error(_example_error(x), e)
                                for x in KNOWN_MISTAKES[label][1]):
        return None
    return label


def parse(text: str, filename: str = "<string>") -> A.Module:
    """Parse one file of the network language into its syntax tree.

    Raises:
        DslError: a syntax error, located and worded for people.
    """
    try:
        tree = _parser().parse(text, start="start")
        body = _ToAst(filename, text).transform(tree)
    except UnexpectedInput as e:
        raise make_error([_syntax_diagnostic(e, text, filename)], {filename: text}) from None
    except VisitError as e:
        if isinstance(e.orig_exc, SymbolError):
            raise e.orig_exc from None
        raise
    except RecursionError:
        raise make_error([Diagnostic("expression nested too deeply", None, file=filename)],
                         {filename: text}) from None
    return A.Module(filename, text, body)


# -- public entry points --------------------------------------------------------------------------
def lower_text(text: str, params: Mapping[str, Any] | None = None, *,
               filename: str = "<string>", limits: Mapping[str, int] | None = None) -> Lowered:
    """Parse and lower ``text``; the result also has the parameter values and sources."""
    lowered = lower(parse(text, filename), params=params, parse=parse, limits=limits)
    for name, src in lowered.sources.items():  # so that later errors can show the line
        linecache.cache[name] = (len(src), None, src.splitlines(True), name)
    return lowered


def loads(text: str, params: Mapping[str, Any] | None = None, *,
          filename: str = "<string>", limits: Mapping[str, int] | None = None) -> Symbol:
    """The network written in ``text``.

    Args:
        text: source in the network language (docs/dsl.md).
        params: overrides of ``param`` defaults (``{"units": (3, 4, 6, 3)}``).
        filename: the name errors and node spans use; ``include`` paths are relative to it.
        limits: resource limits that replace the environment's or the defaults:
            ``max_steps`` (loop iterations and calls), ``max_nodes`` (graph nodes),
            ``max_value`` (characters or items of one value), ``max_digits`` (of an integer);
            for example ``{"max_steps": 1_000_000}`` (docs/dsl.md, "Limits").

    Raises:
        DslError: syntax or semantic errors, all of them (``err.report`` renders them); a
            limit passed; a bad limit value (here or in ``SUBLINEAR_DSL_MAX_*``).
    """
    return lower_text(text, params, filename=filename, limits=limits).symbol


def read_source(path: str) -> str:
    """The text of a network file. Raises OSError if unreadable, DslError if not UTF-8."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        diag = Diagnostic(f"the file is not UTF-8 text (byte {e.start})", None, file=path)
        raise make_error([diag], {}) from None


def load(path: str, params: Mapping[str, Any] | None = None, *,
         limits: Mapping[str, int] | None = None) -> Symbol:
    """The network in the file ``path`` (see :func:`loads`). Raises OSError if unreadable."""
    return loads(read_source(path), params, filename=path, limits=limits)


def format_error(err: BaseException) -> str:
    """An error as the compiler convention shows it: DSL errors with source line and caret.

    A :class:`DslError` gives its full report; a :class:`ShapeError` found at shape inference
    or bind time points back at the DSL line of its node (the source is remembered by
    :func:`loads`); anything else is ``error: message``.
    """
    report = getattr(err, "report", None)
    if isinstance(err, DslError) and isinstance(report, str):
        return report
    if isinstance(err, ShapeError) and err.span is not None:
        where = f"in operator '{err.node}' ({err.op}): " if err.node else ""
        source = "".join(linecache.getlines(err.span.file)) or None
        return format_span(source, err.span, where + err.message)
    return f"error: {err}"


def parse_param_value(text: str) -> Any:
    """A ``--param`` value: a literal of the language (``1600``, ``3,24,36,3`` is a tuple,
    ``0.5``, ``True``, ``"x"``) or, failing that, the text itself as a string."""
    try:
        expr = _ToAst("--param", text).transform(_parser().parse(f"({text})", start="expr"))
    except (UnexpectedInput, VisitError, SymbolError):
        return text
    value = _literal_value(expr)
    return text if value is _NOT_LITERAL else value


_NOT_LITERAL = object()


def _literal_value(e: A.Expr) -> Any:
    if isinstance(e, A.Const):
        return e.value
    if isinstance(e, A.Neg) and isinstance(e.operand, A.Const) \
            and isinstance(e.operand.value, (int, float)):
        return -e.operand.value
    if isinstance(e, (A.TupleExpr, A.ListExpr)):
        items = [_literal_value(x) for x in e.items]
        if any(x is _NOT_LITERAL for x in items):
            return _NOT_LITERAL
        return tuple(items) if isinstance(e, A.TupleExpr) else items
    return _NOT_LITERAL
