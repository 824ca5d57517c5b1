"""Mixed precision: rewrite a network so that it computes in float16 or bfloat16 where that is
safe, keeping float32 where precision matters (MXNet's ``amp.convert_symbol``; the split of
``torch.autocast``).

:func:`convert_symbol` walks the graph once in topological order and inserts ``Cast`` nodes
according to each operator's ``amp`` rule (its registry row):

* ``low`` (Convolution, FullyConnected): the data is cast to the low dtype; the weight and
  bias are their ``float32_arguments``: they stay the float32 variables (the optimizer's
  master weights) and the kernel multiplies with a low-precision temporary copy (workspace,
  not a stored entry: an RNN's shared weights would otherwise keep a copy alive all step),
  returning their gradients in float32.
* ``float32`` (SoftmaxOutput, softmax_cross_entropy): the softmax and the loss are computed
  in float32 by the kernel from the low-precision logits (no cast node: a float32 copy of
  bfloat16 logits would hold no more information and double their bytes); the loss value is
  float32, SoftmaxOutput's probabilities are stored in the low dtype.
* ``follow`` (everything else: activations, pooling, sums, BatchNorm, Dropout, reshapes):
  computes in the dtype of its computed inputs, the widest if they differ (the narrower ones
  are cast up); variables it reads (an RNN's initial state) are cast to that dtype, so a
  float32 input does not pull a whole recurrence up to float32. BatchNorm's
  ``float32_arguments`` (gamma, beta, moving statistics) stay float32: it normalises
  low-precision data with float32 statistics, as cuDNN's and torch's kernels do.

Labels (``ANY_DTYPE_ARGUMENTS``) are never cast. A cast of one entry to one dtype is made once
and shared by all its readers. The gradient pass then differentiates through the casts
(``_backward_Cast`` converts a gradient back to its input's dtype), so activations and their
gradients are stored in the low dtype and every parameter gradient is float32.
Legality: ``Cast`` changes values only by rounding; a network is converted before it is
differentiated or planned, so every pass sees one ordinary graph. Complexity: O(nodes + edges).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Mapping

from .errors import SymbolError
from .graph import Entry, Node, make_node
from .infer_shape import ANY_DTYPE_ARGUMENTS
from .symbol import Symbol

__all__ = ["convert_symbol", "LOW_DTYPES", "amp_summary"]

LOW_DTYPES = ("bfloat16", "float16")
_RANK = {"float16": 0, "bfloat16": 0, "float32": 1, "float64": 2}


def convert_symbol(symbol: Symbol, dtype: str, *,
                   input_dtypes: Mapping[str, str] | None = None) -> Symbol:
    """``symbol`` rewritten to compute in ``dtype`` (``bfloat16`` or ``float16``) by the
    operators' ``amp`` rules (see the module docstring).

    Args:
        symbol: the float32 network.
        dtype: the low dtype.
        input_dtypes: dtypes of variables that are not float32 (default: ``__dtype__``
            attributes, else float32).

    Raises:
        SymbolError: ``dtype`` is not a low-precision float.
    """
    if dtype not in LOW_DTYPES:
        raise SymbolError(f"mixed precision computes in {' or '.join(LOW_DTYPES)}, not {dtype!r}")
    known = dict(input_dtypes or {})
    graph = symbol.graph
    new: dict[Entry, Entry] = {}
    types: dict[Entry, str | None] = {}
    casts: dict[tuple[Entry, str], Entry] = {}
    names = {n.name for n in graph.inputs} | {n.name for n in graph.nodes}
    for v in graph.inputs:
        e = Entry(v, 0)
        new[e] = e
        types[e] = known.get(v.name) or v.attrs.get("__dtype__") or "float32"

    def cast(e: Entry, to: str) -> Entry:
        key = (e, to)
        if key not in casts:
            base = e.node.name if e.node.num_outputs == 1 else f"{e.node.name}{e.index}"
            name = f"{base}_{to}"
            while name in names:
                name += "_"
            names.add(name)
            node = make_node("Cast", name, [e], attrs={"dtype": to})
            casts[key] = Entry(node, 0)
            types[casts[key]] = to
        return casts[key]

    for node in graph.nodes:
        inputs = [new[e] for e in node.inputs]
        args = node.opdef.list_arguments(node.params)
        target = _target(node, list(args), [types[e] for e in inputs], dtype)
        fixed = set(node.opdef.float32_arguments) | ANY_DTYPE_ARGUMENTS
        for i, (arg, e) in enumerate(zip(args, inputs, strict=True)):
            t = types[e]
            if target is not None and arg not in fixed and t in _RANK and t != target:
                inputs[i] = cast(e, target)
        rebuilt = replace(node, inputs=tuple(inputs)) if inputs != list(node.inputs) else node
        outs = node.opdef.infer_type(node.params, [types[e] for e in inputs], node.num_outputs)
        for k in range(node.num_outputs):
            new[Entry(node, k)] = Entry(rebuilt, k)
            types[Entry(rebuilt, k)] = outs[k]
    return Symbol([new[e] for e in symbol.outputs])


def _target(node: Node, args: list[str], in_types: list[str | None], low: str) -> str | None:
    """The dtype ``node`` computes in (None: leave its inputs as they are)."""
    rule = node.opdef.amp
    if rule == "low":
        return low
    if rule == "float32":  # the kernel computes in float32 from low-precision inputs
        return None
    fixed = set(node.opdef.float32_arguments) | ANY_DTYPE_ARGUMENTS
    computed = [t for a, e, t in zip(args, node.inputs, in_types)
                if a not in fixed and t in _RANK and not e.node.is_variable]
    if not computed:  # only variables: leave them as they are
        return None
    return max(computed, key=lambda t: _RANK[t])


def amp_summary(symbol: Symbol) -> str:
    """One line: how many casts a converted network holds, by target dtype."""
    counts: dict[str, int] = {}
    for n in symbol.graph.nodes:
        if n.op == "Cast":
            counts[n.params["dtype"]] = counts.get(n.params["dtype"], 0) + 1
    parts = ", ".join(f"{v} to {k}" for k, v in sorted(counts.items()))
    return f"amp: {sum(counts.values())} casts" + (f" ({parts})" if parts else "")
