"""Plain values of the network language and the operations on them.

Values are Python objects: ``int``, ``float``, ``bool``, ``str``, ``None``, ``tuple``, ``list``,
``range`` and :class:`~symbol.symbol.Symbol`. This module holds everything that does not build
graph nodes: spelling values in messages (:func:`describe`), truth, arithmetic, comparison,
indexing, the builtins ``range``/``len``/``str``/``int``/``float``, and the typing of net
parameters given from the command line or the API. Errors are raised as :class:`Fault` (a
message and a span); the lowering turns them into diagnostics.
"""
from __future__ import annotations

import ast
import difflib
import operator
from typing import Any, Callable, Sequence

from .errors import Span
from .registry import Param
from .symbol import Symbol

__all__ = ["Fault", "POISON", "suggest", "describe", "kind", "literal", "to_str", "attr_str",
           "truth", "arith", "compare", "get_item", "BUILTINS", "coerce_param", "MAX_RANGE"]

#: Longest ``range`` a loop may run (a guard against a typo such as ``range(1000000000)``).
MAX_RANGE = 1_000_000


class Fault(Exception):
    """A user error found while lowering: a message and where it is."""

    def __init__(self, message: str, span: Span | None) -> None:
        super().__init__(message)
        self.message, self.span = message, span


def suggest(name: str, candidates: Sequence[str]) -> str:
    """``"; did you mean 'X'?"`` for the closest candidate, or ``""``.

    A different case (``convolution``) or a prefix (``Conv`` for ``Convolution``) wins over
    difflib's ratio, which prefers ``Concat`` for ``Conv``.
    """
    low = name.lower()
    same = [c for c in candidates if c.lower() == low]
    prefix = sorted((c for c in candidates if len(name) >= 3 and c.lower().startswith(low)),
                    key=len)
    hint = same or prefix or difflib.get_close_matches(name, list(candidates), n=1)
    return f"; did you mean '{hint[0]}'?" if hint else ""


class _Poison:
    """The value of an expression whose evaluation already reported an error.

    Every operation on it yields it again without a new message, so one mistake is reported
    once, not once per use.
    """

    def __repr__(self) -> str:
        return "<poison>"


POISON: Any = _Poison()


def literal(v: Any) -> str:
    """``v`` as it would be written in the language."""
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, tuple):
        return "(" + ", ".join(literal(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if isinstance(v, list):
        return "[" + ", ".join(literal(x) for x in v) + "]"
    if isinstance(v, Symbol):
        nodes = {e.node.name for e in v.outputs}
        return f"'{nodes.pop()}'" if len(nodes) == 1 else f"<group of {len(v)}>"
    if isinstance(v, float):
        return repr(v)
    return str(v)


_KINDS = ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
          (tuple, "tuple"), (list, "list"), (range, "range"), (Symbol, "symbol"))


def kind(v: Any) -> str:
    """The user-facing name of ``v``'s type."""
    for cls, name in _KINDS:
        if isinstance(v, cls):
            return name
    return "None" if v is None else type(v).__name__


def describe(v: Any) -> str:
    """``integer 3``, ``string "relu"``, ``symbol 'fc1'``, ``None`` (for messages)."""
    if v is None:
        return "None"
    text = literal(v)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind(v)} {text}"


def to_str(v: Any, span: Span) -> str:
    """``str(v)`` in the language (what f-strings and ``str()`` produce)."""
    if isinstance(v, Symbol):
        raise Fault(f"cannot convert {describe(v)} to a string", span)
    if isinstance(v, str):
        return v
    if isinstance(v, (tuple, list)):
        return Param.format(v) if isinstance(v, tuple) else literal(v)
    return literal(v)


def attr_str(key: str, v: Any, span: Span) -> str:
    """An attribute value as the string stored on the node (``mirror_stage = str(t)``)."""
    if isinstance(v, Symbol):
        raise Fault(f"attribute '{key}' must be a value, not {describe(v)}", span)
    return to_str(v, span)


def truth(v: Any, span: Span) -> bool:
    """Truth of a condition; a symbol has none."""
    if isinstance(v, Symbol):
        raise Fault(f"a condition cannot be a symbol ({describe(v)})", span)
    return bool(v)


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod,
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}
_NUMBER = (int, float)


def _check_repeat(op: str, a: Any, b: Any, span: Span) -> None:
    if op != "*":
        return
    seq, n = (a, b) if isinstance(a, (str, tuple, list)) else (b, a)
    if isinstance(seq, (str, tuple, list)) and isinstance(n, int) and len(seq) * n > MAX_RANGE:
        raise Fault(f"repetition makes more than {MAX_RANGE} items", span)


def arith(op: str, a: Any, b: Any, span: Span) -> Any:
    """``a op b`` on plain values (Python semantics; ``str``/tuple/list ``+`` concatenate)."""
    if isinstance(a, str) != isinstance(b, str) and op != "*" and op != "%":
        raise Fault(f"cannot apply '{op}' to {describe(a)} and {describe(b)}", span)
    _check_repeat(op, a, b, span)
    try:
        return _ARITH[op](a, b)
    except ZeroDivisionError:
        raise Fault("division by zero", span) from None
    except (TypeError, ValueError, OverflowError):
        raise Fault(f"cannot apply '{op}' to {describe(a)} and {describe(b)}", span) from None


