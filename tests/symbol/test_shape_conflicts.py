"""One variable bound to two shapes, and known shapes an op contradicts: the error names the
variable, both uses (node, op, argument, shape) and their DSL locations."""
from __future__ import annotations

import json

import pytest

import symbol as sym
from symbol.dsl_check import check_file, error_records
from symbol.errors import ShapeError

SAME_NODE = """input data: (2, 3, 8, 8);
w = Variable("w");
c = Convolution(data, w, w, num_filter=4, kernel=(3,3));
output c;
"""

TWO_NODES = """input data: (2, 3, 8, 8);
w = Variable("w");
c = Convolution(data, w, num_filter=4, kernel=(3,3), no_bias=True);
f = FullyConnected(data, w, num_hidden=5, no_bias=True);
output c, f;
"""


def shape_error(net, **shapes):
    with pytest.raises(ShapeError) as info:
        net.infer_shape(**shapes)
    return info.value


def test_one_variable_as_weight_and_bias_of_one_convolution():
    err = shape_error(sym.loads(SAME_NODE, filename="b.sym"))
    assert str(err) == (
        "b.sym:3:5: error: variable 'w' is bound to two shapes: (4, 3, 3, 3) as input 'weight' "
        "of 'c' (Convolution) at b.sym:3:5, and (4,) as input 'bias' of 'c' (Convolution) at "
        "b.sym:3:5")
    assert (err.span.file, err.span.line, err.span.col) == ("b.sym", 3, 5)


def test_the_conflict_is_shown_with_the_source_line():
    err = shape_error(sym.loads(SAME_NODE, filename="b.sym"))
    assert sym.format_error(err).splitlines()[1:] == [
        "    c = Convolution(data, w, w, num_filter=4, kernel=(3,3));",
        "        ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~"]


def test_one_variable_used_by_two_nodes_with_incompatible_shapes():
    err = shape_error(sym.loads(TWO_NODES, filename="two.sym"))
    assert str(err) == (
        "two.sym:4:5: error: variable 'w' is bound to two shapes: (4, 3, 3, 3) as input "
        "'weight' of 'c' (Convolution) at two.sym:3:5, and (5, 192) as input 'weight' of 'f' "
        "(FullyConnected) at two.sym:4:5")
    assert err.span.line == 4


def test_check_file_reports_the_conflict(tmp_path):
    path = tmp_path / "b.sym"
    path.write_text(SAME_NODE)
    with pytest.raises(ShapeError) as info:
        check_file(str(path))
    [record] = error_records(info.value)
    assert (record["line"], record["col"]) == (3, 5)
    assert "as input 'weight' of 'c' (Convolution)" in record["message"]
    assert "as input 'bias' of 'c' (Convolution)" in record["message"]


def test_api_graph_names_both_uses_without_locations():
    x, w = sym.Variable("x"), sym.Variable("w")
    net = sym.Group([sym.FullyConnected(x, w, num_hidden=4, no_bias=True, name="fa"),
                     sym.FullyConnected(x, w, num_hidden=5, no_bias=True, name="fb")])
    err = shape_error(net, x=(2, 3))
    assert str(err) == ("variable 'w' is bound to two shapes: (4, 3) as input 'weight' of 'fa' "
                        "(FullyConnected), and (5, 3) as input 'weight' of 'fb' "
                        "(FullyConnected)")
    assert err.span is None


def test_api_convolution_with_one_variable_twice():
    w = sym.Variable("w")
    net = sym.Convolution(sym.Variable("x"), w, w, num_filter=2, kernel=(1, 1), name="conv")
    err = shape_error(net, x=(1, 3, 4, 4))
    assert "variable 'w' is bound to two shapes: (2, 3, 1, 1) as input 'weight' of 'conv'" in \
        str(err)
    assert "(2,) as input 'bias' of 'conv' (Convolution)" in str(err)


def test_a_variable_shared_consistently_is_fine():
    # the same weight in two layers of one width: one shape, no error
    x, w = sym.Variable("x"), sym.Variable("w")
    h = sym.FullyConnected(x, w, num_hidden=3, no_bias=True, name="f1")
    net = sym.FullyConnected(h, w, num_hidden=3, no_bias=True, name="f2")
    arg, out, _ = net.infer_shape(x=(2, 3))
    assert arg == [(2, 3), (3, 3)] and out == [(2, 3)]


