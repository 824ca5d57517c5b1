"""examples/*.sym build the same graphs as the Python API examples (structural comparison).

The comparison is the MXNet JSON of both graphs (ops, names, every attribute string including
``mirror_stage``, inputs by index, outputs) plus the printed graph without source locations.
The only difference allowed is the ``__shape__`` hint the DSL files declare for ``sublinear
check``; the API examples take shapes at bind time. ``densenet.sym`` and ``gru.sym`` have no API
twin: their structure (layer count, parameter count, inputs of the concatenations, shared
weights, mirror marks) is checked directly.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

import symbol as sym
from examples import lstm, mlp, resnet

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def structure(s: sym.Symbol) -> dict:
    doc = json.loads(s.tojson())
    for row in doc["nodes"]:
        attrs = row.get("attrs", {})
        attrs.pop("__shape__", None)
        if not attrs:
            row.pop("attrs", None)
    return doc


def printed(s: sym.Symbol) -> str:
    text = re.sub(r"  # \S+$", "", str(s.graph), flags=re.M)
    return re.sub(r"__shape__=\([0-9, ]*\)", "", text)


def assert_same_graph(dsl_net: sym.Symbol, api_net: sym.Symbol) -> None:
    assert structure(dsl_net) == structure(api_net)
    assert printed(dsl_net) == printed(api_net)


def load(name: str, **params) -> sym.Symbol:
    return sym.load(str(EXAMPLES / name), params=params)


def test_resnet_sym_equals_the_api_resnet_200():
    assert_same_graph(load("resnet.sym"), resnet.get_symbol(units=(3, 24, 36, 3)))


@pytest.mark.parametrize("units, filters, image", [
    ((3, 4, 6, 3), (64, 256, 512, 1024, 2048), (3, 224, 224)),
    ((2, 2, 2), (8, 16, 32, 64), (3, 32, 32)),          # CIFAR stem, mirror_stage on conv0
    ((1,), (4, 8), (3, 28, 28)),
])
def test_resnet_sym_equals_the_api_resnet_at_other_sizes(units, filters, image):
    net = load("resnet.sym", units=units, filter_list=filters, image_shape=image, num_classes=10)
    assert_same_graph(net, resnet.get_symbol(num_classes=10, units=units, filter_list=filters,
                                             image_shape=image))


def test_resnet_sym_marks_every_unit_input_as_a_mirror_stage():
    net = load("resnet.sym", units=(2, 1))
    marked = [n for n, a in net.attr_dict().items() if a.get("mirror_stage") == "True"]
    assert marked == ["pool0", "stage1_unit1_plus", "stage1_unit2_plus", "stage2_unit1_plus"]


def test_lstm_sym_equals_the_api_lstm_50_steps():
    assert_same_graph(load("lstm.sym"), lstm.get_symbol(seq_len=50))


@pytest.mark.parametrize("steps, layers, hidden", [(1, 1, 8), (3, 2, 16), (5, 4, 4)])
def test_lstm_sym_equals_the_api_lstm_at_small_sizes(steps, layers, hidden):
    net = load("lstm.sym", steps=steps, layers=layers, hidden=hidden, input_size=6, num_label=7)
    assert_same_graph(net, lstm.get_symbol(seq_len=steps, num_layers=layers, num_hidden=hidden,
                                           input_size=6, num_label=7))


def test_lstm_sym_shares_one_set_of_weights_per_layer():
    net = load("lstm.sym", steps=4, layers=2, hidden=8)
    weights = [a for a in net.list_arguments() if a.endswith(("_weight", "_bias"))]
    assert weights == ["embed_weight", "l0_i2h_weight", "l0_i2h_bias", "l0_h2h_weight",
                       "l0_h2h_bias", "l1_i2h_weight", "l1_i2h_bias", "l1_h2h_weight",
                       "l1_h2h_bias", "cls_weight", "cls_bias"]
    stages = {n: a["mirror_stage"] for n, a in net.attr_dict().items() if "mirror_stage" in a}
    assert stages["t3_l1_c"] == stages["t3_l1_h"] == "3" and len(stages) == 4 * 2 * 2


@pytest.mark.parametrize("hidden, act", [((128, 64), "relu"), ((32, 16, 8), "tanh")])
def test_mlp_sym_equals_the_api_mlp(hidden, act):
    assert_same_graph(load("mlp.sym", hidden=hidden, act_type=act),
                      mlp.get_symbol(hidden=hidden, act_type=act))


def test_inception_sym_concatenates_parallel_branches():
    net = load("inception.sym")
    _, outs, _ = net.infer_shape()
    assert outs == [(32, 1000)]
    concat = net.graph.nodes[[n.name for n in net.graph.nodes].index("block1_concat")]
    assert [e.node.name for e in concat.inputs] == [
        "block1_1x1_relu", "block1_3x3_relu", "block1_5x5_relu", "block1_proj_relu"]
    readers = [n.name for n in net.graph.nodes if any(e.node.name == "stem_pool"
                                                      for e in n.inputs)]
    assert readers == ["block1_1x1_conv", "block1_3x3_reduce_conv", "block1_5x5_reduce_conv",
                       "block1_pool"]


def ops_named(net: sym.Symbol, op: str) -> list[str]:
    return [n.name for n in net.graph.nodes if n.op == op]


def inputs_of(net: sym.Symbol, name: str) -> list[str]:
    node = next(n for n in net.graph.nodes if n.name == name)
    return [e.node.name for e in node.inputs]


def parameter_count(net: sym.Symbol) -> int:
    args, _, _ = net.infer_shape()
    total = 0
    for name, shape in zip(net.list_arguments(), args, strict=True):
        if name.endswith(("_weight", "_bias", "_gamma", "_beta")):
            total += math.prod(shape)
    return total


def test_densenet_sym_is_densenet_121():
    net = load("densenet.sym")
    assert net.infer_shape()[1] == [(32, 1000)]
    assert parameter_count(net) == 7_978_856  # torchvision's densenet121, BN affine included
    # 121 layers: 2 convolutions per dense layer, 3 transitions, the stem and the classifier
    assert len(ops_named(net, "Convolution")) + len(ops_named(net, "FullyConnected")) == 121


def test_densenet_sym_layers_read_the_concat_of_every_earlier_feature_map():
    net = load("densenet.sym", blocks=(3, 2), image=(3, 64, 64), batch=2, num_classes=5)
    assert inputs_of(net, "block1_layer1_bn1") == [
        "pool0", "block1_layer1_bn1_gamma", "block1_layer1_bn1_beta",
        "block1_layer1_bn1_moving_mean", "block1_layer1_bn1_moving_var"]
    assert inputs_of(net, "block1_layer3_concat") == [
        "pool0", "block1_layer1_2_conv", "block1_layer2_2_conv"]
    assert inputs_of(net, "block1_concat") == [
        "pool0", "block1_layer1_2_conv", "block1_layer2_2_conv", "block1_layer3_2_conv"]
    assert inputs_of(net, "block2_concat") == [
        "transition1_pool", "block2_layer1_2_conv", "block2_layer2_2_conv"]
    shapes = dict(zip(net.list_outputs(), net.infer_shape()[1], strict=True))
    assert shapes == {"softmax_output": (2, 5)}
    internals = net.get_internals()
    _, outs, _ = internals.infer_shape()
    by_name = dict(zip(internals.list_outputs(), outs, strict=True))
    # 64 stem filters + 3 * 32 -> 160 -> transition keeps half; 80 + 2 * 32 = 144
    assert by_name["block1_concat_output"] == (2, 160, 16, 16)
    assert by_name["transition1_pool_output"] == (2, 80, 8, 8)
    assert by_name["block2_concat_output"] == (2, 144, 8, 8)
    attrs = net.attr_dict()
    assert [n for n, a in attrs.items() if a.get("mirror_stage") == "True"] == [
        "pool0", "transition1_pool"]
    assert attrs["block1_layer2_concat"]["__force_mirroring__"] == "True"
    assert "__force_mirroring__" not in attrs["block1_layer2_2_conv"]


def test_densenet_sym_cifar_densenet_bc_100():
    net = load("densenet.sym", blocks=(16, 16, 16), growth=12, stem=24, image=(3, 32, 32),
               num_classes=10, batch=4)
    assert net.infer_shape()[1] == [(4, 10)]
    assert len(ops_named(net, "Convolution")) + len(ops_named(net, "FullyConnected")) == 100
    assert ops_named(net, "Pooling")[:2] == ["transition1_pool", "transition2_pool"]
    assert 750_000 < parameter_count(net) < 850_000  # the paper: 0.8M


def test_gru_sym_shares_one_set_of_weights_per_layer_and_marks_only_the_state():
    net = load("gru.sym", steps=4, layers=2, hidden=8, input_size=3, num_label=5, batch=2)
    weights = [a for a in net.list_arguments() if a.endswith(("_weight", "_bias"))]
    assert weights == ["embed_weight",
                       "l0_i2h_weight", "l0_i2h_bias", "l0_h2h_weight", "l0_h2h_bias",
                       "l0_h2n_weight", "l0_h2n_bias",
                       "l1_i2h_weight", "l1_i2h_bias", "l1_h2h_weight", "l1_h2h_bias",
                       "l1_h2n_weight", "l1_h2n_bias", "cls_weight", "cls_bias"]
    stages = {n: a["mirror_stage"] for n, a in net.attr_dict().items() if "mirror_stage" in a}
    assert stages == {f"t{t}_l{i}_h": str(t) for t in range(4) for i in range(2)}
    assert inputs_of(net, "t2_l1_keep") == ["t2_l1_z"]
    assert [n.op for n in net.graph.nodes if n.name == "t2_l1_keep"] == ["_rminus_scalar"]
    assert net.infer_shape()[1] == [(1,)] * 4


@pytest.mark.parametrize("name", ["mlp.sym", "resnet.sym", "lstm.sym", "inception.sym",
                                  "densenet.sym", "gru.sym"])
def test_every_example_infers_all_shapes_from_its_declarations(name):
    args, outs, aux = load(name).infer_shape()
    assert args is not None and outs is not None and aux is not None
