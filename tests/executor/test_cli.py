"""The command line as a whole: start-up without torch, help for every option, one error path
(status 2 for mistakes, 1 for failed runs, JSON errors under --json), progress on stderr."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from executor.app import cli
from executor.app.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
SMALL_RESNET = ["resnet", "--param", "units=1,1,1,1", "--param", "batch=2",
                "--param", "image_shape=3,32,32"]


def _no_torch_after(argv: list[str]) -> subprocess.CompletedProcess[str]:
    code = ("import sys\nfrom executor.app.cli import main\nrc = main(sys.argv[1:])\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', rc)")
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("argv", [
    ["check", "examples/mlp.sym"],
    ["check", "resnet", "--json"],
    ["plan", "mlp", "--json"],
    ["plan", *SMALL_RESNET, "--mirror", "sublinear", "--saved"],
    ["memcost", "--net", "resnet", "--sweep", "50", "--strategies", "sharing", "--quiet"],
    ["plan", "no-such-net"],
])
def test_commands_that_run_no_tensors_never_import_torch(argv):
    res = _no_torch_after(argv)
    assert res.stdout.split()[-2] == "NO-TORCH", res.stderr


def test_help_never_imports_torch():
    code = ("import sys\nfrom executor.app.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\nprint('TORCH' if 'torch' in sys.modules else 'OK')")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert res.stdout.strip().endswith("OK")


def test_the_demo_does_import_torch():
    # the check above can fail: a command that runs tensors is seen importing torch
    res = _no_torch_after(["demo", "--steps", "2", "--json"])
    assert res.stdout.split()[-2] == "TORCH"


def _options(parser: argparse.ArgumentParser, prefix: str = "sublinear"):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{prefix} {name}")
        else:
            yield prefix, action


def test_every_option_has_help_text():
    missing = [f"{where} {a.option_strings or a.dest}" for where, a in _options(build_parser())
               if not (a.help or "").strip()]
    assert not missing


def test_every_command_has_a_description():
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert sorted(subs.choices) == sorted(parser.get_default("commands"))
    for name, sub in subs.choices.items():
        assert sub.description, name


@pytest.mark.parametrize("argv, fragment", [
    (["plan", "mlp", "--budget", "lots"], "argument --budget: size 'lots' is invalid"),
    (["plan", "mlp", "--co-share", "0"], "argument --co-share: expected a positive integer"),
    (["plan", "mlp", "--timeline", "out.txt"], "argument --timeline: cannot draw into"),
    (["demo", "--steps", "0"], "argument --steps: expected a positive integer, got '0'"),
    (["demo", "--lr", "nan"], "argument --lr: expected a positive number, got 'nan'"),
    (["demo", "--bogus"], "unrecognized arguments: --bogus"),
    (["memcost", "--batch", "-1"], "argument --batch: expected a positive integer"),
    ([], "the following arguments are required: COMMAND"),
])
def test_usage_errors_are_one_line_with_status_2(capsys, argv, fragment):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("sublinear: error: ") and fragment in err
    assert len(err.strip().splitlines()) == 1 and "--help')" in err


@pytest.mark.parametrize("argv", [
    ["plan", "mlp", "--json", "--budget", "5"],
    ["plan", "no-such-net", "--json"],
    ["plan", "mlp", "--json", "--strategy", "fastest"],
    ["check", "no-such-net", "--json"],
    ["memcost", "--net", "lstm", "--image", "32", "--json"],
    ["demo", "--steps", "0", "--json"],
])
def test_json_errors_are_json_on_stdout(capsys, argv):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["ok"] is False and doc["command"] == argv[0]
    assert doc["error"] == err.strip() and doc["errors"][0]["message"]


def test_a_file_error_in_json_has_its_location(tmp_path, capsys):
    net = tmp_path / "bad.sym"
    net.write_text("input data: (2, 3);\ny = Foo(data);\noutput y;\n")
    assert main(["plan", str(net), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["errors"][0]["line"] == 2 and "unknown operator 'Foo'" in doc["error"]


def test_a_diverging_run_fails_with_status_1(capsys):
    assert main(["demo", "--steps", "40", "--lr", "1e30"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sublinear: error: training diverged at epoch 1, step ")
    assert "try a smaller --lr" in err


def test_an_internal_error_is_reported_as_a_bug(capsys, monkeypatch):
    # the path the CLI fuzz must never reach, so that it is known to work
    def broken(args):
        raise KeyError("oops")
    monkeypatch.setattr(cli, "_check", broken)
    assert main(["check", "mlp"]) == 70
    err = capsys.readouterr().err
    assert err.startswith("sublinear: internal error: KeyError: 'oops' (a bug")
    assert "Traceback" not in err
    assert main(["-v", "check", "mlp"]) == 70
    assert "Traceback" in capsys.readouterr().err


def test_plan_shows_progress_on_stderr_only_for_long_searches(capsys, monkeypatch):
    import threading

    import executor.progress as progress
    real = progress.progress_bar
    threads = threading.active_count()

    def eager(desc, **kw):  # show at once (delay 0) so the test needs no slow search
        return real(desc, **{**kw, "delay": 0})
    monkeypatch.setattr("executor.app.plan.progress_bar", eager)
    assert main(["plan", *SMALL_RESNET, "--mirror", "sublinear"]) == 0
    out, err = capsys.readouterr()
    assert "planning" in err and "plan/s" in err and "planning" not in out
    assert main(["plan", *SMALL_RESNET, "--mirror", "sublinear", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)["mirror"] == "sublinear"
    assert main(["plan", *SMALL_RESNET, "--mirror", "sublinear"]) == 0
    assert "planning" in capsys.readouterr().err
    monkeypatch.setattr("executor.app.plan.progress_bar", real)  # the default: 1 s delay
    assert main(["plan", *SMALL_RESNET, "--mirror", "sublinear"]) == 0
    assert capsys.readouterr().err == ""
    # no thread left behind: one would keep the next search from forking its scorers
    assert threading.active_count() == threads


def test_plan_table_columns_never_run_together(capsys):
    assert main(["plan", "resnet", "--param", "units=3,131,196,3", "--param", "batch=4096",
                 "--strategy", "none"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith(("activations", "total"))]
    for row in rows:
        cls, exact, number, unit = row.rsplit(None, 3)
        assert int(exact.replace(",", "")) > 2**40 and unit in ("TiB", "PiB")
        assert float(number) < 1024
