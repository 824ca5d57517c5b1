"""Time the network language on the paper's largest networks: parse, lower, infer shapes.

    python bench/dsl.py            # prints JSON; each total must stay under 5 s (2-core CPU)

ResNet: examples/resnet.sym with units (3, 131, 196, 3) (1001 layers), batch 32, 3x224x224.
LSTM: examples/lstm.sym with 1600 steps (4 layers x 1024 hidden, 50-d inputs, 5000-way softmax
per step), batch 64. Input shapes come from the files' ``input``/``Variable`` declarations.
"""
from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from symbol import dsl  # noqa: E402
from symbol.dsl_lower import lower  # noqa: E402

LIMIT_S = 5.0


def measure(name: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    with open(path) as f:
        text = f.read()
    t0 = time.perf_counter()
    module = dsl.parse(text, path)
    t1 = time.perf_counter()
    net = lower(module, params=params, parse=dsl.parse).symbol
    graph = net.graph
    t2 = time.perf_counter()
    _, outs, _ = net.infer_shape()
    t3 = time.perf_counter()
    assert outs is not None and all(s is not None for s in outs)
    total = t3 - t0
    return {"net": name, "forward_ops": len(graph.nodes), "variables": len(graph.inputs),
            "parse_s": round(t1 - t0, 3), "lower_s": round(t2 - t1, 3),
            "infer_shape_s": round(t3 - t2, 3), "total_s": round(total, 3),
            "under_limit": total < LIMIT_S}


def main() -> None:
    examples = os.path.join(ROOT, "examples")
    t0 = time.perf_counter()
    dsl.parse("", "<warm-up>")  # compiles the grammar, once per process
    rows: list[dict[str, Any]] = [{"grammar_s": round(time.perf_counter() - t0, 3)}]
    rows += [
        measure("resnet-1001", os.path.join(examples, "resnet.sym"),
                {"units": (3, 131, 196, 3), "batch": 32, "image_shape": (3, 224, 224)}),
        measure("lstm-4x1024-1600", os.path.join(examples, "lstm.sym"),
                {"steps": 1600, "batch": 64}),
    ]
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
