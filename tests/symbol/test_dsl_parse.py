"""The network language: text -> graph, compared as printed graphs (golden strings)."""
from __future__ import annotations

import textwrap

import pytest

import symbol as sym
from symbol import dsl
from symbol import dsl_ast as A
from symbol.errors import Span


def graph_of(text: str, **params) -> str:
    return str(sym.loads(textwrap.dedent(text), params or None, filename="net.sym").graph)


def test_mlp_prints_golden_graph_with_spans():
    got = graph_of("""\
        input data: (8, 20);
        fc1 = FullyConnected(data, num_hidden=4);
        out = SoftmaxOutput(fc1);
        output out;
    """)
    assert got == textwrap.dedent("""\
        %data = Variable(__shape__=(8, 20))  # net.sym:1:7
        %fc1_weight = Variable()  # net.sym:2:7
        %fc1_bias = Variable()  # net.sym:2:7
        %out_label = Variable()  # net.sym:3:7
        %fc1 = FullyConnected(%data, %fc1_weight, %fc1_bias; num_hidden=4)  # net.sym:2:7
        %out = SoftmaxOutput(%fc1, %out_label)  # net.sym:3:7
        return %out""")


def test_node_spans_cover_the_call():
    s = sym.loads("input x;\ny = Activation(x, act_type='relu');\noutput y;", filename="n.sym")
    node = s.graph.nodes[0]
    assert node.span == Span("n.sym", 2, 5, 2, 35)


def test_arithmetic_sugar_matches_the_python_operators():
    got = graph_of("""\
        input a; input b;
        s = a + b; m = a * b; p = a + 2; q = 3 * a; n = -a; d = a - b; e = a - 1;
        output s, m, p, q, n, d, e;
    """)
    x, y = sym.Variable("a"), sym.Variable("b")
    with sym.NameManager():
        api = [sym.elemwise_add(x, y, name="s"), sym.elemwise_mul(x, y, name="m"),
               sym._plus_scalar(x, scalar=2.0, name="p"), sym._mul_scalar(x, scalar=3.0, name="q"),
               sym._mul_scalar(x, scalar=-1.0, name="n"),
               sym.elemwise_add(x, sym._mul_scalar(y, scalar=-1.0, name="_mul_scalar0"), name="d"),
               sym._plus_scalar(x, scalar=-1.0, name="e")]
    want = str(sym.Group(api).graph)
    assert [line.split("  #")[0] for line in got.splitlines()] == want.splitlines()


def test_multi_output_indexing_and_unpacking():
    s = sym.loads("""
        input x: (2, 6);
        parts = SliceChannel(x, num_outputs=3);
        a, b, c = SliceChannel(x, num_outputs=3) as "split2";
        y = parts[2] + c;
        output y, parts[0], b;
    """)
    assert s.list_outputs() == ["y_output", "parts_output0", "split2_output1"]
    assert s.infer_shape()[1] == [(2, 2)] * 3


def test_auto_names_follow_the_op_and_count_per_prefix():
    s = sym.loads("input x; y = Activation(Activation(x, act_type='relu'), act_type='tanh');"
                  "z = Activation(x, act_type='relu') + Activation(x, act_type='relu');"
                  "output y, z;")
    names = [n.name for n in s.graph.nodes]
    assert names == ["activation0", "y", "activation1", "activation2", "z"]


def test_definitions_prefix_names_and_nest():
    s = sym.loads("""
        def cbr(x, n) { conv = Convolution(x, num_filter=n, kernel=(1, 1)); r = Activation(conv, act_type="relu"); return r; }
        def block(x) { a = cbr(x, 4) as "1"; b = cbr(a, 8); return b; }
        input data: (1, 2, 3, 3);
        out = block(data) as "stage1";
        out2 = block(out);
        output out2;
    """)  # noqa: E501
    assert [n.name for n in s.graph.nodes] == [
        "stage1_1_conv", "stage1_1_r", "stage1_b_conv", "stage1_b_r",
        "out2_1_conv", "out2_1_r", "out2_b_conv", "out2_b_r"]
    assert "stage1_1_conv_weight" in s.list_arguments()


