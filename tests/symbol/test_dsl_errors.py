"""Every error of the network language: exact message, line, column and caret.

Reports are compared whole (``file:line:col: error: message``, the source line, the caret), so a
change of wording or position fails here first.
"""
from __future__ import annotations

import textwrap

import pytest

import symbol as sym
from symbol import DslError, ShapeError, SymbolError, dsl
from symbol.dsl_check import error_records


def error_of(text: str, params=None, filename: str = "net.sym") -> DslError:
    with pytest.raises(DslError) as info:
        sym.loads(textwrap.dedent(text), params, filename=filename)
    return info.value


def report(text: str, params=None) -> str:
    return error_of(text, params).report


def expect(report_text: str) -> str:
    return textwrap.dedent(report_text).strip("\n")


# -- syntax -------------------------------------------------------------------------------------
SYNTAX = [
    # the style guide's example: a missing ')' names the tokens that could close the call
    ("x = FullyConnected(data, num_hidden=3;", """
        net.sym:1:38: error: expected ',' or ')' but found ';'
            x = FullyConnected(data, num_hidden=3;
                                                 ^"""),
    # a missing ';' is reported after the previous token, not at the next line
    ("input data\nfc = FullyConnected(data, num_hidden=3);", """
        net.sym:1:11: error: expected ';' after 'data'
            input data
                      ^"""),
    ("input data;\ny = Activation(data, act_type='relu')", """
        net.sym:2:38: error: expected ';' after ')'
            y = Activation(data, act_type='relu')
                                                 ^"""),
    ("def f(x) {\n    return x;\n", """
        net.sym:2:14: error: expected a statement or '}' but found end of input
                return x;
                         ^"""),
    ("x = ;", """
        net.sym:1:5: error: expected an expression but found ';'
            x = ;
                ^"""),
    ("x = [a, b;", """
        net.sym:1:10: error: expected ',' or ']' but found ';'
            x = [a, b;
                     ^"""),
    ("x = a if b;", """
        net.sym:1:11: error: expected 'else' but found ';'
            x = a if b;
                      ^"""),
    ("param = 3;", """
        net.sym:1:7: error: expected a name but found '='
            param = 3;
                  ^"""),
    ("x = a b;", """
        net.sym:1:7: error: expected ';' but found 'b'
            x = a b;
                  ^"""),
    ("x = y.z;", """
        net.sym:1:6: error: unexpected character '.'
            x = y.z;
                 ^"""),
    ("x = 'abc;", """
        net.sym:1:5: error: unterminated string
            x = 'abc;
                ^"""),
    ('x = f"t{t +}";', """
        net.sym:1:12: error: expected an expression but found '}'
            x = f"t{t +}";
                       ^"""),
    ('x = f"{0;a}";', """
        net.sym:1:9: error: unexpected ';'
            x = f"{0;a}";
                    ^"""),
    ('x = f"t{}";', """
        net.sym:1:8: error: empty expression in f-string
            x = f"t{}";
                   ^"""),
    ('x = f"a}";', """
        net.sym:1:8: error: single '}' in f-string; write '}}' for a literal brace
            x = f"a}";
                   ^"""),
]


@pytest.mark.parametrize("text, want", SYNTAX, ids=[t for t, _ in SYNTAX])
def test_syntax_error_reports(text, want):
    assert report(text) == expect(want)


