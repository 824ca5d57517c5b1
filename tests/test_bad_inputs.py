"""Malformed input of every kind gets one clear error: no traceback, no internal error, fast.

Five kinds of mistakes, as a user makes them: network files (``sublinear check``), command
lines, environment variables, MXNet JSON files and misuses of the Python API. Each case runs in
this process and must
  * fail the way a mistake fails: status 2 (``file:line:col: error:`` or ``sublinear: error:``
    on stderr, no traceback, no "internal error"), or a ``SymbolError`` from the API;
  * say what is wrong (the fragment listed with the case);
  * take under 2 seconds of CPU time and under 512 MiB of new peak memory.
"""
from __future__ import annotations

import json
import re
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

import executor  # noqa: F401  (installs simple_bind)
import symbol as sym
from executor.app.cli import main
from symbol.errors import SymbolError

ROOT = Path(__file__).resolve().parent
SECONDS = 2.0
MEMORY_KIB = 512 * 1024  # ru_maxrss is in KiB on Linux
LOCATED = re.compile(r"^[^\n]*:\d+:\d+: error: ")


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # dsl, cli, env, json, api
    payload: Any
    fragment: str
    status: int = 2
    command: tuple[str, ...] = ("check",)  # what runs a dsl or json file


def dsl(id: str, text: str, fragment: str, command: tuple[str, ...] = ("check",)) -> Case:
    return Case(id, "dsl", text, fragment, command=command)


