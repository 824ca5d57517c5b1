"""Whole networks built with the API vs the same networks written directly in torch.

Loss and every parameter gradient must match torch.autograd in float64 (rtol 1e-6).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import executor  # noqa: F401
from examples import lstm, mlp, resnet
from executor import initialize

RTOL, ATOL = 1e-6, 1e-9


def _bind(net, seed, **shapes):
    labels = [n for n in net.list_arguments() if n.endswith("label")]
    inputs = [n for n in net.list_arguments() if n.endswith("data") or "init_" in n]
    reqs = {n: "null" if n in labels or n in inputs else "write" for n in net.list_arguments()}
    exe = net.simple_bind("cpu", grad_req=reqs, dtype="float64", **shapes)
    initialize(exe, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    for n in inputs:
        exe.arg_dict[n].copy_(torch.randn(exe.arg_dict[n].shape, generator=gen,
                                          dtype=torch.float64))
    for n in labels:
        classes = 10
        exe.arg_dict[n].copy_(torch.randint(0, classes, exe.arg_dict[n].shape, generator=gen))
    for n, t in exe.arg_dict.items():  # perturb zero-initialised biases/betas too
        if n.endswith(("_bias", "_beta", "_gamma")):
            t.add_(0.1 * torch.randn(t.shape, generator=gen, dtype=torch.float64))
    params = {n: t.detach().clone().requires_grad_(n in exe.grad_dict)
              for n, t in exe.arg_dict.items()}
    aux = {n: t.detach().clone() for n, t in exe.aux_dict.items()}
    return exe, params, aux


def _compare_grads(exe, params, loss):
    names = list(exe.grad_dict)
    grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
    for n, g in zip(names, grads):
        want = torch.zeros_like(params[n]) if g is None else g
        torch.testing.assert_close(exe.grad_dict[n], want, rtol=RTOL, atol=ATOL,
                                   msg=lambda m, n=n: f"gradient of {n}: {m}")


def test_mlp_matches_torch():
    net = mlp.get_symbol(num_classes=10, hidden=(32, 16), act_type="tanh")
    exe, p, _ = _bind(net, 0, data=(8, 20))
    exe.forward(is_train=True)
    exe.backward()
    x = p["data"]
    for i in (1, 2):
        x = torch.tanh(F.linear(x, p[f"fc{i}_weight"], p[f"fc{i}_bias"]))
    logits = F.linear(x, p["fc3_weight"], p["fc3_bias"])
    torch.testing.assert_close(exe.outputs[0], logits.softmax(1), rtol=RTOL, atol=ATOL)
    _compare_grads(exe, p, F.cross_entropy(logits, p["softmax_label"].long(), reduction="sum"))


def _bn(x, p, aux, name, fix_gamma, eps=2e-5):
    gamma = None if fix_gamma else p[name + "_gamma"]
    return F.batch_norm(x, None, None, gamma, p[name + "_beta"], training=True, eps=eps)


def _resnet_ref(p, aux, units, filters):
    x = _bn(p["data"], p, aux, "bn_data", True)
    x = F.conv2d(x, p["conv0_weight"], padding=1)
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
    x = x.mean((2, 3))
    return F.linear(x, p["fc1_weight"], p["fc1_bias"])


def test_small_preactivation_resnet_matches_torch():
    units, filters = (2, 2, 2), (8, 16, 32, 64)
    net = resnet.get_symbol(num_classes=10, units=units, filter_list=filters,
                            image_shape=(3, 32, 32))
    exe, p, aux = _bind(net, 1, data=(4, 3, 32, 32))
    exe.forward(is_train=True)
    exe.backward()
    logits = _resnet_ref(p, aux, units, filters)
    torch.testing.assert_close(exe.outputs[0], logits.softmax(1), rtol=RTOL, atol=ATOL)
    _compare_grads(exe, p, F.cross_entropy(logits, p["softmax_label"].long(), reduction="sum"))
    # moving statistics were updated once, MXNet style (momentum 0.9, biased batch variance)
    x = p["data"]
    m = x.mean((0, 2, 3))
    torch.testing.assert_close(exe.aux_dict["bn_data_moving_mean"], 0.1 * m, rtol=RTOL,
                               atol=ATOL)


def _lstm_ref(p, steps, layers):
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


def test_two_layer_unrolled_lstm_matches_torch():
    steps, layers = 10, 2
    net = lstm.get_symbol(seq_len=steps, num_layers=layers, num_hidden=16, input_size=6,
                          num_label=10)
    shapes = {f"t{t}_data": (4, 6) for t in range(steps)}
    shapes.update({f"l{i}_init_{k}": (4, 16) for i in range(layers) for k in "ch"})
    exe, p, _ = _bind(net, 2, **shapes)
    outs = exe.forward(is_train=True)
    exe.backward()
    losses = _lstm_ref(p, steps, layers)
    for got, want in zip(outs, losses, strict=True):
        torch.testing.assert_close(got, want.reshape(1), rtol=RTOL, atol=ATOL)
    _compare_grads(exe, p, sum(losses))
    # one set of weights per layer, shared across all steps
    assert sum(1 for n in net.list_arguments() if n.startswith("l0_")) == 6
