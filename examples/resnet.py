"""Pre-activation bottleneck ResNet (He et al. 2016), as MXNet's example and the paper use.

Each residual unit is BN-ReLU-Conv1x1, BN-ReLU-Conv3x3 (stride at the stage start),
BN-ReLU-Conv1x1 (4x filters), plus a shortcut (a 1x1 projection on each stage's first unit).
With ``mirror_stage=True`` the node producing every unit's input (the stem's last op, then
each unit's residual sum) carries ``mirror_stage='True'``: the candidate cut points of the
paper's planner.
"""
from __future__ import annotations

from typing import Sequence

import symbol as sym

__all__ = ["residual_unit", "get_symbol", "UNITS", "units_for_depth"]

#: Stage unit counts of the standard depths (ImageNet bottleneck: depth = 3 * sum(units) + 2).
UNITS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3),
         269: (3, 30, 48, 8)}


def units_for_depth(depth: int) -> tuple[int, int, int, int]:
    """Stage unit counts for an ImageNet bottleneck ResNet of ``depth`` layers.

    ``depth = 3 * units + 2`` (other depths round to the nearest such depth); the standard
    depths use their published lists; other depths keep
    the released 200-layer example's shape: 3 units in the first and last stage, the rest split
    2:3 between stages 2 and 3 (200 -> (3, 24, 36, 3), 1001 -> (3, 131, 196, 3)).
    """
    if depth in UNITS:
        return UNITS[depth]  # type: ignore[return-value]
    total = round((depth - 2) / 3)  # nearest depth of the form 3 * units + 2
    if total < 8:
        raise ValueError(f"depth {depth} is too small: at least 26 layers (8 units)")
    middle = total - 6
    s2 = round(middle * 2 / 5)
    return (3, s2, middle - s2, 3)


def _conv_unit(x: sym.Symbol, name: str, num_filter: int, kernel: int, stride: int,
               act_type: str, bn_mom: float) -> tuple[sym.Symbol, sym.Symbol]:
    bn = sym.BatchNorm(x, fix_gamma=False, eps=2e-5, momentum=bn_mom, name=name + "_bn")
    act = (sym.Activation(bn, act_type="relu", name=name + "_relu") if act_type == "relu"
           else sym.LeakyReLU(bn, act_type="leaky", slope=0.1, name=name + "_relu"))
    conv = sym.Convolution(act, num_filter=num_filter, kernel=(kernel, kernel),
                           stride=(stride, stride), pad=(kernel // 2, kernel // 2),
                           no_bias=True, name=name + "_conv")
    return act, conv


def residual_unit(data: sym.Symbol, num_filter: int, stride: int, dim_match: bool, name: str,
                  *, act_type: str = "relu", bn_mom: float = 0.9,
                  attr: dict[str, str] | None = None) -> sym.Symbol:
    """One bottleneck unit; ``dim_match=False`` adds a strided 1x1 projection shortcut.

    ``attr`` goes on the unit's output node (the residual sum).
    """
    act1, conv1 = _conv_unit(data, name + "_1", num_filter // 4, 1, 1, act_type, bn_mom)
    _, conv2 = _conv_unit(conv1, name + "_2", num_filter // 4, 3, stride, act_type, bn_mom)
    _, conv3 = _conv_unit(conv2, name + "_3", num_filter, 1, 1, act_type, bn_mom)
    if dim_match:
        shortcut = data
    else:
        shortcut = sym.Convolution(act1, num_filter=num_filter, kernel=(1, 1),
                                   stride=(stride, stride), no_bias=True, name=name + "_sc")
    return sym.elemwise_add(conv3, shortcut, name=name + "_plus", attr=attr)


def get_symbol(num_classes: int = 1000, units: Sequence[int] = UNITS[50],
               filter_list: Sequence[int] = (64, 256, 512, 1024, 2048),
               image_shape: Sequence[int] = (3, 224, 224), *, act_type: str = "relu",
               mirror_stage: bool = True, bn_mom: float = 0.9) -> sym.Symbol:
    """The network; ``image_shape`` height <= 32 selects the CIFAR stem (3x3 conv, no pool)."""
    stage = {"mirror_stage": "True"} if mirror_stage else {}
    data = sym.Variable("data")
    data = sym.BatchNorm(data, fix_gamma=True, eps=2e-5, momentum=bn_mom, name="bn_data")
    if image_shape[1] <= 32:
        body = sym.Convolution(data, num_filter=filter_list[0], kernel=(3, 3), pad=(1, 1),
                               no_bias=True, name="conv0", attr=stage)
    else:
        body = sym.Convolution(data, num_filter=filter_list[0], kernel=(7, 7), stride=(2, 2),
                               pad=(3, 3), no_bias=True, name="conv0")
        body = sym.BatchNorm(body, fix_gamma=False, eps=2e-5, momentum=bn_mom, name="bn0")
        body = sym.Activation(body, act_type="relu", name="relu0")
        body = sym.Pooling(body, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max",
                           name="pool0", attr=stage)
    for i, n in enumerate(units):
        for j in range(n):
            name = f"stage{i + 1}_unit{j + 1}"
            stride = 1 if i == 0 or j > 0 else 2
            body = residual_unit(body, filter_list[i + 1], stride, j > 0, name,
                                 act_type=act_type, bn_mom=bn_mom, attr=stage)
    body = sym.BatchNorm(body, fix_gamma=False, eps=2e-5, momentum=bn_mom, name="bn1")
    body = sym.Activation(body, act_type="relu", name="relu1")
    body = sym.Pooling(body, global_pool=True, kernel=(7, 7), pool_type="avg", name="pool1")
    body = sym.FullyConnected(sym.Flatten(body, name="flatten"), num_hidden=num_classes,
                              name="fc1")
    return sym.SoftmaxOutput(body, name="softmax")