DSL = [
    dsl("syntax-empty-expression", "x = ;\n", "expected an expression but found ';'"),
    dsl("syntax-missing-semicolon", "input data: (2, 3)\noutput data;\n", "expected ';'"),
    dsl("syntax-unbalanced-paren", "input x: (2, 3);\ny = Activation(x, act_type='relu';\n"
        "output y;\n", "expected ',' or ')'"),
    dsl("syntax-keyword-arguments", "input x: (2, 3);\na = [x];\ny = Concat(**a);\n", "**"),
    dsl("unknown-operator", "input data: (2, 3);\ny = Conv(data);\noutput y;\n",
        "unknown operator 'Conv'; did you mean 'Convolution'?"),
    dsl("unknown-attribute", "input data: (2, 3);\nfc = FullyConnected(data, num_hiden=3);\n"
        "output fc;\n", "unknown attribute 'num_hiden'; did you mean 'num_hidden'?"),
    dsl("undefined-name", "input data: (2, 3);\nfc = FullyConnected(dat, num_hidden=3);\n"
        "output fc;\n", "'dat'"),
    dsl("attribute-not-a-number", "input data: (2, 3);\n"
        "fc = FullyConnected(data, num_hidden=\"abc\");\noutput fc;\n", "num_hidden"),
    dsl("attribute-negative", "input data: (2, 3);\nfc = FullyConnected(data, num_hidden=-3);\n"
        "output fc;\n", "num_hidden"),
    dsl("empty-shape-then-fc", "input data: ();\nfc = FullyConnected(data, num_hidden=10);\n"
        "output fc;\n", "data"),
    dsl("zero-sized-shape", "input data: (0, 3);\noutput data;\n", "positive"),
    dsl("weight-and-bias-one-variable", "input data: (2, 3, 8, 8);\nw = Variable(\"w\");\n"
        "c = Convolution(data, w, w, num_filter=4, kernel=(3,3));\noutput c;\n",
        "variable 'w' is bound to two shapes: (4, 3, 3, 3) as input 'weight' of 'c'"),
    dsl("one-variable-two-ops", "input a: (2, 3);\ninput b: (2, 5);\nw = Variable(\"w\");\n"
        "x = FullyConnected(a, weight=w, num_hidden=4, no_bias=True);\n"
        "y = FullyConnected(b, weight=w, num_hidden=4, no_bias=True);\noutput x, y;\n",
        "variable 'w' is bound to two shapes"),
    dsl("declared-shape-contradicted", "input data: (4, 10);\nw = Variable('w', shape=(3, 3));\n"
        "y = FullyConnected(data, weight=w, num_hidden=3);\noutput y;\n",
        "input 'weight' has shape (3, 3), expected (3, 10)"),
    dsl("kernel-larger-than-input", "input data: (1, 3, 4, 4);\n"
        "c = Convolution(data, num_filter=2, kernel=(9, 9));\noutput c;\n", "c"),
    dsl("reshape-wrong-size", "input data: (2, 6);\nr = Reshape(data, shape=(5, 5));\n"
        "output r;\n", "Reshape"),
    dsl("slice-not-dividing", "input data: (2, 5);\ns = SliceChannel(data, num_outputs=2);\n"
        "output s[0];\n", "SliceChannel"),
    dsl("pooling-without-kernel", "input data: (1, 3, 8, 8);\np = Pooling(data, pool_type='max');\n"
        "output p;\n", "kernel"),
    dsl("concat-empty-list", "input a: (2, 3);\nfeats = [];\ny = Concat(feats, dim=1);\n"
        "output y;\n", "Concat needs at least one input"),
    dsl("concat-star-of-number", "input a: (2, 3);\ny = Concat(*5, dim=1);\noutput y;\n", "*"),
    dsl("concat-list-of-numbers", "input a: (2, 3);\ny = Concat([a, 1], dim=1);\noutput y;\n",
        "item 1 of the list is integer 1"),
    dsl("string-doubling", "s = \"ab\";\nfor i in range(40) { s = s + s; }\n", "characters"),
    dsl("ten-million-iterations", "for i in range(10000000) { x = i; }\n",
        "SUBLINEAR_DSL_MAX_VALUE"),
    dsl("nested-loops", "for i in range(1000) { for j in range(1000) { x = j; } }\n",
        "SUBLINEAR_DSL_MAX_STEPS"),
    dsl("double-recursion", "def f(n) { if n == 0 { return 0; } return f(n - 1) + f(n - 1); }\n"
        "x = f(40);\n", "SUBLINEAR_DSL_MAX_STEPS"),
    dsl("huge-integer", "x = 2;\nfor i in range(40) { x = x * x; }\n", "SUBLINEAR_DSL_MAX_DIGITS"),
    dsl("huge-format-width", "s = \"%999999999d\" % 1;\n", "SUBLINEAR_DSL_MAX_VALUE"),
    dsl("list-doubling", "xs = [1];\nfor i in range(40) { xs = xs + xs; }\n", "items"),
    dsl("quadratic-append", "xs = [];\nfor i in range(40000) { xs = xs + [i]; }\n",
        "SUBLINEAR_DSL_MAX_VALUE"),
    dsl("long-integer-literal", "x = " + "9" * 5000 + ";\n", "digits"),
    dsl("deep-expression", "x = " + "-" * 5000 + "1;\noutput x;\n", "nested too deeply"),
    dsl("deep-recursion", "def f(n) { return f(n + 1); }\nx = f(0);\n", "deep"),
    dsl("division-by-zero", "x = 1 / 0;\n", "division by zero"),
    dsl("index-out-of-range", "xs = [1, 2];\nx = xs[5];\n", "index"),
    dsl("string-plus-number", "x = 1 + \"a\";\n", "cannot apply '+'"),
    dsl("compare-symbols", "input a: (2, 3);\ninput b: (2, 3);\nif a < b { output a; }\n",
        "cannot compare"),
    dsl("loop-over-integer", "for i in 5 { x = i; }\n", "range(5)"),
    dsl("unpack-mismatch", "a, b = (1, 2, 3);\n", "expected 2 values to unpack, got 3"),
    dsl("assign-to-call", "input x: (2, 3);\nActivation(x, act_type='relu') = 3;\n", "assign"),
    dsl("param-in-definition", "def f() { param p = 1; return p; }\nx = f();\n", "'param'"),
    dsl("param-twice", "param p = 1;\nparam p = 2;\n", "declared twice"),
    dsl("return-outside-definition", "return 1;\n", "'return' outside a definition"),
    dsl("definition-arity", "def f(a, b) { return a; }\nx = f(1);\n", "f"),
    dsl("undefined-definition", "x = g(1);\n", "'g'"),
    dsl("output-a-number", "output 3;\n", "'output' needs symbols"),
    dsl("no-output", "input data: (2, 3);\n", "no 'output' statement"),
    dsl("include-missing", "include \"no/such/file.sym\";\n", "cannot read"),
    dsl("variable-named-by-a-number", "v = Variable(3);\noutput v;\n", "Variable"),
    dsl("two-nodes-one-name", "input x: (2, 3);\na = Activation(x, act_type='relu') as \"n\";\n"
        "b = Activation(a, act_type='relu') as \"n\";\noutput b;\n", "'n'"),
    dsl("bad-force-mirroring", "input x: (2, 3);\na = Activation(x, act_type='relu') with "
        "__force_mirroring__ = \"yes\";\nb = FullyConnected(a, num_hidden=2);\n"
        "output MakeLoss(b);\n", "__force_mirroring__", ("plan", "--mirror", "drop-cheap")),
    dsl("bad-activation", "input x: (2, 3);\na = Activation(x, act_type='relux');\noutput a;\n",
        "relux"),
    dsl("unterminated-string", "x = \"abc;\n", "error"),
    dsl("stray-character", "input x: (2, 3);\ny = x $ 2;\noutput y;\n", "'$'"),
]


