"""MXNet 1.x symbol JSON import/export (symbol/mxnet_json.py), with hand-written documents.

The documents are written the way MXNet 1.9.1 writes them (``attrs``, ``[node, output,
version]`` triples, ``node_row_ptr`` counting hidden outputs, hidden keys as ``__key__``), or the
way older versions did (``param``/``attr``, pairs, no ``mxnet_version``).
"""
from __future__ import annotations

import copy
import json
import random

import pytest

import symbol as sym
from symbol.errors import AttrError, GraphError, OpError, SymbolError


def var(name, **attrs):
    row = {"op": "null", "name": name, "inputs": []}
    if attrs:
        row["attrs"] = attrs
    return row


def op(op_name, name, inputs, **attrs):
    row = {"op": op_name, "name": name}
    if attrs:
        row["attrs"] = attrs
    row["inputs"] = [[*(x if isinstance(x, tuple) else (x, 0)), 0] for x in inputs]
    return row


def doc(nodes, heads, *, row_ptr=None, version=10901):
    d = {"nodes": nodes, "arg_nodes": [i for i, n in enumerate(nodes) if n["op"] == "null"],
         "node_row_ptr": row_ptr or list(range(len(nodes) + 1)), "heads": heads}
    if version is not None:
        d["attrs"] = {"mxnet_version": ["int", version]}
    return json.dumps(d)


# -- documents ----------------------------------------------------------------------------------

MLP = doc([var("data"), var("fc1_weight"), var("fc1_bias"),
           op("FullyConnected", "fc1", [0, 1, 2], num_hidden="32"),
           op("Activation", "relu1", [3], act_type="relu"),
           var("fc2_weight"), var("fc2_bias"),
           op("FullyConnected", "fc2", [4, 5, 6], num_hidden="10"),
           var("softmax_label"), op("SoftmaxOutput", "softmax", [7, 8])],
          [[9, 0, 0]])


def mlp_api():
    x = sym.Variable("data")
    x = sym.FullyConnected(x, num_hidden=32, name="fc1")
    x = sym.Activation(x, act_type="relu", name="relu1")
    x = sym.FullyConnected(x, num_hidden=10, name="fc2")
    return sym.SoftmaxOutput(x, name="softmax")


def conv_block_doc():
    """conv -> BN -> relu -> max pool, as MXNet 1.9.1 (MKLDNN build) writes it."""
    nodes = [var("data"), var("conv0_weight"),
             op("Convolution", "conv0", [0, 1], kernel="(3, 3)", pad="(1, 1)", num_filter="8",
                no_bias="True", workspace="256", cudnn_tune="limited_workspace",
                cudnn_off="False"),
             var("bn0_gamma"), var("bn0_beta"),
             var("bn0_moving_mean", __init__='["zero", {}]'),
             var("bn0_moving_var", __init__='["one", {}]'),
             op("BatchNorm", "bn0", [2, 3, 4, 5, 6], eps="2e-05", fix_gamma="False",
                momentum="0.9", output_mean_var="False"),
             op("Activation", "relu0", [7], act_type="relu"),
             op("Pooling", "pool0", [8], kernel="(2, 2)", stride="(2, 2)", pool_type="max")]
    nodes[7]["inputs"][3][2] = nodes[7]["inputs"][4][2] = 1  # MXNet bumps aux-state versions
    # BatchNorm has 3 outputs, MKLDNN max pooling 2 (a hidden workspace)
    return doc(nodes, [[9, 0, 0]], row_ptr=[0, 1, 2, 3, 4, 5, 6, 7, 10, 11, 13])


