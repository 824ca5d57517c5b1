"""Lowering: run a parsed network file and build its graph.

``lower(module, params=...)`` walks the syntax tree of :mod:`symbol.dsl_ast` in plain Python and
creates graph nodes with :func:`~symbol.graph.make_node` (every node gets the ``span`` of the
source that created it), exactly as the Python API would: same names, attribute strings,
automatic weight variables and attribute scopes.

Algorithm:
  1. run the statements of the file in order (``include`` runs another file in place, once);
     ``param`` binds a default or the caller's override; ``def`` records a definition;
  2. an operator call checks its attributes against the registry and builds one node named
     ``<prefix><local>``, where ``local`` is the assignment target, the ``as`` name or an
     automatic ``<op><n>``, and ``prefix`` is the chain of definition-call names
     (``stage1_unit1_``); missing weights become variables ``<node>_<arg>``, or
     ``<share>_<arg>`` under ``share`` (created once, then reused);
  3. a user error raises :class:`~symbol.dsl_values.Fault` (message + span); the statement
     that raised it is recorded, its targets are bound to ``POISON`` (which silences follow-on
     errors) and lowering goes on with the next statement; a loop stops after the first
     iteration that reported an error; passing a limit of the whole file (loop iterations and
     calls, graph nodes, total work: :class:`~symbol.dsl_values.Limits`) raises a
     :class:`~symbol.dsl_values.LimitFault`, which stops lowering at once;
  4. at the end, all diagnostics (at most ``MAX_ERRORS``) are raised together as one
     :class:`~symbol.errors.DslError`; otherwise the ``output`` statements give the symbol.
Complexity: linear in the number of statements executed; each node costs one attribute parse,
O(1) dictionary work and no copy of any scope.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple, Sequence

from . import dsl_ast as A
from .dsl_ast import Diagnostic, make_error
from .dsl_values import (BUILTINS, POISON, Budget, Fault, LimitFault, arith, attr_str,
                         coerce_param, compare, describe, get_item, kind, read_limits, suggest,
                         to_str, truth)
from .dsl_nodes import Naming, NodeBuilder, OpCall, as_shape
from .errors import DslError, Span
from .graph import Entry
from .registry import OPS, OpDef, Param, all_names, canonical_name
from .symbol import Symbol

__all__ = ["lower", "Lowered", "MAX_ERRORS", "MAX_DEPTH"]

MAX_ERRORS = 20
MAX_DEPTH = 64
_VARIABLE_ARGS = ("shape", "dtype", "init", "lr_mult", "wd_mult")
_MISSING = object()
#: Expressions that never create a node themselves: an assignment of one needs no Naming.
_NAMELESS = frozenset({A.Const, A.Name, A.FString, A.TupleExpr, A.ListExpr, A.ListComp,
                       A.Compare, A.BoolOp, A.Not})
_NO_ATTRS: dict[str, str] = {}


@dataclass(frozen=True)
class Lowered:
    """The result of lowering: the network, its parameter values and every source read."""

    symbol: Symbol
    params: dict[str, Any]
    sources: dict[str, str]


class _Silent(Exception):
    """An operand is POISON: the error was reported already; abandon the statement quietly."""


class _Stop(Exception):
    """Too many errors: stop lowering."""


class _Arg(NamedTuple):
    """A positional argument's value; an item of a list has its position ``item`` and ``of``
    (for messages: ``item 2 of the unpacked list``)."""

    value: Any
    span: Span
    item: int | None = None
    of: str = ""


class _Return(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


class _Call(NamedTuple):
    """One link of a call chain, innermost first: definition name, call site, the caller's."""

    name: str
    span: Span
    outer: _Call | None


@dataclass(slots=True)
class _Frame:
    """One activation: variables, name prefix, share prefix, attribute scope, call chain."""

    vars: dict[str, Any]
    prefix: str
    share: str | None
    attrs: dict[str, str]
    depth: int
    calls: _Call | None
    file: str