KNOWN = [
    ("colon_for_equals", "x = f(a, k: 1);", "attributes are written name=value, not name: value",
     11),
    ("colon_for_equals", "x = f(k: 1);", "attributes are written name=value, not name: value", 8),
    ("colon_for_equals", "with k: 1 { }", "attributes are written name=value, not name: value", 7),
    ("colon_for_equals", "x = y with k: 1;",
     "attributes are written name=value, not name: value", 13),
    ("python_block", "def f(x): return x;",
     "a block is written in braces '{ ... }', not after ':'", 9),
    ("python_block", "def f(): return 1;",
     "a block is written in braces '{ ... }', not after ':'", 8),
    ("bare_expression", "f(x);",
     "a statement cannot be a bare expression; assign it (y = ...) or use 'output'", 5),
    ("bare_expression", "x;",
     "a statement cannot be a bare expression; assign it (y = ...) or use 'output'", 2),
    ("bare_expression", "x + 1;",
     "a statement cannot be a bare expression; assign it (y = ...) or use 'output'", 6),
    ("assign_in_condition", "if x = 1 { }", "'=' assigns; use '==' to compare", 6),
    ("missing_comma", "x = f(a b);", "missing ',' before 'b'", 9),
    ("missing_comma", "x = f(a, b c);", "missing ',' before 'c'", 12),
    ("missing_comma", "x = f(k=a b);", "missing ',' before 'b'", 11),
    ("unclosed_call", "x = f(a;", "expected ',' or ')' but found ';'", 8),
    ("unclosed_call", "x = f(a, b;", "expected ',' or ')' but found ';'", 11),
    ("unclosed_call", "x = f(a, k=b;", "expected ',' or ')' but found ';'", 13),
    ("unclosed_call", "x = f(1;", "expected ',' or ')' but found ';'", 8),
    ("include_in_block", 'def f() { include "a.sym"; }',
     "'include' is only allowed at the top level of a file", 11),
    ("include_in_block", 'def f() { x = 1; include "a.sym"; }',
     "'include' is only allowed at the top level of a file", 18),
    ("unmatched_brace", "}", "unmatched '}'", 1),
    ("unmatched_brace", "x = 1; }", "unmatched '}'", 8),
    ("trailing_comma", "output a, ;", "trailing ',' before ';'", 11),
    ("trailing_comma", "return a, ;", "trailing ',' before ';'", 11),
    ("trailing_comma", "a, = f(x);", "trailing ',' before '='", 4),
    ("trailing_comma", "def f(a,) { }", "trailing ',' before ')'", 9),
    ("double_star", "x = f(**a);", "'**' does not unpack keyword arguments here; '*xs' unpacks "
     "a tuple or list, and keywords are written name=value", 8),
    ("double_star", "x = f(a, **b);", "'**' does not unpack keyword arguments here; '*xs' "
     "unpacks a tuple or list, and keywords are written name=value", 11),
]


def test_every_known_mistake_row_is_tested():
    rows = {(label, ex) for label, (_, examples) in dsl.KNOWN_MISTAKES.items()
            for ex in examples}
    assert rows == {(label, ex) for label, ex, _, _ in KNOWN}


@pytest.mark.parametrize("label, text, message, col", KNOWN, ids=[k[1] for k in KNOWN])
def test_known_mistake_rows_get_their_message(label, text, message, col):
    with pytest.raises(DslError) as info:
        dsl.parse(text, "net.sym")
    err = info.value
    assert (err.msg, err.lineno, err.offset) == (message, 1, col)
    if "{found}" not in dsl.KNOWN_MISTAKES[label][0]:
        assert message == dsl.KNOWN_MISTAKES[label][0]


@pytest.mark.parametrize("text", ["x = f(a, k: 1);", "f(x);", "if x = 1 { }"])
def test_known_mistakes_are_found_inside_blocks_too(text):
    # lark compares parser states with their stack depth; the table compares states only
    with pytest.raises(DslError) as top:
        dsl.parse(text, "net.sym")
    with pytest.raises(DslError) as nested:
        dsl.parse("def g(x) {\n    for i in range(2) {\n" + text + "\n}\n}", "net.sym")
    assert nested.value.msg == top.value.msg


def test_a_known_mistake_needs_the_same_token_not_only_the_same_state():
    # same parser state as 'f(a, k: 1)', but ';' is a missing ')', not an attribute typo
    with pytest.raises(DslError, match=r"expected ',' or '\)' but found ';'"):
        dsl.parse("x = f(a, k;", "net.sym")


