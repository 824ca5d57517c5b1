"""Plain values of the network language and the operations on them.

Values are Python objects: ``int``, ``float``, ``bool``, ``str``, ``None``, ``tuple``, ``list``,
``range`` and :class:`~symbol.symbol.Symbol`. This module holds everything that does not build
graph nodes: spelling values in messages (:func:`describe`), truth, arithmetic, comparison,
indexing, the builtins ``range``/``len``/``str``/``int``/``float``, and the typing of net
parameters given from the command line or the API. Errors are raised as :class:`Fault` (a
message and a span); the lowering turns them into diagnostics.

It also holds the resource limits of one lowering (:class:`Limits`, read from the environment by
:func:`read_limits`) and their accounting (:class:`Budget`): every value an operation makes is
checked against them *before* the expensive part runs (``s + s`` compares lengths first, ``x * x``
bit lengths), so a runaway file stops within a fraction of a second with the limit's name.
"""
from __future__ import annotations

import ast
import difflib
import math
import operator
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from .dsl_ast import Diagnostic, make_error
from .errors import Span
from .registry import Param
from .symbol import Symbol

__all__ = ["Fault", "LimitFault", "POISON", "suggest", "describe", "kind", "literal", "to_str",
           "attr_str", "truth", "arith", "compare", "get_item", "BUILTINS", "coerce_param",
           "Limits", "LIMITS", "WORK_FACTOR", "read_limits", "Budget"]


class Fault(Exception):
    """A user error found while lowering: a message and where it is."""

    def __init__(self, message: str, span: Span | None) -> None:
        super().__init__(message)
        self.message, self.span = message, span


class LimitFault(Fault):
    """A resource limit of the whole file was passed: report it and stop lowering."""


# -- resource limits ------------------------------------------------------------------------------
#: Limit name -> (environment variable, default). The defaults admit the largest shipped
#: examples with room to spare (the 1600-step LSTM and GRU run about 14,400 steps and create
#: 92,827 and 112,031 nodes).
#: A runaway loop passes ``max_steps`` in well under a second and a value is refused before it
#: is made; reaching ``max_nodes`` takes seconds, as building a node costs about 40 us.
LIMITS: dict[str, tuple[str, int]] = {
    "max_steps": ("SUBLINEAR_DSL_MAX_STEPS", 50_000),
    "max_nodes": ("SUBLINEAR_DSL_MAX_NODES", 200_000),
    "max_value": ("SUBLINEAR_DSL_MAX_VALUE", 1_000_000),
    "max_digits": ("SUBLINEAR_DSL_MAX_DIGITS", 4_300),
}
#: The strings, tuples and lists one file builds or compares may have this many times
#: ``max_value`` items in all: this bounds quadratic loops such as ``xs = xs + [x]``.
WORK_FACTOR = 10


@dataclass(frozen=True)
class Limits:
    """The resource limits of one lowering (defaults and variables in :data:`LIMITS`).

    Attributes:
        max_steps: loop iterations (list comprehensions included) and definition calls.
        max_nodes: graph nodes created, variables included.
        max_value: characters of a string; items of a tuple, list or range.
        max_digits: decimal digits of an integer (4,300 is also Python's limit for printing one).
        given: the limits the caller set with ``limits=`` (messages name those, not the
            environment variable).
    """

    max_steps: int = LIMITS["max_steps"][1]
    max_nodes: int = LIMITS["max_nodes"][1]
    max_value: int = LIMITS["max_value"][1]
    max_digits: int = LIMITS["max_digits"][1]
    given: frozenset[str] = frozenset()

    def hint(self, name: str, factor: int = 1) -> str:
        """``(limit SUBLINEAR_DSL_MAX_STEPS; set it higher to allow more)``."""
        where = f"limits['{name}']" if name in self.given else LIMITS[name][0]
        times = f"{factor} times " if factor != 1 else ""
        return f"(limit {times}{where}; set it higher to allow more)"


