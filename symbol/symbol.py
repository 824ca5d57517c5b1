"""The MXNet-style user API: ``Symbol``, ``Variable``, ``Group``, ``AttrScope``, op functions.

``Symbol`` is a thin handle on a list of output entries; all structure lives in the graph IR
(:mod:`symbol.graph`). Operator functions (``sym.FullyConnected(...)``) are generated from the
registry by :func:`make_op_function`.
"""
from __future__ import annotations

import os
from functools import cached_property
from typing import Any, Callable, Iterator, Mapping, Sequence

from . import mxnet_json
from .errors import OpError, SymbolError
from .graph import Entry, Graph, Node, auto_argument, make_node, make_variable, output_name
from .infer_shape import infer_shape as _infer_shape_pass, infer_type as _infer_type
from .registry import OpDef, Param, Shape, get_op

__all__ = ["Symbol", "Variable", "var", "Group", "AttrScope", "NameManager", "Prefix",
           "load_json", "fromjson", "make_op_function", "register_backend"]


class AttrScope:
    """Attributes given to every symbol created inside ``with AttrScope(...)`` (MXNet).

    Scopes nest; inner values win; attributes passed explicitly to an op win over both.
    """

    _stack: list[dict[str, str]] = [{}]

    def __init__(self, **attrs: str) -> None:
        for k, v in attrs.items():
            if not isinstance(v, str):
                raise SymbolError(f"AttrScope attribute {k}={v!r}: values must be strings")
        self._attrs = attrs

    def __enter__(self) -> AttrScope:
        AttrScope._stack.append({**AttrScope._stack[-1], **self._attrs})
        return self

    def __exit__(self, *exc: object) -> None:
        AttrScope._stack.pop()

    @staticmethod
    def current() -> dict[str, str]:
        """The attributes in force now."""
        return dict(AttrScope._stack[-1])


class NameManager:
    """Automatic node names ``<op lowercase><counter>`` (``fullyconnected0``), as MXNet."""

    _current: NameManager | None = None

    def __init__(self) -> None:
        self._counter: dict[str, int] = {}
        self._prev: NameManager | None = None

    def get(self, name: str | None, hint: str) -> str:
        """``name`` if given, else a fresh name from ``hint``."""
        if name:
            return name
        n = self._counter.get(hint, 0)
        self._counter[hint] = n + 1
        return f"{hint}{n}"

    def __enter__(self) -> NameManager:
        self._prev, NameManager._current = NameManager._current, self
        return self

    def __exit__(self, *exc: object) -> None:
        NameManager._current = self._prev

    @staticmethod
    def current() -> NameManager:
        if NameManager._current is None:
            NameManager._current = NameManager()
        return NameManager._current


