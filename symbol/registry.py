"""The operator registry: one :class:`OpDef` record per operator, registered once.

An ``OpDef`` is everything the framework knows about an operator that does not depend on a
backend: its inputs, typed attributes, output names, shape and dtype rules, the **symbolic**
gradient rule (which returns graph nodes, never closures), the in-place pairs it allows and its
cost. Kernels live in ``executor/kernels``; plans that read these records live in ``optim``.

Attribute values are strings in the graph (MXNet style: ``kernel="(3, 3)"``) and typed values in
``Node.params``; :class:`Param` converts between the two and rejects ill-typed values.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .errors import AttrError, ShapeError

if TYPE_CHECKING:
    from .graph import Entry, Node

__all__ = [
    "Shape", "Params", "Param", "Cost", "OpDef", "REQUIRED", "OPS", "register", "get_op",
    "no_inplace", "no_shape_only", "elementwise_cost", "check_shape", "numel", "AUTO_ARGUMENTS",
    "NON_DIFFERENTIABLE",
]

Shape = tuple[int, ...]
Params = Mapping[str, Any]
ShapeList = list["Shape | None"]
InferShape = Callable[[Params, ShapeList], "tuple[ShapeList, ShapeList]"]
Gradient = Callable[["Node", "list[Entry | None]"], "Sequence[Entry | None]"]

#: Arguments that become variables named ``<node>_<argument>`` when the caller leaves them out,
#: as MXNet does for weights, biases, labels and auxiliary states. A missing ``data`` is an error.
AUTO_ARGUMENTS = frozenset({"weight", "bias", "gamma", "beta", "label", "moving_mean",
                            "moving_var"})

#: Forward ops registered with ``gradient=None`` on purpose (a test checks this list is exact).
#: Every forward op of the current registry is differentiable (BlockGrad and zeros_like have a
#: zero gradient, as in MXNet), so the set is empty; a new op without gradient must be added.
NON_DIFFERENTIABLE: frozenset[str] = frozenset()

_REQUIRED = object()
REQUIRED: Any = _REQUIRED


def _parse_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int,)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "1", "false", "0"):
        return v.strip().lower() in ("true", "1")
    raise ValueError("expected a boolean (True or False)")


def _parse_int(v: Any) -> int:
    if isinstance(v, bool):
        raise ValueError("expected an integer")
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            pass
    raise ValueError("expected an integer")


def _parse_float(v: Any) -> float:
    if isinstance(v, bool):
        raise ValueError("expected a number")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            pass
    raise ValueError("expected a number")


def _parse_tuple(v: Any) -> tuple[int, ...]:
    if isinstance(v, str):
        try:
            v = ast.literal_eval(v.strip() or "()")
        except (ValueError, SyntaxError):
            raise ValueError("expected a tuple of integers such as (3, 3)") from None
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,)
    if isinstance(v, (tuple, list)) and all(isinstance(x, int) and not isinstance(x, bool)
                                            for x in v):
        return tuple(v)
    raise ValueError("expected a tuple of integers such as (3, 3)")


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "int": _parse_int, "float": _parse_float, "bool": _parse_bool, "tuple": _parse_tuple,
    "str": lambda v: v if isinstance(v, str) else _raise(ValueError("expected a string")),
}


def _raise(e: Exception) -> Any:
    raise e


@dataclass(frozen=True)
class Param:
    """A typed operator attribute.

    Attributes:
        name: MXNet spelling (``num_hidden``, ``kernel``).
        kind: one of ``int``, ``float``, ``bool``, ``str``, ``tuple`` (of ints).
        default: value used when the attribute is absent; ``REQUIRED`` makes it mandatory.
        choices: for ``str`` attributes, the accepted values.
        doc: one line for users.
    """

    name: str
    kind: str
    default: Any = REQUIRED
    choices: tuple[str, ...] | None = None
    doc: str = ""

    def parse(self, value: Any) -> Any:
        """Convert a Python or string value to this attribute's type, or raise ValueError."""
        if value is None and self.default is None:
            return None
        if isinstance(value, str) and value == "None" and self.default is None:
            return None
        out = _PARSERS[self.kind](value)
        if self.choices is not None and out not in self.choices:
            raise ValueError("expected one of " + ", ".join(repr(c) for c in self.choices))
        return out

    @staticmethod
    def format(value: Any) -> str:
        """MXNet's string form of an attribute value (``(3, 3)``, ``True``, ``0.5``)."""
        if isinstance(value, (tuple, list)):
            return "(" + ", ".join(str(x) for x in value) + ("," if len(value) == 1 else "") + ")"
        return str(value)


