"""What the nn ops save for their backward and which outputs may overwrite an input, against
MXNet 1.x: max pooling keeps no argmax indices, the Dropout mask is one byte per element, and
the backward ops declare MXNet's in-place pairs (and the ones their kernels make safe)."""
from __future__ import annotations

import pytest

import symbol as sym
from symbol.infer_shape import infer_type
from symbol.registry import OPS

X = sym.Variable("x")


def _backward(net: sym.Symbol, op: str, wrt: tuple[str, ...] = ("x",)):
    joint = sym.gradient(net.graph, list(wrt))
    joint.graph.verify()
    return joint, [n for n in joint.graph.nodes if n.op == op]


@pytest.mark.parametrize("pool_type", ["max", "avg", "sum"])
def test_pooling_has_no_hidden_output(pool_type):
    net = sym.Pooling(X, kernel=(2, 2), stride=(2, 2), pool_type=pool_type, name="p")
    node = net.graph.nodes[-1]
    assert node.num_outputs == 1
    assert net.list_outputs() == ["p_output"]


def test_max_pooling_backward_reads_the_input_values_and_no_indices():
    net = sym.Pooling(sym.Activation(X, act_type="relu", name="r"), kernel=(2, 2),
                      stride=(2, 2), name="p")
    joint, (bwd,) = _backward(net, "_backward_Pooling")
    reads = [(e.node.name, e.index) for e in bwd.inputs]
    assert reads == [("p_output_head_grad", 0), ("r", 0)]
    assert OPS["_backward_Pooling"].shape_only(bwd.params) == ()
    types = infer_type(joint.graph, {"x": "float32"})
    assert {t for t in types.values() if t is not None} == {"float32"}


@pytest.mark.parametrize("pool_type", ["avg", "sum"])
def test_avg_and_sum_pooling_backward_read_the_input_shape_only(pool_type):
    net = sym.Pooling(X, kernel=(2, 2), stride=(2, 2), pool_type=pool_type, name="p")
    _, (bwd,) = _backward(net, "_backward_Pooling")
    assert OPS["_backward_Pooling"].shape_only(bwd.params) == (1,)
    # the input is not read for its values, so the gradient may not overwrite it
    assert OPS["_backward_Pooling"].inplace(bwd.params) == ()


def test_dropout_mask_is_uint8_and_the_output_keeps_the_data_dtype():
    net = sym.Dropout(X, p=0.3, name="d")
    joint, (bwd,) = _backward(net, "_backward_Dropout")
    types = infer_type(joint.graph, {}, default="float64")
    drop = net.graph.nodes[-1]
    assert [types[sym.Entry(drop, i)] for i in range(2)] == ["float64", "uint8"]
    assert types[sym.Entry(bwd, 0)] == "float64"


def _params(op: str, **attrs):
    return OPS[op].parse_params(attrs, "n")


@pytest.mark.parametrize("op,attrs,pairs", [
    # MXNet declares data -> data_grad for _backward_FullyConnected
    ("_backward_FullyConnected", {"num_hidden": 4}, ((1, 0),)),
    ("_backward_FullyConnected", {"num_hidden": 4, "no_bias": True}, ((1, 0),)),
    ("_backward_Convolution", {"kernel": (3, 3), "num_filter": 4}, ((1, 0),)),
    ("_backward_BatchNorm", {}, ((1, 0), (0, 0))),
    ("_backward_Pooling", {"kernel": (2, 2), "pool_type": "max"}, ((1, 0),)),
    ("_backward_Dropout", {}, ((0, 0),)),
    ("Dropout", {}, ((0, 0),)),
])
def test_declared_inplace_pairs(op, attrs, pairs):
    assert OPS[op].inplace(_params(op, **attrs)) == pairs


def test_inplace_pairs_join_buffers_of_one_size():
    # every declared pair names an input and an output that shape inference gives one shape
    cases: list[tuple[str, dict, list[tuple[int, ...]]]] = [
        ("_backward_FullyConnected", {"num_hidden": 4}, [(5, 4), (5, 3, 2), (4, 6)]),
        ("_backward_Convolution", {"kernel": (3, 3), "num_filter": 4},
         [(2, 4, 5, 5), (2, 3, 7, 7), (4, 3, 3, 3)]),
        ("_backward_BatchNorm", {}, [(2, 3, 4, 4), (2, 3, 4, 4), (3,), (3,), (3,)]),
        ("_backward_Pooling", {"kernel": (2, 2), "stride": (2, 2)}, [(2, 3, 2, 2), (2, 3, 4, 4)]),
    ]
    for op, attrs, shapes in cases:
        params = _params(op, **attrs)
        ins, outs = OPS[op].infer_shape(params, list(shapes))
        for i, o in OPS[op].inplace(params):
            assert ins[i] == outs[o], (op, i, o)