class Prefix(NameManager):
    """Prefix every name created in its scope (``with Prefix('stage1_'):``)."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self._prefix = prefix

    def get(self, name: str | None, hint: str) -> str:
        return self._prefix + super().get(name, hint)


_BACKEND: dict[str, Callable[..., Any]] = {}


def register_backend(**functions: Callable[..., Any]) -> None:
    """Install ``simple_bind``/``bind`` implementations (the executor package calls this).

    The symbol layer never imports a backend; the executor registers itself, which keeps the
    dependency direction ``symbol <- optim <- executor``.
    """
    _BACKEND.update(functions)


def _backend(name: str) -> Callable[..., Any]:
    if name not in _BACKEND:
        import importlib
        # Loading the default backend by name on first use (like matplotlib's backends): the
        # symbol layer still has no static dependency on it.
        try:
            importlib.import_module("executor")
        except ImportError as e:
            raise SymbolError(f"{name} needs the executor package and torch ({e})") from None
    return _BACKEND[name]


class Symbol:
    """A symbolic handle on one or more output entries of a graph."""

    def __init__(self, outputs: Sequence[Entry]) -> None:
        self._outputs: tuple[Entry, ...] = tuple(outputs)

    # -- structure ------------------------------------------------------------------------------
    @property
    def outputs(self) -> tuple[Entry, ...]:
        """The output entries."""
        return self._outputs

    @cached_property
    def graph(self) -> Graph:
        """The flat graph of everything this symbol depends on."""
        return Graph.from_outputs(self._outputs)

    @property
    def name(self) -> str | None:
        """The node name of a single-output symbol (None for groups)."""
        return self._outputs[0].node.name if len(self._outputs) == 1 else None

    def __len__(self) -> int:
        return len(self._outputs)

    def __iter__(self) -> Iterator[Symbol]:
        return (Symbol([e]) for e in self._outputs)

    def __getitem__(self, index: int | str) -> Symbol:
        if isinstance(index, str):
            names = self.list_outputs()
            if index not in names:
                raise SymbolError(f"no output named '{index}'; outputs are {', '.join(names)}")
            index = names.index(index)
        try:
            return Symbol([self._outputs[index]])
        except IndexError:
            raise SymbolError(f"output index {index} out of range: symbol has "
                              f"{len(self._outputs)} outputs") from None

    def __repr__(self) -> str:
        return f"<Symbol {self.name or 'group [' + ', '.join(self.list_outputs()) + ']'}>"

    def _entry(self, what: str) -> Entry:
        if len(self._outputs) != 1:
            raise OpError(f"{what}: cannot use a symbol with {len(self._outputs)} outputs "
                          f"({', '.join(self.list_outputs())}) as one input; index it first")
        return self._outputs[0]

    def list_arguments(self) -> list[str]:
        """Names of the arguments (variables that are not auxiliary states), in DFS order."""
        aux = self.graph.aux_variables
        return [n.name for n in self.graph.inputs if n not in aux]

    def list_auxiliary_states(self) -> list[str]:
        """Names of the auxiliary states (batch-norm moving statistics), in DFS order."""
        aux = self.graph.aux_variables
        return [n.name for n in self.graph.inputs if n in aux]

    def list_inputs(self) -> list[str]:
        """Arguments and auxiliary states together, in DFS order."""
        return [n.name for n in self.graph.inputs]

    def list_outputs(self) -> list[str]:
        """Output names: ``<node>_<output>`` (``fc1_output``), a variable's own name."""
        return [output_name(e) for e in self._outputs]

    def get_internals(self) -> Symbol:
        """A group of every visible output of every node (for feature extraction)."""
        outs: list[Entry] = []
        for node in self.graph.all_nodes:
            n = 1 if node.is_variable else node.opdef.visible_outputs(node.params)
            outs.extend(Entry(node, i) for i in range(n))
        return Symbol(outs)

    def get_children(self) -> Symbol | None:
        """The inputs of this symbol's single node, as a group (None for a variable)."""
        node = self._entry("get_children").node
        return Symbol(node.inputs) if node.inputs else None

    # -- attributes -----------------------------------------------------------------------------
    def attr(self, key: str) -> str | None:
        """The string attribute ``key`` of this symbol's node, or None."""
        return self._entry("attr").node.attrs.get(key)

    def list_attr(self) -> dict[str, str]:
        """All string attributes of this symbol's node (op attributes and user attributes)."""
        return dict(self._entry("list_attr").node.attrs)

    def attr_dict(self) -> dict[str, dict[str, str]]:
        """``{node name: attributes}`` for every node that has attributes."""
        return {n.name: dict(n.attrs) for n in self.graph.all_nodes if n.attrs}

    # -- shapes ---------------------------------------------------------------------------------
    def infer_shape(self, *args: Shape | None, **kwargs: Shape) -> tuple[Any, Any, Any]:
        """``(arg_shapes, out_shapes, aux_shapes)`` in list order, or three Nones if incomplete.

        Shapes are given by keyword (``data=(32, 3, 224, 224)``) or positionally in
        ``list_arguments()`` order. Weight shapes are inferred from data shapes.

        Raises:
            ShapeError: inconsistent shapes; the message names the op and the node.
        """
        res = self.infer_shape_partial(*args, **kwargs)
        if any(s is None for group in res for s in group):
            return None, None, None
        return res

    def infer_shape_partial(self, *args: Shape | None,
                            **kwargs: Shape) -> tuple[list[Any], list[Any], list[Any]]:
        """Like :meth:`infer_shape`, with None for every shape that cannot be inferred."""
        known = self._named_inputs(args, kwargs, "infer_shape")
        shapes = _infer_shape_pass(self.graph, known)
        return self._by_role(shapes)

    def infer_type(self, *args: str | None, **kwargs: str) -> tuple[Any, Any, Any]:
        """``(arg_types, out_types, aux_types)`` as dtype names (``'float32'``)."""
        known = self._named_inputs(args, kwargs, "infer_type")
        types = _infer_type(self.graph, known)
        return self._by_role(types)

    def _named_inputs(self, args: Sequence[Any], kwargs: Mapping[str, Any],
                      what: str) -> dict[str, Any]:
        names = self.list_arguments()
        known = {k: v for k, v in zip(names, args) if v is not None}
        if len(args) > len(names):
            raise SymbolError(f"{what}: {len(args)} positional values for {len(names)} "
                              "arguments")
        inputs = set(self.list_inputs())
        for k in kwargs:
            if k not in inputs:
                import difflib
                hint = difflib.get_close_matches(k, list(inputs), n=1)
                raise SymbolError(f"{what}: '{k}' is not an input of this symbol"
                                  + (f"; did you mean '{hint[0]}'?" if hint else ""))
        known.update(kwargs)
        return known

    def _by_role(self, values: Mapping[Entry, Any]) -> tuple[list[Any], list[Any], list[Any]]:
        g = self.graph
        by_name = {n.name: values.get(Entry(n, 0)) for n in g.inputs}
        return ([by_name[a] for a in self.list_arguments()],
                [values.get(e) for e in self._outputs],
                [by_name[a] for a in self.list_auxiliary_states()])

    # -- composition ----------------------------------------------------------------------------
    def __add__(self, other: Symbol | float) -> Symbol:
        return _binary(self, other, "elemwise_add", "_plus_scalar")

    __radd__ = __add__

    def __mul__(self, other: Symbol | float) -> Symbol:
        return _binary(self, other, "elemwise_mul", "_mul_scalar")

    __rmul__ = __mul__

    def __neg__(self) -> Symbol:
        return _call_op(get_op("_mul_scalar"), (self,), {"scalar": -1.0})

    def __sub__(self, other: Symbol | float) -> Symbol:
        return self + (-other)

    def __rsub__(self, other: float) -> Symbol:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return _call_op(get_op("_rminus_scalar"), (self,), {"scalar": float(other)})
        raise SymbolError(f"cannot combine a Symbol with {type(other).__name__}")

    # -- serialisation --------------------------------------------------------------------------
    def tojson(self) -> str:
        """MXNet 1.x symbol JSON (``nodes``, ``arg_nodes``, ``node_row_ptr``, ``heads``).

        MXNet 1.9.1 loads the result; attribute spellings follow :mod:`symbol.mxnet_json`.

        Raises:
            SymbolError: an attribute that MXNet symbol JSON cannot hold faithfully.
        """
        return mxnet_json.write_json(self.graph)

    def save(self, fname: str) -> None:
        """Write :meth:`tojson` to ``fname``."""
        with open(fname, "w") as f:
            f.write(self.tojson())

    def debug_str(self) -> str:
        """The graph, one node per line."""
        return str(self.graph)

    # -- gradient and binding -------------------------------------------------------------------
    def gradient(self, wrt: Sequence[str] | None = None) -> Any:
        """The joint forward+backward graph (see :func:`symbol.gradient.gradient`)."""
        from .gradient import gradient
        return gradient(self.graph, wrt)

    def simple_bind(self, ctx: Any = "cpu", grad_req: Any = "write", **kwargs: Any) -> Any:
        """Allocate arrays from shapes and bind an executor (needs the executor package)."""
        return _backend("simple_bind")(self, ctx=ctx, grad_req=grad_req, **kwargs)

    def bind(self, ctx: Any = "cpu", args: Any = None, **kwargs: Any) -> Any:
        """Bind an executor to caller-given arrays (needs the executor package)."""
        return _backend("bind")(self, ctx=ctx, args=args, **kwargs)