def cli(id: str, argv: list[str], fragment: str, status: int = 2) -> Case:
    return Case(id, "cli", argv, fragment, status)


NET = ["resnet", "--param", "units=1,1,1,1", "--param", "batch=2", "--param",
       "image_shape=3,32,32"]
CLI = [
    cli("no-command", [], "the following arguments are required: COMMAND"),
    cli("unknown-command", ["fly"], "invalid choice: 'fly'"),
    cli("unknown-option", ["plan", "mlp", "--fast"], "unrecognized arguments: --fast"),
    cli("unknown-net", ["plan", "resnt"], "no such network file or example: resnt"),
    cli("net-is-a-folder", ["plan", "."], "is a folder"),
    cli("check-missing-file", ["check", "no/such.sym"], "no such network file or example"),
    cli("param-without-value", ["check", "mlp", "--param", "novalue"], "expected NAME=VALUE"),
    cli("param-unknown", ["check", "mlp", "--param", "hiden=3"], "unknown parameter 'hiden'"),
    cli("param-wrong-type", ["check", "mlp", "--param", "hidden=abc"], "parameter 'hidden'"),
    cli("shape-zero", ["check", "mlp", "--shape", "data=0,3"], "positive sizes"),
    cli("shape-letters", ["check", "mlp", "--shape", "data=a,b"], "positive sizes"),
    cli("shape-unknown-input", ["check", "mlp", "--shape", "dta=2,784"],
        "'dta' is not an input"),
    cli("strategy-unknown", ["plan", "mlp", "--strategy", "fastest"], "invalid choice"),
    cli("mirror-unknown", ["plan", "mlp", "--mirror", "all"], "invalid choice"),
    cli("co-share-word", ["plan", "mlp", "--co-share", "two"], "expected a positive integer"),
    cli("budget-word", ["plan", "mlp", "--budget", "lots"], "size 'lots' is invalid"),
    cli("budget-zero", ["plan", "mlp", "--budget", "0"], "size '0' is invalid"),
    cli("budget-negative", ["plan", "mlp", "--budget=-5"], "size '-5' is invalid"),
    cli("budget-unit", ["plan", "mlp", "--budget", "3 parsecs"], "KiB/MiB/GiB"),
    cli("budget-impossible", ["plan", *NET, "--budget", "1KB"],
        "memory budget 1000 B for the whole step cannot be met"),
    cli("budget-impossible-activations", ["plan", *NET, "--budget", "1KB", "--budget-scope",
                                          "activations"],
        "memory budget 1000 B cannot be met: the smallest plan found needs"),
    cli("budget-scope-unknown", ["plan", "mlp", "--budget-scope", "all"], "invalid choice"),
    cli("optimal-without-budget", ["plan", "mlp", "--mirror", "optimal"],
        "mirror strategy 'optimal' needs a memory budget"),
    cli("co-share-zero", ["plan", "mlp", "--co-share", "0"], "expected a positive integer"),
    cli("timeline-text-file", ["plan", "mlp", "--timeline", "out.txt"], "cannot draw into"),
    cli("timeline-no-folder", ["plan", "mlp", "--timeline", "/no/such/dir/t.png"], "no folder"),
    cli("param-for-json", ["plan", str(ROOT.parent / "bench" / "mxnet_nets" / "oracle.json"),
                           "--param", "x=1"], "--param applies to network-language files"),
    cli("demo-zero-steps", ["demo", "--steps", "0"], "expected a positive integer, got '0'"),
    cli("demo-nan-lr", ["demo", "--lr", "nan"], "expected a positive number, got 'nan'"),
    cli("demo-negative-lr", ["demo", "--lr=-1"], "expected a positive number"),
    cli("demo-zero-batch", ["demo", "--batch", "0"], "expected a positive integer"),
    cli("demo-unknown-device", ["demo", "--ctx", "tpu", "--steps", "1"], "unknown device 'tpu'"),
    cli("demo-diverges", ["demo", "--lr", "1e30", "--steps", "30"], "training diverged", 1),
    cli("memcost-option-for-other-net", ["memcost", "--net", "lstm", "--image", "32"],
        "--image does not apply to --net lstm"),
    cli("memcost-zero-size", ["memcost", "--sweep", "0"], "expected positive integers"),
    cli("memcost-unknown-strategy", ["memcost", "--strategies", "fastest"],
        "--strategies: unknown fastest"),
    cli("memcost-negative-batch", ["memcost", "--batch", "-2"], "expected a positive integer"),
    cli("memcost-missing-report", ["memcost", "--from-json", "no/such.json"], "no/such.json"),
    cli("memcost-file-without-sweep", ["memcost", "--net", "mlp"], "--sweep-param"),
]
if not torch.cuda.is_available():
    CLI += [cli("demo-cuda-without-cuda", ["demo", "--ctx", "cuda", "--steps", "1"],
                "CUDA is not available"),
            cli("memcost-measure-without-cuda", ["memcost", "--measure"], "CUDA")]


