"""``sublinear check``: the summary, --param/--shape/--json, and errors without tracebacks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from executor.app.cli import main

ROOT = Path(__file__).resolve().parents[2]
MLP = str(ROOT / "examples" / "mlp.sym")


def check(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_summary_for_people(capsys):
    code, out, err = check(capsys, MLP, "--param", "hidden=32,16", "--param", "act_type=tanh")
    assert code == 0 and err == ""
    assert out == textwrap.dedent(f"""\
        {MLP}: ok
          nodes       6 operators, 8 variables
          parameters  6 arrays, 25,818 elements (101 KiB as float32)
          aux states  0 arrays, 0 elements (0 B as float32)
          inputs      data (32, 784), softmax_label (32,)
          outputs     softmax_output (32, 10)
          net params  hidden=(32, 16), num_classes=10, act_type="tanh", batch=32, input_dim=784
        """)


def test_json_for_machines(capsys):
    code, out, _ = check(capsys, MLP, "--param", "hidden=4", "--param", "batch=2",
                         "--param", "input_dim=3", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True
    assert doc["parameters"]["elements"] == 4 * 3 + 4 + 10 * 4 + 10
    assert doc["outputs"] == [{"name": "softmax_output", "shape": [2, 10]}]
    assert doc["inputs"] == {"data": [2, 3], "softmax_label": [2]}
    assert doc["params"]["hidden"] == [4]


def test_shapes_from_the_command_line(tmp_path, capsys):
    net = tmp_path / "net.sym"
    net.write_text("input x;\ny = FullyConnected(x, num_hidden=5);\noutput y;\n")
    _, out, _ = check(capsys, str(net))
    assert "parameters  2 arrays, elements unknown; give the shape of x with --shape " \
           "NAME=D1,D2,..." in out
    _, out, _ = check(capsys, str(net), "--shape", "x=2,3")
    assert "parameters  2 arrays, 20 elements" in out and "outputs     y_output (2, 5)" in out


def test_long_lists_are_shortened(capsys):
    _, out, _ = check(capsys, str(ROOT / "examples" / "lstm.sym"), "--param", "steps=6",
                      "--param", "hidden=4")
    assert "outputs     t0_loss_output (1,), t1_loss_output (1,), t2_loss_output (1,), " \
           "t3_loss_output (1,), ... (6 in all)" in out


def test_errors_go_to_stderr_with_status_2(tmp_path, capsys):
    net = tmp_path / "bad.sym"
    net.write_text("input data;\nfc = FullyConnected(data, num_hiden=3);\noutput fc;\n")
    code, out, err = check(capsys, str(net))
    assert (code, out) == (2, "")
    assert err == (f"{net}:2:27: error: operator 'fc' (FullyConnected): unknown attribute "
                   "'num_hiden'; did you mean 'num_hidden'? (valid attributes: num_hidden, "
                   "no_bias, flatten)\n    fc = FullyConnected(data, num_hiden=3);\n"
                   "                              ^~~~~~~~~~~\n")


def test_errors_as_json(tmp_path, capsys):
    net = tmp_path / "bad.sym"
    net.write_text("x = ;\n")
    code, out, err = check(capsys, str(net), "--json")
    assert code == 2 and err.startswith(f"{net}:1:5: error: expected an expression")
    assert json.loads(out) == {"ok": False, "command": "check", "error": err.strip(), "errors": [{
        "file": str(net), "line": 1, "col": 5, "end_line": 1, "end_col": 6,
        "message": "expected an expression but found ';'"}]}


def test_shape_errors_point_at_the_node(tmp_path, capsys):
    net = tmp_path / "shape.sym"
    net.write_text("input data: (4, 10);\nw = Variable('w', shape=(3, 3));\n"
                   "y = FullyConnected(data, weight=w, num_hidden=3);\noutput y;\n")
    code, _, err = check(capsys, str(net))
    assert code == 2
    assert err == (f"{net}:3:5: error: in operator 'y' (FullyConnected): input 'weight' has "
                   f"shape (3, 3), expected (3, 10); variable 'w' was declared with that shape "
                   f"at {net}:2:5\n"
                   "    y = FullyConnected(data, weight=w, num_hidden=3);\n"
                   "        ^~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\n")


@pytest.mark.parametrize("argv, message", [
    (["--param", "hiden=3"], f"sublinear: error: {MLP}: unknown parameter 'hiden'; did you "
                             "mean 'hidden'?"),
    (["--param", "hidden=abc"], "error: parameter 'hidden' is a tuple (default (128, 64)), "
                                "but was given string \"abc\""),
    (["--shape", "dta=2,784"], "error: infer_shape: 'dta' is not an input of this symbol; "
                               "did you mean 'data'?"),
])
def test_bad_overrides_are_user_errors(capsys, argv, message):
    code, _, err = check(capsys, MLP, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_missing_file(capsys):
    code, _, err = check(capsys, "no/such.sym")
    assert code == 2
    assert err.startswith("sublinear: error: no such network file or example: no/such.sym "
                          "(examples: ")


def test_an_unreadable_file(tmp_path, capsys):
    net = tmp_path / "net.sym"
    net.write_text("input x: (2, 3);\noutput x;\n")
    net.chmod(0)
    if os.access(net, os.R_OK):
        pytest.skip("running as a user who reads every file")
    code, _, err = check(capsys, str(net))
    assert (code, err) == (2, f"sublinear: error: {net}: Permission denied\n")


@pytest.mark.parametrize("argv", [["--param", "novalue"], ["--shape", "x=a,b"],
                                  ["--shape", "x=0"]])
def test_malformed_options_are_usage_errors(capsys, argv):
    assert main(["check", MLP, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sublinear: error: argument --") and "expected NAME=" in err
    assert err.rstrip().endswith("(see 'sublinear check --help')")


def test_no_traceback_from_the_console_script(tmp_path):
    net = tmp_path / "bad.sym"
    net.write_text("input x;\ny = Foo(x);\nz = Bar(y;\n")
    res = subprocess.run([sys.executable, "-m", "executor.app.cli", "check", str(net)], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith(f"{net}:3:10: error: expected ',' or ')' but found ';'")
    assert "Traceback" not in res.stderr