def read_limits(given: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> Limits:
    """The limits of a lowering: ``given`` (``{"max_steps": 10**6}``), else the environment
    variables of :data:`LIMITS` (an empty one counts as unset), else the defaults.

    Raises:
        DslError: an unknown limit name, or a value that is not a positive integer (one
            diagnostic per bad value).
    """
    env = os.environ if environ is None else environ
    values: dict[str, int] = {}
    problems: list[str] = []
    for name, (var, default) in LIMITS.items():
        text = env.get(var, "").strip()
        values[name] = _limit_value(text, default, f"environment variable {var}", problems)
    for name, v in (given or {}).items():
        if name not in LIMITS:
            problems.append(f"unknown limit '{name}'" + suggest(name, list(LIMITS))
                            + f" (limits: {', '.join(LIMITS)})")
        else:
            values[name] = _limit_value(v, values[name], f"limit '{name}'", problems)
    if problems:
        raise make_error([Diagnostic(p, None) for p in problems], {})
    return Limits(**values, given=frozenset(given or ()))


def _limit_value(v: Any, default: int, what: str, problems: list[str]) -> int:
    shown = f"'{v}'" if isinstance(v, str) else repr(v)
    if isinstance(v, str):
        if not v:
            return default
        try:
            v = int(v.replace(",", ""))
        except ValueError:
            pass
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    problems.append(f"{what} must be a positive integer such as {default:_}, got {shown}")
    return default


class Budget:
    """What one lowering has spent of its :class:`Limits`.

    Per value: :meth:`items` and :meth:`integer` raise :class:`Fault` (the statement fails, the
    file goes on). Per file: :meth:`step`, :meth:`node` and the work of :meth:`items` raise
    :class:`LimitFault` (lowering stops).
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps = self.nodes = self.work = 0
        self._work_limit = limits.max_value * WORK_FACTOR
        # |n| < 2**_bits_ok certainly has at most max_digits digits; |n| >= 2**_bits_bad certainly
        # has more; only between the two is 10**max_digits computed (once).
        self._bits_ok = int(limits.max_digits / math.log10(2))
        self._bits_bad = self._bits_ok + 2
        self._int_bound: int | None = None

    def step(self, span: Span) -> None:
        """One loop iteration or definition call."""
        self.steps += 1
        if self.steps > self.limits.max_steps:
            raise LimitFault(f"the file runs more than {self.limits.max_steps:,} loop iterations "
                             f"and calls {self.limits.hint('max_steps')}", span)

    def node(self, span: Span) -> None:
        """One graph node about to be created."""
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise LimitFault(f"the file creates more than {self.limits.max_nodes:,} graph nodes "
                             f"{self.limits.hint('max_nodes')}", span)

    def items(self, what: str, n: int, span: Span, *, work: bool = True) -> None:
        """A value of ``n`` items (``what``: ``string``, ``list``, ...) is about to be made."""
        limit = self.limits.max_value
        if n > limit:
            unit = "characters" if what == "string" else "items"
            raise Fault(f"this makes a {what} of more than {limit:,} {unit} "
                        f"{self.limits.hint('max_value')}", span)
        if work:
            self.charge(n, span)

    def charge(self, n: int, span: Span) -> None:
        """``n`` items of strings, tuples or lists copied or compared."""
        self.work += n
        if self.work > self._work_limit:
            raise LimitFault(f"the file copies and compares more than {self._work_limit:,} items "
                             f"of strings, tuples and lists "
                             f"{self.limits.hint('max_value', WORK_FACTOR)}", span)

    def integer(self, n: int, span: Span, *, min_bits: int | None = None) -> None:
        """An integer ``n`` was made; or, with ``min_bits``, one of at least that many bits is
        about to be made."""
        if min_bits is not None:
            if min_bits < self._bits_bad:
                return
        elif abs(n).bit_length() <= self._bits_ok:
            return
        elif abs(n).bit_length() < self._bits_bad:
            if self._int_bound is None:
                self._int_bound = 10 ** self.limits.max_digits
            if abs(n) < self._int_bound:
                return
        raise Fault(f"this makes an integer of more than {self.limits.max_digits:,} digits "
                    f"{self.limits.hint('max_digits')}", span)

    def value(self, v: Any, span: Span) -> Any:
        """Check the size of a value just made (:meth:`before` charged its work); returns it."""
        if isinstance(v, int) and not isinstance(v, bool):
            self.integer(v, span)
        elif isinstance(v, (str, tuple, list)):
            self.items(kind(v), len(v), span, work=False)
        return v

    def before(self, op: str, a: Any, b: Any, span: Span) -> None:
        """Refuse ``a op b`` before computing it if its result would pass a limit."""
        if op == "+" and isinstance(a, (str, tuple, list)) and type(a) is type(b):
            self.items(kind(a), len(a) + len(b), span)
        elif op == "*":
            seq, n = (a, b) if isinstance(a, (str, tuple, list)) else (b, a)
            if isinstance(seq, (str, tuple, list)) and isinstance(n, int):
                self.items(kind(seq), len(seq) * max(n, 0), span)
            elif _is_int(a) and _is_int(b) and a and b:
                # |a*b| >= 2**(bits(a) + bits(b) - 2): it has at least bits(a) + bits(b) - 1 bits
                self.integer(0, span, min_bits=abs(a).bit_length() + abs(b).bit_length() - 1)
        elif op == "%" and isinstance(a, str):
            self._format_widths(a, b, span)
            self.text(b, span)

    def _format_widths(self, fmt: str, args: Any, span: Span) -> None:
        """``"%9999999999d" % 1`` would allocate the width before any check of the result."""
        widths = [int(w) for m in re.finditer(r"%[-+ #0]*(\d*)(?:\.(\d*))?", fmt)
                  for w in m.groups() if w]
        if "*" in fmt:
            widths += [abs(x) for x in (args if isinstance(args, tuple) else (args,))
                       if _is_int(x)]
        if widths and max(widths) > self.limits.max_value:
            self.items("string", max(widths), span)

    def text(self, v: Any, span: Span, *, compare: bool = False) -> None:
        """Before a tuple or list is written out (``str``, f-strings, attributes) or compared:
        refuse one too large (``[[0] * 1000] * 1000`` is small, written out it is not) or one
        that contains itself; charge the rest as work."""
        if not isinstance(v, (tuple, list)):
            return
        size = _text_size(v, self.limits.max_value)
        if size < 0:
            raise Fault(f"cannot {'compare' if compare else 'write out'} {describe(v)}: it "
                        "contains itself", span)
        if size > self.limits.max_value:
            what = f"compare {kind(v)}s" if compare else f"write out a {kind(v)}"
            raise Fault(f"cannot {what} of more than {self.limits.max_value:,} characters "
                        f"{self.limits.hint('max_value')}", span)
        self.charge(size, span)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _text_size(v: Any, cap: int) -> int:
    """About the length of ``v`` written out (at least 2 per item), counted until it passes
    ``cap``; -1 if ``v`` contains itself. Iterative: values may nest deeper than Python's stack."""
    total = 0
    path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(v, False)]
    while stack:
        x, leaving = stack.pop()
        if leaving:
            path.discard(id(x))
        elif isinstance(x, (tuple, list)):
            if id(x) in path:
                return -1
            total += 2 + 2 * len(x)
            if total > cap:
                return total
            path.add(id(x))
            stack.append((x, True))
            stack.extend((y, False) for y in reversed(x))
        else:
            total += len(x) if isinstance(x, str) else 8
            if total > cap:
                return total
    return total


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