def env(id: str, variables: dict[str, str], fragment: str, argv: list[str] | None = None) -> Case:
    return Case(id, "env", (variables, argv or ["plan", *NET]), fragment)


ENV = [
    env("mirror-unknown", {"SUBLINEAR_MIRROR": "fast"}, "SUBLINEAR_MIRROR='fast' is invalid"),
    env("do-mirror-two", {"MXNET_BACKWARD_DO_MIRROR": "2"},
        "MXNET_BACKWARD_DO_MIRROR='2' is invalid"),
    env("mirror-conflict", {"MXNET_BACKWARD_DO_MIRROR": "1", "SUBLINEAR_MIRROR": "sublinear"},
        "unset one"),
    env("match-range-word", {"MXNET_EXEC_MATCH_RANGE": "x"}, "MXNET_EXEC_MATCH_RANGE='x'"),
    env("match-range-aliases-disagree", {"MXNET_EXEC_MATCH_RANGE": "4",
                                         "NNVM_EXEC_MATCH_RANGE": "8"}, "disagree"),
    env("num-temp-zero", {"MXNET_EXEC_NUM_TEMP": "0"}, "MXNET_EXEC_NUM_TEMP='0' is invalid"),
    env("inplace-two", {"MXNET_EXEC_ENABLE_INPLACE": "2"}, "expected 0 or 1"),
    env("kill-switch-word", {"NO_INPLACE": "yes"}, "NO_INPLACE='yes' is invalid"),
    env("search-jobs-negative", {"SUBLINEAR_SEARCH_JOBS": "-1"}, "SUBLINEAR_SEARCH_JOBS"),
    env("debug-word", {"DEBUG": "on"}, "DEBUG='on' is invalid"),
    env("budget-word", {"SUBLINEAR_MEMORY_BUDGET": "lots"}, "memory budget 'lots' is invalid"),
    env("budget-negative", {"SUBLINEAR_MEMORY_BUDGET": "-5"}, "memory budget '-5' is invalid"),
    env("budget-impossible", {"SUBLINEAR_MEMORY_BUDGET": "1KB"},
        "memory budget 1000 B for the whole step cannot be met"),
    env("budget-scope-unknown", {"SUBLINEAR_MEMORY_BUDGET": "1GB",
                                 "SUBLINEAR_BUDGET_SCOPE": "everything"},
        "SUBLINEAR_BUDGET_SCOPE 'everything' is invalid"),
    env("dsl-steps-word", {"SUBLINEAR_DSL_MAX_STEPS": "abc"}, "SUBLINEAR_DSL_MAX_STEPS",
        ["check", "mlp"]),
    env("dsl-nodes-zero", {"SUBLINEAR_DSL_MAX_NODES": "0"}, "SUBLINEAR_DSL_MAX_NODES",
        ["check", "mlp"]),
    env("dsl-nodes-reached", {"SUBLINEAR_DSL_MAX_NODES": "5"}, "more than 5 graph nodes",
        ["check", "mlp"]),
    env("dsl-value-negative", {"SUBLINEAR_DSL_MAX_VALUE": "-1"}, "SUBLINEAR_DSL_MAX_VALUE",
        ["check", "mlp"]),
]


