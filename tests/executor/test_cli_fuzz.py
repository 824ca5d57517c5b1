"""Fuzzing the command line: mutated example files never make ``check`` or ``plan`` fail with
an internal error.

Each case takes one of examples/*.sym, applies one mutation (the strategy of
tests/symbol/test_dsl_fuzz.py: delete, duplicate, swap or replace a token, or insert random
bytes), writes it to a file and runs ``sublinear check`` on it with the small parameters, then
``sublinear plan`` (a sublinear mirror plan for the networks with ``mirror_stage`` marks) when
the check passed (80 cases per file; ``SUBLINEAR_FUZZ_CASES=N`` for more). Every run must end
with status 0 or 2 (a user's mistake, reported as ``file:line:col: error:`` or
``sublinear: error:``); status 70 (an internal error) is a bug.
"""
from __future__ import annotations

import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executor.app.cli import main
from tests.symbol.test_dsl_fuzz import SMALL, TEXTS, mutated

#: Cases per example file (``SUBLINEAR_FUZZ_CASES`` runs more, e.g. before a release).
CASES = int(os.environ.get("SUBLINEAR_FUZZ_CASES", "80"))
SETTINGS = settings(max_examples=CASES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])
MIRROR = {"resnet.sym": "sublinear", "lstm.sym": "sublinear", "gru.sym": "sublinear",
          "densenet.sym": "drop-cheap", "mlp.sym": "none", "inception.sym": "drop-cheap"}
ERROR = re.compile(r"^(sublinear: error: |[^\n]*:\d+:\d+: error: )")


def _params(name: str) -> list[str]:
    out = []
    for key, value in SMALL[name].items():
        text = ",".join(map(str, value)) if isinstance(value, tuple) and all(
            isinstance(v, int) for v in value) else repr(value).replace(" ", "")
        out += ["--param", f"{key}={text}"]
    return out


def _run(capsys, argv: list[str]) -> int:
    status = main(argv)
    _, err = capsys.readouterr()
    assert status in (0, 2), err
    assert status == 0 or ERROR.match(err), err
    assert "Traceback" not in err and "internal error" not in err
    return status


def _fuzz(name: str, text: str, tmp_path, capsys) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    params = _params(name)
    if _run(capsys, ["check", str(path), *params]) == 0:
        _run(capsys, ["plan", str(path), *params, "--mirror", MIRROR[name], "--saved"])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_unmutated_examples_check_and_plan(name, tmp_path, capsys):
    path = tmp_path / name
    path.write_text(TEXTS[name])
    assert _run(capsys, ["check", str(path), *_params(name)]) == 0
    assert _run(capsys, ["plan", str(path), *_params(name), "--mirror", MIRROR[name]]) == 0


@pytest.mark.parametrize("name", sorted(SMALL))
@SETTINGS
@given(data=st.data())
def test_fuzz_cli(name, tmp_path, capsys, data):
    _fuzz(name, data.draw(mutated(name)), tmp_path, capsys)
