"""The example networks written directly in torch (functional, autograd-differentiable).

Parameters come as a dict keyed by the same names the symbolic networks use, so the two can be
compared value for value (tests) and timed against each other (``bench/step.py``).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

__all__ = ["mlp_logits", "resnet_logits", "lstm_losses"]

Params = Mapping[str, torch.Tensor]


def _bn(x: torch.Tensor, p: Params, aux: Params | None, name: str, fix_gamma: bool,
        eps: float = 2e-5) -> torch.Tensor:
    beta = p[name + "_beta"]
    # fix_gamma: a constant weight of ones (torch 2.11's CUDA backward fails on weight=None)
    gamma = torch.ones_like(beta) if fix_gamma else p[name + "_gamma"]
    mean = aux[name + "_moving_mean"] if aux else None
    var = aux[name + "_moving_var"] if aux else None
    return F.batch_norm(x, mean, var, gamma, beta, training=True, momentum=0.1,
                        eps=eps)


def mlp_logits(p: Params, layers: int) -> torch.Tensor:
    """``examples.mlp.get_symbol`` (ReLU) up to the softmax: ``layers`` FullyConnected layers
    ``fc1``..., a ReLU after each but the last."""
    x = p["data"]
    for i in range(1, layers + 1):
        x = F.linear(x, p[f"fc{i}_weight"], p[f"fc{i}_bias"])
        if i < layers:
            x = torch.relu(x)
    return x


def resnet_logits(p: Params, units: Sequence[int], image_shape: Sequence[int],
                  aux: Params | None = None) -> torch.Tensor:
    """``examples.resnet.get_symbol`` (ReLU) up to the classifier, in training mode."""
    x = _bn(p["data"], p, aux, "bn_data", True)
    if image_shape[1] <= 32:
        x = F.conv2d(x, p["conv0_weight"], padding=1)
    else:
        x = F.conv2d(x, p["conv0_weight"], stride=2, padding=3)
        x = torch.relu(_bn(x, p, aux, "bn0", False))
        x = F.max_pool2d(x, 3, 2, 1)
    for i, n in enumerate(units):
        for j in range(n):
            name = f"stage{i + 1}_unit{j + 1}"
            stride = 1 if i == 0 or j > 0 else 2
            a1 = torch.relu(_bn(x, p, aux, name + "_1_bn", False))
            c1 = F.conv2d(a1, p[name + "_1_conv_weight"])
            a2 = torch.relu(_bn(c1, p, aux, name + "_2_bn", False))
            c2 = F.conv2d(a2, p[name + "_2_conv_weight"], stride=stride, padding=1)
            a3 = torch.relu(_bn(c2, p, aux, name + "_3_bn", False))
            c3 = F.conv2d(a3, p[name + "_3_conv_weight"])
            sc = x if j > 0 else F.conv2d(a1, p[name + "_sc_weight"], stride=stride)
            x = c3 + sc
    x = torch.relu(_bn(x, p, aux, "bn1", False))
    return F.linear(x.mean((2, 3)), p["fc1_weight"], p["fc1_bias"])


def lstm_losses(p: Params, steps: int, layers: int) -> list[torch.Tensor]:
    """``examples.lstm.get_symbol`` (no dropout): the per-step summed cross entropies."""
    c = [p[f"l{i}_init_c"] for i in range(layers)]
    h = [p[f"l{i}_init_h"] for i in range(layers)]
    losses = []
    for t in range(steps):
        x = F.linear(p[f"t{t}_data"], p["embed_weight"])
        for i in range(layers):
            g = (F.linear(x, p[f"l{i}_i2h_weight"], p[f"l{i}_i2h_bias"])
                 + F.linear(h[i], p[f"l{i}_h2h_weight"], p[f"l{i}_h2h_bias"]))
            ig, it, fg, og = g.chunk(4, dim=1)
            c[i] = torch.sigmoid(fg) * c[i] + torch.sigmoid(ig) * torch.tanh(it)
            h[i] = torch.sigmoid(og) * torch.tanh(c[i])
            x = h[i]
        logits = F.linear(x, p["cls_weight"], p["cls_bias"])
        losses.append(F.cross_entropy(logits, p[f"t{t}_label"].long(), reduction="sum"))
    return losses