# -- semantics ----------------------------------------------------------------------------------
def test_several_errors_are_reported_together_and_dependents_stay_silent():
    got = report("""\
        input data: (32, 100);
        fc1 = FullyConnected(dat, num_hidden=10);
        act1 = Activation(fc1, act_type="relu");
        fc2 = Conv(data, num_hidden=10);
        fc3 = FullyConnected(data, num_hiden=10);
        fc4 = FullyConnected(data, num_hidden="ten");
        output act1;
    """)
    assert got == expect("""
        net.sym:2:22: error: undefined name 'dat'; did you mean 'data'?
            fc1 = FullyConnected(dat, num_hidden=10);
                                 ^~~
        net.sym:4:7: error: unknown operator 'Conv'; did you mean 'Convolution'?
            fc2 = Conv(data, num_hidden=10);
                  ^~~~
        net.sym:5:28: error: operator 'fc3' (FullyConnected): unknown attribute 'num_hiden'; did you mean 'num_hidden'? (valid attributes: num_hidden, no_bias, flatten)
            fc3 = FullyConnected(data, num_hiden=10);
                                       ^~~~~~~~~~~~
        net.sym:6:28: error: operator 'fc4' (FullyConnected): attribute num_hidden="ten": expected an integer
            fc4 = FullyConnected(data, num_hidden="ten");
                                       ^~~~~~~~~~~~~~~~""")  # noqa: E501


def test_dsl_error_is_a_syntax_error_describing_the_first_error():
    err = error_of("input data;\nx = Foo(data);\ny = Bar(data);\noutput x;")
    assert isinstance(err, SyntaxError) and isinstance(err, SymbolError)
    assert (err.filename, err.lineno, err.offset, err.end_lineno, err.end_offset) == (
        "net.sym", 2, 5, 2, 8)
    assert err.text == "x = Foo(data);"
    assert err.msg == "unknown operator 'Foo'"
    assert [d.message for d in err.diagnostics] == ["unknown operator 'Foo'",
                                                    "unknown operator 'Bar'"]
    assert err.__notes__ == [err.report.split("\n", 3)[3]]