def _var(name: str) -> dict[str, Any]:
    return {"op": "null", "name": name, "inputs": []}


def _node(op: str, name: str, inputs: list[int], **attrs: str) -> dict[str, Any]:
    return {"op": op, "name": name, "attrs": attrs, "inputs": [[i, 0, 0] for i in inputs]}


def _doc(nodes: list[dict[str, Any]], heads: list[list[int]] | None = None) -> str:
    args = [i for i, n in enumerate(nodes) if n.get("op") == "null"]
    return json.dumps({"nodes": nodes, "arg_nodes": args, "heads": heads or [[len(nodes) - 1,
                                                                              0, 0]],
                       "attrs": {"mxnet_version": ["int", 10901]}})


def mxjson(id: str, text: str, fragment: str) -> Case:
    return Case(id, "json", text, fragment)


FC = [_var("data"), _var("w"), _var("b"), _node("FullyConnected", "fc", [0, 1, 2],
                                                num_hidden="4")]
JSON = [
    mxjson("not-json", "{nodes: [}", "JSON"),
    mxjson("a-list", "[1, 2, 3]", "object"),
    mxjson("no-nodes", json.dumps({"heads": []}), "nodes"),
    mxjson("empty-nodes", _doc([], heads=[]), "no"),
    mxjson("node-without-op", json.dumps({"nodes": [{"name": "x", "inputs": []}],
                                          "arg_nodes": [0], "heads": [[0, 0, 0]]}), "op"),
    mxjson("unknown-op", _doc([_var("x"), _node("Convolutionn", "c", [0])]), "Convolutionn"),
    mxjson("input-index-out-of-range", _doc([_var("x"), _node("Activation", "a", [7],
                                                              act_type="relu")]), "7"),
    mxjson("input-from-later-node", _doc([_node("Activation", "a", [1], act_type="relu"),
                                          _var("x")], heads=[[0, 0, 0]]), "a"),
    mxjson("head-out-of-range", _doc(FC, heads=[[9, 0, 0]]), "9"),
    mxjson("bad-attribute", _doc([_var("x"), _node("Activation", "a", [0], act_type="relux")]),
           "relux"),
    mxjson("missing-attribute", _doc([_var("x"), _node("FullyConnected", "f", [0])]),
           "num_hidden"),
    mxjson("weight-and-bias-one-variable", _doc([
        dict(_var("data"), attrs={"__shape__": "(2, 3, 8, 8)"}), _var("w"),
        _node("Convolution", "c", [0, 1, 1], num_filter="4", kernel="(3, 3)")]),
        "variable 'w' is bound to two shapes"),
    mxjson("bad-shape-attribute", _doc([dict(_var("x"), attrs={"__shape__": "(a, 3)"}),
                                        _node("Activation", "a", [0], act_type="relu")]),
           "shape"),
]