def literal(v: Any, limit: int | None = None) -> str:
    """``v`` as it would be written in the language; a list that contains itself is written
    ``[...]``. With ``limit``, about the first ``limit`` characters only (for messages: cheap
    however large ``v`` is)."""
    return _literal(v, math.inf if limit is None else limit, set())


def _literal(v: Any, limit: float, path: set[int]) -> str:
    if isinstance(v, str):
        cut = "" if len(v) <= limit else "..."
        v = v[:int(limit)] if cut else v
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"' + cut
    if isinstance(v, (tuple, list)):
        return _literal_items(v, limit, path)
    if isinstance(v, Symbol):
        nodes = {e.node.name for e in v.outputs}
        return f"'{nodes.pop()}'" if len(nodes) == 1 else f"<group of {len(v)}>"
    if isinstance(v, float):
        return repr(v)
    try:
        return str(v)
    except ValueError:  # an integer beyond Python's limit for printing (sys.int_info)
        return f"<integer of {abs(v).bit_length():,} bits>"


def _literal_items(v: tuple[Any, ...] | list[Any], limit: float, path: set[int]) -> str:
    opening, closing = ("(", ")") if isinstance(v, tuple) else ("[", "]")
    if id(v) in path or limit <= 0:
        return opening + "..." + closing
    path.add(id(v))
    parts: list[str] = []
    size = 1
    for x in v:
        if size > limit:
            parts.append("...")
            break
        parts.append(_literal(x, limit - size, path))
        size += len(parts[-1]) + 2
    path.discard(id(v))
    return opening + ", ".join(parts) + ("," if len(v) == 1 and opening == "(" else "") + closing


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
    text = literal(v, 40)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{kind(v)} {text}"