#: id, source, line, column, caret width, message
SEMANTIC = [
    ('unknown_op', "input x; y = Activatoin(x); output y;",
     1, 14, 10, "unknown operator 'Activatoin'; did you mean 'Activation'?"),
    ('unknown_op_suggests_definitions', "def block(x) { return x; }\ny = blok(3);",
     2, 5, 4, "unknown operator 'blok'; did you mean 'block'?"),
    ('missing_required_attribute', "input x; y = FullyConnected(x); output y;",
     1, 14, 17, "operator 'y' (FullyConnected): missing required attribute 'num_hidden'"),
    ('attribute_choice', "input x; y = Activation(x, act_type='relux'); output y;",
     1, 28, 16, "operator 'y' (Activation): attribute act_type=\"relux\": expected one of "
                "'relu', 'sigmoid', 'tanh', 'softrelu'"),
    ('tuple_attribute', "input x; y = Pooling(x, kernel=(2, 'a')); output y;",
     1, 25, 15, "operator 'y' (Pooling): attribute kernel=(2, \"a\"): expected a tuple of "
                "integers such as (3, 3)"),
    ('value_for_an_input', "input x; y = FullyConnected(x, weight=3, num_hidden=2); output y;",
     1, 32, 8, "input 'weight' of 'y' (FullyConnected) must be a symbol, got integer 3"),
    ('symbol_for_an_attribute', "input x; y = FullyConnected(x, num_hidden=x); output y;",
     1, 32, 12, "attribute 'num_hidden' of FullyConnected must be a value, not symbol 'x'"),
    ('unknown_input', "input x; y = FullyConnected(x, wieght=x, num_hidden=2); output y;",
     1, 32, 8, "operator 'y' (FullyConnected) has no input 'wieght'; did you mean 'weight'? "
               "(inputs: data, weight, bias)"),
    ('positional_attribute', "input a; y = Activation(a, 'relu'); output y;",
     1, 28, 6, "positional arguments of Activation are inputs and must be symbols, got string "
               '"relu"; give attributes by name (k=...)'),
    ('undefined_name', "input data; x = Activation(dta, act_type='relu'); output x;",
     1, 28, 3, "undefined name 'dta'; did you mean 'data'?"),
    ('duplicate_node',
     "input x;\nfc1 = FullyConnected(x, num_hidden=3);\n"
     "fc1 = FullyConnected(fc1, num_hidden=3);\noutput fc1;",
     3, 1, 3, "duplicate node name 'fc1' (first defined at net.sym:2:7)"),
    ('duplicate_auto_weight',
     "input x;\nfc1_weight = Variable();\nfc1 = FullyConnected(x, num_hidden=3);\noutput fc1;",
     3, 7, 31, "duplicate node name 'fc1_weight' (first defined at net.sym:2:14)"),
    ('duplicate_in_a_loop',
     "input x;\nfor i in range(2) {\n    x = Activation(x, act_type='relu') as 'a';\n}\noutput x;",
     3, 43, 3, "duplicate node name 'a': an earlier loop iteration or call of this code created "
               "it; give each node its own name with 'as'"),
    ('definition_arity', "def unit(x, n) { return x; }\ninput a;\nb = unit(a);\noutput b;",
     3, 5, 7, "definition 'unit' takes 2 arguments (x, n), got 1"),
    ('definition_keyword', "def f(x, num) { return x; } input a; y = f(a, nmu=2); output y;",
     1, 47, 5, "definition 'f' has no parameter 'nmu'; did you mean 'num'?"),
    ('loop_bound_float', "input a;\nfor i in range(2.5) { b = a; }\noutput a;",
     2, 16, 3, "loop bound must be an integer, got float 2.5"),
    ('loop_bound_param', 'param n = "3";\ninput a;\nfor i in range(n) { b = a; }\noutput a;',
     3, 16, 1, 'loop bound must be an integer, got string "3"'),
    ('loop_over_integer', "input a;\nfor i in 3 { b = a; }\noutput a;",
     2, 10, 1, "cannot loop over integer 3; write range(3)"),
    ('return_outside', "input a; return a;",
     1, 10, 9, "'return' outside a definition"),
    ('unused_as', "input a; b = a as 'x'; output b;",
     1, 19, 3, "'as' applies to the node a call creates, but this expression creates none"),
    ('unpack', "input x; a, b, c = (1, 2); output x;",
     1, 10, 17, "expected 3 values to unpack, got 2"),
    ('multi_output_input',
     "input a; s = SliceChannel(a, num_outputs=2);\ny = Activation(s, act_type='relu'); output y;",
     2, 5, 30, "input 'data' of 'y' (Activation) is a symbol with 2 outputs; index it, e.g. x[0]"),
    ('index_out_of_range', "input a; s = SliceChannel(a, num_outputs=2); y = s[2]; output y;",
     1, 52, 1, "index 2 out of range: symbol 's' has 2 outputs"),
    ('shape_declaration', "input a: (2, -1); output a;",
     1, 10, 7, "a shape must be a tuple of positive integers, got tuple (2, -1)"),
    ('definition_shadows_operator', "def Convolution(x) { return x; } input a; output a;",
     1, 5, 11, "'Convolution' is an operator; choose another name for the definition"),
    ('param_declared_twice', "param a = 1; param a = 2; input x; output x;",
     1, 20, 1, "parameter 'a' is declared twice (first at net.sym:1:7)"),
    ('arithmetic', "param n = 'a' + 1; input a; output a;",
     1, 11, 7, "cannot apply '+' to string \"a\" and integer 1"),
    ('symbol_arithmetic', "input x; y = x / 2; output y;",
     1, 14, 5, "cannot apply '/' to symbol 'x' and integer 2 (symbols support a + b, a - b, a * "
               "b and a number on either side of +, - and *)"),
    ('symbol_condition', "input x; if x { y = x; } output x;",
     1, 13, 1, "a condition cannot be a symbol (symbol 'x')"),
    ('output_needs_symbols', "input x; output 3;",
     1, 17, 1, "'output' needs symbols, got integer 3"),
]