def _mlp(batch: int = 4) -> Any:
    return sym.load(str(ROOT.parent / "examples" / "mlp.sym"),
                    params={"batch": batch, "input_dim": 6, "hidden": (5,), "num_classes": 3})


def _bound(**kw: Any) -> Any:
    return _mlp().simple_bind("cpu", **kw)


X = np.zeros((4, 6), np.float32)
Y = np.zeros(4, np.float32)


def api(id: str, call: Callable[[], Any], fragment: str) -> Case:
    return Case(id, "api", call, fragment)


API = [
    api("forward-positional", lambda: _bound().forward(X), "inputs are passed by name"),
    api("forward-string", lambda: _bound().forward(data="abc"), "got a str"),
    api("forward-none", lambda: _bound().forward(data=None), "got None"),
    api("forward-strings-list", lambda: _bound().forward(data=[["a"] * 6] * 4), "strings"),
    api("forward-ragged", lambda: _bound().forward(data=[[1.0], [1.0, 2.0]]), "rectangular"),
    api("forward-dict", lambda: _bound().forward(data={"a": 1}), "got a dict"),
    api("forward-wrong-shape", lambda: _bound().forward(data=np.zeros((4, 7))), "(4, 7)"),
    api("forward-unknown-name", lambda: _bound().forward(dat=X), "'dat' is not an argument"),
    api("labels-out-of-range", lambda: _bound().forward(data=X, softmax_label=Y + 3),
        "must hold class indices"),
    api("labels-negative", lambda: _bound().forward(data=X, softmax_label=Y - 1),
        "must hold class indices"),
    api("labels-not-whole", lambda: _bound().forward(data=X, softmax_label=Y + 0.5),
        "must hold class indices"),
    api("labels-nan", lambda: _bound().forward(data=X, softmax_label=Y * np.nan),
        "must hold class indices"),
    api("float-data-half-weights", lambda: _bound(type_dict={"fc1_weight": "float16"}),
        "give every argument the same dtype"),
    api("unknown-dtype", lambda: _bound(type_dict={"data": "float8"}), "float8"),
    api("dtype-for-unknown-name", lambda: _bound(type_dict={"dta": "float16"}), "dta"),
    api("budget-negative", lambda: _bound(budget=-5), "memory budget -5 is invalid"),
    api("budget-word", lambda: _bound(budget="lots"), "memory budget 'lots' is invalid"),
    api("budget-bool", lambda: _bound(budget=True), "memory budget True is invalid"),
    api("budget-impossible", lambda: _bound(budget=10), "cannot be met"),
    api("shape-zero", lambda: _mlp().simple_bind("cpu", data=(0, 6)), "positive"),
    api("shape-string", lambda: _mlp().simple_bind("cpu", data="abc"), "shape"),
    api("shape-float", lambda: _mlp().simple_bind("cpu", data=(2.5, 6)), "shape"),
    api("device-unknown", lambda: _mlp().simple_bind("tpu", data=(4, 6)),
        "unknown device 'tpu'"),
    api("grad-req-typo", lambda: _bound(grad_req="wirte"), "grad_req"),
    api("mirror-unknown", lambda: _bound(mirror="all"), "unknown mirror strategy 'all'"),
    api("strategy-unknown", lambda: _bound(strategy="fastest"), "fastest"),
    api("backward-before-forward", lambda: _bound().backward(), "needs a preceding forward"),
    api("backward-too-many-grads", lambda: _trained().backward([None, None]),
        "2 out_grads for 1 outputs"),
    api("backward-a-string", lambda: _trained().backward("abc"), "out_grads"),
    api("bind-missing-arguments", lambda: _mlp().bind("cpu", args={"data": torch.zeros(4, 6)}),
        "no array for argument"),
    api("bind-a-string", lambda: _mlp().bind("cpu", args={n: "abc" for n in
                                                          _mlp().list_arguments()}),
        "args['data'] must be a torch tensor or a numeric numpy array, got a str"),
    api("attribute-not-a-number", lambda: sym.FullyConnected(sym.Variable("d"), num_hidden="x"),
        "num_hidden"),
    api("attribute-unknown", lambda: sym.Activation(sym.Variable("d"), act="relu"), "act"),
    api("infer-shape-unknown-name", lambda: _mlp().infer_shape(dta=(2, 6)), "'dta'"),
    api("loads-syntax-error", lambda: sym.loads("x = ;"), "expected an expression"),
    api("load-json-garbage", lambda: sym.load_json_string("not json") if hasattr(
        sym, "load_json_string") else sym.fromjson("not json"), "JSON"),
    api("group-of-numbers", lambda: sym.Group([1, 2]), "Group"),
    api("enable-cuda-graphs-on-cpu", lambda: _bound().enable_cuda_graphs(), "CUDA"),
]


