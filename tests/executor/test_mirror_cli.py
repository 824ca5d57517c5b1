"""`sublinear plan NET --mirror sublinear` on networks written without mirror_stage marks.

The example DenseNet, Inception and GRU files with their marks removed: the sublinear plan
finds its cut points in the graph, recomputes, and plans less than no recomputation.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNMARKED = {
    "densenet.sym": ["blocks=3,4", "growth=8", "stem=16", "image=3,32,32", "num_classes=5",
                     "batch=4"],
    "inception.sym": ["image_size=32", "batch=4", "num_classes=5"],
    "gru.sym": ["steps=12", "layers=2", "hidden=16", "input_size=4", "num_label=5", "batch=3"],
}


def plan_json(path: Path, params: list[str], mirror: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MXNET_", "NNVM_", "SUBLINEAR_"))}
    args = [str(path), "--mirror", mirror, "--json"]
    for p in params:
        args += ["--param", p]
    res = subprocess.run([sys.executable, "-m", "executor.app.cli", "plan", *args], cwd=ROOT,
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


@pytest.mark.parametrize("name", sorted(UNMARKED))
def test_sublinear_plans_a_network_without_marks(name, tmp_path):
    text = (ROOT / "examples" / name).read_text()
    unmarked = re.sub(r"\s*with mirror_stage = [^;{]*", "", text)
    assert "mirror_stage =" not in unmarked
    path = tmp_path / name
    path.write_text(unmarked)
    sub = plan_json(path, UNMARKED[name], "sublinear")
    none = plan_json(path, UNMARKED[name], "none")
    assert sub["mirror"] == "sublinear" and len(sub["search"]) == 6
    assert sub["num_recomputed"] > 0 and sub["recompute_ops"] >= sub["num_recomputed"]
    assert sub["planned_bytes"] < none["planned_bytes"]
