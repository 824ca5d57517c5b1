"""Our plan against real MXNet 1.9.1's, on the symbol JSON MXNet exported (no MXNet needed).

``bench/mxnet_oracle.py`` (run once with an MXNet virtual environment) saved each network's
JSON in ``bench/mxnet_nets/``, its input shapes in ``shapes.json`` and MXNet's planned MiB
("Total N MB allocated") in ``oracle.json``. This script loads each saved JSON with
``symbol.load_json``, plans it with ``optim.search.plan_training`` as ``sublinear plan`` does
(``grad_req`` ``write`` for parameters, ``null`` for the data and label inputs, as MXNet's
``Module`` binds), and prints one JSON document: per net and setting our planned bytes
(activations + intermediate gradients), MXNet's MiB and the ratio ours / MXNet. Settings, as
the oracle ran MXNet (each one the current environment with only that variable changed):

* ``default``: no variable (our default strategy, no mirror);
* ``mirror``: ``MXNET_BACKWARD_DO_MIRROR=1`` (our ``drop-cheap``);
* ``no_sharing``: ``NNVM_EXEC_MATCH_RANGE=0`` (our ``inplace``: in-place pairs, no sharing).

``targets`` says whether the default plan is at most ``--default-target`` (0.9) times MXNet's
and the mirror plan at most MXNet's mirror plan. Our numbers are computed, never stored::

    python bench/mxnet_compare.py                       # every net with an oracle row
    python bench/mxnet_compare.py --nets vgg16_max_pool,mlp_dropout
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from optim.flags import read_flags
from optim.mirror import resolve_mirror
from optim.search import plan_training
from symbol import load_json

NETS_DIR = Path(__file__).resolve().parent / "mxnet_nets"
MiB = 2**20
#: The oracle's settings: the variable each one sets (the others are cleared).
SETTINGS = {"default": {}, "mirror": {"MXNET_BACKWARD_DO_MIRROR": "1"},
            "no_sharing": {"NNVM_EXEC_MATCH_RANGE": "0"}}
_CLEARED = ("MXNET_BACKWARD_DO_MIRROR", "SUBLINEAR_MIRROR", "NNVM_EXEC_MATCH_RANGE",
            "MXNET_EXEC_MATCH_RANGE")


def setting_env(setting: str) -> dict[str, str]:
    """The environment of one setting: ours with only the oracle's variables changed."""
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    env.update(SETTINGS[setting])
    return env


def plan_net(record: dict[str, Any], setting: str) -> dict[str, Any]:
    """Our plan of one saved net under one setting: bytes, strategy, mirror, seconds."""
    net = load_json(str(NETS_DIR / record["file"]))
    shapes = {k: tuple(v) for k, v in record["input_shapes"].items()}
    reqs = {a: "null" if a in shapes else "write" for a in net.list_arguments()}
    env = setting_env(setting)
    start = time.perf_counter()
    mplan, nplan = plan_training(net.graph, shapes, grad_req=reqs,
                                 aux=net.list_auxiliary_states(), flags=read_flags(env),
                                 mirror=resolve_mirror(None, env))
    plan = nplan.plan
    return {"planned_bytes": plan.planned_bytes, "planned_mib": round(plan.planned_bytes / MiB, 1),
            "strategy": plan.strategy, "mirror": mplan.strategy,
            "num_inplace": plan.num_inplace, "seconds": round(time.perf_counter() - start, 2)}


def compare(nets: list[str], default_target: float) -> dict[str, Any]:
    """The report for ``nets`` (names in ``oracle.json`` with a JSON in ``shapes.json``)."""
    oracle = json.loads((NETS_DIR / "oracle.json").read_text())
    sidecar = json.loads((NETS_DIR / "shapes.json").read_text())["nets"]
    rows = {r["net"]: r for r in oracle["results"]}
    out = []
    for name in nets:
        row: dict[str, Any] = {"net": name}
        for setting in SETTINGS:
            ours = plan_net(sidecar[name], setting)
            theirs = rows[name][setting + "_mib"]
            ratio = ours["planned_bytes"] / MiB / theirs
            row[setting] = {**ours, "mxnet_mib": theirs, "ratio": round(ratio, 3)}
        d, m = row["default"], row["mirror"]
        row["targets"] = {
            f"default_le_{default_target}x_mxnet": d["ratio"] <= default_target,
            "mirror_le_mxnet_mirror": m["ratio"] <= 1.0}
        out.append(row)
    return {"mxnet_version": oracle.get("mxnet_version"), "mxnet_device": oracle.get("device"),
            "mxnet_features": oracle.get("features", []), "nets": out}


def available() -> list[str]:
    """Nets with an MXNet measurement and a saved JSON, in the oracle's order."""
    if not (NETS_DIR / "oracle.json").exists() or not (NETS_DIR / "shapes.json").exists():
        return []
    oracle = json.loads((NETS_DIR / "oracle.json").read_text())
    sidecar = json.loads((NETS_DIR / "shapes.json").read_text())["nets"]
    return [r["net"] for r in oracle["results"]
            if r["net"] in sidecar and (NETS_DIR / sidecar[r["net"]]["file"]).exists()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nets", default="", help="comma-separated (default: all available)")
    parser.add_argument("--default-target", type=float, default=0.9,
                        help="ratio the default plan should stay under (default 0.9)")
    args = parser.parse_args(argv)
    have = available()
    nets = [n for n in args.nets.split(",") if n] or have
    missing = [n for n in nets if n not in have]
    if missing:
        parser.error(f"no MXNet measurement or saved JSON for {missing}; available: {have}")
    json.dump(compare(nets, args.default_target), sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
