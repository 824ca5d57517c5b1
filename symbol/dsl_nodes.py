"""Node creation for the network language, exactly as the Python API's op functions do it.

:class:`NodeBuilder` turns an evaluated operator call (:class:`OpCall`) into one graph node:

  1. the name is ``<prefix><local>``; ``local`` is the assignment target, the ``as`` name, or an
     automatic ``<op lowercase><n>``; a taken name is an error (``duplicate node name``);
  2. the attributes are parsed by the registry (``OpDef.parse_params``); its message for an
     unknown or ill-typed attribute is re-located at that attribute in the source;
  3. positional and keyword inputs are matched to the op's arguments; a missing weight, bias,
     gamma, beta, label or moving statistic becomes a variable ``<node>_<arg>`` (MXNet's rule),
     or ``<share>_<arg>`` under ``share``, created by the first call and reused by the others;
  4. user attributes are the scope's attributes, then the statement's ``with``, then
     ``__key__=`` keywords, as ``AttrScope`` and ``attr=`` combine in the API;
  5. :func:`~symbol.graph.make_node` builds the node with the call's span.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from .dsl_values import Budget, Fault, Limits, describe, literal, suggest
from .errors import AttrError, Span
from .graph import Entry, Node, auto_argument, make_node, make_variable
from .registry import OpDef
from .symbol import Symbol

__all__ = ["NodeBuilder", "OpCall", "Naming", "Scope", "as_shape"]

_SHOWN = 80  # characters of an attribute value shown in a message (a value may be huge)


@dataclass(slots=True)
class Naming:
    """How to name and decorate the node a statement creates (``x = ... as N share S with``)."""

    local: str | None
    span: Span | None
    share: str | None
    attrs: dict[str, str]
    used: bool = False


class Scope(Protocol):
    """Where a node is created: name prefix, share prefix and attribute scope."""

    prefix: str
    share: str | None
    attrs: dict[str, str]


@dataclass(slots=True)
class OpCall:
    """An operator call with its arguments evaluated and sorted."""

    args: list[Symbol]
    inputs: dict[str, Symbol]
    attrs: dict[str, Any]
    user: dict[str, str]
    span: Span
    spans: dict[str, Span]


def as_shape(v: Any, span: Span) -> tuple[int, ...]:
    """A shape value: a tuple (or list) of positive integers; an integer is a 1-tuple."""
    shape = (v,) if isinstance(v, int) and not isinstance(v, bool) else v
    if not (isinstance(shape, (tuple, list)) and all(
            isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise Fault(f"a shape must be a tuple of positive integers, got {describe(v)}", span)
    return tuple(shape)


class NodeBuilder:
    """Creates and names nodes; remembers every node by name (for duplicates and sharing).

    Every node, variables included, is counted against ``budget`` (``max_nodes``).
    """

    def __init__(self, budget: Budget | None = None) -> None:
        self.nodes: dict[str, Node] = {}
        self.counters: dict[str, int] = {}
        self.budget = Budget(Limits()) if budget is None else budget

    def local(self, naming: Naming | None, prefix: str, base: str) -> str:
        """The local part of a new node's name: the naming's, or an automatic ``<base><n>``."""
        if naming is not None:
            naming.used = True
            if naming.local is not None:
                return naming.local
        key = prefix + base
        n = self.counters.get(key, 0)
        while f"{key}{n}" in self.nodes:
            n += 1
        self.counters[key] = n + 1
        return f"{base}{n}"

    @staticmethod
    def share(naming: Naming | None, share_prefix: str | None, local: str) -> str | None:
        """The name that shared weights of a node (or call) called ``local`` are named after."""
        if naming is not None and naming.share is not None:
            return naming.share
        return None if share_prefix is None else share_prefix + local

    def create(self, opdef: OpDef, c: OpCall, scope: Scope, naming: Naming | None) -> Symbol:
        """One operator node, as the API's op functions build it (see the module docstring)."""
        local = self.local(naming, scope.prefix, opdef.name.lower())
        name = scope.prefix + local
        self.check_new(name, naming.span if naming is not None and naming.span else c.span,
                       c.span)
        user = {**scope.attrs, **naming.attrs} if naming is not None else scope.attrs
        self.budget.node(c.span)
        if opdef.variadic:
            inputs = self._variadic_inputs(opdef, name, c)
            typed: dict[str, Any] | None = {"num_args": len(inputs)}
            c.attrs.pop("num_args", None)
            self._parse_attrs(opdef, name, c, typed)
        else:
            typed = None
            params = self._parse_attrs(opdef, name, c, None)
            share = self.share(naming, scope.share, local)
            inputs = self._inputs(opdef, name, params, c, share, dict(user))
        node = make_node(opdef, name, inputs, attrs=c.attrs, user_attrs={**user, **c.user},
                         params=typed, span=c.span)
        self.nodes[name] = node
        n = opdef.visible_outputs(node.params)
        return Symbol([Entry(node, i) for i in range(n)])

    def check_new(self, name: str, span: Span, source: Span | None = None) -> None:
        """Raise a Fault if a node called ``name`` exists; ``source`` is the creating code."""
        first = self.nodes.get(name)
        if first is None:
            return
        if first.span is not None and first.span == (source or span):
            raise Fault(f"duplicate node name '{name}': an earlier loop iteration or call of "
                        "this code created it; give each node its own name with 'as'", span)
        raise Fault(f"duplicate node name '{name}' (first defined at {first.span})", span)

    def variable(self, name: str, attrs: dict[str, str], span: Span) -> Node:
        """A new variable node."""
        self.check_new(name, span, span)
        self.budget.node(span)
        node = make_variable(name, attrs, span)
        self.nodes[name] = node
        return node

    def _parse_attrs(self, opdef: OpDef, name: str, c: OpCall,
                     typed: dict[str, Any] | None) -> dict[str, Any]:
        try:
            return opdef.parse_params(c.attrs, name, typed)
        except AttrError as err:
            raise self._attr_fault(opdef, name, c, err) from None

    def _attr_fault(self, opdef: OpDef, name: str, c: OpCall, err: AttrError) -> Fault:
        """Re-locate the registry's message at the attribute; say it in the language."""
        for key, value in c.attrs.items():
            p = opdef.param(key)
            if p is None:
                if key in self._argument_names(opdef, name, c, key):
                    return Fault(f"input '{key}' of '{name}' ({opdef.name}) must be a symbol, "
                                 f"got {describe(value)}", c.spans[key])
                return Fault(str(err), c.spans[key])
            try:
                p.parse(value)
            except ValueError as e:
                return Fault(f"operator '{name}' ({opdef.name}): attribute {key}="
                             f"{literal(value, _SHOWN)}: {e}", c.spans[key])
        return Fault(str(err), c.span)  # a required attribute is missing

    @staticmethod
    def _argument_names(opdef: OpDef, name: str, c: OpCall, without: str) -> tuple[str, ...]:
        if opdef.variadic:
            return ()
        try:
            params = opdef.parse_params({k: v for k, v in c.attrs.items() if k != without}, name)
        except AttrError:
            return ()
        return opdef.list_arguments(params)

    def _variadic_inputs(self, opdef: OpDef, name: str, c: OpCall) -> list[Entry]:
        if c.inputs:
            k = next(iter(c.inputs))
            raise Fault(f"operator '{name}' ({opdef.name}) takes its inputs positionally",
                        c.spans[k])
        if not c.args:
            raise Fault(f"operator '{name}' ({opdef.name}) needs at least one input", c.span)
        return [self._entry(s, name, f"arg{i}", opdef, c.span) for i, s in enumerate(c.args)]

    def _inputs(self, opdef: OpDef, name: str, params: Mapping[str, Any], c: OpCall,
                share: str | None, attrs: dict[str, str]) -> list[Entry]:
        arg_names = opdef.list_arguments(params)
        where = f"operator '{name}' ({opdef.name})"
        if len(c.args) > len(arg_names):
            raise Fault(f"{where} takes {len(arg_names)} inputs ({', '.join(arg_names)}), got "
                        f"{len(c.args)}", c.span)
        given: dict[str, Symbol] = dict(zip(arg_names, c.args))
        for k, v in c.inputs.items():
            self._check_input_name(where, k, arg_names, given, c.spans[k])
            given[k] = v
        entries = []
        for arg in arg_names:
            s = given.get(arg)
            if s is not None:
                entries.append(self._entry(s, name, arg, opdef, c.span))
            elif auto_argument(arg):
                entries.append(Entry(self._auto_variable(name, arg, share, attrs, c.span), 0))
            else:
                raise Fault(f"{where}: missing input '{arg}'", c.span)
        return entries

    @staticmethod
    def _check_input_name(where: str, key: str, arg_names: Sequence[str],
                          given: Mapping[str, Symbol], span: Span) -> None:
        if key in given:
            raise Fault(f"{where}: input '{key}' given twice", span)
        if key in arg_names:
            return
        raise Fault(f"{where} has no input '{key}'{suggest(key, arg_names)} (inputs: "
                    f"{', '.join(arg_names)})", span)

    def _entry(self, s: Symbol, name: str, arg: str, opdef: OpDef, span: Span) -> Entry:
        if len(s) != 1:
            raise Fault(f"input '{arg}' of '{name}' ({opdef.name}) is a symbol with {len(s)} "
                        "outputs; index it, e.g. x[0]", span)
        return s.outputs[0]

    def _auto_variable(self, name: str, arg: str, share: str | None, attrs: dict[str, str],
                       span: Span) -> Node:
        if share is None:
            return self.variable(f"{name}_{arg}", attrs, span)
        vname = f"{share}_{arg}"
        existing = self.nodes.get(vname)
        if existing is not None and existing.is_variable:
            return existing
        return self.variable(vname, attrs, span)