def _notes(calls: _Call | None) -> tuple[tuple[str, Span], ...]:
    """The call chain as notes: repeats folded (recursion), at most five."""
    folded: list[tuple[tuple[str, Span], int]] = []
    while calls is not None:
        call = (f"in call to '{calls.name}' from here", calls.span)
        calls = calls.outer
        if folded and folded[-1][0] == call:
            folded[-1] = (call, folded[-1][1] + 1)
        else:
            folded.append((call, 1))
    notes = tuple((msg + (f" ({n} times)" if n > 1 else ""), span) for (msg, span), n in folded)
    return notes[:4] + notes[-1:] if len(notes) > 5 else notes


def lower(module: A.Module, *, params: Mapping[str, Any] | None = None,
          parse: Callable[[str, str], A.Module],
          limits: Mapping[str, int] | None = None) -> Lowered:
    """Build the network of ``module``.

    Args:
        module: the parsed main file.
        params: overrides of ``param`` defaults, by name.
        parse: ``(text, filename) -> Module``, used for ``include``.
        limits: resource limits by name (``{"max_steps": 10**6}``); the others come from the
            environment or the defaults (:func:`~symbol.dsl_values.read_limits`).

    Raises:
        DslError: every error found, together; or a bad limit value.
    """
    return _Lowerer(module, dict(params or {}), parse, Budget(read_limits(limits))).run()


