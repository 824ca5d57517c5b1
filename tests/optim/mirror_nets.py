"""Networks for the mirror tests: written without ``mirror_stage`` marks, and the examples at
small sizes (no torch)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import symbol as sym
from examples import lstm, mlp, resnet, resnet_postact

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Net = tuple[sym.Symbol, dict[str, tuple[int, ...]]]


def _bn_relu_conv(x: sym.Symbol, name: str, filters: int, kernel: int) -> sym.Symbol:
    x = sym.BatchNorm(x, fix_gamma=False, name=name + "_bn")
    x = sym.Activation(x, act_type="relu", name=name + "_relu")
    return sym.Convolution(x, num_filter=filters, kernel=(kernel, kernel),
                           pad=(kernel // 2, kernel // 2), no_bias=True, name=name + "_conv")


def densenet_style(blocks: tuple[int, ...] = (4, 4), growth: int = 4) -> Net:
    """Dense blocks (each layer BN-ReLU-Conv1x1, BN-ReLU-Conv3x3 on the concat of everything
    before it in the block) and BN-ReLU-Conv1x1 + 2x2 average-pool transitions; no marks, no
    ``__force_mirroring__``."""
    x = sym.Convolution(sym.Variable("data"), num_filter=2 * growth, kernel=(3, 3), pad=(1, 1),
                        no_bias=True, name="conv0")
    channels = 2 * growth
    for b, n in enumerate(blocks):
        feats = [x]
        for i in range(n):
            if len(feats) == 1:
                inp = feats[0]
            else:
                inp = sym.Concat(*feats, dim=1, name=f"b{b}_l{i}_concat")
            h = _bn_relu_conv(inp, f"b{b}_l{i}_1", 4 * growth, 1)
            feats.append(_bn_relu_conv(h, f"b{b}_l{i}_2", growth, 3))
            channels += growth
        x = sym.Concat(*feats, dim=1, name=f"block{b}_concat")
        if b + 1 < len(blocks):
            channels //= 2
            x = _bn_relu_conv(x, f"transition{b}", channels, 1)
            x = sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="avg",
                            name=f"transition{b}_pool")
    x = sym.Activation(sym.BatchNorm(x, fix_gamma=False, name="bn1"), act_type="relu",
                       name="relu1")
    x = sym.Pooling(x, global_pool=True, kernel=(1, 1), pool_type="avg", name="pool1")
    x = sym.FullyConnected(sym.Flatten(x, name="flatten"), num_hidden=5, name="fc")
    return sym.SoftmaxOutput(x, name="softmax"), {"data": (2, 3, 16, 16)}


def _conv_bn_relu(x: sym.Symbol, name: str, filters: int, kernel: int) -> sym.Symbol:
    x = sym.Convolution(x, num_filter=filters, kernel=(kernel, kernel),
                        pad=(kernel // 2, kernel // 2), no_bias=True, name=name + "_conv")
    x = sym.BatchNorm(x, fix_gamma=False, name=name + "_bn")
    return sym.Activation(x, act_type="relu", name=name + "_relu")


def inception_style(num_blocks: int = 3, width: int = 4) -> Net:
    """Inception blocks (1x1; 1x1-3x3; 1x1-5x5; 3x3 max pool-1x1, concatenated); no marks."""
    x = _conv_bn_relu(sym.Variable("data"), "stem", 2 * width, 3)
    for b in range(num_blocks):
        name = f"block{b}"
        b1 = _conv_bn_relu(x, name + "_1x1", width, 1)
        b3 = _conv_bn_relu(_conv_bn_relu(x, name + "_3x3r", width, 1), name + "_3x3", width, 3)
        b5 = _conv_bn_relu(_conv_bn_relu(x, name + "_5x5r", width, 1), name + "_5x5", width, 5)
        pool = sym.Pooling(x, kernel=(3, 3), pad=(1, 1), pool_type="max", name=name + "_pool")
        bp = _conv_bn_relu(pool, name + "_proj", width, 1)
        x = sym.Concat(b1, b3, b5, bp, dim=1, name=name + "_concat")
    x = sym.Pooling(x, global_pool=True, kernel=(1, 1), pool_type="avg", name="pool1")
    x = sym.FullyConnected(sym.Flatten(x, name="flatten"), num_hidden=5, name="fc")
    return sym.SoftmaxOutput(x, name="softmax"), {"data": (2, 3, 16, 16)}


def rnn_style(steps: int = 12, layers: int = 2, hidden: int = 16) -> Net:
    """An unrolled tanh RNN, one loss per step, weights shared across steps; no marks."""
    w = [(sym.Variable(f"l{i}_i2h_weight"), sym.Variable(f"l{i}_h2h_weight")) for i in
         range(layers)]
    h = [sym.Variable(f"l{i}_init_h") for i in range(layers)]
    cls = sym.Variable("cls_weight")
    losses = []
    for t in range(steps):
        x = sym.Variable(f"t{t}_data")
        for i in range(layers):
            a = sym.elemwise_add(
                sym.FullyConnected(x, weight=w[i][0], num_hidden=hidden, no_bias=True,
                                   name=f"t{t}_l{i}_i2h"),
                sym.FullyConnected(h[i], weight=w[i][1], num_hidden=hidden, no_bias=True,
                                   name=f"t{t}_l{i}_h2h"), name=f"t{t}_l{i}_sum")
            h[i] = sym.Activation(a, act_type="tanh", name=f"t{t}_l{i}_h")
            x = h[i]
        fc = sym.FullyConnected(x, weight=cls, num_hidden=5, no_bias=True, name=f"t{t}_cls")
        ce = sym.softmax_cross_entropy(fc, sym.Variable(f"t{t}_label"), name=f"t{t}_ce")
        losses.append(sym.MakeLoss(ce, name=f"t{t}_loss"))
    shapes = {f"t{t}_data": (3, 4) for t in range(steps)}
    shapes.update({f"l{i}_init_h": (3, hidden) for i in range(layers)})
    return sym.Group(losses), shapes


def lstm_without_marks(steps: int = 12, layers: int = 2, hidden: int = 16) -> Net:
    """``examples/lstm.py`` with ``mirror_stage=False``."""
    net = lstm.get_symbol(seq_len=steps, num_layers=layers, num_hidden=hidden, input_size=4,
                          num_label=5, mirror_stage=False)
    shapes = {f"t{t}_data": (3, 4) for t in range(steps)}
    shapes.update({f"l{i}_init_{k}": (3, hidden) for i in range(layers) for k in "ch"})
    return net, shapes


UNMARKED: dict[str, Callable[[], Net]] = {
    "densenet-style": densenet_style, "inception-style": inception_style,
    "rnn-style": rnn_style, "lstm-without-marks": lstm_without_marks}

#: Small parameters of every example network file.
SYM_PARAMS = {
    "mlp.sym": dict(hidden=(16, 8), num_classes=5, batch=4, input_dim=10),
    "resnet.sym": dict(units=(1, 2), filter_list=(8, 16, 32), image_shape=(3, 16, 16),
                       num_classes=5, batch=2),
    "lstm.sym": dict(steps=4, layers=2, hidden=6, input_size=3, num_label=5, batch=2),
    "gru.sym": dict(steps=4, layers=2, hidden=6, input_size=3, num_label=5, batch=2),
    "densenet.sym": dict(blocks=(2, 3), growth=4, stem=8, image=(3, 16, 16), num_classes=5,
                         batch=2),
    "inception.sym": dict(blocks=((4, 4, 4, 2, 2, 2), (4, 4, 8, 2, 4, 4)), image_size=16,
                          batch=2, num_classes=5),
    "wrn.sym": dict(depth=10, widen=1, image_shape=(3, 16, 16), num_classes=5, batch=2,
                    dropout=0.3),
}


def _sym_file(name: str) -> Callable[[], Net]:
    return lambda: (sym.load(str(EXAMPLES / name), params=SYM_PARAMS[name]), {})


EXAMPLE_NETS: dict[str, Callable[[], Net]] = {
    "mlp.py": lambda: (mlp.get_symbol(num_classes=5, hidden=(16, 8)), {"data": (4, 10)}),
    "resnet.py": lambda: (resnet.get_symbol(num_classes=5, units=(2, 2, 1),
                                            filter_list=(8, 16, 32, 64),
                                            image_shape=(3, 16, 16)), {"data": (3, 3, 16, 16)}),
    "lstm.py": lambda: (lstm.get_symbol(seq_len=4, num_layers=2, num_hidden=6, input_size=3,
                                        num_label=5, dropout=0.5),
                        {**{f"t{t}_data": (2, 3) for t in range(4)},
                         **{f"l{i}_init_{k}": (2, 6) for i in range(2) for k in "ch"}}),
    "resnet_postact.py": lambda: (resnet_postact.get_symbol(
        num_classes=5, units=(1, 2), filter_list=(8, 16, 32), image_shape=(3, 16, 16)),
        {"data": (2, 3, 16, 16)}),
    **{name: _sym_file(name) for name in SYM_PARAMS},
}