@pytest.mark.parametrize("text, line, col, width, message", [s[1:] for s in SEMANTIC],
                         ids=[s[0] for s in SEMANTIC])
def test_semantic_error_reports(text, line, col, width, message):
    source = text.splitlines()[line - 1]
    caret = " " * (col - 1) + "^" + "~" * (width - 1)
    assert report(text) == f"net.sym:{line}:{col}: error: {message}\n    {source}\n    {caret}"


def test_an_error_in_a_definition_notes_the_call():
    text = ("def unit(x) {\n    conv = Convolution(x, num_filter=8, kernel=(3, 3));\n"
            "    return conv;\n}\ninput data;\na = unit(data) as 'u';\nb = unit(a) as 'u';\n"
            "output b;")
    assert report(text) == (
        "net.sym:2:5: error: duplicate node name 'u_conv': an earlier loop iteration or call of "
        "this code created it; give each node its own name with 'as'\n"
        "        conv = Convolution(x, num_filter=8, kernel=(3, 3));\n"
        "        ^~~~\n"
        "net.sym:7:5: note: in call to 'unit' from here\n"
        "    b = unit(a) as 'u';\n"
        "        ^~~~~~~")


def test_runaway_recursion_is_an_error_with_folded_notes():
    assert report("def f(x) { y = f(x); return y; }\ninput a;\nb = f(a);\noutput b;") == expect("""
        net.sym:1:16: error: definitions nest more than 64 calls deep (does 'f' call itself?)
            def f(x) { y = f(x); return y; }
                           ^~~~
        net.sym:1:16: note: in call to 'f' from here (63 times)
            def f(x) { y = f(x); return y; }
                           ^~~~
        net.sym:3:5: note: in call to 'f' from here
            b = f(a);
                ^~~~""")


def test_an_error_in_a_loop_is_reported_once():
    err = error_of("input x;\nfor i in range(3) { y = Foo(x); z = Bar(x); }\noutput x;")
    assert [d.message for d in err.diagnostics] == ["unknown operator 'Foo'",
                                                    "unknown operator 'Bar'"]


def test_at_most_twenty_errors_are_reported():
    text = "input x;\n" + "".join(f"y{i} = Foo(x);\n" for i in range(30)) + "output x;"
    assert len(error_of(text).diagnostics) == 20


def test_runaway_loops_stop_at_the_step_limit(monkeypatch):
    monkeypatch.setenv("SUBLINEAR_DSL_MAX_STEPS", "1000")
    assert report("xs = [[0 for i in range(100)] for j in range(100)];") == expect("""
        net.sym:1:7: error: the file runs more than 1,000 loop iterations and calls (limit SUBLINEAR_DSL_MAX_STEPS; set it higher to allow more)
            xs = [[0 for i in range(100)] for j in range(100)];
                  ^~~~~~~~~~~~~~~~~~~~~~~""")  # noqa: E501


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "bin.sym"
    path.write_bytes(b"input x;\xff\noutput x;")
    with pytest.raises(DslError) as info:
        sym.load(str(path))
    assert info.value.report == f"{path}: error: the file is not UTF-8 text (byte 8)"


def test_a_file_without_output_is_an_error():
    err = error_of("input a;")
    assert err.report == "net.sym: error: the network has no 'output' statement"
    assert (err.filename, err.lineno) == ("net.sym", None)


# -- parameters ---------------------------------------------------------------------------------
def test_unknown_parameter_override_suggests_a_declared_one():
    err = error_of("param steps = 2; input a; output a;", {"step": 3})
    assert err.report == "net.sym: error: unknown parameter 'step'; did you mean 'steps'?"