def conv_block_api():
    x = sym.Convolution(sym.Variable("data"), kernel=(3, 3), pad=(1, 1), num_filter=8,
                        no_bias=True, workspace=256, cudnn_tune="limited_workspace",
                        cudnn_off=False, name="conv0")
    stats = {k: sym.Variable(f"bn0_{k}", init=f'["{v}", {{}}]')
             for k, v in (("moving_mean", "zero"), ("moving_var", "one"))}
    x = sym.BatchNorm(x, eps=2e-5, fix_gamma=False, momentum=0.9, name="bn0", **stats)
    x = sym.Activation(x, act_type="relu", name="relu0")
    return sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool0")


def residual_doc():
    """A pre-activation unit whose input and output carry MXNet's stored __mirror_stage__."""
    nodes = [var("data"), var("u_bn_gamma"), var("u_bn_beta"), var("u_bn_moving_mean"),
             var("u_bn_moving_var"),
             op("BatchNorm", "u_bn", [0, 1, 2, 3, 4], fix_gamma="False"),
             op("Activation", "u_relu", [5], act_type="relu", __force_mirroring__="True"),
             var("u_conv_weight"),
             op("Convolution", "u_conv", [6, 7], kernel="(3, 3)", pad="(1, 1)",
                num_filter="4", no_bias="True"),
             op("elemwise_add", "u_plus", [8, 0], __mirror_stage__="True")]
    nodes[0]["attrs"] = {"__mirror_stage__": "True", "__shape__": "(2, 4, 6, 6)"}
    return doc(nodes, [[9, 0, 0]], row_ptr=[0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12])


def residual_api():
    data = sym.Variable("data", shape=(2, 4, 6, 6), attr={"mirror_stage": "True"})
    bn = sym.BatchNorm(data, fix_gamma=False, name="u_bn")
    act = sym.Activation(bn, act_type="relu", name="u_relu", __force_mirroring__="True")
    conv = sym.Convolution(act, kernel=(3, 3), pad=(1, 1), num_filter=4, no_bias=True,
                           name="u_conv")
    return sym.elemwise_add(conv, data, name="u_plus", attr={"mirror_stage": "True"})


# -- loading ------------------------------------------------------------------------------------

def test_mlp_document_loads_as_the_api_net():
    net = sym.load_json(MLP)
    assert str(net.graph) == str(mlp_api().graph)
    assert net.list_arguments() == ["data", "fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias",
                                    "softmax_label"]
    args, outs, _ = net.infer_shape(data=(5, 20))
    assert args[1] == (32, 20) and outs == [(5, 10)]


def test_conv_bn_relu_pool_block_drops_mxnet_hints_and_maps_hidden_outputs():
    net = sym.load_json(conv_block_doc())
    assert str(net.graph) == str(conv_block_api().graph)
    assert net.list_auxiliary_states() == ["bn0_moving_mean", "bn0_moving_var"]
    assert "output_mean_var" not in net.attr_dict()["bn0"]
    assert net.graph.nodes[1].num_outputs == 3  # BatchNorm: output + hidden (mean, invstd)
    _, outs, aux = net.infer_shape(data=(2, 3, 8, 8))
    assert outs == [(2, 8, 4, 4)] and aux == [(8,), (8,)]
    assert json.loads(net.tojson())["nodes"][5]["attrs"] == {"__init__": '["zero", {}]'}


def test_residual_unit_mirror_stage_is_read_as_mirror_stage():
    net = sym.load_json(residual_doc())
    assert str(net.graph) == str(residual_api().graph)
    attrs = net.attr_dict()
    assert attrs["u_plus"] == {"mirror_stage": "True"}
    assert attrs["data"] == {"mirror_stage": "True", "__shape__": "(2, 4, 6, 6)"}
    assert attrs["u_relu"]["__force_mirroring__"] == "True"  # its real name: kept
    assert net.infer_shape()[1] == [(2, 4, 6, 6)]  # from __shape__