def _binary(lhs: Symbol, rhs: Symbol | float, op: str, scalar_op: str) -> Symbol:
    if isinstance(rhs, Symbol):
        return _call_op(get_op(op), (lhs, rhs), {})
    if isinstance(rhs, (int, float)) and not isinstance(rhs, bool):
        return _call_op(get_op(scalar_op), (lhs,), {"scalar": float(rhs)})
    raise SymbolError(f"cannot combine a Symbol with {type(rhs).__name__}")


def Variable(name: str, attr: Mapping[str, str] | None = None, shape: Shape | None = None,
             dtype: str | None = None, init: str | None = None, lr_mult: float | None = None,
             wd_mult: float | None = None, **kwargs: str) -> Symbol:
    """A named input (MXNet ``sym.Variable``). ``shape``/``dtype`` are stored as hints.

    Extra keyword attributes must be of the form ``__key__`` (MXNet's rule).
    """
    if not isinstance(name, str) or not name:
        raise SymbolError("Variable needs a non-empty string name")
    attrs = {**AttrScope.current(), **(attr or {})}
    for key, val in (("__shape__", shape), ("__dtype__", dtype), ("__init__", init),
                     ("__lr_mult__", lr_mult), ("__wd_mult__", wd_mult)):
        if val is not None:
            attrs[key] = Param.format(val)
    for k, v in kwargs.items():
        if not (k.startswith("__") and k.endswith("__")):
            raise SymbolError(f"Variable '{name}': unknown attribute '{k}' (user attributes "
                              "are passed as attr={...} or named __key__)")
        attrs[k] = str(v)
    return Symbol([Entry(make_variable(name, attrs), 0)])


var = Variable


