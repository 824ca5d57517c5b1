"""Op-sweep rows for the nn family (random Dropout masks are tested in test_dropout.py)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

import symbol as sym

from .harness import Case

X = sym.Variable("x")
IMG: dict[str, tuple[int, ...]] = {"x": (2, 3, 7, 7)}


# -- FullyConnected ------------------------------------------------------------------------------
def _fc(**attrs: Any):
    return lambda: sym.FullyConnected(X, name="fc", **attrs)


FC_CASES = [
    Case("FullyConnected-flatten-4d", _fc(num_hidden=5), {"x": (4, 3, 2, 2)},
         lambda x, fc_weight, fc_bias: F.linear(x.flatten(1), fc_weight, fc_bias)),
    Case("FullyConnected-no_bias", _fc(num_hidden=5, no_bias=True), {"x": (4, 6)},
         lambda x, fc_weight: F.linear(x, fc_weight)),
    Case("FullyConnected-flatten=False-3d", _fc(num_hidden=5, flatten=False), {"x": (2, 3, 6)},
         lambda x, fc_weight, fc_bias: F.linear(x, fc_weight, fc_bias)),
    Case("FullyConnected-flatten=False-no_bias", _fc(num_hidden=4, flatten=False, no_bias=True),
         {"x": (2, 3, 6)}, lambda x, fc_weight: F.linear(x, fc_weight)),
]


# -- Convolution ---------------------------------------------------------------------------------
def _conv(id: str, shape: tuple[int, ...], **attrs: Any) -> Case:
    """A Convolution row; the reference reads the same MXNet attributes (() = defaults)."""
    stride, pad = attrs.get("stride", 1), attrs.get("pad", 0)
    dilate, groups = attrs.get("dilate", 1), attrs.get("num_group", 1)

    def reference(x, conv_weight, conv_bias=None):
        return F.conv2d(x, conv_weight, conv_bias, stride, pad, dilate, groups)
    return Case(f"Convolution-{id}", lambda: sym.Convolution(X, name="conv", **attrs),
                {"x": shape}, reference)


CONV_CASES = [
    _conv("3x3-pad1", IMG["x"], kernel=(3, 3), pad=(1, 1), num_filter=4),
    _conv("3x3-stride2-pad1", (2, 3, 8, 8), kernel=(3, 3), stride=(2, 2), pad=(1, 1),
          num_filter=4),
    _conv("3x3-dilate2", IMG["x"], kernel=(3, 3), dilate=(2, 2), pad=(2, 2), num_filter=2),
    _conv("num_group2", (2, 4, 6, 6), kernel=(3, 3), num_filter=6, num_group=2),
    _conv("no_bias", IMG["x"], kernel=(3, 3), num_filter=4, no_bias=True),
    _conv("1x1", IMG["x"], kernel=(1, 1), num_filter=5),
    _conv("non-square", (2, 3, 7, 6), kernel=(3, 2), stride=(2, 1), pad=(1, 0), num_filter=3),
]


# -- BatchNorm -----------------------------------------------------------------------------------
def _bn_reference(fix_gamma: bool, global_stats: bool, eps: float):
    def reference(x, bn_gamma, bn_beta, bn_moving_mean, bn_moving_var):
        gamma = torch.ones_like(bn_gamma) if fix_gamma else bn_gamma
        if global_stats:
            return F.batch_norm(x, bn_moving_mean, bn_moving_var, gamma, bn_beta, False, 0.0, eps)
        return F.batch_norm(x, None, None, gamma, bn_beta, True, 0.0, eps)
    return reference


def _moving_update(momentum: float):
    """MXNet's rule: moving = moving*momentum + batch*(1-momentum), BIASED batch variance."""
    def aux_reference(x, bn_moving_mean, bn_moving_var, **_: Any):
        dims = [d for d in range(x.dim()) if d != 1]
        var, mean = torch.var_mean(x.detach(), dims, correction=0)
        return {"bn_moving_mean": bn_moving_mean * momentum + mean * (1 - momentum),
                "bn_moving_var": bn_moving_var * momentum + var * (1 - momentum)}
    return aux_reference


def _unchanged(bn_moving_mean, bn_moving_var, **_: Any):
    return {"bn_moving_mean": bn_moving_mean, "bn_moving_var": bn_moving_var}