def test_old_style_param_and_attr_keys_and_input_pairs():
    # MXNet 0.8: op parameters under "param", user attributes (plain hidden keys) under "attr"
    d = json.loads(MLP)
    del d["attrs"], d["node_row_ptr"]
    for row in d["nodes"]:
        row["param"] = row.pop("attrs", {})
        row["backward_source_id"] = -1
        row["inputs"] = [ref[:2] for ref in row["inputs"]]
    d["nodes"][1]["attr"] = {"lr_mult": "2", "wd_mult": "0"}
    d["nodes"][4]["attr"] = {"mirror_stage": "True", "force_mirroring": "True",
                             "ctx_group": "dev1"}
    d["nodes"][3]["attr"] = {"weight_lr_mult": "0.5"}
    d["heads"] = [[9, 0]]
    net = sym.load_json(json.dumps(d))
    attrs = net.attr_dict()
    assert attrs["fc1_weight"] == {"__lr_mult__": "2", "__wd_mult__": "0"}
    assert attrs["relu1"] == {"act_type": "relu", "mirror_stage": "True",
                              "__force_mirroring__": "True", "ctx_group": "dev1"}
    assert attrs["fc1"]["weight_lr_mult"] == "0.5"
    assert net.list_outputs() == ["softmax_output"]


def test_mxnet_0_9_attr_key_holds_everything():
    d = json.loads(residual_doc())
    for row in d["nodes"]:
        if "attrs" in row:
            row["attr"] = row.pop("attrs")
    assert str(sym.load_json(json.dumps(d)).graph) == str(residual_api().graph)


@pytest.mark.parametrize("alias,canonical", [
    ("_Plus", "elemwise_add"), ("_plus", "elemwise_add"), ("_add", "elemwise_add"),
    ("_Mul", "elemwise_mul"), ("_mul", "elemwise_mul"), ("add_n", "ElementWiseSum")])
def test_binary_op_aliases(alias, canonical):
    extra = {"num_args": "2"} if alias == "add_n" else {}
    net = sym.load_json(doc([var("a"), var("b"), op(alias, "y", [0, 1], **extra)],
                            [[2, 0, 0]]))
    assert net.graph.nodes[0].op == canonical


@pytest.mark.parametrize("alias,canonical,attrs", [
    ("_copy", "identity", {}), ("Flatten", "Flatten", {}), ("flatten", "Flatten", {}),
    ("_PlusScalar", "_plus_scalar", {"scalar": "1"}),
    ("_MulScalar", "_mul_scalar", {"scalar": "2", "is_int": "True"}),
    ("_RMinusScalar", "_rminus_scalar", {"scalar": "1"}),
    ("_rminus_scalar", "_rminus_scalar", {"scalar": "1", "is_int": "False"}),
    ("BlockGrad", "BlockGrad", {}), ("stop_gradient", "BlockGrad", {})])
def test_unary_op_aliases(alias, canonical, attrs):
    net = sym.load_json(doc([var("a"), op(alias, "y", [0], **attrs)], [[1, 0, 0]]))
    assert net.graph.nodes[0].op == canonical
    assert "is_int" not in net.graph.nodes[0].attrs


def test_softmax_alias_and_multi_head_groups():
    net = sym.load_json(doc([var("a"), var("a_label"), op("Softmax", "s", [0, 1]),
                             op("Activation", "t", [0], act_type="tanh")],
                            [[2, 0, 0], [3, 0, 0], [0, 0, 0]]))
    assert [n.op for n in net.graph.nodes] == ["SoftmaxOutput", "Activation"]
    assert net.list_outputs() == ["s_output", "t_output", "a"]


def test_variable_attributes_are_kept_and_dtype_codes_become_names():
    net = sym.load_json(doc([var("w", __shape__="(3, 4)", __dtype__="1", __lr_mult__="2.0",
                                 __wd_mult__="0", __init__='["zero", {}]', group="g",
                                 __ctx_group__="dev1", __profiler_scope__="enc:")],
                            [[0, 0, 0]]))
    assert net.list_attr() == {"__shape__": "(3, 4)", "__dtype__": "float64",
                               "__lr_mult__": "2.0", "__wd_mult__": "0",
                               "__init__": '["zero", {}]', "group": "g", "ctx_group": "dev1",
                               "profiler_scope": "enc:"}
    assert net.infer_type()[0] == ["float64"]
    row = json.loads(net.tojson())["nodes"][0]["attrs"]
    assert row["__dtype__"] == "1" and row["__ctx_group__"] == "dev1" and "ctx_group" not in row