def Group(symbols: Sequence[Symbol]) -> Symbol:
    """One symbol whose outputs are the outputs of ``symbols``, in order."""
    outs: list[Entry] = []
    for s in symbols:
        if not isinstance(s, Symbol):
            raise SymbolError(f"Group takes Symbols, got {type(s).__name__}")
        outs.extend(s.outputs)
    return Symbol(outs)


def _call_op(opdef: OpDef, args: Sequence[Any], kwargs: dict[str, Any],
             name: str | None = None, attr: Mapping[str, str] | None = None) -> Symbol:
    name = NameManager.current().get(name, opdef.name.lower())
    symbols = {k: v for k, v in kwargs.items() if isinstance(v, Symbol)}
    user = {**AttrScope.current(), **(attr or {})}
    op_attrs: dict[str, Any] = {}
    for k, v in kwargs.items():
        if k in symbols:
            continue
        if k.startswith("__") and k.endswith("__"):
            user[k] = str(v)
        elif v is not None or opdef.param(k) is not None:
            op_attrs[k] = v
    if opdef.variadic:
        if symbols:
            raise OpError(f"operator '{name}' ({opdef.name}) takes its inputs positionally")
        inputs = [_as_entry(s, name, f"arg{i}") for i, s in enumerate(args)]
        op_attrs.pop("num_args", None)
        if not inputs:
            raise OpError(f"operator '{name}' ({opdef.name}) needs at least one input")
        node = make_node(opdef, name, inputs, attrs=op_attrs, user_attrs=user,
                         params={"num_args": len(inputs)})
        return _visible(node)
    params = opdef.parse_params(op_attrs, name)
    arg_names = opdef.list_arguments(params)
    if len(args) > len(arg_names):
        raise OpError(f"operator '{name}' ({opdef.name}) takes {len(arg_names)} inputs "
                      f"({', '.join(arg_names)}), got {len(args)}")
    given = dict(zip(arg_names, args))
    for k, v in symbols.items():
        if k not in arg_names:
            raise OpError(f"operator '{name}' ({opdef.name}) has no input '{k}' (inputs: "
                          f"{', '.join(arg_names)})")
        if k in given:
            raise OpError(f"operator '{name}' ({opdef.name}): input '{k}' given twice")
        given[k] = v
    inputs = []
    for arg in arg_names:
        s = given.get(arg)
        if s is None:
            if not auto_argument(arg):
                raise OpError(f"operator '{name}' ({opdef.name}): missing input '{arg}'")
            s = Variable(f"{name}_{arg}", attr=attr)
        inputs.append(_as_entry(s, name, arg))
    node = make_node(opdef, name, inputs, attrs=op_attrs, user_attrs=user)
    return _visible(node)


def _as_entry(s: Any, name: str, arg: str) -> Entry:
    if not isinstance(s, Symbol):
        raise OpError(f"operator '{name}': input '{arg}' must be a Symbol, got "
                      f"{type(s).__name__}")
    return s._entry(f"operator '{name}', input '{arg}'")


def _visible(node: Node) -> Symbol:
    n = node.opdef.visible_outputs(node.params)
    return Symbol([Entry(node, i) for i in range(n)])


def make_op_function(opdef: OpDef, public_name: str | None = None) -> Callable[..., Symbol]:
    """The user-facing constructor for ``opdef`` (``sym.FullyConnected(data, num_hidden=10)``)."""
    def creator(*args: Any, name: str | None = None, attr: Mapping[str, str] | None = None,
                **kwargs: Any) -> Symbol:
        return _call_op(opdef, args, kwargs, name=name, attr=attr)
    creator.__name__ = creator.__qualname__ = public_name or opdef.name
    params = "".join(f"\n    {p.name} ({p.kind}{'' if p.default is None else ''}): {p.doc}"
                     for p in opdef.params)
    creator.__doc__ = (f"{opdef.doc or opdef.name}\n\nInputs: "
                       f"{', '.join(opdef.list_arguments({'num_args': 1, 'no_bias': False}))}"
                       f"\nAttributes:{params or ' none'}")
    return creator


def load_json(json_str_or_path: str | os.PathLike[str]) -> Symbol:
    """Load MXNet 1.x symbol JSON from a string or a file path (``*-symbol.json``).

    Raises:
        SymbolError: an unreadable file; see :func:`symbol.mxnet_json.read_json` for the rest.
    """
    text, source = mxnet_json.read_source(json_str_or_path)
    return Symbol(mxnet_json.read_json(text, source=source))


def fromjson(text: str) -> Symbol:
    """Parse MXNet 1.x symbol JSON text (see :func:`symbol.mxnet_json.read_json`)."""
    return Symbol(mxnet_json.read_json(text))