def _trained() -> Any:
    exe = _bound()
    exe.forward(is_train=True, data=X, softmax_label=Y)
    return exe


CASES = DSL + CLI + ENV + JSON + API


def test_at_least_a_hundred_cases_of_every_kind():
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 100 and kinds == {"dsl", "cli", "env", "json", "api"}
    assert len({(c.kind, c.id) for c in CASES}) == len(CASES)


def _run(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         capsys: pytest.CaptureFixture[str]) -> tuple[int | None, str]:
    """(exit status, message) of one case; status None for an API case."""
    for var in [v for v in __import__("os").environ if v.startswith(
            ("MXNET_", "NNVM_", "SUBLINEAR_", "NO_"))] + ["DEBUG"]:
        monkeypatch.delenv(var, raising=False)
    if case.kind == "api":
        with pytest.raises(SymbolError) as info:
            case.payload()
        return None, str(info.value)
    if case.kind == "env":
        variables, argv = case.payload
        for k, v in variables.items():
            monkeypatch.setenv(k, v)
    elif case.kind in ("dsl", "json"):
        path = tmp_path / ("net.sym" if case.kind == "dsl" else "net-symbol.json")
        path.write_text(case.payload)
        argv = [case.command[0], str(path), *case.command[1:]]
    else:
        argv = case.payload
    monkeypatch.chdir(tmp_path)
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, err


@pytest.mark.parametrize("case", CASES, ids=[f"{c.kind}-{c.id}" for c in CASES])
def test_a_mistake_gets_one_clear_error(case, tmp_path, monkeypatch, capsys):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.process_time()  # CPU time: what the mistake costs, not what else the machine runs
    status, message = _run(case, tmp_path, monkeypatch, capsys)
    seconds = time.process_time() - t0
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss
    assert case.fragment in message, message
    assert "Traceback" not in message and "internal error" not in message
    if status is not None:
        assert status == case.status, message
        assert message.startswith("sublinear: error: ") or LOCATED.match(message), message
    assert seconds < SECONDS, f"{seconds:.2f} s"
    assert grown < MEMORY_KIB, f"{grown / 1024:.0f} MiB more peak memory"