@pytest.mark.parametrize("op_name,attrs", [
    ("BatchNorm", {"min_calib_range": "-1.5", "max_calib_range": "2.5",
                   "output_mean_var": "0"}),
    ("Pooling", {"kernel": "(2, 2)", "p_value": "2", "layout": "NCHW"}),
    ("LeakyReLU", {"act_type": "leaky", "lower_bound": "0.1", "upper_bound": "0.3"}),
    ("Reshape", {"shape": "(0, -1)", "target_shape": "()", "keep_highest": "False"})])
def test_mxnet_only_attributes_at_harmless_values_are_dropped(op_name, attrs):
    inputs = [0, 1, 2, 3, 4] if op_name == "BatchNorm" else [0]
    nodes = [var("x")] + [var(f"v{i}") for i in range(len(inputs) - 1)]
    net = sym.load_json(doc(nodes + [op(op_name, "y", inputs, **attrs)], [[len(nodes), 0, 0]]))
    kept = net.graph.nodes[0].attrs
    assert set(kept) == {k for k in attrs if net.graph.nodes[0].opdef.param(k) is not None}


# -- errors -------------------------------------------------------------------------------------

def test_unknown_operators_are_listed_together_with_their_nodes(tmp_path):
    path = tmp_path / "net-symbol.json"
    path.write_text(doc([var("x"), op("Crop", "crop0", [0]), op("ROIPooling", "roi1", [1])],
                        [[2, 0, 0]]))
    with pytest.raises(OpError) as e:
        sym.load_json(str(path))
    assert str(e.value) == (f"unknown MXNet operators in {path}: 'Crop' (node crop0), "
                            "'ROIPooling' (node roi1)")


def test_unknown_operator_hint_and_many_nodes():
    nodes = [var("x")] + [op("Conv", f"c{i}", [i]) for i in range(5)]
    with pytest.raises(OpError) as e:
        sym.load_json(doc(nodes, [[5, 0, 0]]))
    assert str(e.value) == ("unknown MXNet operator in <string>: 'Conv' (nodes c0, c1, c2 and "
                            "2 more; did you mean 'Convolution'?)")


def test_backward_operators_are_not_accepted_in_a_forward_document():
    with pytest.raises(OpError, match="unknown MXNet operator in <string>: "
                                      "'_backward_Activation' \\(node b\\)"):
        sym.load_json(doc([var("x"), var("y"), op("_backward_Activation", "b", [0, 1],
                                                  act_type="relu")], [[2, 0, 0]]))


@pytest.mark.parametrize("op_name,attrs,message", [
    ("BatchNorm", {"output_mean_var": "True"},
     "<string>: operator 'y' (BatchNorm): MXNet attribute output_mean_var='True' is not "
     "supported (accepted: False (the batch statistics are hidden here))"),
    ("Reshape", {"target_shape": "(2, 3)"},
     "<string>: operator 'y' (Reshape): MXNet attribute target_shape='(2, 3)' is not supported "
     "(accepted: () (deprecated; use shape))"),
    ("Activation", {"act_type": "softsign"},
     "<string>: operator 'y' (Activation): attribute act_type='softsign': expected one of "
     "'relu', 'sigmoid', 'tanh', 'softrelu'"),
    ("Activation", {"act_type": "relu", "group": "g"},
     "<string>: operator 'y' (Activation): unknown attribute 'group' (valid attributes: "
     "act_type; a user attribute on an operator is written '__group__')"),
    ("FullyConnected", {"num_hiden": "3"},
     "<string>: operator 'y' (FullyConnected): unknown attribute 'num_hiden'; did you mean "
     "'num_hidden'? (valid attributes: num_hidden, no_bias, flatten; a user attribute on an "
     "operator is written '__num_hiden__')"),
    ("Pooling", {"kernel": "(2, 2)", "layout": "NHWC"},
     "<string>: operator 'y' (Pooling): MXNet attribute layout='NHWC' is not supported "
     "(accepted: None or NCHW)"),
])
def test_unsupported_attributes_name_the_op_and_node(op_name, attrs, message):
    n_in = {"BatchNorm": 5, "FullyConnected": 3}.get(op_name, 1)
    nodes = [var(f"v{i}") for i in range(n_in)]
    with pytest.raises(AttrError) as e:
        sym.load_json(doc(nodes + [op(op_name, "y", list(range(n_in)), **attrs)],
                          [[n_in, 0, 0]]))
    assert str(e.value) == message


