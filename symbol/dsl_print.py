"""Printer: a Symbol back to the network language.

``dumps(symbol)`` writes one ``input`` statement per variable, one assignment per operator node
(in topological order) and one ``output`` statement, so that ``loads(dumps(s))`` builds a graph
equal to ``s`` (same ops, names, attribute strings, inputs and outputs; only spans differ).

Round-trip rules:
  1. every input is passed explicitly, so the loader creates no weight variable of its own;
  2. an attribute value is printed as a literal only when the loader turns that literal back into
     the very same string (``3``, ``(3, 3)``, ``True``, ``0.9``); otherwise as a string
     (``eps="0.00002"``), which the registry parses and stores unchanged;
  3. node names that are not identifiers of the language (``fc-1``, ``input``) get a local name
     ``_n<i>`` and ``as "fc-1"``.
"""
from __future__ import annotations

import math
import re

from .dsl_values import literal
from .errors import SymbolError
from .graph import Entry, Node
from .registry import Param, _parse_tuple
from .symbol import Symbol

__all__ = ["dumps", "KEYWORDS"]

#: Reserved words of the language (they cannot be names).
KEYWORDS = frozenset({"param", "input", "output", "return", "def", "for", "in", "if", "else",
                      "with", "as", "share", "include", "and", "or", "not", "True", "False",
                      "None"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_INT = re.compile(r"-?[0-9]+")


def dumps(sym: Symbol) -> str:
    """The network language text of ``sym`` (see the module docstring).

    Raises:
        SymbolError: an output or input reads a hidden output (only joint forward+backward
            graphs do; they are not written in the language).
    """
    graph = sym.graph
    local = _local_names(graph.all_nodes)
    lines = ["# written by symbol.dumps", ""]
    lines += [_input_line(v, local) for v in graph.inputs]
    lines += [_op_line(n, local) for n in graph.nodes]
    lines.append("output " + ", ".join(_ref(e, local) for e in graph.outputs) + ";")
    return "\n".join(lines) + "\n"


def _local_names(nodes: tuple[Node, ...]) -> dict[Node, str]:
    taken = {n.name for n in nodes}
    out: dict[Node, str] = {}
    counter = 0
    for n in nodes:
        if _IDENT.fullmatch(n.name) and n.name not in KEYWORDS:
            out[n] = n.name
            continue
        while f"_n{counter}" in taken:
            counter += 1
        out[n] = f"_n{counter}"
        taken.add(out[n])
    return out


def _ref(e: Entry, local: dict[Node, str]) -> str:
    node = e.node
    visible = 1 if node.is_variable else node.opdef.visible_outputs(node.params)
    if e.index >= visible:
        raise SymbolError(f"cannot write '{node.name}' output {e.index} in the language: it is "
                          "a hidden output (a joint forward+backward graph?)")
    return local[node] + (f"[{e.index}]" if visible > 1 else "")


def _modifiers(node: Node, local: dict[Node, str], user: dict[str, str]) -> str:
    text = "" if local[node] == node.name else f" as {literal(node.name)}"
    if user:
        text += " with " + ", ".join(f"{_key(k)} = {literal(v)}" for k, v in user.items())
    return text


def _key(k: str) -> str:
    return k if _IDENT.fullmatch(k) and k not in KEYWORDS else literal(k)


def _input_line(v: Node, local: dict[Node, str]) -> str:
    attrs = dict(v.attrs)
    shape = ""
    if "__shape__" in attrs and _tuple_literal(attrs["__shape__"]) is not None:
        shape = ": " + str(_tuple_literal(attrs.pop("__shape__")))
    return f"input {local[v]}{shape}{_modifiers(v, local, attrs)};"


def _op_line(n: Node, local: dict[Node, str]) -> str:
    opdef = n.opdef
    args = [_ref(e, local) for e in n.inputs]
    user: dict[str, str] = {}
    for k, v in n.attrs.items():
        p = opdef.param(k)
        if p is None:
            user[k] = v
        elif not (opdef.variadic and k == "num_args"):
            args.append(f"{k}={_value(p, v)}")
    return f"{local[n]} = {n.op}({', '.join(args)}){_modifiers(n, local, user)};"


def _value(p: Param, s: str) -> str:
    """``s`` as a literal that the loader turns back into ``s``, else as a string literal."""
    text: str | None = None
    if s == "None" and p.default is None:
        text = "None"
    elif p.kind == "int" and _INT.fullmatch(s) and str(int(s)) == s:
        text = s
    elif p.kind == "bool" and s in ("True", "False"):
        text = s
    elif p.kind == "float":
        text = _float_literal(s)
    elif p.kind == "tuple":
        text = _tuple_literal(s)
    return literal(s) if text is None else text


def _float_literal(s: str) -> str | None:
    try:
        f = float(s)
    except ValueError:
        return None
    return s if math.isfinite(f) and repr(f) == s and ("." in s or "e" in s) else None


def _tuple_literal(s: str) -> str | None:
    try:
        t = _parse_tuple(s)
    except ValueError:
        return None
    return s if Param.format(t) == s else None