def test_share_on_a_call_names_weights_after_the_share_name_and_reuses_them():
    s = sym.loads("""
        def cell(x) { i2h = FullyConnected(x, num_hidden=3); return i2h; }
        input a; input b;
        x = cell(a) as "t0_l0" share "l0";
        y = cell(b) as "t1_l0" share "l0";
        z = FullyConnected(y, num_hidden=2) as "cls" share "shared";
        output x, y, z;
    """)
    assert s.list_arguments() == ["a", "l0_i2h_weight", "l0_i2h_bias", "b", "shared_weight",
                                  "shared_bias"]
    assert [n.name for n in s.graph.nodes] == ["t0_l0_i2h", "t1_l0_i2h", "cls"]


def test_share_reuses_an_explicit_variable_of_that_name():
    s = sym.loads("w = Variable('emb_weight'); input a;"
                  "x = FullyConnected(a, weight=w, num_hidden=2, no_bias=True) as 'x0';"
                  "y = FullyConnected(a, num_hidden=2, no_bias=True) as 'x1' share 'emb';"
                  "output x, y;")
    assert s.list_arguments() == ["a", "emb_weight"]


def test_loops_fstrings_and_mirror_stage_attributes():
    s = sym.loads("""
        input x;
        for t in range(3) {
            x = Activation(x, act_type="relu") as f"t{t}_act" with mirror_stage = str(t);
        }
        output x;
    """)
    assert [(n.name, n.attrs["mirror_stage"]) for n in s.graph.nodes] == [
        ("t0_act", "0"), ("t1_act", "1"), ("t2_act", "2")]


def test_attribute_scopes_nest_reach_variables_and_definition_calls():
    s = sym.loads("""
        def f(x) { y = FullyConnected(x, num_hidden=2); return y; }
        input d;
        with mirror_stage = "True" {
            with __force_mirroring__ = "True", mirror_stage = "inner" {
                a = f(d) as "f1";
            }
            b = Activation(a, act_type="relu") with mirror_stage = "own";
        }
        output b;
    """)
    attrs = s.attr_dict()
    assert attrs["f1_y"] == {"num_hidden": "2", "__force_mirroring__": "True",
                             "mirror_stage": "inner"}
    assert attrs["f1_y_weight"] == {"__force_mirroring__": "True", "mirror_stage": "inner"}
    assert attrs["b"] == {"act_type": "relu", "mirror_stage": "own"}
    assert "d" not in attrs


def test_double_underscore_keywords_are_user_attributes():
    s = sym.loads("input x; y = Activation(x, act_type='relu', __force_mirroring__=True);"
                  "output y;")
    assert s.attr_dict()["y"] == {"act_type": "relu", "__force_mirroring__": "True"}


def test_values_expressions_and_builtins():
    s = sym.loads("""
        param n = 3;
        xs = [i * 2 for i in range(n) if i != 1];
        t = (1,) + (2, 3);
        k = xs[-1] // 2 + len(t) % 2;
        name = f"{'a' + str(k)}_{int('4')}_{float(1)}_{n > 2 and not False}_{{x}}";
        input data;
        y = Activation(data, act_type="relu" if k == 3 else "tanh") as name;
        output y;
    """)
    assert s.list_outputs() == ["a3_4_1.0_True_{x}_output"]
    assert s.attr("act_type") == "relu"


def test_list_items_can_be_assigned_and_if_else_chains():
    s = sym.loads("""
        input a; input b;
        h = [a, b];
        h[0] = Activation(h[1], act_type="relu") as "r";
        v = 5;
        if v < 3 { out = h[1]; } else if v < 10 { out = h[0]; } else { out = a; }
        output out;
    """)
    assert s.list_outputs() == ["r_output"]


