"""Variadic operators take a list; ``*xs`` unpacks a tuple or list in any call; ``1 - z``."""
from __future__ import annotations

import json
import textwrap

import pytest

import symbol as sym
from symbol import DslError


def load(text: str) -> sym.Symbol:
    return sym.loads(textwrap.dedent(text), filename="net.sym")


def report(text: str) -> str:
    with pytest.raises(DslError) as info:
        load(text)
    return str(getattr(info.value, "report"))


def inputs_of(net: sym.Symbol, name: str) -> list[str]:
    node = next(n for n in net.graph.nodes if n.name == name)
    return [e.node.name for e in node.inputs]


def test_concat_takes_a_list_a_tuple_positional_inputs_or_a_starred_list():
    net = load("""
        input a: (2, 3); input b: (2, 4); input c: (2, 5);
        feats = [a, b, c];
        by_list = Concat(feats, dim=1);
        by_tuple = Concat((a, b, c), dim=1);
        by_args = Concat(a, b, c, dim=1);
        by_star = Concat(*feats, dim=1);
        mixed = Concat(a, *[b, c], dim=1);
        output by_list, by_tuple, by_args, by_star, mixed;
    """)
    for name in ("by_list", "by_tuple", "by_args", "by_star", "mixed"):
        assert inputs_of(net, name) == ["a", "b", "c"], name
    assert net.infer_shape()[1] == [(2, 12)] * 5
    assert {n.attrs["num_args"] for n in net.graph.nodes} == {"3"}


def test_the_list_form_builds_the_same_node_as_the_python_api():
    net = load("input a; input b; feats = [a, b]; y = ElementWiseSum(feats); output y;")
    a, b = sym.Variable("a"), sym.Variable("b")
    api = sym.ElementWiseSum(a, b, name="y")
    assert json.loads(net.tojson()) == json.loads(api.tojson())


def test_add_n_of_a_comprehension_as_a_list_or_starred():
    net = load("""
        input x: (2, 3);
        parts = [Variable(f"r{i}") for i in range(3)];
        s = add_n(*parts);
        t = add_n(parts);
        u = add_n(parts[0], *[parts[i] for i in range(1, 3)]);
        output s, t, u;
    """)
    assert inputs_of(net, "s") == inputs_of(net, "t") == inputs_of(net, "u") == ["r0", "r1", "r2"]


def test_star_unpacks_the_outputs_of_a_symbol():
    net = load("input x: (2, 6); y = Concat(*SliceChannel(x, num_outputs=3), dim=1); output y;")
    assert [e.index for e in net.graph.nodes[-1].inputs] == [0, 1, 2]
    assert net.infer_shape()[1] == [(2, 6)]


def test_star_in_definitions_builtins_and_variable():
    net = load("""
        def f(x, y, act) { z = Activation(x + y, act_type=act); return z; }
        input a: (2, 3);
        args = [a, a];
        p = f(*args, "relu");
        q = f(a, *[a, "tanh"]);
        bounds = (1, 7, 2);
        n = len([i for i in range(*bounds)]);
        v = Variable(*[f"v{n}"], shape=(2, 3));
        output p, q, v;
    """)
    assert net.list_outputs() == ["p_z_output", "q_z_output", "v3"]


def test_star_does_not_hide_a_wrong_number_of_arguments():
    assert report("def f(x, y) { return x; }\ninput a;\nb = f(*[a, a, a]);\noutput b;") == (
        "net.sym:3:5: error: definition 'f' takes 2 arguments (x, y), got 3\n"
        "    b = f(*[a, a, a]);\n"
        "        ^~~~~~~~~~~~~")


