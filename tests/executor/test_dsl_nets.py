"""Networks written in the DSL bind and train on CPU like the same networks built in Python.

The DSL graph and the API graph are structurally equal (tests/symbol/test_dsl_examples.py), so
bound with the same seed they must give bit-identical outputs and gradients; this runs the
examples at their full depth (ResNet units (3, 24, 36, 3), LSTM 50 steps x 4 layers) with small
widths and batches so the test stays fast.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import executor  # noqa: F401  (installs simple_bind)
import symbol as sym
from examples import lstm, resnet
from executor import initialize
from symbol import ShapeError, dsl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(net: sym.Symbol, seed: int = 0, **shapes):
    """Bind in float64, initialise, feed random inputs, forward + backward."""
    inputs = [n for n in net.list_arguments()
              if n.endswith(("data", "label")) or "init_" in n]
    reqs = {n: "null" if n in inputs else "write" for n in net.list_arguments()}
    exe = net.simple_bind("cpu", grad_req=reqs, dtype="float64", **shapes)
    initialize(exe, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    for n in inputs:
        t = exe.arg_dict[n]
        t.copy_(torch.randint(0, 3, t.shape, generator=gen) if n.endswith("label")
                else torch.randn(t.shape, generator=gen, dtype=t.dtype))
    outs = [o.clone() for o in exe.forward(is_train=True)]
    exe.backward()
    return outs, {n: g.clone() for n, g in exe.grad_dict.items()}


def assert_same_run(a, b):
    (outs_a, grads_a), (outs_b, grads_b) = a, b
    assert len(outs_a) == len(outs_b) and grads_a.keys() == grads_b.keys()
    for x, y in zip(outs_a, outs_b, strict=True):
        assert torch.equal(x, y)
    for name in grads_a:
        assert torch.equal(grads_a[name], grads_b[name]), name
        assert torch.isfinite(grads_a[name]).all(), name


def test_resnet_sym_with_200_layer_units_trains_like_the_api_net():
    small = dict(filter_list=(8, 16, 16, 32, 32), image_shape=(3, 16, 16), num_classes=3)
    net = sym.load(str(EXAMPLES / "resnet.sym"), params={**small, "batch": 2})
    api = resnet.get_symbol(units=(3, 24, 36, 3), **small)
    assert len(net.graph.nodes) == len(api.graph.nodes) == 672  # CIFAR stem
    got = run(net)  # input shapes come from the file's declarations
    assert_same_run(got, run(api, data=(2, 3, 16, 16)))
    assert got[0][0].shape == (2, 3)


def test_lstm_sym_with_50_steps_trains_like_the_api_net():
    sizes = dict(hidden=8, input_size=5, num_label=3, batch=2)
    net = sym.load(str(EXAMPLES / "lstm.sym"), params=sizes)
    api = lstm.get_symbol(seq_len=50, num_layers=4, num_hidden=8, input_size=5, num_label=3)
    shapes = {f"t{t}_data": (2, 5) for t in range(50)}
    shapes.update({f"t{t}_label": (2,) for t in range(50)})
    shapes.update({f"l{i}_init_{k}": (2, 8) for i in range(4) for k in "ch"})
    got = run(net)
    assert_same_run(got, run(api, **shapes))
    assert len(got[0]) == 50
    assert got[1]["l0_i2h_weight"].abs().sum() > 0  # the shared weight gets every step's grad


def test_inception_sym_runs_forward_and_backward():
    net = sym.load(str(EXAMPLES / "inception.sym"),
                   params={"blocks": ((4, 4, 4, 2, 2, 2), (4, 4, 8, 2, 4, 4)),
                           "image_size": 16, "batch": 2, "num_classes": 5})
    outs, grads = run(net)
    assert outs[0].shape == (2, 5)
    assert torch.allclose(outs[0].sum(1), torch.ones(2, dtype=torch.float64))
    assert all(torch.isfinite(g).all() for g in grads.values())


def test_mlp_sym_output_matches_torch():
    net = sym.load(str(EXAMPLES / "mlp.sym"), params={"hidden": (6,), "input_dim": 4,
                                                      "batch": 3, "num_classes": 2})
    exe = net.simple_bind("cpu", dtype="float64")
    initialize(exe, seed=1)
    x = torch.randn(3, 4, dtype=torch.float64)
    out = exe.forward(is_train=False, data=x)[0]
    a = exe.arg_dict
    h = torch.relu(x @ a["fc1_weight"].T + a["fc1_bias"])
    want = torch.softmax(h @ a["fc2_weight"].T + a["fc2_bias"], dim=1)
    torch.testing.assert_close(out, want)


def test_shape_error_at_bind_time_points_back_to_the_dsl_line():
    net = sym.loads("input data;\nh = FullyConnected(data, num_hidden=4);\n"
                    "w = Variable('w', shape=(3, 5));\n"
                    "y = FullyConnected(h, weight=w, num_hidden=3);\noutput y;",
                    filename="bind.sym")
    with pytest.raises(ShapeError) as info:
        net.simple_bind("cpu", data=(2, 7))
    assert dsl.format_error(info.value) == (
        "bind.sym:4:5: error: in operator 'y' (FullyConnected): input 'weight' has shape "
        "(3, 5), expected (3, 4); variable 'w' was declared with that shape at bind.sym:3:5\n"
        "    y = FullyConnected(h, weight=w, num_hidden=3);\n"
        "        ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~")


def test_densenet_sym_runs_forward_and_backward():
    net = sym.load(str(EXAMPLES / "densenet.sym"),
                   params={"blocks": (3, 2), "growth": 4, "stem": 8, "bn_size": 2,
                           "image": (3, 16, 16), "batch": 2, "num_classes": 5})
    outs, grads = run(net)
    assert outs[0].shape == (2, 5)
    assert torch.allclose(outs[0].sum(1), torch.ones(2, dtype=torch.float64))
    assert all(torch.isfinite(g).all() for g in grads.values())
    # the first layer's weights reach the loss through every later concatenation
    assert grads["block1_layer1_conv1_weight"].abs().sum() > 0


def test_gru_sym_runs_forward_and_backward():
    net = sym.load(str(EXAMPLES / "gru.sym"),
                   params={"steps": 5, "layers": 2, "hidden": 6, "input_size": 4,
                           "num_label": 3, "batch": 2})
    outs, grads = run(net)
    assert len(outs) == 5 and all(torch.isfinite(o).all() for o in outs)
    assert all(torch.isfinite(g).all() for g in grads.values())
    assert grads["l0_h2n_weight"].abs().sum() > 0  # the shared weight gets every step's grad


def test_gru_cell_matches_torch():
    net = sym.load(str(EXAMPLES / "gru.sym"),
                   params={"steps": 2, "layers": 1, "hidden": 3, "input_size": 4,
                           "num_label": 2, "batch": 2})
    inner = net.get_internals()
    h1 = inner[inner.list_outputs().index("t1_l0_h_output")]
    exe = h1.simple_bind("cpu", dtype="float64")
    initialize(exe, seed=2)
    gen = torch.Generator().manual_seed(2)
    for name in ("t0_data", "t1_data", "l0_init_h"):
        exe.arg_dict[name].copy_(torch.randn(exe.arg_dict[name].shape, generator=gen,
                                             dtype=torch.float64))
    got = exe.forward(is_train=False)[0]
    a = exe.arg_dict

    def cell(x, h):
        wz, wr, wn = (x @ a["l0_i2h_weight"].T + a["l0_i2h_bias"]).chunk(3, dim=1)
        uz, ur = (h @ a["l0_h2h_weight"].T + a["l0_h2h_bias"]).chunk(2, dim=1)
        z, r = torch.sigmoid(wz + uz), torch.sigmoid(wr + ur)
        n = torch.tanh(wn + (r * h) @ a["l0_h2n_weight"].T + a["l0_h2n_bias"])
        return (1 - z) * n + z * h

    h = a["l0_init_h"]
    for t in range(2):
        h = cell(a[f"t{t}_data"] @ a["embed_weight"].T, h)
    torch.testing.assert_close(got, h)
