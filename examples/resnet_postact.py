"""Post-activation ResNet (He et al. 2015), the variant of mxnet-memonger's ``example_resnet.py``.

This is the *post-activation* network (``examples/resnet.py`` is the pre-activation one): every
convolution is followed by its BatchNorm and activation, Conv-BN-ReLU (``act_type='leaky'``
gives the released example's LeakyReLU). A bottleneck unit is three such modules, 1x1, 3x3
(stride at the stage start), 1x1 with 4x filters, plus a shortcut: the unit's input, or a
Conv-BN-ReLU projection module on each stage's first unit; the unit's output is the sum with no
activation after it (``sum_act=True`` adds a ReLU after the sum, as in the original paper's
v1 network). ``bottleneck=False`` builds basic units (two 3x3 modules, ResNet-18/34 style).
The stem is a 7x7/2 module and a 3x3/2 max pool; the head a global average pool and a fully
connected classifier. With ``mirror_stage=True`` every unit's output (and the stem's pool)
carries ``mirror_stage='True'``, the candidate cut points of the paper's planner.
"""
from __future__ import annotations

from typing import Sequence

import symbol as sym

__all__ = ["conv_module", "residual_unit", "get_symbol", "depth"]


def depth(units: Sequence[int], bottleneck: bool = True) -> int:
    """Weighted layers: 3 (bottleneck) or 2 (basic) per unit, plus the stem and classifier."""
    return (3 if bottleneck else 2) * sum(units) + 2


def conv_module(x: sym.Symbol, name: str, num_filter: int, kernel: int, stride: int = 1, *,
                act_type: str = "relu", act: bool = True, bias: bool = True,
                bn_mom: float = 0.9, attr: dict[str, str] | None = None) -> sym.Symbol:
    """Conv - BN - activation, named ``<name>_conv``, ``<name>_bn``, ``<name>_relu``
    (``act=False``: Conv - BN). ``attr`` goes on the module's last node."""
    conv = sym.Convolution(x, num_filter=num_filter, kernel=(kernel, kernel),
                           stride=(stride, stride), pad=(kernel // 2, kernel // 2),
                           no_bias=not bias, name=name + "_conv")
    bn = sym.BatchNorm(conv, fix_gamma=True, eps=2e-5, momentum=bn_mom, name=name + "_bn",
                       attr=None if act else attr)
    if not act:
        return bn
    if act_type == "relu":
        return sym.Activation(bn, act_type="relu", name=name + "_relu", attr=attr)
    return sym.LeakyReLU(bn, act_type="leaky", slope=0.25, name=name + "_relu", attr=attr)


def residual_unit(data: sym.Symbol, num_filter: int, stride: int, dim_match: bool, name: str,
                  *, bottleneck: bool = True, act_type: str = "relu", sum_act: bool = False,
                  attr: dict[str, str] | None = None) -> sym.Symbol:
    """One post-activation unit with ``num_filter`` output channels (bottleneck: 1x1 with
    ``num_filter // 4``, 3x3, 1x1); ``dim_match=False`` adds a projection module."""
    a = act_type
    if bottleneck:
        x = conv_module(data, name + "_1", num_filter // 4, 1, act_type=a)
        x = conv_module(x, name + "_2", num_filter // 4, 3, stride, act_type=a)
        x = conv_module(x, name + "_3", num_filter, 1, act_type=a, act=not sum_act)
    else:
        x = conv_module(data, name + "_1", num_filter, 3, stride, act_type=a)
        x = conv_module(x, name + "_2", num_filter, 3, act_type=a, act=not sum_act)
    shortcut = data if dim_match else conv_module(data, name + "_sc", num_filter, 1, stride,
                                                  act_type=a, act=not sum_act)
    if not sum_act:
        return sym.elemwise_add(shortcut, x, name=name + "_sum", attr=attr)
    total = sym.elemwise_add(shortcut, x, name=name + "_sum")
    return sym.Activation(total, act_type="relu", name=name + "_relu", attr=attr)


def get_symbol(num_classes: int = 1000, units: Sequence[int] = (3, 4, 6, 3),
               filter_list: Sequence[int] = (64, 256, 512, 1024, 2048),
               image_shape: Sequence[int] = (3, 224, 224), *, bottleneck: bool = True,
               act_type: str = "relu", sum_act: bool = False,
               mirror_stage: bool = True) -> sym.Symbol:
    """The network. ``units`` per stage, ``filter_list`` = stem then each stage's output
    width (basic units: e.g. ``(64, 64, 128, 256, 512)``); ``image_shape`` height <= 32
    selects a CIFAR stem (3x3 module, no pool). ResNet-200: units ``(3, 24, 36, 3)``."""
    stage = {"mirror_stage": "True"} if mirror_stage else None
    data = sym.Variable("data")
    if image_shape[1] <= 32:
        body = conv_module(data, "stem", filter_list[0], 3, act_type=act_type, attr=stage)
    else:
        body = conv_module(data, "stem", filter_list[0], 7, 2, act_type=act_type)
        body = sym.Pooling(body, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max",
                           name="pool0", attr=stage)
    for i, n in enumerate(units):
        for j in range(n):
            stride = 1 if i == 0 or j > 0 else 2
            body = residual_unit(body, filter_list[i + 1], stride, j > 0,
                                 f"stage{i + 1}_unit{j + 1}", bottleneck=bottleneck,
                                 act_type=act_type, sum_act=sum_act, attr=stage)
    pool = sym.Pooling(body, global_pool=True, kernel=(7, 7), pool_type="avg", name="pool1")
    fc = sym.FullyConnected(sym.Flatten(pool, name="flatten"), num_hidden=num_classes,
                            name="fc1")
    return sym.SoftmaxOutput(fc, name="softmax")
