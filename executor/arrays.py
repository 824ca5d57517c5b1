"""Arrays a user hands the executor: dtype names, and the checks run on inputs, labels and
head gradients before anything is copied (rules in :meth:`executor.executor.Executor.forward`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from symbol import SymbolError
from symbol.gradient import JointGraph
from symbol.graph import Entry, topo_sort

from .kernels.loss import LABEL_CLASSES

__all__ = ["ExecutorError", "SUPPORTED_DTYPES", "torch_dtype", "dtype_name", "LabelRule",
           "label_rules", "kind_of", "source", "check_labels"]

_TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                 "bfloat16": torch.bfloat16, "int64": torch.int64, "int32": torch.int32,
                 "bool": torch.bool, "uint8": torch.uint8}
#: Dtype names the executor allocates and accepts.
SUPPORTED_DTYPES = tuple(_TORCH_DTYPES)


class ExecutorError(SymbolError):
    """Binding or running failed because of what the caller gave (shapes, names, order)."""


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype for a dtype name (``'float32'``)."""
    try:
        return _TORCH_DTYPES[name]
    except KeyError:
        raise ExecutorError(f"unsupported dtype '{name}' (supported: "
                            f"{', '.join(_TORCH_DTYPES)})") from None


def dtype_name(dtype: torch.dtype) -> str:
    """The dtype name of a torch dtype."""
    for k, v in _TORCH_DTYPES.items():
        if v == dtype:
            return k
    raise ExecutorError(f"unsupported dtype {dtype}")


@dataclass(frozen=True)
class LabelRule:
    """The values a loss op accepts in its label input: class indices 0 .. classes - 1, and
    ``ignore`` (``ignore_label`` with ``use_ignore``) if set."""

    node: str
    op: str
    classes: int
    ignore: float | None


def label_rules(joint: JointGraph, shapes: Mapping[Entry, Any]) -> dict[str, list[LabelRule]]:
    """Label variable name -> the loss ops reading it and the class indices they accept."""
    rules: dict[str, list[LabelRule]] = {}
    for node in topo_sort(joint.forward_outputs):
        classes = LABEL_CLASSES.get(node.op)
        if classes is None or not node.inputs[1].node.is_variable:
            continue
        p = node.params
        ignore = float(p["ignore_label"]) if p.get("use_ignore") else None
        rule = LabelRule(node.name, node.op, classes(p, shapes[node.inputs[0]]), ignore)
        rules.setdefault(node.inputs[1].node.name, []).append(rule)
    return rules


def kind_of(value: Any) -> str:
    """What ``value`` is, for an error message: ``None``, ``a numpy array``, ``an int``."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return "a numpy array"
    if isinstance(value, torch.Tensor):
        return "a torch tensor"
    name = type(value).__name__
    return ("an " if name[:1] in "aeiou" else "a ") + name


def _expected(dst: torch.Tensor) -> str:
    return f"an array of shape {tuple(dst.shape)} ({dtype_name(dst.dtype)})"


_KINDS = {"U": "strings", "S": "bytes", "O": "objects (None, arrays, mixed types)",
          "c": "complex numbers", "M": "dates", "m": "time deltas", "V": "records"}


def _from_host(value: Any, dst: torch.Tensor, what: str) -> torch.Tensor:
    """``value`` (numpy array, nested list, number) as a CPU tensor, or ExecutorError."""
    if not isinstance(value, (np.ndarray, np.generic, list, tuple, int, float)):
        raise ExecutorError(f"{what} must be {_expected(dst)}, got {kind_of(value)}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        raise ExecutorError(f"{what} must be {_expected(dst)}, got {kind_of(value)} that is "
                            "not a rectangular array of numbers (rows of different lengths?)"
                            ) from None
    if arr.dtype.kind not in "biuf":
        raise ExecutorError(f"{what} must be {_expected(dst)}, got {kind_of(value)} of "
                            f"{_KINDS.get(arr.dtype.kind, str(arr.dtype))}")
    try:
        return torch.from_numpy(arr)
    except (TypeError, ValueError, RuntimeError):  # negative strides, byte order, float128
        wide = np.float64 if arr.dtype.kind == "f" else np.int64
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=wide))


def source(value: Any, dst: torch.Tensor, what: str, *, label: bool = False) -> torch.Tensor:
    """``value`` as a tensor to copy into ``dst`` (rules in
    :meth:`executor.executor.Executor.forward`).

    Raises:
        ExecutorError: not a numeric array, another shape, or a float array for an integer
            ``dst`` (unless ``label``: label values are checked separately).
    """
    src = value if isinstance(value, torch.Tensor) else _from_host(value, dst, what)
    if tuple(src.shape) != tuple(dst.shape):
        raise ExecutorError(f"{what} has shape {tuple(dst.shape)}, got an array of shape "
                            f"{tuple(src.shape)}")
    if src.is_complex():
        raise ExecutorError(f"{what} must be {_expected(dst)}, got a complex array")
    if src.is_floating_point() and not dst.is_floating_point() and not label:
        raise ExecutorError(f"{what} is {dtype_name(dst.dtype)}, got a float array "
                            f"({str(src.dtype).replace('torch.', '')}): floats are not "
                            "rounded into integers; convert it first")
    return src


def check_labels(src: torch.Tensor, rules: Sequence[LabelRule], name: str) -> None:
    """Raise ExecutorError unless ``src`` holds class indices that every rule accepts.

    Fast path: one min/max pass (and one whole-number test for float labels); the offending
    value is looked for only when that fails.
    """
    lab = src.to(torch.uint8) if src.dtype == torch.bool else src
    lo, hi = (float(x) for x in torch.aminmax(lab))
    floats = lab.is_floating_point()
    whole = not floats or bool(torch.equal(lab, lab.trunc()))
    for rule in rules:
        if whole and 0 <= lo and hi < rule.classes:
            continue
        bad = (lab < 0) | (lab >= rule.classes)
        if floats:
            bad |= lab != lab.trunc()  # also NaN, as NaN != NaN
        if rule.ignore is not None:
            bad &= lab != rule.ignore
        where = bad.flatten().nonzero()
        if len(where) == 0:
            continue
        pos = int(where[0])
        index = [int(i) for i in np.unravel_index(pos, tuple(lab.shape))]
        accepted = f"whole numbers 0 .. {rule.classes - 1}"
        if rule.ignore is not None:
            accepted += f" or the ignore_label {rule.ignore:g}"
        raise ExecutorError(f"forward: label '{name}' of '{rule.node}' ({rule.op}) must hold "
                            f"class indices, {accepted} ({rule.classes} classes); got "
                            f"{lab.flatten()[pos].item()!r}"
                            + (f" at index {index[0] if len(index) == 1 else tuple(index)}"
                               if index else ""))
