"""Shape inference: weights from data, partial shapes, located errors for every nn op."""
from __future__ import annotations

import pytest

import symbol as sym
from symbol.errors import ShapeError, SymbolError

X = sym.Variable("x")


def test_convolution_infers_weight_and_output_shape():
    c = sym.Convolution(X, kernel=(3, 3), stride=(2, 2), pad=(1, 1), num_filter=8, num_group=2,
                        name="c")
    arg, out, _ = c.infer_shape(x=(2, 4, 9, 9))
    assert arg == [(2, 4, 9, 9), (8, 2, 3, 3), (8,)] and out == [(2, 8, 5, 5)]


def test_batchnorm_infers_parameter_and_aux_shapes():
    arg, out, aux = sym.BatchNorm(X, name="bn").infer_shape(x=(2, 3, 4, 4))
    assert arg == [(2, 3, 4, 4), (3,), (3,)] and aux == [(3,), (3,)] and out == [(2, 3, 4, 4)]


def test_pooling_conventions():
    valid = sym.Pooling(X, kernel=(3, 3), stride=(2, 2), pool_type="max")
    full = sym.Pooling(X, kernel=(3, 3), stride=(2, 2), pool_type="max",
                       pooling_convention="full")
    glob = sym.Pooling(X, kernel=(1, 1), global_pool=True, pool_type="avg")
    assert valid.infer_shape(x=(1, 1, 8, 8))[1] == [(1, 1, 3, 3)]
    assert full.infer_shape(x=(1, 1, 8, 8))[1] == [(1, 1, 4, 4)]
    assert glob.infer_shape(x=(1, 2, 8, 8))[1] == [(1, 2, 1, 1)]


def test_shapes_can_flow_backwards_to_earlier_variables():
    # the weight shape fixes the data's feature size; no data shape is given
    fc = sym.FullyConnected(sym.Activation(X, act_type="relu"), num_hidden=4, name="fc")
    arg, out, _ = fc.infer_shape_partial(fc_weight=(4, 7))
    assert arg[0] is None and out == [None]
    arg, out, _ = (fc + sym.Variable("y")).infer_shape(x=(2, 7), y=(2, 4))
    assert out == [(2, 4)]


@pytest.mark.parametrize("build,shapes,message", [
    (lambda: sym.Convolution(X, kernel=(3, 3), num_filter=4, name="conv1"), {"x": (2, 3, 8)},
     r"in operator 'conv1' \(Convolution\): .*4-D"),
    (lambda: sym.Convolution(X, kernel=(3, 3), num_filter=4, num_group=2, name="conv1"),
     {"x": (2, 3, 8, 8)}, r"in operator 'conv1' \(Convolution\): .*3"),
    (lambda: sym.Convolution(X, kernel=(9, 9), num_filter=4, name="conv1"), {"x": (2, 3, 4, 4)},
     r"in operator 'conv1' \(Convolution\)"),
    (lambda: sym.elemwise_add(X, sym.Variable("y"), name="add1"), {"x": (2, 3), "y": (3, 2)},
     r"in operator 'add1' \(elemwise_add\): inputs have different shapes \(2, 3\) and \(3, 2\)"),
    (lambda: sym.BatchNorm(X, name="bn1"), {"x": (2, 3, 4, 4), "bn1_gamma": (4,)},
     r"in operator 'bn1' \(BatchNorm\)"),
    (lambda: sym.Reshape(X, shape=(4, -1), name="r1"), {"x": (2, 3)},
     r"in operator 'r1' \(Reshape\): cannot reshape \(2, 3\) to \(4, -1\)"),
    (lambda: sym.SliceChannel(X, num_outputs=4, name="s1")[0], {"x": (2, 6)},
     r"in operator 's1' \(SliceChannel\)"),
    (lambda: sym.Concat(X, sym.Variable("y"), dim=1, name="cat1"), {"x": (2, 3), "y": (3, 3)},
     r"in operator 'cat1' \(Concat\)"),
    (lambda: sym.SoftmaxOutput(X, name="sm"), {"x": (4, 3), "sm_label": (5,)},
     r"in operator 'sm' \(SoftmaxOutput\): input 'label' has shape \(5,\), expected \(4,\)"),
    (lambda: sym.Pooling(X, kernel=(5, 5), name="p1"), {"x": (1, 1, 3, 3)},
     r"in operator 'p1' \(Pooling\)"),
])
def test_shape_errors_name_the_op_and_node(build, shapes, message):
    with pytest.raises(ShapeError, match=message):
        build().infer_shape(**shapes)