@dataclass(frozen=True)
class Cost:
    """Cost of one execution of an op: floating point operations and bytes touched (fp32)."""

    flops: int
    bytes: int


def no_inplace(params: Params) -> tuple[tuple[int, int], ...]:
    """Default in-place rule: the op may not overwrite any input."""
    return ()


def no_shape_only(params: Params) -> tuple[int, ...]:
    """Default: every input is read for its values."""
    return ()


def numel(shape: Shape | None) -> int:
    n = 1
    for d in shape or ():
        n *= d
    return n


def elementwise_cost(params: Params, ins: Sequence[Shape], outs: Sequence[Shape]) -> Cost:
    """Default cost: one flop per output element; every input and output read/written once."""
    nout = sum(numel(s) for s in outs)
    return Cost(nout, 4 * (nout + sum(numel(s) for s in ins)))


def _same_dtype(params: Params, in_types: list[str | None], nout: int) -> list[str | None]:
    return [in_types[0] if in_types else None] * nout


@dataclass(frozen=True)
class OpDef:
    """Everything known about one operator, independent of any backend.

    Attributes:
        name: MXNet spelling (``Convolution``, ``elemwise_add``, ``_backward_Convolution``).
        family: registry family (``nn``, ``elemwise``, ``shape``, ``loss``).
        arguments: input names in order, or a function of the params (``no_bias`` drops
            ``bias``). Ignored when ``variadic`` is set.
        infer_shape: ``(params, in_shapes) -> (in_shapes, out_shapes)``; ``None`` marks an
            unknown shape on either side; raises :class:`ShapeError` with a short message.
        gradient: ``(node, out_grads) -> one Entry or None per input``, building new graph nodes;
            ``None`` means not differentiable (must then be listed in ``NON_DIFFERENTIABLE``,
            unless ``is_backward``).
        params: typed attributes (default ``()``).
        outputs: output names, or a function of the params (default ``("output",)``).
        num_visible: how many leading outputs users see (default: all). The rest are hidden
            outputs kept for the backward pass (batch-norm statistics, dropout mask).
        aux: argument names that are auxiliary states (``moving_mean``), default ``()``.
        variadic: inputs are ``arg0 .. arg{num_args-1}``; ``num_args`` is set from the call.
        inplace: ``params -> ((input, output), ...)`` pairs the op may compute in place
            (default none).
        cost: ``(params, in_shapes, out_shapes) -> Cost`` (default: elementwise).
        infer_type: ``(params, in_types, num_outputs) -> out_types`` (default: the first
            input's dtype for every output).
        shape_only: ``params -> indices`` of inputs read only for their shape (a backward op
            that needs the forward input's shape but not its values). Liveness ignores them, so
            they keep no buffer alive; kernels must read only ``.shape`` of such inputs.
        workspace: temporary bytes the kernel allocates while it runs, as a multiple of its
            output bytes (default 0; 1 for kernels whose torch ``out=`` overload computes into
            a temporary and copies, 2 for max pooling's int64 argmax at fp32). An estimate:
            the largest such temporary of a plan is its operator workspace.
        amp: the op's rule under mixed precision (:mod:`symbol.amp`, torch.autocast's
            split): ``low`` computes in the low dtype (its float inputs are cast to it:
            matrix products), ``float32`` computes in float32 (inputs cast up), ``follow``
            (default) computes in the dtype of its inputs, the widest if they differ.
        float32_arguments: arguments that may stay float32 while the data is in a lower
            precision (BatchNorm's scale, shift and statistics); the other inputs set the
            op's dtype.
        is_backward: a backward-only op produced by gradient rules (NNVM ``TIsBackward``).
        is_loss: a loss head: its gradient ignores the head gradient (MXNet loss layers).
        doc: one line for users.
    """

    name: str
    family: str
    arguments: tuple[str, ...] | Callable[[Params], tuple[str, ...]]
    infer_shape: InferShape
    gradient: Gradient | None
    params: tuple[Param, ...] = ()
    outputs: tuple[str, ...] | Callable[[Params], tuple[str, ...]] = ("output",)
    num_visible: int | None = None
    aux: tuple[str, ...] = ()
    variadic: bool = False
    inplace: Callable[[Params], tuple[tuple[int, int], ...]] = no_inplace
    cost: Callable[[Params, Sequence[Shape], Sequence[Shape]], Cost] = elementwise_cost
    infer_type: Callable[[Params, list[str | None], int], list[str | None]] = _same_dtype
    shape_only: Callable[[Params], tuple[int, ...]] = no_shape_only
    workspace: float = 0.0
    amp: str = "follow"
    float32_arguments: tuple[str, ...] = ()
    is_backward: bool = False
    is_loss: bool = False
    doc: str = ""
    _param_index: Mapping[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_param_index",
                           MappingProxyType({p.name: p for p in self.params}))

    # -- queries -------------------------------------------------------------------------------
    def list_arguments(self, params: Params) -> tuple[str, ...]:
        """Input names for a node with these params."""
        if self.variadic:
            return tuple(f"arg{i}" for i in range(params["num_args"]))
        return self.arguments(params) if callable(self.arguments) else self.arguments

    def list_outputs(self, params: Params) -> tuple[str, ...]:
        """All output names (visible first, then hidden)."""
        return self.outputs(params) if callable(self.outputs) else self.outputs

    def visible_outputs(self, params: Params) -> int:
        """Number of leading outputs a user sees."""
        n = len(self.list_outputs(params))
        return n if self.num_visible is None else min(self.num_visible, n)

    def param(self, name: str) -> Param | None:
        """The declared attribute called ``name``, if any."""
        return self._param_index.get(name)

    def parse_params(self, attrs: Mapping[str, Any], node: str,
                     typed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Typed params from user values; unknown names, bad types, missing required -> AttrError.

        ``typed`` holds values that are already typed (copied from another node); they win over
        ``attrs``. This method only sees op attributes, never user attributes.
        """
        out: dict[str, Any] = dict(typed or {})
        for key, value in attrs.items():
            if key in out:
                continue
            p = self._param_index.get(key)
            if p is None:
                raise AttrError(self._unknown_attr_message(key, node))
            try:
                out[key] = p.parse(value)
            except ValueError as e:
                raise AttrError(f"operator '{node}' ({self.name}): attribute {key}={value!r}: "
                                f"{e}") from None
        for p in self.params:
            if p.name not in out:
                if p.default is REQUIRED:
                    raise AttrError(f"operator '{node}' ({self.name}): missing required "
                                    f"attribute '{p.name}'")
                out[p.name] = p.default
        return out

    def _unknown_attr_message(self, key: str, node: str) -> str:
        import difflib
        names = [p.name for p in self.params]
        hint = difflib.get_close_matches(key, names, n=1)
        msg = f"operator '{node}' ({self.name}): unknown attribute '{key}'"
        if hint:
            msg += f"; did you mean '{hint[0]}'?"
        valid = ", ".join(names) if names else "none"
        return msg + f" (valid attributes: {valid})"


OPS: dict[str, OpDef] = {}
_ALIASES: dict[str, str] = {}


def register(op: OpDef, *, aliases: Sequence[str] = (), override: bool = False) -> OpDef:
    """Add ``op`` to the registry after validating the record.

    Raises:
        ValueError: a duplicate name (unless ``override``), or an incomplete record.
    """
    for name in (op.name, *aliases):
        if not override and (name in OPS or name in _ALIASES):
            raise ValueError(f"operator {name!r} is already registered")
    if not callable(op.infer_shape):
        raise ValueError(f"operator {op.name!r}: infer_shape must be callable")
    if op.gradient is None and not op.is_backward and op.name not in NON_DIFFERENTIABLE:
        raise ValueError(f"operator {op.name!r} has no gradient and is not listed in "
                         "NON_DIFFERENTIABLE")
    if op.variadic and op.param("num_args") is None:
        raise ValueError(f"variadic operator {op.name!r} needs a num_args param")
    OPS[op.name] = op
    for a in aliases:
        _ALIASES[a] = op.name
    return op


def canonical_name(name: str) -> str:
    """Resolve an alias (``add_n``) to the registered name (``ElementWiseSum``)."""
    return _ALIASES.get(name, name)


def get_op(name: str) -> OpDef:
    """The record for ``name`` (aliases accepted); unknown names raise OpError with a hint."""
    try:
        return OPS[_ALIASES.get(name, name)]
    except KeyError:
        import difflib
        from .errors import OpError
        hint = difflib.get_close_matches(name, [*OPS, *_ALIASES], n=1)
        msg = f"unknown operator '{name}'" + (f"; did you mean '{hint[0]}'?" if hint else "")
        raise OpError(msg) from None


def all_names() -> list[str]:
    """Registered operator names and aliases, sorted."""
    return sorted([*OPS, *_ALIASES])


def check_shape(what: str, got: Shape | None, expected: Shape) -> Shape:
    """Return ``expected`` if ``got`` is unknown or equal, else raise ShapeError."""
    if got is not None and tuple(got) != tuple(expected):
        raise ShapeError(f"{what} has shape {tuple(got)}, expected {tuple(expected)}")
    return tuple(expected)