@pytest.mark.parametrize("text, message, caret", [
    # an empty list names the operator, at the list
    ("input a;\nfeats = [];\ny = Concat(feats, dim=1);\noutput a;",
     "net.sym:3:12: error: Concat needs at least one input, but the list of inputs is empty",
     "    y = Concat(feats, dim=1);\n               ^~~~~"),
    ("input a;\ny = add_n(*[]);\noutput a;",
     "net.sym:2:11: error: add_n needs at least one input, but the list of inputs is empty"
     .replace("add_n", "ElementWiseSum"),
     "    y = add_n(*[]);\n              ^~~"),
    # '*' needs a tuple or list
    ("input a;\ny = Concat(*a2, dim=1);\noutput a;",
     "net.sym:2:13: error: undefined name 'a2'; did you mean 'a'?",
     "    y = Concat(*a2, dim=1);\n                ^~"),
    ("input a;\nn = 3;\ny = Concat(*n, dim=1);\noutput a;",
     "net.sym:3:13: error: '*' unpacks a tuple, a list or the outputs of a symbol, got "
     "integer 3",
     "    y = Concat(*n, dim=1);\n                ^"),
    ("def f(x) { return x; }\ninput a;\ny = f(*\"ab\");\noutput a;",
     "net.sym:3:8: error: '*' unpacks a tuple, a list or the outputs of a symbol, got "
     "string \"ab\"",
     "    y = f(*\"ab\");\n           ^~~~"),
    ("input a;\ny = range(*5);\noutput a;",
     "net.sym:2:12: error: '*' unpacks a tuple, a list or the outputs of a symbol, got "
     "integer 5",
     "    y = range(*5);\n               ^"),
    # items that are not symbols
    ("input a;\ny = Concat([a, 1], dim=1);\noutput a;",
     "net.sym:2:12: error: inputs of Concat must be symbols, but item 1 of the list is "
     "integer 1",
     "    y = Concat([a, 1], dim=1);\n               ^~~~~~"),
    ("input a;\nxs = (a, 'b');\ny = Concat(a, *xs, dim=1);\noutput a;",
     "net.sym:3:15: error: inputs of Concat must be symbols, but item 1 of the unpacked "
     "tuple is string \"b\"",
     "    y = Concat(a, *xs, dim=1);\n                  ^~~"),
    # a list among other inputs must be unpacked
    ("input a;\ny = Concat(a, [a], dim=1);\noutput a;",
     "net.sym:2:15: error: positional arguments of Concat are inputs and must be symbols, got "
     "list ['a']; pass a list of inputs as the only positional argument, or unpack it with '*'",
     "    y = Concat(a, [a], dim=1);\n                  ^~~"),
    # an operator with fixed inputs takes no list, but a starred one
    ("input a;\ny = FullyConnected([a], num_hidden=2);\noutput a;",
     "net.sym:2:20: error: positional arguments of FullyConnected are inputs and must be "
     "symbols, got list ['a']; give attributes by name (k=...)",
     "    y = FullyConnected([a], num_hidden=2);\n                       ^~~"),
])
def test_variadic_and_star_errors(text, message, caret):
    assert report(text) == f"{message}\n{caret}"


def test_star_into_an_operator_with_fixed_inputs():
    net = load("input x; w = Variable('w'); y = FullyConnected(*[x, w], num_hidden=2, "
               "no_bias=True); output y;")
    assert net.list_arguments() == ["x", "w"]


def test_a_starred_call_parses_anywhere_an_argument_may_stand():
    from symbol import dsl
    from symbol import dsl_ast as A
    stmt = dsl.parse("y = f(a, *b, *[c], k=1,);").body[0]
    assert isinstance(stmt, A.AssignStmt) and isinstance(stmt.value, A.Call)
    call = stmt.value
    assert [type(x).__name__ for x in call.args] == ["Name", "Starred", "Starred"]
    starred = call.args[1]
    assert isinstance(starred, A.Starred) and isinstance(starred.value, A.Name)
    assert starred.value.id == "b"
    assert [k.name for k in call.kwargs] == ["k"]


def test_a_concat_of_a_list_round_trips_through_the_printer():
    net = load("""
        input x: (1, 2, 4, 4);
        feats = [x];
        for i in range(3) {
            c = Concat(feats, dim=1) as f"c{i}";
            y = Convolution(c, num_filter=2, kernel=(1, 1)) as f"conv{i}";
            feats = feats + [y];
        }
        out = Concat(feats, dim=1);
        output out;
    """)
    text = sym.dumps(net)
    assert "out = Concat(x, conv0, conv1, conv2, dim=1);" in text
    again = sym.loads(text)
    assert json.loads(again.tojson()) == json.loads(net.tojson())


# -- a number minus a symbol ----------------------------------------------------------------------
def test_number_minus_symbol_is_rminus_scalar_as_in_the_python_api():
    net = load("input z; input h; y = (1 - z) * h; w = 2.5 - z; output y, w;")
    z, h = sym.Variable("z"), sym.Variable("h")
    with sym.NameManager():
        y = sym.elemwise_mul(1 - z, h, name="y")
        api = sym.Group([y, sym._rminus_scalar(z, scalar=2.5, name="w")])
    assert json.loads(net.tojson()) == json.loads(api.tojson())
    assert [n.op for n in net.graph.nodes] == ["_rminus_scalar", "elemwise_mul", "_rminus_scalar"]
    assert net.graph.nodes[0].attrs["scalar"] == "1.0"


def test_symbol_minus_number_still_adds_the_negation():
    net = load("input z; y = z - 1; w = z - 0; output y, w;")
    assert [(n.op, n.attrs["scalar"]) for n in net.graph.nodes] == [
        ("_plus_scalar", "-1.0"), ("_plus_scalar", "0.0")]


def test_rminus_gradient_is_a_negation_node():
    net = load("input z; y = 1 - z; output y;")
    joint = net.gradient(["z"])
    back = [n for n in joint.graph.nodes if n.name == "y_backward"]
    assert len(back) == 1 and back[0].op == "_mul_scalar"
    assert back[0].attrs["scalar"] == "-1.0"


def test_python_rsub_refuses_other_types():
    with pytest.raises(sym.SymbolError, match="cannot combine a Symbol with str"):
        "a" - sym.Variable("z")  # type: ignore[operator]


def test_a_string_minus_a_symbol_is_still_an_error():
    assert report("input z;\ny = 'a' - z;\noutput z;") == (
        "net.sym:2:5: error: cannot apply '-' to string \"a\" and symbol 'z'\n"
        "    y = 'a' - z;\n"
        "        ^~~~~~~")