def test_parameter_override_of_the_wrong_type():
    assert report("param steps = 2;\ninput a;\noutput a;", {"steps": "x"}) == expect("""
        net.sym:1:7: error: parameter 'steps' is an integer (default 2), but was given string "x"
            param steps = 2;
                  ^~~~~""")


# -- include ------------------------------------------------------------------------------------
def test_include_cycle(tmp_path):
    (tmp_path / "a.sym").write_text('include "b.sym";\ndef f(x) { return x; }\n')
    (tmp_path / "b.sym").write_text('include "a.sym";\n')
    main = tmp_path / "main.sym"
    main.write_text('include "a.sym";\ninput data;\noutput f(data);\n')
    with pytest.raises(DslError) as info:
        sym.load(str(main))
    b = tmp_path / "b.sym"
    assert info.value.report == (
        f"{b}:1:1: error: include cycle: {main} -> {tmp_path / 'a.sym'} -> {b} -> "
        f"{tmp_path / 'a.sym'}\n    include \"a.sym\";\n    ^~~~~~~~~~~~~~~~")


def test_include_of_itself_is_a_cycle(tmp_path):
    main = tmp_path / "net.sym"
    main.write_text('input x;\ninclude "net.sym";\noutput x;\n')
    with pytest.raises(DslError, match="include cycle: .*net.sym -> .*net.sym"):
        sym.load(str(main))


def test_include_of_a_missing_file(tmp_path):
    main = tmp_path / "net.sym"
    main.write_text('include "nope.sym";\ninput x;\noutput x;\n')
    with pytest.raises(DslError) as info:
        sym.load(str(main))
    assert info.value.report == (f"{main}:1:1: error: cannot read 'nope.sym': No such file or "
                                 "directory\n    include \"nope.sym\";\n    ^~~~~~~~~~~~~~~~~~~")


def test_errors_in_an_included_file_point_into_that_file(tmp_path):
    (tmp_path / "lib.sym").write_text("def f(x) {\n    y = Foo(x);\n    return y;\n}\n"
                                      "z = (;\n")
    main = tmp_path / "net.sym"
    main.write_text('include "lib.sym";\ninput x;\noutput x;\n')
    with pytest.raises(DslError) as info:
        sym.load(str(main))
    assert info.value.report == (f"{tmp_path / 'lib.sym'}:5:6: error: expected an expression or "
                                 "')' but found ';'\n    z = (;\n         ^")


# -- shape errors found after lowering ----------------------------------------------------------
def test_shape_error_points_back_to_the_dsl_line():
    net = sym.loads("input data: (32, 100);\nw = Variable('w', shape=(5, 7));\n"
                    "fc1 = FullyConnected(data, weight=w, num_hidden=10);\noutput fc1;",
                    filename="shape.sym")
    with pytest.raises(ShapeError) as info:
        net.infer_shape()
    assert dsl.format_error(info.value) == expect("""
        shape.sym:3:7: error: in operator 'fc1' (FullyConnected): input 'weight' has shape (5, 7), expected (10, 100); variable 'w' was declared with that shape at shape.sym:2:5
            fc1 = FullyConnected(data, weight=w, num_hidden=10);
                  ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~""")  # noqa: E501
    assert error_records(info.value) == [{
        "file": "shape.sym", "line": 3, "col": 7, "end_line": 3, "end_col": 52,
        "message": "in operator 'fc1' (FullyConnected): input 'weight' has shape (5, 7), "
                   "expected (10, 100); variable 'w' was declared with that shape at "
                   "shape.sym:2:5"}]


def test_format_error_of_other_errors():
    assert dsl.format_error(SymbolError("boom")) == "error: boom"
    err = error_of("x = ;")
    assert dsl.format_error(err) == err.report
    assert error_records(err) == [{"file": "net.sym", "line": 1, "col": 5, "end_line": 1,
                                   "end_col": 6, "message": "expected an expression but found "
                                                            "';'"}]