def _mlp(mutate):
    d = json.loads(MLP)
    mutate(d)
    return json.dumps(d)


def _set(path, value):
    def mutate(d):
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


MALFORMED = [
    ("{nodes", GraphError, "<string>:1:2: not an MXNet symbol JSON document: invalid JSON "
                           "(Expecting property name enclosed in double quotes)"),
    ("[1, 2]", GraphError, "<string>: not an MXNet symbol JSON document: expected an object "
                           "with 'nodes' and 'heads', got list"),
    (_mlp(lambda d: d.pop("heads")), GraphError,
     "<string>: not an MXNet symbol JSON document: missing key 'heads'"),
    (_mlp(_set(["nodes"], {})), GraphError,
     "<string>: 'nodes' must be a non-empty list of node objects"),
    (_mlp(_set(["nodes", 2], 7)), GraphError, "<string>: node 2 is not an object"),
    (_mlp(lambda d: d["nodes"][3].pop("op")), GraphError,
     "<string>: node 3 needs a non-empty string 'op'"),
    (_mlp(_set(["nodes", 3, "name"], "")), GraphError,
     "<string>: node 3 needs a non-empty string 'name'"),
    (_mlp(_set(["nodes", 3, "inputs", 0], [4, 0, 0])), GraphError,
     "<string>: node 3 ('fc1') input 0 refers to node 4, which comes later (inputs must refer "
     "to earlier nodes)"),
    (_mlp(_set(["nodes", 3, "inputs", 0], [40, 0, 0])), GraphError,
     "<string>: node 3 ('fc1') input 0 refers to node 40, which does not exist"),
    (_mlp(_set(["nodes", 3, "inputs", 0], ["0", 0])), GraphError,
     "<string>: node 3 ('fc1') input 0: expected [node, output, version] (integers), "
     "got [\"0\", 0]"),
    (_mlp(_set(["nodes", 3, "inputs"], "0")), GraphError,
     "<string>: node 3 ('fc1'): 'inputs' must be a list"),
    (_mlp(_set(["nodes", 4, "inputs", 0], [3, 1, 0])), GraphError,
     "<string>: node 4 ('relu1') input 0 reads output 1 of node 3 ('fc1'), which has 1 output"),
    (_mlp(_set(["heads"], [[9, 0, 0], [12, 0, 0]])), GraphError,
     "<string>: head 1 refers to node 12, which does not exist"),
    (_mlp(_set(["heads"], [])), GraphError,
     "<string>: 'heads' must be a non-empty list of [node, output, version]"),
    (_mlp(_set(["nodes", 3, "attrs"], ["num_hidden"])), GraphError,
     "<string>: node 3 ('fc1'): 'attrs' must be an object of strings"),
    (_mlp(_set(["nodes", 3, "attrs", "num_hidden"], 32)), GraphError,
     "<string>: node 3 ('fc1'): attribute num_hidden=32 must be a string (MXNet writes every "
     "attribute as a string)"),
    (_mlp(_set(["nodes", 3, "param"], {"num_hidden": "16"})), GraphError,
     "<string>: node 3 ('fc1'): attribute 'num_hidden' has two values, '16' and '32'"),
    (_mlp(_set(["nodes", 1, "inputs"], [[0, 0, 0]])), GraphError,
     "<string>: node 1 ('fc1_weight'): a variable (op 'null') has no inputs"),
    (_mlp(_set(["nodes", 5, "name"], "fc1_weight")), GraphError,
     "<string>: nodes 1 and 5 are both named 'fc1_weight'"),
    (_mlp(_set(["arg_nodes"], [0, 3])), GraphError,
     "<string>: 'arg_nodes' lists node 3 ('fc1'), which is not a variable (op "
     "'FullyConnected')"),
    (_mlp(_set(["arg_nodes"], [0, 99])), GraphError,
     "<string>: 'arg_nodes' must list node indices in 0..9"),
    (_mlp(_set(["node_row_ptr"], [0, 1])), GraphError,
     "<string>: 'node_row_ptr' must be 11 non-decreasing integers from 0"),
    (_mlp(_set(["nodes", 3, "inputs"], [[0, 0, 0], [1, 0, 0]])), OpError,
     "<string>: operator 'fc1' (FullyConnected) takes 3 inputs (data, weight, bias), got 2"),
    (_mlp(_set(["nodes", 3, "attrs"], {})), AttrError,
     "<string>: operator 'fc1' (FullyConnected): missing required attribute 'num_hidden'"),
    (_mlp(_set(["nodes", 0, "attrs"], {"__dtype__": "42"})), GraphError,
     "<string>: node 0 ('data'): unknown MXNet __dtype__ code '42' (known: 0=float32, "
     "1=float64, 2=float16, 3=uint8, 4=int32, 5=int8, 6=int64, 7=bool, 8=int16, 9=uint16, "
     "10=uint32, 11=uint64, 12=bfloat16)"),
    (_mlp(_set(["nodes", 4, "attrs"], {"act_type": "relu", "mirror_stage": "1",
                                       "__mirror_stage__": "2"})), GraphError,
     "<string>: node 4 ('relu1'): attributes 'mirror_stage' and its MXNet spelling disagree "
     "('1' and '2')"),
]


