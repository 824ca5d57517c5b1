"""`sublinear plan` end to end (subprocess): strategies, environment toggles, attributes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NET = ["resnet", "--param", "units=1,2,1,1", "--param", "batch=2",
       "--param", "image_shape=3,64,64"]


def run(args, env=None, check=True):
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("MXNET_", "NNVM_", "SUBLINEAR_"))}
    full_env.update(env or {})
    res = subprocess.run([sys.executable, "-m", "executor.app.cli", "plan", *args], cwd=ROOT,
                         env=full_env, capture_output=True, text=True)
    if check:
        assert res.returncode == 0, res.stderr
    return res


def plan_json(args, env=None):
    return json.loads(run([*args, "--json"], env).stdout)


def test_json_report_has_the_documented_keys():
    rep = plan_json(NET)
    for key in ("planned_bytes", "live_peak_bytes", "total_bytes", "num_storage", "num_inplace",
                "bytes_by_class", "strategy", "mirror", "recompute_flops"):
        assert key in rep
    assert rep["strategy"] == "sharing" and rep["mirror"] == "none"
    by_class = rep["bytes_by_class"]
    assert by_class["activations"] + by_class["gradients"] == rep["live_peak_bytes"]
    assert by_class["activations"] + by_class["gradients"] + by_class["unused"] \
        == rep["planned_bytes"] <= 1.05 * rep["live_peak_bytes"]


def test_strategies_order_and_environment_selects_them():
    none = plan_json([*NET, "--strategy", "none"])
    inplace = plan_json(NET, {"MXNET_EXEC_MATCH_RANGE": "0"})
    sharing = plan_json(NET)
    assert inplace["strategy"] == "inplace" and none["num_inplace"] == 0
    assert none["planned_bytes"] > inplace["planned_bytes"] > sharing["planned_bytes"]
    no_inplace = plan_json(NET, {"MXNET_EXEC_ENABLE_INPLACE": "0"})
    assert no_inplace["num_inplace"] == 0
    # the CLI option wins over the environment
    assert plan_json([*NET, "--strategy", "sharing"],
                     {"NNVM_EXEC_MATCH_RANGE": "0"})["strategy"] == "sharing"


def test_mirror_environment_and_option():
    base = plan_json(NET)
    cheap = plan_json(NET, {"MXNET_BACKWARD_DO_MIRROR": "1"})
    sub = plan_json(NET, {"SUBLINEAR_MIRROR": "sublinear"})
    assert cheap["mirror"] == "drop-cheap" and sub["mirror"] == "sublinear"
    assert base["planned_bytes"] > cheap["planned_bytes"] > sub["planned_bytes"]
    assert 0 < cheap["recompute_flops"] < sub["recompute_flops"] <= 1.0
    assert len(sub["search"]) == 6
    assert plan_json([*NET, "--mirror", "none"],
                     {"SUBLINEAR_MIRROR": "sublinear"})["mirror"] == "none"


def test_force_mirroring_attribute_in_a_dsl_file(tmp_path):
    net = tmp_path / "net.sym"
    net.write_text(
        "input data: (8, 16);\n"
        "fc1 = FullyConnected(data, num_hidden=32) with __force_mirroring__ = \"True\";\n"
        "relu1 = Activation(fc1, act_type=\"relu\") with __force_mirroring__ = \"False\";\n"
        "fc2 = FullyConnected(relu1, num_hidden=4);\n"
        "softmax = SoftmaxOutput(fc2);\noutput softmax;\n")
    rep = plan_json([str(net), "--mirror", "drop-cheap", "--saved"])
    rows = {r["node"]: (r["planned"], r["decision"]) for r in rep["saved"]}
    # the plan recomputes fc1, but no backward op reads fc1's output (FullyConnected's
    # backward reads its input, Activation's its output): --saved says it never reruns
    assert rows["fc1"] == ("recompute x1", "not needed")
    assert rows["relu1"] == ("keep", "saved") and rep["recompute_ops"] == 0
    flipped = net.read_text().replace('"True"', '"X"').replace('"False"', '"True"')
    net.write_text(flipped.replace('"X"', '"False"'))
    rep = plan_json([str(net), "--mirror", "drop-cheap", "--saved"])
    rows = {r["node"]: (r["planned"], r["decision"]) for r in rep["saved"]}
    assert rows["relu1"] == ("recompute x1", "recomputed x1") and rep["recompute_ops"] == 1
    assert rows["fc1"] == ("keep", "saved")


@pytest.mark.parametrize("env,message", [
    ({"SUBLINEAR_MIRROR": "fast"}, "SUBLINEAR_MIRROR='fast' is invalid: expected one of none, "
                                   "drop-cheap"),
    ({"MXNET_EXEC_MATCH_RANGE": "x"}, "MXNET_EXEC_MATCH_RANGE='x' is invalid"),
    ({"SUBLINEAR_MEMORY_BUDGET": "lots"}, "memory budget 'lots' is invalid"),
    ({"SUBLINEAR_MEMORY_BUDGET": "1KB"}, "memory budget 1000 B for the whole step cannot be met"),
    ({"SUBLINEAR_MEMORY_BUDGET": "1KB", "SUBLINEAR_BUDGET_SCOPE": "activations"},
     "memory budget 1000 B cannot be met: the smallest plan found needs"),
    ({"SUBLINEAR_BUDGET_SCOPE": "all", "SUBLINEAR_MEMORY_BUDGET": "1GB"},
     "SUBLINEAR_BUDGET_SCOPE 'all' is invalid"),
    ({"SUBLINEAR_MEMORY_BUDGET": "-5"}, "memory budget '-5' is invalid"),
])
def test_bad_settings_fail_with_one_clear_line(env, message):
    res = run(NET, env, check=False)
    assert res.returncode == 2
    assert message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_budget_picks_a_plan_that_fits():
    sub = plan_json([*NET, "--mirror", "sublinear"])
    rep = plan_json([*NET, "--budget", str(sub["planned_bytes"]), "--budget-scope",
                     "activations"])
    assert rep["planned_bytes"] <= sub["planned_bytes"]


def test_table_and_timeline(tmp_path):
    png = tmp_path / "timeline.png"
    res = run([*NET, "--mirror", "sublinear", "--timeline", str(png)])
    assert "planned (a+g)" in res.stdout and "mirror sublinear:" in res.stdout
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_update_in_backward_moves_parameter_gradients_into_the_arena():
    base = plan_json([*NET, "--mirror", "sublinear"])
    for upd in (plan_json([*NET, "--mirror", "sublinear", "--update-in-backward"]),
                plan_json([*NET, "--mirror", "sublinear"],
                          env={"SUBLINEAR_UPDATE_IN_BACKWARD": "1"})):
        assert base["updates_in_backward"] == 0 and upd["updates_in_backward"] > 0
        assert base["bytes_by_class"]["parameter_gradients"] > 0
        assert upd["bytes_by_class"]["parameter_gradients"] == 0
        assert upd["total_bytes"] < base["total_bytes"]
