"""Graph.verify failure modes and the printout format."""
from __future__ import annotations

import pytest

import symbol as sym
from symbol.errors import GraphError
from symbol.graph import Entry, Graph, Node, make_node, make_variable


def _relu(x: Entry, name: str) -> Node:
    return make_node("Activation", name, [x], attrs={"act_type": "relu"})


def test_valid_graph_verifies_and_prints_one_node_per_line():
    x = sym.Variable("x")
    y = sym.Activation(x + 1.0, act_type="relu", name="r")
    g = y.graph
    g.verify()
    text = str(g)
    assert text.splitlines() == [
        "%x = Variable()",
        "%_plus_scalar0 = _plus_scalar(%x; scalar=1.0)".replace(
            "_plus_scalar0", g.nodes[0].name),
        "%r = Activation(%" + g.nodes[0].name + "; act_type=relu)",
        "return %r",
    ]


def test_duplicate_names_are_reported_with_context():
    x = make_variable("x")
    a = _relu(Entry(x, 0), "a")
    b = _relu(Entry(x, 0), "a")
    g = Graph((x,), (a, b), (Entry(a, 0), Entry(b, 0)))
    with pytest.raises(GraphError, match="two different nodes are named 'a'") as e:
        g.verify()
    assert "--> %a = Activation" in str(e.value)


def test_input_used_before_definition():
    x = make_variable("x")
    a = _relu(Entry(x, 0), "a")
    b = _relu(Entry(a, 0), "b")
    g = Graph((x,), (b, a), (Entry(b, 0),))
    with pytest.raises(GraphError, match="'b' reads 'a' before it is defined"):
        g.verify()


def test_entry_index_out_of_range():
    x = make_variable("x")
    a = _relu(Entry(x, 0), "a")
    b = _relu(Entry(a, 3), "b")
    g = Graph((x,), (a, b), (Entry(b, 0),))
    with pytest.raises(GraphError, match="reads output 3 of 'a', which has 1"):
        g.verify()


def test_arity_mismatch():
    x = make_variable("x")
    a = _relu(Entry(x, 0), "a")
    bad = Node("Activation", "bad", (Entry(x, 0), Entry(a, 0)), a.attrs, a.params, 1)
    g = Graph((x,), (a, bad), (Entry(bad, 0),))
    with pytest.raises(GraphError, match="has 2 inputs, its op takes 1"):
        g.verify()


def test_undefined_output():
    x = make_variable("x")
    a = _relu(Entry(x, 0), "a")
    g = Graph((x,), (), (Entry(a, 0),))
    with pytest.raises(GraphError, match="graph output 'a' is not defined"):
        g.verify()


def test_topo_sort_handles_deep_graphs_without_recursion():
    x = sym.Variable("x")
    y = x
    for i in range(5000):
        y = sym.Activation(y, act_type="relu", name=f"r{i}")
    g = y.graph
    assert len(g.nodes) == 5000 and g.nodes[0].name == "r0"
    g.verify()