@pytest.mark.parametrize("text,cls,message", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_documents_raise_located_symbol_errors(text, cls, message):
    with pytest.raises(cls) as e:
        sym.load_json(text)
    assert str(e.value) == message


def test_hidden_output_reads_are_rejected():
    # MXNet's BatchNorm hides (mean, var), this one (mean, invstd): index 2 differs in meaning
    d = json.loads(residual_doc())
    d["heads"] = [[5, 2, 0]]
    with pytest.raises(GraphError) as e:
        sym.load_json(json.dumps(d))
    assert str(e.value) == ("<string>: head 0 reads output 2 ('invstd') of node 5 ('u_bn'), a "
                            "hidden output of BatchNorm, which shows 1 output(s) here")


def test_variadic_num_args_must_match_the_inputs():
    with pytest.raises(AttrError, match="operator 'y' \\(ElementWiseSum\\): num_args='3' but "
                                        "the node has 2 inputs"):
        sym.load_json(doc([var("a"), var("b"), op("add_n", "y", [0, 1], num_args="3")],
                          [[2, 0, 0]]))


def test_unreadable_file_is_a_symbol_error(tmp_path):
    missing = tmp_path / "nope-symbol.json"
    with pytest.raises(SymbolError, match=f"cannot read MXNet symbol JSON file '{missing}': "
                                          "No such file or directory"):
        sym.load_json(str(missing))
    with pytest.raises(SymbolError, match="cannot read"):
        sym.load_json(tmp_path)  # a directory


def test_modern_documents_reject_plain_legacy_keys_on_operators():
    d = json.loads(MLP)
    d["nodes"][3]["attrs"]["weight_lr_mult"] = "0.5"
    with pytest.raises(AttrError, match="unknown attribute 'weight_lr_mult'"):
        sym.load_json(json.dumps(d))


def test_mutated_documents_raise_only_symbol_errors():
    # a small deterministic fuzz: every failure must be a SymbolError, never KeyError & co.
    rng = random.Random(0)
    base = json.loads(conv_block_doc())
    values = [None, -1, 0, 1, 99, "x", "", [], {}, [[0]], [[0, 0, 0]], {"a": 1}, True, 2.5]
    for _ in range(600):
        d = json.loads(json.dumps(base))
        for _ in range(rng.randint(1, 3)):
            _mutate(d, rng, values)
        try:
            net = sym.load_json(json.dumps(d))
            net.infer_shape_partial(data=(2, 3, 8, 8))
        except SymbolError:
            pass


def _mutate(d, rng, values):
    target = d
    while isinstance(target, (dict, list)) and target and rng.random() < 0.8:
        key = rng.choice(list(target)) if isinstance(target, dict) else rng.randrange(len(target))
        if not isinstance(target[key], (dict, list)) or not target[key] or rng.random() < 0.3:
            if rng.random() < 0.2 and isinstance(target, dict):
                del target[key]
            else:
                target[key] = copy.deepcopy(rng.choice(values))
            return
        target = target[key]


# -- writing ------------------------------------------------------------------------------------

def test_tojson_writes_mxnet_fields_and_mxnet_spellings():
    d = json.loads(residual_api().tojson())
    assert list(d) == ["nodes", "arg_nodes", "node_row_ptr", "heads", "attrs"]
    assert d["attrs"] == {"mxnet_version": ["int", 10901]}
    rows = {r["name"]: r for r in d["nodes"]}
    assert rows["u_plus"]["attrs"] == {"__mirror_stage__": "True"}
    assert rows["data"]["attrs"] == {"__mirror_stage__": "True", "__shape__": "(2, 4, 6, 6)"}
    assert rows["u_relu"]["attrs"]["__force_mirroring__"] == "True"
    assert d["node_row_ptr"][-1] == sum(n.num_outputs for n in residual_api().graph.all_nodes)
    assert d["arg_nodes"] == [i for i, r in enumerate(d["nodes"]) if r["op"] == "null"]


@pytest.mark.parametrize("build", [mlp_api, conv_block_api, residual_api])
def test_round_trip_is_exact(build):
    net = build()
    text = net.tojson()
    back = sym.load_json(text)
    assert str(back.graph) == str(net.graph)
    assert back.attr_dict() == net.attr_dict()
    assert back.tojson() == text


def test_mxnet_documents_survive_a_round_trip_up_to_dropped_hints():
    d = json.loads(residual_doc())
    again = json.loads(sym.load_json(json.dumps(d)).tojson())
    assert [r.get("attrs") for r in again["nodes"]] == [r.get("attrs") for r in d["nodes"]]
    assert again["heads"] == d["heads"]


def test_tojson_refuses_attributes_mxnet_cannot_hold():
    x = sym.Variable("x")
    with pytest.raises(SymbolError, match="operator 'a' \\(Activation\\) has the user attribute "
                                          "'group'; .* name it '__group__'"):
        sym.Activation(x, act_type="relu", name="a", attr={"group": "g"}).tojson()
    with pytest.raises(SymbolError, match="'__mirror_stage__', MXNet's stored spelling of "
                                          "'mirror_stage'"):
        sym.Activation(x, act_type="relu", name="b", __mirror_stage__="True").tojson()
    with pytest.raises(SymbolError, match="__dtype__='double'; expected a dtype name"):
        sym.Variable("w", dtype="double").tojson()
    # plain user attributes on variables are fine in MXNet
    assert sym.Variable("v", attr={"group": "g"}).tojson()