def to_str(v: Any, span: Span, budget: Budget | None = None) -> str:
    """``str(v)`` in the language (what f-strings and ``str()`` produce); ``budget`` checks the
    size of the text before and after it is made."""
    if isinstance(v, Symbol):
        raise Fault(f"cannot convert {describe(v)} to a string", span)
    if isinstance(v, str):
        return v
    if budget is not None:
        budget.text(v, span)
    try:
        text = Param.format(v) if isinstance(v, tuple) else literal(v)
    except ValueError:  # Python's limit for printing integers (sys.int_info)
        raise Fault(f"cannot convert {describe(v)} to a string: Python prints integers of at "
                    "most 4,300 digits (PYTHONINTMAXSTRDIGITS)", span) from None
    if budget is not None:
        budget.items("string", len(text), span, work=False)
    return text


def attr_str(key: str, v: Any, span: Span, budget: Budget | None = None) -> str:
    """An attribute value as the string stored on the node (``mirror_stage = str(t)``)."""
    if isinstance(v, Symbol):
        raise Fault(f"attribute '{key}' must be a value, not {describe(v)}", span)
    return to_str(v, span, budget)


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


def arith(op: str, a: Any, b: Any, span: Span, budget: Budget) -> Any:
    """``a op b`` on plain values (Python semantics; ``str``/tuple/list ``+`` concatenate);
    ``budget`` refuses a result too large before it is computed."""
    if isinstance(a, str) != isinstance(b, str) and op != "*" and op != "%":
        raise Fault(f"cannot apply '{op}' to {describe(a)} and {describe(b)}", span)
    budget.before(op, a, b, span)
    try:
        result = _ARITH[op](a, b)
    except ZeroDivisionError:
        raise Fault("division by zero", span) from None
    except (TypeError, ValueError, OverflowError):
        raise Fault(f"cannot apply '{op}' to {describe(a)} and {describe(b)}", span) from None
    return budget.value(result, span)


def compare(op: str, a: Any, b: Any, span: Span, budget: Budget) -> bool:
    """``a op b``; symbols cannot be compared."""
    for v in (a, b):
        if isinstance(v, Symbol):
            raise Fault(f"cannot compare {describe(v)}", span)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        budget.text(a, span, compare=True)
        budget.text(b, span, compare=True)
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


def _range(args: Sequence[Any], spans: Sequence[Span], span: Span, budget: Budget) -> range:
    if not 1 <= len(args) <= 3:
        raise Fault(f"range() takes 1 to 3 arguments, got {len(args)}", span)
    bounds = [_int_arg(a, s, "loop bound") for a, s in zip(args, spans, strict=True)]
    if len(bounds) == 3 and bounds[2] == 0:
        raise Fault("range() step must not be zero", spans[2])
    r = range(*bounds)
    budget.items("range", len(r), span, work=False)
    return r


def _len(args: Sequence[Any], spans: Sequence[Span], span: Span, budget: Budget) -> int:
    _arity("len", args, 1, span)
    v = args[0]
    if not isinstance(v, (tuple, list, str, range, Symbol)):
        raise Fault(f"len() needs a tuple, list, string or symbol, got {describe(v)}", spans[0])
    return len(v)


def _str(args: Sequence[Any], spans: Sequence[Span], span: Span, budget: Budget) -> str:
    _arity("str", args, 1, span)
    text = to_str(args[0], spans[0], budget)
    budget.charge(len(text), span)
    return text


Builtin = Callable[[Sequence[Any], Sequence[Span], Span, "Budget"], Any]


def _convert(name: str, cls: type) -> Builtin:
    def convert(args: Sequence[Any], spans: Sequence[Span], span: Span, budget: Budget) -> Any:
        _arity(name, args, 1, span)
        v = args[0]
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            try:
                return budget.value(cls(v), span)
            except (ValueError, OverflowError):
                pass
        raise Fault(f"cannot convert {describe(v)} to {kind(cls())}", spans[0])
    return convert


def _arity(name: str, args: Sequence[Any], n: int, span: Span) -> None:
    if len(args) != n:
        raise Fault(f"{name}() takes {n} argument{'s' if n != 1 else ''}, got {len(args)}", span)


#: name -> (positional values, their spans, call span, budget) -> value.
BUILTINS: dict[str, Builtin] = {
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