def test_bad_shape_values_are_reported():
    with pytest.raises(SymbolError, match="shape of 'x' must be a tuple of integers"):
        sym.Activation(X, act_type="relu").infer_shape(x="big")
    with pytest.raises(SymbolError, match="shape of 'x' must have positive sizes"):
        sym.Activation(X, act_type="relu").infer_shape(x=(0, 3))


def test_variable_shape_hint_is_used():
    v = sym.Variable("v", shape=(2, 5))
    assert sym.FullyConnected(v, num_hidden=3, name="f").infer_shape()[1] == [(2, 3)]


def test_shape_error_carries_dsl_location():
    from symbol.errors import Span
    from symbol.graph import Entry, make_node, make_variable
    from symbol.infer_shape import infer_shape
    from symbol.graph import Graph
    a, b = make_variable("a"), make_variable("b")
    n = make_node("elemwise_add", "add1", [Entry(a, 0), Entry(b, 0)],
                  span=Span("net.sym", 7, 9, 7, 20))
    with pytest.raises(ShapeError) as e:
        infer_shape(Graph.from_outputs([Entry(n, 0)]), {"a": (2,), "b": (3,)})
    assert str(e.value).startswith("net.sym:7:9: error: in operator 'add1' (elemwise_add)")
    assert e.value.span is not None and e.value.span.line == 7 and e.value.node == "add1"


def test_numpy_integer_sizes_are_accepted():
    import numpy as np
    assert sym.Activation(X, act_type="relu").infer_shape(x=(np.int64(2), 3))[1] == [(2, 3)]
    with pytest.raises(SymbolError, match=r"shape of 'x' must be a tuple of integers, got "
                                          r"\(2\.5, 3\)"):
        sym.Activation(X, act_type="relu").infer_shape(x=(2.5, 3))


def _mlp():
    h = sym.FullyConnected(X, num_hidden=4, name="fc1")
    return sym.SoftmaxOutput(sym.FullyConnected(h, num_hidden=3, name="fc2"), name="sm")


def test_operator_inputs_of_different_dtypes_are_reported():
    from symbol.infer_shape import check_input_types, infer_type
    net = _mlp()
    types = infer_type(net.graph, {"fc1_weight": "float16"})
    with pytest.raises(SymbolError) as info:
        check_input_types(net.graph, types, hint="use one dtype")
    assert str(info.value) == (
        "operator 'fc1' (FullyConnected): input 'data' (variable 'x') is float32 but input "
        "'weight' (variable 'fc1_weight') is float16; use one dtype (labels of loss ops may "
        "differ)")
    # mixed precision: float16 data with float32 weights (FullyConnected's float32_arguments)
    check_input_types(net.graph, infer_type(net.graph, {"x": "float16"}))


def test_labels_may_have_another_dtype_and_one_float_dtype_passes():
    from symbol.infer_shape import check_input_types, infer_type
    net = _mlp()
    for known in ({"sm_label": "int64"}, {"sm_label": "int32"}):
        check_input_types(net.graph, infer_type(net.graph, known))
    check_input_types(net.graph, infer_type(net.graph, {}, default="bfloat16"))


def test_integer_inputs_other_than_labels_are_reported():
    from symbol.infer_shape import check_input_types, infer_type
    net = _mlp()
    with pytest.raises(SymbolError, match=r"operator 'fc1' \(FullyConnected\): input 'data' "
                                          r"\(variable 'x'\) is int32; operators compute in"):
        check_input_types(net.graph, infer_type(net.graph, {}, default="int32"))


_REQUIRED = {"num_hidden": 4, "num_filter": 2, "kernel": (1, 1), "act_type": "relu",
             "scalar": 1.0, "shape": (3,), "num_outputs": 1, "pool_type": "max", "p": 0.5}


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 4), (1, 3, 4, 4), (1, 1, 1, 1, 1)])
def test_every_shape_rule_refuses_a_bad_rank_with_a_shape_error(shape):
    # a rule indexing a dimension the input lacks must say so, not raise IndexError
    import inspect

    from symbol.registry import OPS, Param
    required = inspect.signature(Param).parameters["default"].default
    tried = 0
    for name, op in OPS.items():
        make = getattr(sym, name, None)
        if op.is_backward or make is None:
            continue
        names = {p.name for p in op.params}
        for extra in ({}, {"flatten": False}, {"global_pool": True}, {"axis": -1}):
            kw = {p.name: _REQUIRED.get(p.name, 1) for p in op.params if p.default is required}
            kw.update({k: v for k, v in extra.items() if k in names})
            x = sym.Variable("x", shape=shape)
            try:
                (make(x, x, **kw) if op.variadic else make(x, **kw)).infer_shape_partial()
            except SymbolError:
                pass
            tried += 1
    assert tried > 50
