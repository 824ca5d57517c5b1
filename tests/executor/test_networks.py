"""Whole networks built with the API vs the same networks written directly in torch.

Loss and every parameter gradient must match torch.autograd in float64 (rtol 1e-6).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

import executor  # noqa: F401
from examples import lstm, mlp, resnet, torch_reference
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


def test_small_preactivation_resnet_matches_torch():
    units, filters = (2, 2, 2), (8, 16, 32, 64)
    net = resnet.get_symbol(num_classes=10, units=units, filter_list=filters,
                            image_shape=(3, 32, 32))
    exe, p, _ = _bind(net, 1, data=(4, 3, 32, 32))
    exe.forward(is_train=True)
    exe.backward()
    logits = torch_reference.resnet_logits(p, units, (3, 32, 32))
    torch.testing.assert_close(exe.outputs[0], logits.softmax(1), rtol=RTOL, atol=ATOL)
    _compare_grads(exe, p, F.cross_entropy(logits, p["softmax_label"].long(), reduction="sum"))
    # moving statistics were updated once, MXNet style (momentum 0.9, biased batch variance)
    x = p["data"]
    m = x.mean((0, 2, 3))
    torch.testing.assert_close(exe.aux_dict["bn_data_moving_mean"], 0.1 * m, rtol=RTOL,
                               atol=ATOL)


def test_two_layer_unrolled_lstm_matches_torch():
    steps, layers = 10, 2
    net = lstm.get_symbol(seq_len=steps, num_layers=layers, num_hidden=16, input_size=6,
                          num_label=10)
    shapes = {f"t{t}_data": (4, 6) for t in range(steps)}
    shapes.update({f"l{i}_init_{k}": (4, 16) for i in range(layers) for k in "ch"})
    exe, p, _ = _bind(net, 2, **shapes)
    outs = exe.forward(is_train=True)
    exe.backward()
    losses = torch_reference.lstm_losses(p, steps, layers)
    for got, want in zip(outs, losses, strict=True):
        torch.testing.assert_close(got, want.reshape(1), rtol=RTOL, atol=ATOL)
    _compare_grads(exe, p, sum(losses))
    # one set of weights per layer, shared across all steps
    assert sum(1 for n in net.list_arguments() if n.startswith("l0_")) == 6