def compare(op: str, a: Any, b: Any, span: Span) -> bool:
    """``a op b``; symbols cannot be compared."""
    for v in (a, b):
        if isinstance(v, Symbol):
            raise Fault(f"cannot compare {describe(v)}", span)
    try:
        return bool(_COMPARE[op](a, b))
    except TypeError:
        raise Fault(f"cannot compare {describe(a)} and {describe(b)} with '{op}'", span) from None


def get_item(base: Any, index: Any, span: Span) -> Any:
    """``base[index]``: an output of a symbol, or an item of a tuple, list or string."""
    if not isinstance(index, int) or isinstance(index, bool):
        raise Fault(f"an index must be an integer, got {describe(index)}", span)
    if isinstance(base, Symbol):
        n = len(base)
        if not -n <= index < n:
            raise Fault(f"index {index} out of range: {describe(base)} has {n} output"
                        + ("" if n == 1 else "s"), span)
        return Symbol([base.outputs[index]])
    if not isinstance(base, (tuple, list, str, range)):
        raise Fault(f"cannot index {describe(base)}", span)
    try:
        return base[index]
    except IndexError:
        raise Fault(f"index {index} out of range for {kind(base)} of {len(base)} items",
                    span) from None


# -- builtins (Variable, which builds a node, lives in the lowering) ------------------------------
def _int_arg(v: Any, span: Span, what: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise Fault(f"{what} must be an integer, got {describe(v)}", span)
    return v


def _range(args: Sequence[Any], spans: Sequence[Span], span: Span) -> range:
    if not 1 <= len(args) <= 3:
        raise Fault(f"range() takes 1 to 3 arguments, got {len(args)}", span)
    bounds = [_int_arg(a, s, "loop bound") for a, s in zip(args, spans, strict=True)]
    if len(bounds) == 3 and bounds[2] == 0:
        raise Fault("range() step must not be zero", spans[2])
    r = range(*bounds)
    if len(r) > MAX_RANGE:
        raise Fault(f"range of {len(r)} iterations is longer than the limit {MAX_RANGE}", span)
    return r


def _len(args: Sequence[Any], spans: Sequence[Span], span: Span) -> int:
    _arity("len", args, 1, span)
    v = args[0]
    if not isinstance(v, (tuple, list, str, range, Symbol)):
        raise Fault(f"len() needs a tuple, list, string or symbol, got {describe(v)}", spans[0])
    return len(v)


def _str(args: Sequence[Any], spans: Sequence[Span], span: Span) -> str:
    _arity("str", args, 1, span)
    return to_str(args[0], spans[0])


def _convert(name: str, cls: type) -> Callable[[Sequence[Any], Sequence[Span], Span], Any]:
    def convert(args: Sequence[Any], spans: Sequence[Span], span: Span) -> Any:
        _arity(name, args, 1, span)
        v = args[0]
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            try:
                return cls(v)
            except (ValueError, OverflowError):
                pass
        raise Fault(f"cannot convert {describe(v)} to {kind(cls())}", spans[0])
    return convert


def _arity(name: str, args: Sequence[Any], n: int, span: Span) -> None:
    if len(args) != n:
        raise Fault(f"{name}() takes {n} argument{'s' if n != 1 else ''}, got {len(args)}", span)


#: name -> (positional values, their spans, call span) -> value.
BUILTINS: dict[str, Callable[[Sequence[Any], Sequence[Span], Span], Any]] = {
    "range": _range, "len": _len, "str": _str, "int": _convert("int", int),
    "float": _convert("float", float),
}


# -- net parameters -------------------------------------------------------------------------------
def coerce_param(name: str, default: Any, given: Any, span: Span) -> Any:
    """``given`` (from ``--param`` or ``params=``) converted to the type of ``default``.

    Text is read as a literal where the default is not a string (``"1600"``, ``"3,24,36,3"``);
    an integer stands for a 1-tuple where the default is a tuple; an integer is accepted for a
    float; a number or boolean for a string.
    """
    if default is None or given is None:
        return given
    if isinstance(given, str) and not isinstance(default, str):
        given = _from_text(given)  # "1600", "3,24,36,3" as a command line passes them
    if isinstance(default, bool) or isinstance(given, bool):
        ok = isinstance(default, bool) and isinstance(given, bool)
    elif isinstance(default, float):
        ok = isinstance(given, _NUMBER)
        given = float(given) if ok else given
    elif isinstance(default, int):
        ok = isinstance(given, int)
    elif isinstance(default, str):
        ok = isinstance(given, (str, int, float))
        given = to_str(given, span) if ok else given
    elif isinstance(default, (tuple, list)):
        if isinstance(given, int):
            given = (given,)
        ok = isinstance(given, (tuple, list))
        given = type(default)(given) if ok else given
    else:
        ok = type(default) is type(given)
    if not ok:
        raise Fault(f"parameter '{name}' is {_article(kind(default))} (default "
                    f"{literal(default)}), but was given {describe(given)}", span)
    return given


def _from_text(text: str) -> Any:
    """A literal written as text (``1600``, ``3,24,36,3``, ``0.5``, ``True``), else the text."""
    try:
        return ast.literal_eval(f"({text})")
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return text


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word