class _Lowerer:
    def __init__(self, module: A.Module, overrides: dict[str, Any],
                 parse: Callable[[str, str], A.Module], budget: Budget) -> None:
        self.module, self.overrides, self.parse = module, overrides, parse
        self.budget = budget
        self.sources = {module.file: module.source}
        self.globals: dict[str, Any] = {}
        self.params: dict[str, Any] = {}
        self.param_spans: dict[str, Span] = {}
        self.defs: dict[str, A.DefStmt] = {}
        self.build = NodeBuilder(budget)
        self.outputs: list[Entry] = []
        self.errors: list[Diagnostic] = []
        self.seen: set[tuple[str, Span | None]] = set()
        self.including: list[tuple[str, str]] = [(os.path.realpath(module.file), module.file)]
        self.included: set[str] = set()
        self.opdefs: dict[str, OpDef | None] = {}
        self.stmt: dict[type, Callable[[Any, _Frame], None]] = {
            A.ParamStmt: self._param, A.InputStmt: self._input, A.AssignStmt: self._assign,
            A.OutputStmt: self._output, A.ReturnStmt: self._return, A.DefStmt: self._def,
            A.ForStmt: self._for, A.IfStmt: self._if, A.WithStmt: self._with,
            A.IncludeStmt: self._include}
        self.expr: dict[type, Callable[[Any, _Frame, Naming | None], Any]] = {
            A.Const: self._const, A.Name: self._name, A.FString: self._fstring,
            A.TupleExpr: self._tuple, A.ListExpr: self._list, A.ListComp: self._listcomp,
            A.Index: self._index, A.Call: self._call, A.BinOp: self._binop, A.Neg: self._neg,
            A.Not: self._not, A.BoolOp: self._boolop, A.Compare: self._compare,
            A.IfExp: self._ifexp}

    def run(self) -> Lowered:
        frame = _Frame(self.globals, "", None, {}, 0, None, self.module.file)
        try:
            self._block(self.module.body, frame)
        except _Stop:
            pass
        except RecursionError:  # Python's stack, before MAX_DEPTH: deep expressions in calls
            self.errors.append(Diagnostic("definitions and expressions nest too deeply", None,
                                          file=self.module.file))
        self._check_overrides()
        if not self.outputs and not self.errors:
            self.errors.append(Diagnostic("the network has no 'output' statement", None,
                                          file=self.module.file))
        if self.errors:
            raise make_error(self.errors, self.sources)
        return Lowered(Symbol(self.outputs), dict(self.params), self.sources)

    # -- statements -------------------------------------------------------------------------------
    def _block(self, stmts: Sequence[A.Stmt], frame: _Frame) -> None:
        for stmt in stmts:
            try:
                self.stmt[type(stmt)](stmt, frame)
            except LimitFault as f:
                self.errors.append(Diagnostic(f.message, f.span, _notes(frame.calls)))
                raise _Stop from None
            except Fault as f:
                if (f.message, f.span) not in self.seen:  # the notes cost O(depth): only once
                    self._report(Diagnostic(f.message, f.span, _notes(frame.calls)))
                self._poison(stmt, frame)
            except _Silent:
                self._poison(stmt, frame)

    def _report(self, diag: Diagnostic) -> None:
        key = (diag.message, diag.span)
        if key in self.seen:
            return
        self.seen.add(key)
        self.errors.append(diag)
        if len(self.errors) >= MAX_ERRORS:
            raise _Stop

    def _poison(self, stmt: A.Stmt, frame: _Frame) -> None:
        if isinstance(stmt, A.ReturnStmt) and frame.depth:
            raise _Return(POISON)  # the call's value is unknown: silence its users
        if isinstance(stmt, A.AssignStmt):
            for t in stmt.targets:
                if isinstance(t, A.Name):
                    frame.vars[t.id] = POISON
        elif isinstance(stmt, (A.InputStmt, A.ParamStmt)):
            frame.vars[stmt.name] = POISON

    def _param(self, st: A.ParamStmt, frame: _Frame) -> None:
        if frame.depth:
            raise Fault("'param' is only allowed at the top level of a file", st.span)
        if st.name in self.param_spans:
            raise Fault(f"parameter '{st.name}' is declared twice (first at "
                        f"{self.param_spans[st.name]})", st.name_span)
        self.param_spans[st.name] = st.name_span
        value = self._value(st.value, frame)
        if isinstance(value, Symbol):
            raise Fault(f"a parameter must be a value, not {describe(value)}", st.value.span)
        if st.name in self.overrides:
            value = coerce_param(st.name, value, self.overrides[st.name], st.name_span)
        self.globals[st.name] = self.params[st.name] = value

    def _input(self, st: A.InputStmt, frame: _Frame) -> None:
        if st.mods.share is not None:
            raise Fault("'share' applies to operator and definition calls",
                        st.mods.share.span)
        name = st.name if st.mods.name is None else self._node_name(st.mods.name, frame)
        attrs = {**frame.attrs, **self._attrs(st.mods.attrs, frame)}
        if st.shape is not None:
            attrs["__shape__"] = Param.format(self._shape(st.shape, frame))
        node = self.build.variable(frame.prefix + name, attrs, st.name_span)
        frame.vars[st.name] = Symbol([Entry(node, 0)])

    def _assign(self, st: A.AssignStmt, frame: _Frame) -> None:
        if st.mods is A.NO_MODIFIERS and type(st.value) in _NAMELESS:
            self._bind(st.targets, self._value(st.value, frame), frame, st.span)
            return
        naming = self._naming(st.targets, st.mods, frame)
        value = self._eval(st.value, frame, naming)
        if value is POISON:
            raise _Silent
        if st.mods is not A.NO_MODIFIERS and naming is not None and not naming.used:
            self._unused_modifiers(st.mods)
        self._bind(st.targets, value, frame, st.span)

    def _output(self, st: A.OutputStmt, frame: _Frame) -> None:
        for expr in st.values:
            v = self._value(expr, frame)
            if not isinstance(v, Symbol):
                raise Fault(f"'output' needs symbols, got {describe(v)}", expr.span)
            self.outputs.extend(v.outputs)

    def _return(self, st: A.ReturnStmt, frame: _Frame) -> None:
        if not frame.depth:
            raise Fault("'return' outside a definition", st.span)
        if len(st.values) == 1:
            raise _Return(self._value(st.values[0], frame))
        raise _Return(tuple([self._value(e, frame) for e in st.values]))

    def _def(self, st: A.DefStmt, frame: _Frame) -> None:
        if frame.depth:
            raise Fault("definitions are only allowed at the top level", st.name_span)
        if st.name in self.defs:
            raise Fault(f"definition '{st.name}' is already defined at "
                        f"{self.defs[st.name].name_span}", st.name_span)
        if st.name in BUILTINS or st.name == "Variable" or self._opdef(st.name) is not None:
            what = "an operator" if self._opdef(st.name) else "a builtin"
            raise Fault(f"'{st.name}' is {what}; choose another name for the definition",
                        st.name_span)
        for i, p in enumerate(st.params):
            if p in st.params[:i]:
                raise Fault(f"parameter '{p}' appears twice in definition '{st.name}'",
                            st.name_span)
        self.defs[st.name] = st

    def _for(self, st: A.ForStmt, frame: _Frame) -> None:
        items = self._iterable(st.iter, frame)
        for v in items:
            self.budget.step(st.span)
            frame.vars[st.var] = v
            before = len(self.errors)
            self._block(st.body, frame)
            if len(self.errors) > before:
                break  # one report per mistake, not one per iteration

    def _if(self, st: A.IfStmt, frame: _Frame) -> None:
        cond = truth(self._value(st.cond, frame), st.cond.span)
        self._block(st.body if cond else st.orelse, frame)

    def _with(self, st: A.WithStmt, frame: _Frame) -> None:
        outer = frame.attrs
        frame.attrs = {**outer, **self._attrs(st.attrs, frame)}
        try:
            self._block(st.body, frame)
        finally:
            frame.attrs = outer

    def _include(self, st: A.IncludeStmt, frame: _Frame) -> None:
        path = os.path.normpath(os.path.join(os.path.dirname(frame.file), st.path))
        real = os.path.realpath(path)
        chain = [shown for r, shown in self.including]
        if real in (r for r, _ in self.including):
            raise Fault("include cycle: " + " -> ".join([*chain, path]), st.span)
        if real in self.included:
            return
        self.included.add(real)
        module = self._read(path, st)
        if module is None:
            return
        self.including.append((real, path))
        outer, frame.file = frame.file, path
        try:
            self._block(module.body, frame)
        finally:
            frame.file = outer
            self.including.pop()

    def _read(self, path: str, st: A.IncludeStmt) -> A.Module | None:
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
            raise Fault(f"cannot read '{st.path}': {reason}", st.span) from None
        self.sources[path] = text
        try:
            return self.parse(text, path)
        except DslError as e:
            for diag in getattr(e, "diagnostics", ()):
                self._report(diag)
            return None

    def _check_overrides(self) -> None:
        for name in self.overrides:
            if name not in self.param_spans:
                self.errors.append(Diagnostic(
                    f"unknown parameter '{name}'" + suggest(name, list(self.param_spans)), None,
                    file=self.module.file))

    # -- assignment helpers -----------------------------------------------------------------------
    def _naming(self, targets: Sequence[A.Expr], mods: A.Modifiers,
                frame: _Frame) -> Naming | None:
        local: str | None = None
        span: Span | None = None
        if mods.name is not None:
            local, span = self._node_name(mods.name, frame), mods.name.span
        elif len(targets) == 1 and isinstance(targets[0], A.Name):
            local, span = targets[0].id, targets[0].span
        share = None if mods.share is None else self._node_name(mods.share, frame)
        attrs = self._attrs(mods.attrs, frame) if mods.attrs else _NO_ATTRS
        if local is None and share is None and not attrs:
            return None
        return Naming(local, span, share, attrs)

    def _unused_modifiers(self, mods: A.Modifiers) -> None:
        for word, expr in (("as", mods.name), ("share", mods.share)):
            if expr is not None:
                raise Fault(f"'{word}' applies to the node a call creates, but this "
                            "expression creates none", expr.span)
        raise Fault("'with' applies to the node a call creates, but this expression creates "
                    "none", mods.attrs[0].span)

    def _bind(self, targets: Sequence[A.Expr], value: Any, frame: _Frame, span: Span) -> None:
        if len(targets) == 1:
            self._store(targets[0], value, frame)
            return
        if isinstance(value, Symbol):
            values: list[Any] = list(value)
        elif isinstance(value, (tuple, list)):
            values = list(value)
        else:
            raise Fault(f"cannot unpack {describe(value)} into {len(targets)} names", span)
        if len(values) != len(targets):
            raise Fault(f"expected {len(targets)} values to unpack, got {len(values)}", span)
        for t, v in zip(targets, values, strict=True):
            self._store(t, v, frame)

    def _store(self, target: A.Expr, value: Any, frame: _Frame) -> None:
        if isinstance(target, A.Name):
            frame.vars[target.id] = value
            return
        if not isinstance(target, A.Index):
            raise Fault("cannot assign to this expression; assign to a name or a list item",
                        target.span)
        container = self._value(target.base, frame)
        index = self._value(target.index, frame)
        get_item(container, index, target.span)  # checks the index
        if not isinstance(container, list):
            raise Fault(f"cannot assign to an item of {describe(container)}; only lists "
                        "change", target.span)
        container[index] = value

    def _attrs(self, keywords: Sequence[A.Keyword], frame: _Frame) -> dict[str, str]:
        return {k.name: attr_str(k.name, self._value(k.value, frame), k.span, self.budget)
                for k in keywords}

    def _node_name(self, expr: A.Expr, frame: _Frame) -> str:
        v = self._value(expr, frame)
        if not isinstance(v, str) or not v:
            raise Fault(f"a node name must be a non-empty string, got {describe(v)}", expr.span)
        return v

    def _shape(self, expr: A.Expr, frame: _Frame) -> tuple[int, ...]:
        return as_shape(self._value(expr, frame), expr.span)

    def _iterable(self, expr: A.Expr, frame: _Frame) -> Sequence[Any]:
        v = self._value(expr, frame)
        if isinstance(v, int) and not isinstance(v, bool):
            raise Fault(f"cannot loop over {describe(v)}; write range({v})", expr.span)
        if not isinstance(v, (range, tuple, list)):
            raise Fault(f"cannot loop over {describe(v)}", expr.span)
        return list(v) if isinstance(v, list) else v

    # -- expressions ------------------------------------------------------------------------------
    def _eval(self, e: A.Expr, frame: _Frame, naming: Naming | None = None) -> Any:
        return self.expr[type(e)](e, frame, naming)

    def _value(self, e: A.Expr, frame: _Frame) -> Any:
        """Evaluate ``e``; a POISON result abandons the statement."""
        v = self.expr[type(e)](e, frame, None)
        if v is POISON:
            raise _Silent
        return v

    def _const(self, e: A.Const, frame: _Frame, naming: Naming | None) -> Any:
        return e.value

    def _name(self, e: A.Name, frame: _Frame, naming: Naming | None) -> Any:
        v = frame.vars.get(e.id, _MISSING)
        if v is _MISSING:
            v = self.globals.get(e.id, _MISSING)
        if v is _MISSING:
            raise Fault(self._undefined(e.id, frame), e.span)
        return v

    def _undefined(self, name: str, frame: _Frame) -> str:
        if name in self.defs:
            return f"'{name}' is a definition; call it: {name}(...)"
        if name in BUILTINS or self._opdef(name) is not None:
            return f"'{name}' is {'a builtin' if name in BUILTINS else 'an operator'}; " \
                   f"call it: {name}(...)"
        return f"undefined name '{name}'" + suggest(name, [*frame.vars, *self.globals])

    def _fstring(self, e: A.FString, frame: _Frame, naming: Naming | None) -> str:
        parts = []
        size = 0
        for p in e.parts:
            parts.append(p if isinstance(p, str) else to_str(self._value(p, frame), p.span,
                                                             self.budget))
            size += len(parts[-1])
            self.budget.items("string", size, e.span, work=False)
        self.budget.charge(size, e.span)
        return "".join(parts)

    def _tuple(self, e: A.TupleExpr, frame: _Frame, naming: Naming | None) -> tuple[Any, ...]:
        return tuple(self._value(x, frame) for x in e.items)

    def _list(self, e: A.ListExpr, frame: _Frame, naming: Naming | None) -> list[Any]:
        return [self._value(x, frame) for x in e.items]

    def _listcomp(self, e: A.ListComp, frame: _Frame, naming: Naming | None) -> list[Any]:
        out = []
        saved = frame.vars.get(e.var, _MISSING)
        try:
            for v in self._iterable(e.iter, frame):
                self.budget.step(e.span)
                frame.vars[e.var] = v
                if e.cond is None or truth(self._value(e.cond, frame), e.cond.span):
                    out.append(self._value(e.elt, frame))
        finally:
            if saved is _MISSING:
                frame.vars.pop(e.var, None)
            else:
                frame.vars[e.var] = saved
        self.budget.items("list", len(out), e.span)
        return out

    def _index(self, e: A.Index, frame: _Frame, naming: Naming | None) -> Any:
        base = self._eval(e.base, frame, naming)
        if base is POISON:
            return POISON
        return get_item(base, self._value(e.index, frame), e.index.span)

    def _not(self, e: A.Not, frame: _Frame, naming: Naming | None) -> bool:
        return not truth(self._value(e.operand, frame), e.operand.span)

    def _boolop(self, e: A.BoolOp, frame: _Frame, naming: Naming | None) -> Any:
        left = self._value(e.left, frame)
        if truth(left, e.left.span) == (e.op == "or"):
            return left
        right = self._value(e.right, frame)
        truth(right, e.right.span)
        return right

    def _compare(self, e: A.Compare, frame: _Frame, naming: Naming | None) -> bool:
        return compare(e.op, self._value(e.left, frame), self._value(e.right, frame), e.span,
                       self.budget)

    def _ifexp(self, e: A.IfExp, frame: _Frame, naming: Naming | None) -> Any:
        cond = truth(self._value(e.cond, frame), e.cond.span)
        return self._eval(e.then if cond else e.orelse, frame, naming)

    def _binop(self, e: A.BinOp, frame: _Frame, naming: Naming | None) -> Any:
        left, right = self._value(e.left, frame), self._value(e.right, frame)
        if isinstance(left, Symbol) or isinstance(right, Symbol):
            return self._symbol_arith(e, left, right, frame, naming)
        return arith(e.op, left, right, e.span, self.budget)

    def _neg(self, e: A.Neg, frame: _Frame, naming: Naming | None) -> Any:
        v = self._value(e.operand, frame)
        if isinstance(v, Symbol):  # MXNet's __neg__: _mul_scalar(scalar=-1)
            return self._sugar("_mul_scalar", [v], {"scalar": -1.0}, e.span, frame, naming)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise Fault(f"cannot negate {describe(v)}", e.span)
        return -v  # as many digits as v

    def _symbol_arith(self, e: A.BinOp, left: Any, right: Any, frame: _Frame,
                      naming: Naming | None) -> Symbol:
        op = e.op
        if op not in ("+", "-", "*"):
            raise Fault(f"cannot apply '{op}' to {describe(left)} and {describe(right)} "
                        "(symbols support a + b, a - b, a * b and a number on either side of "
                        "+, - and *)", e.span)
        if isinstance(left, Symbol) and isinstance(right, Symbol):
            if op == "-":  # MXNet's __sub__: a + (-b)
                right = self._sugar("_mul_scalar", [right], {"scalar": -1.0}, e.span, frame,
                                    None)
            name = "elemwise_mul" if op == "*" else "elemwise_add"
            return self._sugar(name, [left, right], {}, e.span, frame, naming)
        sym, num = (left, right) if isinstance(left, Symbol) else (right, left)
        if not isinstance(num, (int, float)) or isinstance(num, bool):
            raise Fault(f"cannot apply '{op}' to {describe(left)} and {describe(right)}",
                        e.span)
        scalar = float(num)
        if op == "*":
            name = "_mul_scalar"
        elif op == "+":
            name = "_plus_scalar"
        elif sym is left:  # MXNet's __sub__: a + (-s)
            name, scalar = "_plus_scalar", float(-num)
        else:  # MXNet's __rsub__: s - a
            name = "_rminus_scalar"
        return self._sugar(name, [sym], {"scalar": scalar}, e.span, frame, naming)

    # -- calls ------------------------------------------------------------------------------------
    def _call(self, e: A.Call, frame: _Frame, naming: Naming | None) -> Any:
        d = self.defs.get(e.func)
        if d is not None:
            return self._call_def(d, e, frame, naming)
        if e.func == "Variable":
            return self._call_variable(e, frame, naming)
        builtin = BUILTINS.get(e.func)
        if builtin is not None:
            if e.kwargs:
                raise Fault(f"{e.func}() takes no keyword arguments", e.kwargs[0].span)
            pos = self._positional(e, frame)
            return builtin([p.value for p in pos], [p.span for p in pos], e.span, self.budget)
        opdef = self._opdef(e.func)
        if opdef is None:
            raise Fault(self._unknown_call(e.func), e.func_span)
        return self._call_op(opdef, e, frame, naming)

    def _opdef(self, name: str) -> OpDef | None:
        if name not in self.opdefs:
            op = OPS.get(canonical_name(name))
            self.opdefs[name] = None if op is None or op.is_backward else op
        return self.opdefs[name]

    def _unknown_call(self, name: str) -> str:
        names = [n for n in all_names() if self._opdef(n) is not None]
        names += [*self.defs, *BUILTINS, "Variable"]
        return f"unknown operator '{name}'" + suggest(name, names)

    def _call_def(self, d: A.DefStmt, e: A.Call, frame: _Frame,
                  naming: Naming | None) -> Any:
        self.budget.step(e.span)
        if frame.depth >= MAX_DEPTH:
            raise Fault(f"definitions nest more than {MAX_DEPTH} calls deep (does '{d.name}' "
                        "call itself?)", e.span)
        values = self._def_args(d, e, frame)
        local = self.build.local(naming, frame.prefix, d.name)
        share = self.build.share(naming, frame.share, local)
        attrs = {**frame.attrs, **naming.attrs} if naming is not None else frame.attrs
        calls = _Call(d.name, e.span, frame.calls)  # O(1): no copy of the chain per call
        child = _Frame(values, frame.prefix + local + "_", None if share is None else share + "_",
                       attrs, frame.depth + 1, calls, frame.file)
        try:
            self._block(d.body, child)
        except _Return as r:
            return r.value
        return None

    def _def_args(self, d: A.DefStmt, e: A.Call, frame: _Frame) -> dict[str, Any]:
        starred = any(isinstance(a, A.Starred) for a in e.args)
        if not starred:  # before the arguments: one of them may be silenced by an earlier error
            self._check_arity(d, len(e.args), e)
        pos = self._positional(e, frame)
        if starred:
            self._check_arity(d, len(pos), e)
        values = {name: p.value for name, p in zip(d.params, pos)}
        for k in e.kwargs:
            if k.name not in d.params:
                raise Fault(f"definition '{d.name}' has no parameter '{k.name}'"
                            + suggest(k.name, d.params), k.span)
            if k.name in values:
                raise Fault(f"argument '{k.name}' given twice", k.span)
            values[k.name] = self._value(k.value, frame)
        return values

    @staticmethod
    def _check_arity(d: A.DefStmt, positional: int, e: A.Call) -> None:
        n, given = len(d.params), positional + len(e.kwargs)
        if positional > n or given != n:
            raise Fault(f"definition '{d.name}' takes {n} argument{'s' if n != 1 else ''} "
                        f"({', '.join(d.params)}), got {given}", e.span)

    def _positional(self, e: A.Call, frame: _Frame) -> list[_Arg]:
        """The positional arguments of ``e``; ``*xs`` stands for the items of the tuple or list
        ``xs`` (or the outputs of the symbol ``xs``), each with the span of ``*xs``."""
        out = []
        for a in e.args:
            if not isinstance(a, A.Starred):
                out.append(_Arg(self._value(a, frame), a.span))
                continue
            v = self._value(a.value, frame)
            if not isinstance(v, (tuple, list, Symbol)):
                raise Fault(f"'*' unpacks a tuple, a list or the outputs of a symbol, got "
                            f"{describe(v)}", a.value.span)
            of = "the unpacked " + ("outputs" if isinstance(v, Symbol) else kind(v))
            out += [_Arg(x, a.span, i, of) for i, x in enumerate(v)]
        return out

    def _call_variable(self, e: A.Call, frame: _Frame, naming: Naming | None) -> Symbol:
        if naming is not None and naming.share is not None:
            raise Fault("'share' applies to operator and definition calls", e.span)
        pos = self._positional(e, frame)
        if len(pos) > 1:
            raise Fault("Variable() takes one positional argument, the name", pos[1].span)
        kw = {k.name: (k, self._value(k.value, frame)) for k in e.kwargs}
        name: Any = pos[0].value if pos else kw.pop("name", (None, None))[1]
        if name is None and naming is not None:
            name = naming.local
        if not isinstance(name, str) or not name:
            raise Fault("Variable() needs a name: Variable(\"x\"), or assign it: x = Variable()"
                        if name is None else f"a node name must be a non-empty string, got "
                        f"{describe(name)}", e.span)
        if naming is not None:
            naming.used = True
        attrs = {**frame.attrs, **(naming.attrs if naming is not None else {})}
        attrs.update(self._variable_attrs(kw))
        return Symbol([Entry(self.build.variable(frame.prefix + name, attrs, e.span), 0)])

    def _variable_attrs(self, kw: dict[str, tuple[A.Keyword, Any]]) -> dict[str, str]:
        out = {}
        for key in _VARIABLE_ARGS:  # MXNet's order: shape, dtype, init, lr_mult, wd_mult
            k, v = kw.pop(key, (None, None))
            if k is not None and v is not None:
                out[f"__{key}__"] = (Param.format(as_shape(v, k.span)) if key == "shape"
                                     else attr_str(key, v, k.span, self.budget))
        for key, (k, v) in kw.items():
            if not (key.startswith("__") and key.endswith("__")):
                raise Fault(f"Variable() has no argument '{key}' (arguments: name, "
                            f"{', '.join(_VARIABLE_ARGS)}, and __attr__=...)", k.span)
            out[key] = attr_str(key, v, k.span, self.budget)
        return out

    def _call_op(self, opdef: OpDef, e: A.Call, frame: _Frame,
                 naming: Naming | None) -> Symbol:
        args = self._inputs(opdef, e, frame)
        inputs: dict[str, Symbol] = {}
        attrs: dict[str, Any] = {}
        user: dict[str, str] = {}
        spans: dict[str, Span] = {}
        for k in e.kwargs:
            v = self._value(k.value, frame)
            if k.name in spans:
                raise Fault(f"argument '{k.name}' given twice", k.span)
            spans[k.name] = k.span
            if k.name.startswith("__") and k.name.endswith("__"):
                user[k.name] = attr_str(k.name, v, k.span, self.budget)
            elif isinstance(v, Symbol):
                if opdef.param(k.name) is not None:
                    raise Fault(f"attribute '{k.name}' of {opdef.name} must be a value, not "
                                f"{describe(v)}", k.span)
                inputs[k.name] = v
            else:
                attrs[k.name] = v
        call = OpCall(args, inputs, attrs, user, e.span, spans)
        return self.build.create(opdef, call, frame, naming)

    def _inputs(self, opdef: OpDef, e: A.Call, frame: _Frame) -> list[Symbol]:
        """The positional inputs of an operator call; a variadic operator also takes them as
        one tuple or list (``Concat(feats, dim=1)``)."""
        pos = self._positional(e, frame)
        if opdef.variadic and len(e.args) == 1 and not isinstance(e.args[0], A.Starred) \
                and isinstance(pos[0].value, (tuple, list)):
            of = "the " + kind(pos[0].value)
            pos = [_Arg(x, pos[0].span, i, of) for i, x in enumerate(pos[0].value)]
        if opdef.variadic and not pos and e.args:
            raise Fault(f"{opdef.name} needs at least one input, but the list of inputs is "
                        "empty", e.args[0].span)
        for p in pos:
            if isinstance(p.value, Symbol):
                continue
            if p.item is not None:
                raise Fault(f"inputs of {opdef.name} must be symbols, but item {p.item} of "
                            f"{p.of} is {describe(p.value)}", p.span)
            hint = ("pass a list of inputs as the only positional argument, or unpack it with "
                    "'*'" if opdef.variadic and isinstance(p.value, (tuple, list))
                    else "give attributes by name (k=...)")
            raise Fault(f"positional arguments of {opdef.name} are inputs and must be symbols, "
                        f"got {describe(p.value)}; {hint}", p.span)
        return [p.value for p in pos]

    def _sugar(self, op: str, args: list[Symbol], attrs: dict[str, Any], span: Span,
               frame: _Frame, naming: Naming | None) -> Symbol:
        opdef = self._opdef(op)
        assert opdef is not None, op
        return self.build.create(opdef, OpCall(args, {}, attrs, {}, span, {}), frame, naming)
