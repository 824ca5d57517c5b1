"""Resource limits of the network language: every runaway file stops fast, naming its limit.

Each case checks the whole message (which names the limit and how to raise it) and that the
file was refused in under 2 seconds (on the 2-core CI machine they take 0.001 to 0.8 s). The
limits are read from ``SUBLINEAR_DSL_MAX_*`` at every load, or given with ``limits=``.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import symbol as sym
from symbol import DslError
from symbol.dsl_values import LIMITS, read_limits

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BOUND_S = 2.0
HINT = "(limit {}; set it higher to allow more)"

sym.loads("input warm; output warm;")  # compile the grammar before anything is timed


@pytest.fixture(autouse=True)
def default_limits(monkeypatch):
    for var, _ in LIMITS.values():
        monkeypatch.delenv(var, raising=False)


def refused(text: str, **limits) -> str:
    """The first message of the report on ``text`` (a runaway file), refused within BOUND_S."""
    t0 = time.perf_counter()
    with pytest.raises(DslError) as info:
        sym.loads(textwrap.dedent(text), filename="net.sym", limits=limits or None)
    elapsed = time.perf_counter() - t0
    assert elapsed < BOUND_S, f"refused after {elapsed:.2f} s"
    return str(getattr(info.value, "report")).split("\n", 1)[0]


def hint(var: str) -> str:
    return HINT.format(var)


# -- loop iterations and calls ----------------------------------------------------------------
@pytest.mark.parametrize("text, where", [
    ("for i in range(1000) {\n    for j in range(1000) { }\n}", "2:5"),
    ("n = 0;\nfor i in range(1000000) { n = n + 1; }", "2:1"),
    ("xs = [[0 for i in range(1000)] for j in range(1000)];", "1:7"),
    ("def f(n) { return n; }\nfor i in range(1000000) { y = f(i); }", "2:1"),
    # doubly recursive: 2**61 calls, stopped by the steps (the depth limit is not reached)
    ("def f(n) {\n    if n { a = f(n - 1); b = f(n - 1); }\n    return 0;\n}\ny = f(60);",
     "2:30"),
])
def test_runaway_loops_and_calls_stop_at_the_step_limit(text, where):
    assert refused(text + "\ninput x;\noutput x;") == (
        f"net.sym:{where}: error: the file runs more than 50,000 loop iterations and calls "
        + hint("SUBLINEAR_DSL_MAX_STEPS"))


def test_a_ten_million_iteration_loop_is_refused_at_its_range():
    assert refused("for i in range(10000000) { }\ninput x;\noutput x;") == (
        "net.sym:1:10: error: this makes a range of more than 1,000,000 items "
        + hint("SUBLINEAR_DSL_MAX_VALUE"))


# -- the size of values -------------------------------------------------------------------------
@pytest.mark.parametrize("text, what", [
    ('s = "ab";\nfor i in range(40) { s = s + s; }',
     "2:26: error: this makes a string of more than 1,000,000 characters"),
    ("xs = [1, 2];\nfor i in range(40) { xs = xs + xs; }",
     "2:27: error: this makes a list of more than 1,000,000 items"),
    ("t = (1,);\nfor i in range(40) { t = t + t; }",
     "2:26: error: this makes a tuple of more than 1,000,000 items"),
    ("xs = [0] * 100000000;", "1:6: error: this makes a list of more than 1,000,000 items"),
    ('s = "%999999999d" % 1;',
     "1:5: error: this makes a string of more than 1,000,000 characters"),
    ('s = "a" * 600000;\nt = f"{s}{s}";',
     "2:5: error: this makes a string of more than 1,000,000 characters"),
    ("a = [0] * 1000;\nb = [a] * 1000;\nc = str(b);",
     "3:9: error: cannot write out a list of more than 1,000,000 characters"),
    ("a = [0] * 1000;\nb = [a] * 1000;\nc = [a] * 1000;\nd = b == c;",
     "4:5: error: cannot compare lists of more than 1,000,000 characters"),
])
def test_values_larger_than_the_value_limit_are_refused_before_they_are_made(text, what):
    assert refused(text + "\ninput x;\noutput x;") == f"net.sym:{what} " + hint(
        "SUBLINEAR_DSL_MAX_VALUE")


def test_comprehensions_count_against_the_value_limit_and_the_total_work():
    assert refused("xs = [i for i in range(2000)];\ninput x;\noutput x;", max_value=1000) == (
        "net.sym:1:18: error: this makes a range of more than 1,000 items "
        "(limit limits['max_value']; set it higher to allow more)")
    text = "r = [0] * 1000;\nfor i in range(100) { xs = [x for x in r]; }\ninput x;\noutput x;"
    assert refused(text, max_value=1000, max_steps=10**6) == (
        "net.sym:2:28: error: the file copies and compares more than 10,000 items of strings, "
        "tuples and lists (limit 10 times limits['max_value']; set it higher to allow more)")


def test_repeated_squaring_stops_at_the_digit_limit():
    assert refused("x = 2;\nfor i in range(40) { x = x * x; }\ninput x0;\noutput x0;") == (
        "net.sym:2:26: error: this makes an integer of more than 4,300 digits "
        + hint("SUBLINEAR_DSL_MAX_DIGITS"))


def test_the_digit_limit_is_exact():
    text = "x = {} * 10;\ninput a;\noutput a;"
    sym.loads(text.format("1" + "0" * 4298))  # 4,300 digits
    with pytest.raises(DslError, match="integer of more than 4,300 digits"):
        sym.loads(text.format("1" + "0" * 4299))


def test_a_quadratic_loop_stops_at_the_total_work():
    assert refused("xs = [];\nfor i in range(90000) { xs = xs + [i]; }\ninput x;\noutput x;") \
        == ("net.sym:2:30: error: the file copies and compares more than 10,000,000 items of "
            "strings, tuples and lists (limit 10 times SUBLINEAR_DSL_MAX_VALUE; set it higher "
            "to allow more)")


def test_a_list_that_contains_itself_cannot_be_written_or_compared():
    assert refused("a = [0];\na[0] = a;\ns = str(a);\ninput x;\noutput x;") == (
        "net.sym:3:9: error: cannot write out list [[...]]: it contains itself")
    assert refused("a = [0];\na[0] = a;\nb = [0];\nb[0] = b;\nc = a == b;\ninput x;\n"
                   "output x;") == ("net.sym:5:5: error: cannot compare list [[...]]: it contains "
                                    "itself")


def test_deeply_nested_values_are_cheap_to_describe():
    text = "x = [];\nfor i in range(40000) { x = [x]; }\ny = Concat(x, 1);\ninput a;\noutput a;"
    assert refused(text) == (
        "net.sym:3:12: error: positional arguments of Concat are inputs and must be symbols, got "
        "list " + "[" * 37 + "...; pass a list of inputs as the only positional argument, or "
        "unpack it with '*'")


# -- graph nodes --------------------------------------------------------------------------------
def test_too_many_nodes(monkeypatch):
    monkeypatch.setenv("SUBLINEAR_DSL_MAX_NODES", "1000")
    text = ("input x;\nfor i in range(100000) {\n"
            "    x = Activation(x, act_type='relu') as f'a{i}';\n}\noutput x;")
    assert refused(text) == ("net.sym:3:9: error: the file creates more than 1,000 graph nodes "
                             + hint("SUBLINEAR_DSL_MAX_NODES"))


def test_weights_count_as_nodes():
    text = "input x;\nfor i in range(10) { x = FullyConnected(x, num_hidden=2) as f'f{i}'; }\n" \
           "output x;"
    with pytest.raises(DslError, match="more than 25 graph nodes"):
        sym.loads(text, limits={"max_nodes": 25})
    assert len(sym.loads(text, limits={"max_nodes": 31}).graph.all_nodes) == 31


# -- raising and setting limits -----------------------------------------------------------------
def test_an_environment_variable_raises_a_limit(monkeypatch):
    steps = "for i in range(60000) { }\ninput x;\noutput x;"
    with pytest.raises(DslError, match="50,000 loop iterations"):
        sym.loads(steps)
    monkeypatch.setenv("SUBLINEAR_DSL_MAX_STEPS", "100000")
    assert sym.loads(steps).list_outputs() == ["x"]
    big = 's = "ab" * 600000;\ninput x;\noutput x;'
    with pytest.raises(DslError, match="1,000,000 characters"):
        sym.loads(big)
    monkeypatch.setenv("SUBLINEAR_DSL_MAX_VALUE", "2_000_000")
    assert sym.loads(big).list_outputs() == ["x"]
    digits = "x = 10;\nfor i in range(13) { x = x * x; }\ninput a;\noutput a;"  # 8,193 digits
    with pytest.raises(DslError, match="4,300 digits"):
        sym.loads(digits)
    monkeypatch.setenv("SUBLINEAR_DSL_MAX_DIGITS", "10000")
    assert sym.loads(digits).list_outputs() == ["a"]


def test_the_keyword_wins_over_the_environment_and_is_named(monkeypatch):
    monkeypatch.setenv("SUBLINEAR_DSL_MAX_STEPS", "10")
    text = "for i in range(50) { }\ninput x;\noutput x;"
    assert sym.loads(text, limits={"max_steps": 100}).list_outputs() == ["x"]
    assert refused(text, max_steps=20) == (
        "net.sym:1:1: error: the file runs more than 20 loop iterations and calls "
        "(limit limits['max_steps']; set it higher to allow more)")
    path = EXAMPLES / "mlp.sym"
    assert sym.load(str(path), limits={"max_steps": 3}).list_outputs() == ["softmax_output"]


@pytest.mark.parametrize("value", ["abc", "-1", "0", "1.5", "1e6"])
def test_a_bad_environment_value_is_one_clear_error(monkeypatch, value):
    monkeypatch.setenv("SUBLINEAR_DSL_MAX_NODES", value)
    with pytest.raises(DslError) as info:
        sym.loads("input x; output x;")
    assert getattr(info.value, "report") == (
        "error: environment variable SUBLINEAR_DSL_MAX_NODES must be a positive integer such "
        f"as 200_000, got '{value}'")


def test_every_bad_value_is_reported_and_an_empty_one_is_unset(monkeypatch):
    monkeypatch.setenv("SUBLINEAR_DSL_MAX_STEPS", "many")
    monkeypatch.setenv("SUBLINEAR_DSL_MAX_VALUE", "")
    with pytest.raises(DslError) as info:
        sym.loads("input x; output x;", limits={"max_step": 5, "max_digits": True})
    assert [d.message for d in getattr(info.value, "diagnostics")] == [
        "environment variable SUBLINEAR_DSL_MAX_STEPS must be a positive integer such as "
        "50_000, got 'many'",
        "unknown limit 'max_step'; did you mean 'max_steps'? (limits: max_steps, max_nodes, "
        "max_value, max_digits)",
        "limit 'max_digits' must be a positive integer such as 4_300, got True"]


def test_read_limits_defaults_and_sources():
    limits = read_limits(environ={"SUBLINEAR_DSL_MAX_STEPS": " 1,000 "}, given={"max_nodes": 7})
    assert (limits.max_steps, limits.max_nodes, limits.max_value, limits.max_digits) == (
        1000, 7, 1_000_000, 4_300)
    assert limits.hint("max_nodes") == "(limit limits['max_nodes']; set it higher to allow more)"
    assert limits.hint("max_steps") == hint("SUBLINEAR_DSL_MAX_STEPS")


def test_the_command_line_reports_a_bad_value_without_a_traceback(tmp_path):
    env = {**os.environ, "SUBLINEAR_DSL_MAX_STEPS": "-1"}
    done = subprocess.run([sys.executable, "-m", "executor.app.cli", "check",
                           str(EXAMPLES / "mlp.sym")], env=env, capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert done.returncode == 2
    assert done.stderr == ("sublinear: error: environment variable SUBLINEAR_DSL_MAX_STEPS must be "
                           "a positive integer such as 50_000, got '-1'\n")


# -- the shipped examples fit the defaults --------------------------------------------------------
def test_resnet_1001_fits_the_default_limits():
    net = sym.load(str(EXAMPLES / "resnet.sym"), params={"units": (3, 131, 196, 3)})
    assert len(net.graph.all_nodes) == 8361


@pytest.mark.slow
def test_the_1600_step_lstm_fits_the_default_limits():
    net = sym.load(str(EXAMPLES / "lstm.sym"), params={"steps": 1600})
    assert len(net.graph.all_nodes) == 92_827 < LIMITS["max_nodes"][1] // 2