def test_params_take_overrides_from_the_api():
    text = "param units = (1, 2); param lr = 0.5; param act = 'relu'; input x;" \
           "for u in units { x = Activation(x, act_type=act) as f'a{u}'; } output x;"
    s = sym.loads(text, params={"units": 7, "act": "tanh", "lr": 1})
    assert [n.name for n in s.graph.nodes] == ["a7"]
    assert dsl.lower_text(text, {"lr": 1}).params == {"units": (1, 2), "lr": 1.0, "act": "relu"}
    # text, as a command line passes it, is read as a literal unless the default is a string
    text = "param tag = 'x'; " + text
    assert dsl.lower_text(text, {"units": "3,4", "lr": "2", "tag": "7"}).params == {
        "tag": "7", "units": (3, 4), "lr": 2.0, "act": "relu"}


@pytest.mark.parametrize("text, value", [
    ("3,24,36,3", (3, 24, 36, 3)), ("1600", 1600), ("0.5", 0.5), ("-2", -2), ("True", True),
    ("relu", "relu"), ('"a b"', "a b"), ("(1,)", (1,)), ("[1, 2]", [1, 2]), ("a)(b", "a)(b"),
    ("f(1)", "f(1)"),
])
def test_param_values_from_the_command_line(text, value):
    assert dsl.parse_param_value(text) == value


def test_variable_builtin_attributes_follow_the_api():
    s = sym.loads("v = Variable('w', shape=(2, 3), dtype='float32', init='zeros', lr_mult=2,"
                  " wd_mult=0.5, __k__='x'); x = Variable(); output v, x;")
    api = sym.Variable("w", shape=(2, 3), dtype="float32", init="zeros", lr_mult=2,
                       wd_mult=0.5, __k__="x")
    assert s.attr_dict()["w"] == api.list_attr()
    assert s.list_outputs() == ["w", "x"]


def test_include_runs_a_file_relative_to_the_includer_once(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "layers.sym").write_text(
        "param width = 4;\ndef dense(x) { fc = FullyConnected(x, num_hidden=width);"
        " return fc; }\n")
    (tmp_path / "lib" / "all.sym").write_text('include "layers.sym";\n')
    main = tmp_path / "net.sym"
    main.write_text('include "lib/layers.sym";\ninclude "lib/all.sym";\ninput x;\n'
                    'y = dense(x) as "d";\noutput y;\n')
    s = sym.load(str(main), params={"width": 6})
    assert s.attr_dict()["d_fc"] == {"num_hidden": "6"}
    assert s.graph.nodes[0].span.file == str(tmp_path / "lib" / "layers.sym")


def test_parse_builds_ast_with_spans():
    m = dsl.parse("x = f(a, k=1) as 'n';", "p.sym")
    (st,) = m.body
    assert isinstance(st, A.AssignStmt) and isinstance(st.value, A.Call)
    assert st.value.func_span == Span("p.sym", 1, 5, 1, 6)
    assert st.value.kwargs[0].span == Span("p.sym", 1, 10, 1, 13)
    assert st.mods.name == A.Const(Span("p.sym", 1, 18, 1, 21), "n")


def test_fstring_expressions_carry_their_own_columns():
    (st,) = dsl.parse('x = f"t{t + 1}";', "p.sym").body
    assert isinstance(st, A.AssignStmt) and isinstance(st.value, A.FString)
    expr = st.value.parts[1]
    assert isinstance(expr, A.BinOp) and expr.span == Span("p.sym", 1, 9, 1, 14)


def test_comments_and_trailing_commas():
    s = sym.loads("# header\ninput x; # trailing\ny = Concat(x, x, dim=1,);  # c\n"
                  "t = (1, 2,); l = [1,];\noutput y;")
    assert s.attr_dict()["y"] == {"dim": "1", "num_args": "2"}
