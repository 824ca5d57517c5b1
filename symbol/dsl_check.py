"""``sublinear check``: load a network file, infer its shapes and summarise it.

``check_file(path, params=..., shapes=...)`` (or ``check_symbol`` for a network built any other
way) returns a :class:`CheckReport` whose ``summary()``
is for people and ``to_json()`` for machines. Variables are sorted into three roles by the
operator argument they feed: *parameters* (an op's ``weight``, ``bias``, ``gamma`` or ``beta``),
*auxiliary states* (``moving_mean``/``moving_var``) and *inputs* (everything else: data, labels,
initial states). Element counts need every shape; input shapes come from ``input x: (...)``
declarations, ``Variable(..., shape=...)`` or the caller's ``shapes``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .dsl import lower_text, read_source
from .dsl_values import literal
from .errors import DslError, ShapeError, SymbolError
from .graph import Graph, Node
from .registry import Shape, numel
from .symbol import Symbol
from .units import format_bytes

__all__ = ["CheckReport", "check_file", "check_symbol", "error_records", "PARAMETER_ARGUMENTS"]

#: Operator arguments whose variables are learnable parameters.
PARAMETER_ARGUMENTS = frozenset({"weight", "bias", "gamma", "beta"})
_SHOWN = 4  # names listed per line before "... (N in all)"

Shapes = dict[str, "Shape | None"]


@dataclass(frozen=True)
class CheckReport:
    """What ``sublinear check`` reports about one network file.

    Attributes:
        file: the file checked.
        params: the net parameters' values (defaults with overrides applied).
        operators: number of operator nodes.
        inputs, parameters, aux_states: variables by role, name -> shape (None if unknown).
        outputs: (output name, shape or None), in order.
    """

    file: str
    params: dict[str, Any]
    operators: int
    inputs: Shapes
    parameters: Shapes
    aux_states: Shapes
    outputs: list[tuple[str, Shape | None]]

    @property
    def variables(self) -> int:
        """Number of variable nodes."""
        return len(self.inputs) + len(self.parameters) + len(self.aux_states)

    @staticmethod
    def elements(shapes: Shapes) -> int | None:
        """Total number of elements, or None when a shape is unknown."""
        if any(s is None for s in shapes.values()):
            return None
        return sum(numel(s) for s in shapes.values())

    def summary(self) -> str:
        """A few aligned lines for people."""
        rows = [
            ("nodes", f"{self.operators} operators, {self.variables} variables"),
            ("parameters", self._count(self.parameters)),
            ("aux states", self._count(self.aux_states)),
            ("inputs", _names(list(self.inputs.items()))),
            ("outputs", _names(self.outputs)),
            ("net params", ", ".join(f"{k}={literal(v)}" for k, v in self.params.items())
             or "none"),
        ]
        return f"{self.file}: ok\n" + "\n".join(f"  {k:<11} {v}" for k, v in rows)

    def _count(self, shapes: Shapes) -> str:
        n = len(shapes)
        text = f"{n} array{'s' if n != 1 else ''}"
        total = self.elements(shapes)
        if total is not None:
            return text + f", {total:,} elements ({format_bytes(4 * total)} as float32)"
        missing = [k for k, s in self.inputs.items() if s is None]
        hint = f"; give the shape of {', '.join(missing[:_SHOWN])} with --shape NAME=D1,D2,..." \
            if missing else ""
        return text + ", elements unknown" + hint

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        def role(shapes: Shapes) -> dict[str, Any]:
            return {"arrays": len(shapes), "elements": self.elements(shapes),
                    "shapes": {k: _js(s) for k, s in shapes.items()}}
        return {"file": self.file, "params": self.params, "operators": self.operators,
                "variables": self.variables, "parameters": role(self.parameters),
                "aux_states": role(self.aux_states),
                "inputs": {k: _js(s) for k, s in self.inputs.items()},
                "outputs": [{"name": n, "shape": _js(s)} for n, s in self.outputs]}


def _js(shape: Shape | None) -> list[int] | None:
    return None if shape is None else list(shape)


def _names(items: Sequence[tuple[str, Shape | None]]) -> str:
    shown = [f"{k} {'?' if s is None else literal(tuple(s))}" for k, s in items[:_SHOWN]]
    more = f", ... ({len(items)} in all)" if len(items) > _SHOWN else ""
    return ", ".join(shown) + more if items else "none"


def _roles(graph: Graph) -> tuple[set[Node], frozenset[Node]]:
    params: set[Node] = set()
    for node in graph.nodes:
        args = node.opdef.list_arguments(node.params)
        for arg, e in zip(args, node.inputs, strict=True):
            if arg in PARAMETER_ARGUMENTS and e.node.is_variable:
                params.add(e.node)
    return params, graph.aux_variables


def check_file(path: str, *, params: Mapping[str, Any] | None = None,
               shapes: Mapping[str, Shape] | None = None) -> CheckReport:
    """Load the network file ``path`` and check it (see :func:`check_symbol`).

    Raises:
        OSError: the file cannot be read. DslError: errors in the file. ShapeError: shapes
        do not fit (located at the DSL line of the node). SymbolError: a bad ``shapes`` name.
    """
    lowered = lower_text(read_source(path), params, filename=path)
    return check_symbol(lowered.symbol, file=path, params=lowered.params, shapes=shapes)


def check_symbol(sym: Symbol, *, file: str, params: Mapping[str, Any] | None = None,
                 shapes: Mapping[str, Shape] | None = None) -> CheckReport:
    """Infer the shapes of ``sym`` and build the report.

    Args:
        sym: the network (from a network file, MXNet JSON or the API).
        file: what the report names it by.
        params: the values of its ``param`` statements, for the report.
        shapes: input shapes beyond those the network declares.

    Raises:
        ShapeError: shapes do not fit. SymbolError: a bad ``shapes`` name.
    """
    args, outs, aux = sym.infer_shape_partial(**dict(shapes or {}))
    known = dict(zip(sym.list_arguments(), args, strict=True))
    known.update(zip(sym.list_auxiliary_states(), aux, strict=True))
    learnable, aux_nodes = _roles(sym.graph)
    by_role: tuple[Shapes, Shapes, Shapes] = ({}, {}, {})
    for v in sym.graph.inputs:
        role = 1 if v in learnable else 2 if v in aux_nodes else 0
        by_role[role][v.name] = known[v.name]
    return CheckReport(file, dict(params or {}), len(sym.graph.nodes), *by_role,
                       outputs=list(zip(sym.list_outputs(), outs, strict=True)))


def error_records(err: SymbolError) -> list[dict[str, Any]]:
    """The errors in ``err`` as JSON-ready records (file, line, col, end_col, message)."""
    diags = getattr(err, "diagnostics", None)
    if isinstance(err, DslError) and diags:
        return [_record(d.message, d.span, d.file) for d in diags]
    if isinstance(err, ShapeError) and err.span is not None:
        where = f"in operator '{err.node}' ({err.op}): " if err.node else ""
        return [_record(where + err.message, err.span, None)]
    return [{"message": str(err)}]


def _record(message: str, span: Any, file: str | None) -> dict[str, Any]:
    if span is None:
        return {"file": file, "message": message}
    return {"file": span.file, "line": span.line, "col": span.col, "end_line": span.end_line,
            "end_col": span.end_col, "message": message}
