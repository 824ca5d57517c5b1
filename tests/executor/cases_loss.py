"""Op-sweep rows for the loss family: SoftmaxOutput, softmax_cross_entropy, MakeLoss.

Loss heads ignore the head gradient, so their rows give ``loss``: a torch scalar whose autograd
gradient is MXNet's gradient, e.g. ``grad_scale / norm * cross_entropy(x, label, 'sum')`` for
SoftmaxOutput.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

import symbol as sym

from .harness import Case

X = sym.Variable("x")
Y = sym.Variable("y")
LABEL = "softmax_label"
_LABELS = torch.tensor([0.0, 3.0, 1.0, 4.0, 3.0], dtype=torch.float64)
_IGNORED = torch.tensor([0.0, -1.0, 1.0, -1.0, 3.0], dtype=torch.float64)


def _softmax(**attrs: Any) -> sym.Symbol:
    return sym.SoftmaxOutput(X, name="softmax", **attrs)


def _ce(x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Summed cross entropy; label -1 is ignored."""
    return F.cross_entropy(x, label.long(), ignore_index=-1, reduction="sum")


def _softmax_case(cid: str, attrs: dict[str, Any], labels: torch.Tensor, norm: float,
                  scale: float = 1.0) -> Case:
    return Case(f"SoftmaxOutput-{cid}", lambda: _softmax(**attrs), {"x": (5, 6)},
                lambda x, softmax_label: torch.softmax(x, 1),
                loss=lambda x, softmax_label: _ce(x, softmax_label) * scale / norm,
                inputs={LABEL: labels}, no_grad=(LABEL,))


def _smoothed_loss(x: torch.Tensor, label: torch.Tensor, alpha: float) -> torch.Tensor:
    """-sum q * log softmax(x), q = 1 - alpha on the label, alpha / (C - 1) elsewhere."""
    q = torch.full_like(x, alpha / (x.shape[1] - 1))
    q.scatter_(1, label.long().unsqueeze(1), 1.0 - alpha)
    return -(q * torch.log_softmax(x, 1)).sum()


_MULTI_LABELS = torch.tensor([[[0.0, 2.0], [1.0, 1.0], [2.0, 0.0]],
                              [[1.0, 0.0], [2.0, 2.0], [0.0, 1.0]]], dtype=torch.float64)
_ROW_LABELS = torch.tensor([[0.0, 4.0, 2.0], [1.0, 3.0, 3.0]], dtype=torch.float64)

CASES = [
    _softmax_case("null", {}, _LABELS, 1.0),
    _softmax_case("batch-scale", {"normalization": "batch", "grad_scale": 2.5}, _LABELS, 5.0,
                  2.5),
    _softmax_case("valid-ignore", {"normalization": "valid", "use_ignore": True}, _IGNORED,
                  3.0),
    _softmax_case("ignore", {"use_ignore": True, "grad_scale": 0.5}, _IGNORED, 1.0, 0.5),
    Case("SoftmaxOutput-smooth", lambda: _softmax(smooth_alpha=0.1), {"x": (5, 6)},
         lambda x, softmax_label: torch.softmax(x, 1),
         loss=lambda x, softmax_label: _smoothed_loss(x, softmax_label, 0.1),
         inputs={LABEL: _LABELS}, no_grad=(LABEL,)),
    Case("SoftmaxOutput-4d-flattened", lambda: _softmax(), {"x": (5, 2, 3)},
         lambda x, softmax_label: torch.softmax(x.reshape(5, 6), 1).reshape(5, 2, 3),
         loss=lambda x, softmax_label: _ce(x.reshape(5, 6), softmax_label),
         inputs={LABEL: _LABELS}, no_grad=(LABEL,)),
    Case("SoftmaxOutput-multi-batch", lambda: _softmax(multi_output=True, normalization="batch"),
         {"x": (2, 3, 3, 2)}, lambda x, softmax_label: torch.softmax(x, 1),
         loss=lambda x, softmax_label: _ce(x, softmax_label) / 2,
         inputs={LABEL: _MULTI_LABELS}, no_grad=(LABEL,)),
    Case("Softmax-preserve-batch", lambda: sym.Softmax(X, sym.Variable("label"),
                                                       preserve_shape=True,
                                                       normalization="batch"),
         {"x": (2, 3, 5)}, lambda x, label: torch.softmax(x, -1),
         loss=lambda x, label: _ce(x.reshape(6, 5), label.reshape(6)) / 6,
         inputs={"label": _ROW_LABELS}, no_grad=("label",)),
    Case("softmax_cross_entropy",
         lambda: sym.softmax_cross_entropy(X * Y, sym.Variable("label")),
         {"x": (5, 6), "y": (5, 6)},
         lambda x, y, label: _ce(x * y, label).reshape(1),
         inputs={"label": _LABELS}, no_grad=("label",)),
    Case("MakeLoss", lambda: sym.MakeLoss(X * Y), {"x": (3, 4), "y": (3, 4)},
         lambda x, y: x * y, loss=lambda x, y: (x * y).sum()),
    Case("MakeLoss-batch-scale",
         lambda: sym.MakeLoss(X * Y, grad_scale=3.0, normalization="batch"),
         {"x": (3, 4), "y": (3, 4)}, lambda x, y: x * y,
         loss=lambda x, y: (x * y).sum() * 3.0 / 3),
    Case("MakeLoss-valid", lambda: sym.MakeLoss(X, normalization="valid", valid_thresh=0.2),
         {"x": (3, 4)}, lambda x: x.clone(),
         loss=lambda x: x.sum() / (x.detach() > 0.2).sum().clamp_min(1)),
]
