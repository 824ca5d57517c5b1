"""MXNet symbol JSON runs here: hand-written documents bind and match the Python API bit for bit;
the JSON files real MXNet 1.9.1 exported (``bench/mxnet_oracle.py``) load with MXNet's shapes.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import executor  # noqa: F401  (installs simple_bind)
import symbol as sym
from executor import initialize

NETS = Path(__file__).resolve().parents[2] / "bench" / "mxnet_nets"

# Written as MXNet 1.9.1 (MKLDNN build) writes it: `_copy`, `_Plus`, hidden keys as __key__,
# aux-state inputs at version 1, node_row_ptr counting BatchNorm's and max pooling's hidden
# outputs, `workspace`/`cudnn_tune` hints and MXNet-only `output_mean_var`.
RESIDUAL_JSON = """{
  "nodes": [
    {"op": "null", "name": "data", "inputs": []},
    {"op": "_copy", "name": "id", "inputs": [[0, 0, 0]]},
    {"op": "null", "name": "conv0_weight", "inputs": []},
    {"op": "Convolution", "name": "conv0", "attrs": {"kernel": "(3, 3)", "no_bias": "True",
     "num_filter": "4", "pad": "(1, 1)", "workspace": "256"}, "inputs": [[1, 0, 0], [2, 0, 0]]},
    {"op": "null", "name": "bn0_gamma", "inputs": []},
    {"op": "null", "name": "bn0_beta", "inputs": []},
    {"op": "null", "name": "bn0_moving_mean", "attrs": {"__init__": "[\\"zero\\", {}]"},
     "inputs": []},
    {"op": "null", "name": "bn0_moving_var", "attrs": {"__init__": "[\\"one\\", {}]"},
     "inputs": []},
    {"op": "BatchNorm", "name": "bn0", "attrs": {"eps": "2e-05", "fix_gamma": "False",
     "momentum": "0.9", "output_mean_var": "False"},
     "inputs": [[3, 0, 0], [4, 0, 0], [5, 0, 0], [6, 0, 1], [7, 0, 1]]},
    {"op": "Activation", "name": "relu0", "attrs": {"act_type": "relu"}, "inputs": [[8, 0, 0]]},
    {"op": "Pooling", "name": "pool0", "attrs": {"__mirror_stage__": "True", "kernel": "(2, 2)",
     "pool_type": "max", "stride": "(2, 2)"}, "inputs": [[9, 0, 0]]},
    {"op": "null", "name": "unit_bn_gamma", "inputs": []},
    {"op": "null", "name": "unit_bn_beta", "inputs": []},
    {"op": "null", "name": "unit_bn_moving_mean", "inputs": []},
    {"op": "null", "name": "unit_bn_moving_var", "inputs": []},
    {"op": "BatchNorm", "name": "unit_bn", "attrs": {"eps": "2e-05", "fix_gamma": "False"},
     "inputs": [[10, 0, 0], [11, 0, 0], [12, 0, 0], [13, 0, 1], [14, 0, 1]]},
    {"op": "Activation", "name": "unit_relu", "attrs": {"act_type": "relu"},
     "inputs": [[15, 0, 0]]},
    {"op": "null", "name": "unit_conv_weight", "inputs": []},
    {"op": "Convolution", "name": "unit_conv", "attrs": {"cudnn_tune": "fastest",
     "kernel": "(3, 3)", "no_bias": "True", "num_filter": "4", "pad": "(1, 1)"},
     "inputs": [[16, 0, 0], [17, 0, 0]]},
    {"op": "_Plus", "name": "unit_plus", "attrs": {"__mirror_stage__": "True"},
     "inputs": [[18, 0, 0], [10, 0, 0]]},
    {"op": "Flatten", "name": "flatten0", "inputs": [[19, 0, 0]]},
    {"op": "null", "name": "fc1_weight", "inputs": []},
    {"op": "null", "name": "fc1_bias", "inputs": []},
    {"op": "FullyConnected", "name": "fc1", "attrs": {"num_hidden": "5"},
     "inputs": [[20, 0, 0], [21, 0, 0], [22, 0, 0]]},
    {"op": "null", "name": "softmax_label", "inputs": []},
    {"op": "SoftmaxOutput", "name": "softmax", "inputs": [[23, 0, 0], [24, 0, 0]]}
  ],
  "arg_nodes": [0, 2, 4, 5, 6, 7, 11, 12, 13, 14, 17, 21, 22, 24],
  "node_row_ptr": [0, 1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 16, 17, 18, 21, 22, 23, 24, 25,
                   26, 27, 28, 29, 30, 31],
  "heads": [[25, 0, 0]],
  "attrs": {"mxnet_version": ["int", 10901]}
}"""


def residual_api() -> sym.Symbol:
    x = sym.identity(sym.Variable("data"), name="id")
    x = sym.Convolution(x, kernel=(3, 3), pad=(1, 1), num_filter=4, no_bias=True, workspace=256,
                        name="conv0")
    mean = sym.Variable("bn0_moving_mean", init='["zero", {}]')
    var = sym.Variable("bn0_moving_var", init='["one", {}]')
    x = sym.BatchNorm(x, eps=2e-5, fix_gamma=False, momentum=0.9, moving_mean=mean,
                      moving_var=var, name="bn0")
    x = sym.Activation(x, act_type="relu", name="relu0")
    pool = sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool0",
                       attr={"mirror_stage": "True"})
    x = sym.BatchNorm(pool, eps=2e-5, fix_gamma=False, name="unit_bn")
    x = sym.Activation(x, act_type="relu", name="unit_relu")
    x = sym.Convolution(x, kernel=(3, 3), pad=(1, 1), num_filter=4, no_bias=True,
                        cudnn_tune="fastest", name="unit_conv")
    x = sym.elemwise_add(x, pool, name="unit_plus", attr={"mirror_stage": "True"})
    x = sym.FullyConnected(sym.Flatten(x, name="flatten0"), num_hidden=5, name="fc1")
    return sym.SoftmaxOutput(x, name="softmax")


# Gates, multi-output indexing, scalar ops, add_n, Concat, Reshape and a loss head, plus a
# second head through BlockGrad. Old-style op names where MXNet had them.
GATED_JSON = """{
  "nodes": [
    {"op": "null", "name": "x", "inputs": []},
    {"op": "null", "name": "fc_weight", "inputs": []},
    {"op": "null", "name": "fc_bias", "inputs": []},
    {"op": "FullyConnected", "name": "fc", "attrs": {"num_hidden": "8"},
     "inputs": [[0, 0, 0], [1, 0, 0], [2, 0, 0]]},
    {"op": "SliceChannel", "name": "gates", "attrs": {"num_outputs": "2"},
     "inputs": [[3, 0, 0]]},
    {"op": "Activation", "name": "gate", "attrs": {"act_type": "sigmoid"}, "inputs": [[4, 0, 0]]},
    {"op": "Activation", "name": "value", "attrs": {"act_type": "tanh"}, "inputs": [[4, 1, 0]]},
    {"op": "_mul", "name": "gated", "inputs": [[5, 0, 0], [6, 0, 0]]},
    {"op": "_MulScalar", "name": "scaled", "attrs": {"scalar": "0.5"}, "inputs": [[7, 0, 0]]},
    {"op": "_plus_scalar", "name": "shifted", "attrs": {"is_int": "True", "scalar": "1"},
     "inputs": [[8, 0, 0]]},
    {"op": "add_n", "name": "total", "attrs": {"num_args": "3"},
     "inputs": [[9, 0, 0], [7, 0, 0], [5, 0, 0]]},
    {"op": "Concat", "name": "cat", "attrs": {"dim": "1", "num_args": "2"},
     "inputs": [[10, 0, 0], [0, 0, 0]]},
    {"op": "Reshape", "name": "rs", "attrs": {"shape": "(0, 2, 5)"}, "inputs": [[11, 0, 0]]},
    {"op": "flatten", "name": "flat", "inputs": [[12, 0, 0]]},
    {"op": "null", "name": "out_weight", "inputs": []},
    {"op": "null", "name": "out_bias", "inputs": []},
    {"op": "FullyConnected", "name": "out", "attrs": {"num_hidden": "3"},
     "inputs": [[13, 0, 0], [14, 0, 0], [15, 0, 0]]},
    {"op": "null", "name": "label", "inputs": []},
    {"op": "softmax_cross_entropy", "name": "ce", "inputs": [[16, 0, 0], [17, 0, 0]]},
    {"op": "MakeLoss", "name": "loss", "attrs": {"grad_scale": "0.25"}, "inputs": [[18, 0, 0]]},
    {"op": "BlockGrad", "name": "value_stop", "inputs": [[6, 0, 0]]}
  ],
  "arg_nodes": [0, 1, 2, 14, 15, 17],
  "node_row_ptr": [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                   22],
  "heads": [[19, 0, 0], [20, 0, 0]],
  "attrs": {"mxnet_version": ["int", 10901]}
}"""


def gated_api() -> sym.Symbol:
    x = sym.Variable("x")
    gates = sym.SliceChannel(sym.FullyConnected(x, num_hidden=8, name="fc"), num_outputs=2,
                             name="gates")
    gate = sym.Activation(gates[0], act_type="sigmoid", name="gate")
    value = sym.Activation(gates[1], act_type="tanh", name="value")
    gated = sym.elemwise_mul(gate, value, name="gated")
    shifted = sym._plus_scalar(sym._mul_scalar(gated, scalar=0.5, name="scaled"), scalar=1,
                               name="shifted")
    total = sym.ElementWiseSum(shifted, gated, gate, name="total")
    flat = sym.Flatten(sym.Reshape(sym.Concat(total, x, dim=1, name="cat"), shape=(0, 2, 5),
                                   name="rs"), name="flat")
    out = sym.FullyConnected(flat, num_hidden=3, name="out")
    loss = sym.MakeLoss(sym.softmax_cross_entropy(out, sym.Variable("label"), name="ce"),
                        grad_scale=0.25, name="loss")
    return sym.Group([loss, sym.BlockGrad(value, name="value_stop")])


def _run(net: sym.Symbol, inputs: dict[str, torch.Tensor], params: dict[str, torch.Tensor] | None,
         seed: int):
    """Bind in float64, load or initialise the parameters, one training step."""
    shapes = {k: tuple(v.shape) for k, v in inputs.items()}
    reqs = {n: "null" if n in inputs else "write" for n in net.list_arguments()}
    exe = net.simple_bind("cpu", grad_req=reqs, dtype="float64", **shapes)
    if params is None:
        initialize(exe, seed=seed)
        gen = torch.Generator().manual_seed(seed)
        for n, t in exe.arg_dict.items():  # make biases, betas and gammas non-trivial
            if n.endswith(("_bias", "_beta", "_gamma")):
                t.add_(0.1 * torch.randn(t.shape, generator=gen, dtype=torch.float64))
    else:
        for n, t in params.items():
            {**exe.arg_dict, **exe.aux_dict}[n].copy_(t)
    for n, t in inputs.items():
        exe.arg_dict[n].copy_(t)
    start = {n: t.clone() for n, t in {**exe.arg_dict, **exe.aux_dict}.items() if n not in inputs}
    outs = [o.clone() for o in exe.forward(is_train=True)]
    exe.backward()
    return start, outs, exe


def _assert_same_step(json_net: sym.Symbol, api_net: sym.Symbol,
                      inputs: dict[str, torch.Tensor]) -> None:
    start, outs, exe = _run(json_net, inputs, None, seed=3)
    _, api_outs, api_exe = _run(api_net, inputs, start, seed=3)
    assert len(outs) == len(api_outs)
    for got, want in zip(outs, api_outs):
        assert torch.equal(got, want)
    assert exe.grad_dict.keys() == api_exe.grad_dict.keys() and exe.grad_dict
    for n, g in exe.grad_dict.items():
        assert torch.equal(g, api_exe.grad_dict[n]), n
        assert g.abs().sum() > 0, f"gradient of {n} is zero"
    for n, t in exe.aux_dict.items():
        assert torch.equal(t, api_exe.aux_dict[n]), n


def test_hand_written_residual_json_matches_the_python_api_bit_for_bit():
    net = sym.load_json(RESIDUAL_JSON)
    assert str(net.graph) == str(residual_api().graph)
    gen = torch.Generator().manual_seed(0)
    inputs = {"data": torch.randn(3, 2, 8, 8, generator=gen, dtype=torch.float64),
              "softmax_label": torch.tensor([0.0, 4.0, 2.0], dtype=torch.float64)}
    _assert_same_step(net, residual_api(), inputs)


def test_hand_written_gated_json_matches_the_python_api_bit_for_bit():
    net = sym.load_json(GATED_JSON)
    assert str(net.graph) == str(gated_api().graph)
    assert net.list_outputs() == ["loss_output", "value_stop_output"]
    gen = torch.Generator().manual_seed(1)
    inputs = {"x": torch.randn(4, 6, generator=gen, dtype=torch.float64),
              "label": torch.tensor([0.0, 2.0, 1.0, 2.0], dtype=torch.float64)}
    _assert_same_step(net, gated_api(), inputs)


# -- JSON exported by real MXNet (bench/mxnet_oracle.py) ---------------------------------------

def _sidecar() -> dict:
    path = NETS / "shapes.json"
    if not path.exists():
        pytest.skip("bench/mxnet_nets/shapes.json is absent (run bench/mxnet_oracle.py)")
    return json.loads(path.read_text())["nets"]


def _saved(net: str) -> tuple[dict, Path]:
    record = _sidecar().get(net)
    if record is None or not (NETS / record["file"]).exists():
        pytest.skip(f"no MXNet JSON saved for {net}")
    return record, NETS / record["file"]


#: MXNet's own exports (bench/mxnet_oracle.py): its example nets, and the nets of
#: tests/executor/test_mxnet_parity.py.
EXPORTED = ["resnet_66_units", "lstm_50_steps", "vgg16_max_pool", "mlp_dropout",
            "resnet_post_66_units"]


@pytest.mark.parametrize("net", EXPORTED)
def test_mxnet_exported_json_has_mxnets_arguments_and_shapes(net):
    record, path = _saved(net)
    symbol = sym.load_json(str(path))
    shapes = {k: tuple(v) for k, v in record["input_shapes"].items()}
    args, outs, aux = symbol.infer_shape(**shapes)
    assert [[n, list(s)] for n, s in zip(symbol.list_arguments(), args)] == record["arguments"]
    assert ([[n, list(s)] for n, s in zip(symbol.list_auxiliary_states(), aux)]
            == record["auxiliary_states"])
    assert [[n, list(s)] for n, s in zip(symbol.list_outputs(), outs)] == record["outputs"]


@pytest.mark.parametrize("net", ["resnet_66_units", "lstm_50_steps"])
def test_mxnet_exported_json_writes_back_the_same_document(net):
    _, path = _saved(net)
    theirs = json.loads(path.read_text())
    ours = json.loads(sym.load_json(str(path)).tojson())
    # same nodes, attributes (MXNet spellings), edges and heads; only aux-state input
    # versions (MXNet counts writes) and op aliases (_copy, add_n) may differ
    assert [r["name"] for r in ours["nodes"]] == [r["name"] for r in theirs["nodes"]]
    assert [r.get("attrs") for r in ours["nodes"]] == [r.get("attrs") for r in theirs["nodes"]]
    assert ([[ref[:2] for ref in r["inputs"]] for r in ours["nodes"]]
            == [[ref[:2] for ref in r["inputs"]] for r in theirs["nodes"]])
    assert ours["heads"] == theirs["heads"] and ours["arg_nodes"] == theirs["arg_nodes"]


def test_mxnet_exported_lstm_is_the_example_lstm():
    _, path = _saved("lstm_50_steps")
    from examples import lstm
    ours = lstm.get_symbol(seq_len=50, num_layers=4, num_hidden=1024, input_size=50,
                           num_label=5000)
    assert str(sym.load_json(str(path)).graph) == str(ours.graph)


GATED_DSL = """
input x;
input label;
fc = FullyConnected(x, num_hidden=8);
gates = SliceChannel(fc, num_outputs=2);
gate = Activation(gates[0], act_type="sigmoid");
value = Activation(gates[1], act_type="tanh");
gated = gate * value;
scaled = _mul_scalar(gated, scalar=0.5);
shifted = _plus_scalar(scaled, scalar=1);
total = ElementWiseSum(shifted, gated, gate);
cat = Concat(total, x, dim=1);
rs = Reshape(cat, shape=(0, 2, 5));
flat = Flatten(rs);
out = FullyConnected(flat, num_hidden=3);
ce = softmax_cross_entropy(out, label);
loss = MakeLoss(ce, grad_scale=0.25);
value_stop = BlockGrad(value);
output loss, value_stop;
"""


def test_hand_written_json_matches_the_equivalent_dsl_net():
    json_net, dsl_net = sym.load_json(GATED_JSON), sym.loads(GATED_DSL)
    assert json_net.list_arguments() == dsl_net.list_arguments()
    assert [(n.op, n.name, [(e.node.name, e.index) for e in n.inputs], dict(n.params))
            for n in json_net.graph.nodes] == \
        [(n.op, n.name, [(e.node.name, e.index) for e in n.inputs], dict(n.params))
         for n in dsl_net.graph.nodes]
    gen = torch.Generator().manual_seed(1)
    inputs = {"x": torch.randn(4, 6, generator=gen, dtype=torch.float64),
              "label": torch.tensor([0.0, 2.0, 1.0, 2.0], dtype=torch.float64)}
    _assert_same_step(json_net, dsl_net, inputs)
