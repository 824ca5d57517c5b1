"""The MXNet-style Python API: names, arguments, attributes, JSON, errors."""
from __future__ import annotations

import json

import pytest

import symbol as sym
from symbol.errors import AttrError, OpError, ShapeError, SymbolError


def mlp():
    data = sym.Variable("data")
    fc1 = sym.FullyConnected(data, num_hidden=16, name="fc1")
    act = sym.Activation(fc1, act_type="relu", name="relu1")
    fc2 = sym.FullyConnected(act, num_hidden=4, name="fc2")
    return sym.SoftmaxOutput(fc2, name="softmax")


def test_missing_weights_and_labels_become_named_variables():
    net = mlp()
    assert net.list_arguments() == ["data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias",
                                    "softmax_label"]
    assert net.list_outputs() == ["softmax_output"]
    assert net.list_auxiliary_states() == []


def test_batchnorm_aux_states_are_listed_separately():
    bn = sym.BatchNorm(sym.Variable("data"), name="bn")
    assert bn.list_arguments() == ["data", "bn_gamma", "bn_beta"]
    assert bn.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    assert bn.list_outputs() == ["bn_output"]


def test_infer_shape_infers_weights_from_data():
    arg, out, aux = mlp().infer_shape(data=(32, 100))
    assert arg == [(32, 100), (16, 100), (16,), (4, 16), (4,), (32,)]
    assert out == [(32, 4)] and aux == []


def test_infer_shape_incomplete_returns_nones_and_partial_returns_what_is_known():
    net = mlp()
    assert net.infer_shape() == (None, None, None)
    arg, out, _ = net.infer_shape_partial(fc1_weight=(16, 100))
    assert arg[1] == (16, 100) and arg[0] is None and out == [None]


def test_infer_shape_error_names_op_and_node():
    with pytest.raises(ShapeError, match=r"in operator 'fc1' \(FullyConnected\): input "
                                         r"'weight' has shape \(16, 99\), expected \(16, 100\)"):
        mlp().infer_shape(data=(32, 100), fc1_weight=(16, 99))


def test_infer_shape_rejects_unknown_names():
    with pytest.raises(SymbolError, match="'dat' is not an input of this symbol; did you mean "
                                          "'data'"):
        mlp().infer_shape(dat=(1, 2))


def test_group_and_indexing():
    a = sym.Variable("a")
    s = sym.SliceChannel(a, num_outputs=3, name="sl")
    assert s.list_outputs() == ["sl_output0", "sl_output1", "sl_output2"]
    g = sym.Group([s[0], s[2], a])
    assert g.list_outputs() == ["sl_output0", "sl_output2", "a"]
    assert s["sl_output1"].list_outputs() == ["sl_output1"]


def test_multi_output_symbol_cannot_be_an_input():
    s = sym.SliceChannel(sym.Variable("a"), num_outputs=2, name="sl")
    with pytest.raises(OpError, match="cannot use a symbol with 2 outputs"):
        sym.Activation(s, act_type="relu")


def test_missing_data_input_is_an_error():
    with pytest.raises(OpError, match=r"operator 'fc' \(FullyConnected\): missing input 'data'"):
        sym.FullyConnected(num_hidden=3, name="fc")


def test_unknown_and_ill_typed_attributes():
    x = sym.Variable("x")
    with pytest.raises(AttrError, match="unknown attribute 'num_hiden'; did you mean "
                                        "'num_hidden'"):
        sym.FullyConnected(x, num_hiden=3, name="fc")
    with pytest.raises(AttrError, match=r"attribute num_hidden='ten': expected an integer"):
        sym.FullyConnected(x, num_hidden="ten", name="fc")
    with pytest.raises(AttrError, match="missing required attribute 'num_hidden'"):
        sym.FullyConnected(x, name="fc")


def test_too_many_inputs_and_unknown_input_names():
    x = sym.Variable("x")
    with pytest.raises(OpError, match="takes 1 inputs"):
        sym.Activation(x, x, act_type="relu")
    with pytest.raises(OpError, match="has no input 'weights'"):
        sym.FullyConnected(x, weights=x, num_hidden=2)


def test_attr_scope_and_user_attributes_pass_through():
    x = sym.Variable("x")
    with sym.AttrScope(mirror_stage="True"):
        a = sym.Activation(x, act_type="relu", name="a")
        with sym.AttrScope(__force_mirroring__="False"):
            b = sym.FullyConnected(a, num_hidden=2, name="b")
    c = sym.Activation(b, act_type="tanh", name="c", attr={"mirror_stage": "5"})
    assert a.attr("mirror_stage") == "True"
    assert b.list_attr() == {"num_hidden": "2", "mirror_stage": "True",
                             "__force_mirroring__": "False"}
    assert sym.Group([b]).graph.inputs[1].attrs["mirror_stage"] == "True"  # b_weight in scope
    assert c.attr("mirror_stage") == "5" and c.attr("__force_mirroring__") is None
    with pytest.raises(SymbolError, match="values must be strings"):
        sym.AttrScope(mirror_stage=True)


def test_json_round_trip_preserves_graph_and_attributes():
    with sym.AttrScope(mirror_stage="True"):
        net = mlp()
    text = net.tojson()
    doc = json.loads(text)
    assert doc["nodes"][0] == {"op": "null", "name": "data", "attrs": {"__mirror_stage__": "True"},
                               "inputs": []}
    assert doc["heads"] == [[len(doc["nodes"]) - 1, 0, 0]]
    back = sym.load_json(text)
    assert str(back.graph) == str(net.graph)
    assert back.tojson() == text


def test_load_json_reads_mxnet_attr_keys_and_files(tmp_path):
    doc = {"nodes": [{"op": "null", "name": "data", "inputs": []},
                     {"op": "Activation", "name": "r", "attr": {"act_type": "relu"},
                      "inputs": [[0, 0, 0]]}],
           "arg_nodes": [0], "heads": [[1, 0, 0]]}
    path = tmp_path / "net-symbol.json"
    path.write_text(json.dumps(doc))
    net = sym.load_json(str(path))
    assert net.list_outputs() == ["r_output"] and net.attr("act_type") == "relu"


def test_load_json_bad_documents_raise_symbol_errors():
    with pytest.raises(SymbolError, match="not an MXNet symbol JSON"):
        sym.load_json("{}")
    with pytest.raises(OpError, match="unknown MXNet operator in <string>: 'Conv'"):
        sym.load_json(json.dumps({"nodes": [{"op": "null", "name": "x", "inputs": []},
                                            {"op": "Conv", "name": "c", "inputs": [[0, 0, 0]]}],
                                  "heads": [[1, 0, 0]]}))


def test_arithmetic_operators_build_elementwise_ops():
    a, b = sym.Variable("a"), sym.Variable("b")
    ops = [n.op for n in ((a + b) * 2.0 + 1.0 - b).graph.nodes]
    assert ops == ["elemwise_add", "_mul_scalar", "_plus_scalar", "_mul_scalar", "elemwise_add"]


def test_automatic_names_are_deterministic_within_a_name_manager():
    with sym.NameManager():
        a = sym.Activation(sym.Variable("x"), act_type="relu")
        b = sym.Activation(a, act_type="relu")
    assert (a.name, b.name) == ("activation0", "activation1")
    with sym.Prefix("s1_"):
        c = sym.FullyConnected(b, num_hidden=2)
    assert c.name == "s1_fullyconnected0"
    assert c.list_arguments()[-2:] == ["s1_fullyconnected0_weight", "s1_fullyconnected0_bias"]