def mxnet_doc(nodes, heads):
    return json.dumps({"nodes": nodes, "arg_nodes": [i for i, n in enumerate(nodes)
                                                     if n["op"] == "null"],
                       "node_row_ptr": list(range(len(nodes) + 1)), "heads": heads,
                       "attrs": {"mxnet_version": ["int", 10901]}})


def test_mxnet_json_with_one_variable_as_weight_and_bias():
    text = mxnet_doc([
        {"op": "null", "name": "data", "inputs": []},
        {"op": "null", "name": "w", "inputs": []},
        {"op": "Convolution", "name": "conv0", "attrs": {"num_filter": "4", "kernel": "(3, 3)"},
         "inputs": [[0, 0, 0], [1, 0, 0], [1, 0, 0]]}], [[2, 0, 0]])
    err = shape_error(sym.load_json(text), data=(2, 3, 8, 8))
    assert str(err) == ("variable 'w' is bound to two shapes: (4, 3, 3, 3) as input 'weight' of "
                        "'conv0' (Convolution), and (4,) as input 'bias' of 'conv0' "
                        "(Convolution)")


def test_mxnet_json_round_trip_keeps_the_conflict_visible():
    x, w = sym.Variable("x"), sym.Variable("w")
    net = sym.Group([sym.FullyConnected(x, w, num_hidden=4, no_bias=True, name="fa"),
                     sym.Convolution(sym.Variable("y"), w, num_filter=4, kernel=(1, 1),
                                     no_bias=True, name="cb")])
    err = shape_error(sym.load_json(net.tojson()), x=(2, 3), y=(2, 3, 5, 5))
    assert "variable 'w' is bound to two shapes" in str(err)
    assert "(4, 3) as input 'weight' of 'fa' (FullyConnected)" in str(err)
    assert "(4, 3, 1, 1) as input 'weight' of 'cb' (Convolution)" in str(err)


def test_declared_shape_contradicted_by_an_op_names_the_variable_and_its_declaration():
    net = sym.loads("input data: (2, 3, 8, 8);\ninput w: (4, 3, 2, 2);\n"
                    "c = Convolution(data, w, num_filter=4, kernel=(3,3), no_bias=True);\n"
                    "output c;", filename="d.sym")
    assert str(shape_error(net)) == (
        "d.sym:3:5: error: in operator 'c' (Convolution): input 'weight' has shape (4, 3, 2, 2), "
        "expected (4, 3, 3, 3); variable 'w' was declared with that shape at d.sym:2:7")


def test_shape_attribute_contradicted_by_an_op_names_the_variable():
    net = sym.FullyConnected(sym.Variable("x", shape=(2, 4)), sym.Variable("w", shape=(3, 5)),
                             num_hidden=3, no_bias=True, name="f")
    assert str(shape_error(net)) == (
        "in operator 'f' (FullyConnected): input 'weight' has shape (3, 5), expected (3, 4); "
        "variable 'w' was declared with that shape (its __shape__ attribute)")


def test_shape_given_by_the_caller_names_the_variable():
    net = sym.FullyConnected(sym.Variable("x"), num_hidden=3, name="fc")
    assert str(shape_error(net, x=(2, 4), fc_weight=(3, 5))) == (
        "in operator 'fc' (FullyConnected): input 'weight' has shape (3, 5), expected (3, 4); "
        "variable 'fc_weight' was given that shape by the caller")


def test_rule_messages_of_other_forms_keep_their_text_and_name_the_variables():
    net = sym.elemwise_add(sym.Variable("x"), sym.Variable("y"), name="add1")
    assert str(shape_error(net, x=(2, 3), y=(3, 2))) == (
        "in operator 'add1' (elemwise_add): inputs have different shapes (2, 3) and (3, 2); "
        "input 'lhs' is variable 'x', given shape (2, 3) by the caller; input 'rhs' is "
        "variable 'y', given shape (3, 2) by the caller")


def test_errors_not_caused_by_a_variable_are_unchanged():
    net = sym.Convolution(sym.Variable("x"), kernel=(3, 3), num_filter=4, name="conv1")
    err = shape_error(net, x=(2, 3, 8))
    assert str(err).startswith("in operator 'conv1' (Convolution): ")
    assert "variable" not in str(err)