def _bn(id: str, shape: tuple[int, ...], *, is_train: bool = True, **attrs: Any) -> Case:
    fix = attrs.get("fix_gamma", True)
    glob = attrs.get("use_global_stats", False) or not is_train
    eps, momentum = attrs.get("eps", 1e-3), attrs.get("momentum", 0.9)
    return Case(f"BatchNorm-{id}", lambda: sym.BatchNorm(X, name="bn", **attrs), {"x": shape},
                _bn_reference(fix, glob, eps), is_train=is_train,
                aux_reference=_unchanged if glob else _moving_update(momentum))


BN_CASES = [
    _bn("train-fix_gamma", IMG["x"]),
    _bn("train-gamma", IMG["x"], fix_gamma=False, eps=1e-5, momentum=0.8),
    _bn("train-2d", (6, 4), fix_gamma=False),
    _bn("use_global_stats", IMG["x"], fix_gamma=False, use_global_stats=True),
    _bn("use_global_stats-fix_gamma", IMG["x"], use_global_stats=True),
    _bn("inference", IMG["x"], fix_gamma=False, is_train=False),
]


# -- Pooling -------------------------------------------------------------------------------------
def _pool(id: str, reference, shape: tuple[int, ...] = IMG["x"], inputs=None,
          **attrs: Any) -> Case:
    return Case(f"Pooling-{id}", lambda: sym.Pooling(X, **attrs), {"x": shape}, reference,
                inputs=inputs or {})


def _ties(shape: tuple[int, ...], values: int) -> dict[str, torch.Tensor]:
    """Inputs drawn from ``values`` integers: most max-pooling windows hold a tie, which the
    backward (recomputing the argmax) must break as torch's autograd does."""
    gen = torch.Generator().manual_seed(3)
    return {"x": torch.randint(0, values, shape, generator=gen).double()}


POOL_CASES = [
    _pool("max-3x3-s2-p1", lambda x: F.max_pool2d(x, 3, 2, 1),
          kernel=(3, 3), stride=(2, 2), pad=(1, 1)),
    _pool("max-2x2", lambda x: F.max_pool2d(x, 2, 1), kernel=(2, 2)),
    _pool("avg-count_include_pad", lambda x: F.avg_pool2d(x, 3, 2, 1),
          kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg"),
    _pool("avg-exclude_pad", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
          kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg", count_include_pad=False),
    _pool("sum", lambda x: 9 * F.avg_pool2d(x, 3, 2, 1),
          kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="sum"),
    _pool("global-max", lambda x: x.amax((2, 3), keepdim=True), global_pool=True),
    _pool("global-avg", lambda x: x.mean((2, 3), keepdim=True), global_pool=True,
          pool_type="avg", kernel=(2, 2)),
    _pool("global-sum", lambda x: x.sum((2, 3), keepdim=True), global_pool=True,
          pool_type="sum"),
    _pool("max-full", lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True), (2, 3, 6, 6),
          kernel=(3, 3), stride=(2, 2), pooling_convention="full"),
    _pool("avg-full-pad", lambda x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True), (1, 2, 6, 6),
          kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="avg", pooling_convention="full"),
    # ties: the gradient goes to the element torch's argmax picks, not to every maximum
    _pool("max-ties-3x3-s1", lambda x: F.max_pool2d(x, 3, 1, 1), inputs=_ties(IMG["x"], 3),
          kernel=(3, 3), stride=(1, 1), pad=(1, 1)),
    _pool("max-ties-2x2-s2", lambda x: F.max_pool2d(x, 2, 2), (2, 3, 8, 8),
          inputs=_ties((2, 3, 8, 8), 2), kernel=(2, 2), stride=(2, 2)),
    _pool("global-max-all-equal", lambda x: F.max_pool2d(x, x.shape[2:]),
          inputs={"x": torch.ones(IMG["x"], dtype=torch.float64)}, global_pool=True),
]


# -- Dropout (deterministic settings only) -------------------------------------------------------
DROPOUT_CASES = [
    Case("Dropout-p0-training", lambda: sym.Dropout(X, p=0.0), IMG, lambda x: x.clone()),
    Case("Dropout-inference-identity", lambda: sym.Dropout(X, p=0.5), IMG, lambda x: x.clone(),
         is_train=False),
    Case("Dropout-always-p0", lambda: sym.Dropout(X, p=0.0, mode="always"), IMG,
         lambda x: x.clone()),
    Case("Dropout-p1-drops-everything", lambda: sym.Dropout(X, p=1.0), IMG, lambda x: x * 0),
]

CASES = [*FC_CASES, *CONV_CASES, *BN_CASES, *POOL_CASES, *DROPOUT_CASES]
