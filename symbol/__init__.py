"""sublinear's symbol layer: the graph IR, the operator registry and the MXNet-style API.

    import symbol as sym
    data = sym.Variable('data')
    fc = sym.FullyConnected(data, num_hidden=10, name='fc1')
    out = sym.SoftmaxOutput(sym.Activation(fc, act_type='relu'), name='softmax')
    out.infer_shape(data=(32, 100))

    net = sym.load('examples/resnet.sym', params={'units': (3, 4, 6, 3)})  # the network language
    text = sym.dumps(net)                                                 # and back
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import ops as _ops  # noqa: F401  (registers every operator)
from .dsl import dumps, format_error, load, loads
from .errors import AttrError, DslError, GraphError, OpError, ShapeError, Span, SymbolError
from .gradient import JointGraph, gradient
from .graph import Entry, Graph, Node
from .registry import OPS, OpDef, get_op
from .symbol import (AttrScope, Group, NameManager, Prefix, Symbol, Variable, fromjson,
                     load_json, make_op_function, register_backend, var)

__all__ = [
    "Symbol", "Variable", "var", "Group", "AttrScope", "NameManager", "Prefix", "load_json",
    "fromjson", "gradient", "JointGraph", "Graph", "Node", "Entry", "OPS", "OpDef", "get_op",
    "SymbolError", "DslError", "ShapeError", "GraphError", "OpError", "AttrError", "Span",
    "register_backend", "load", "loads", "dumps", "format_error",
]


def _export_ops() -> None:
    from .registry import _ALIASES
    for name, opdef in OPS.items():
        if not opdef.is_backward:
            globals()[name] = make_op_function(opdef)
            __all__.append(name)
    for alias, name in _ALIASES.items():
        if not OPS[name].is_backward:
            globals()[alias] = make_op_function(OPS[name], alias)
            __all__.append(alias)


_export_ops()

if TYPE_CHECKING:
    def __getattr__(name: str) -> Any:  # operator functions are generated from the registry
        ...
