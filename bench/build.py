"""Time shape inference and gradient-graph construction on the paper's largest networks.

    python bench/build.py            # prints JSON

ResNet: 1001 layers (ImageNet bottleneck, units (3, 131, 196, 3)), batch 32, 3x224x224.
LSTM: 4 layers x 1024 hidden, 1600 steps, batch 64, 50-d inputs, 5000-way softmax per step.
"""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import symbol as sym  # noqa: E402
from examples import lstm, resnet  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, round(time.perf_counter() - t0, 3)


def measure(name, build, shapes):
    net, t_build = timed(build)
    (_, outs, _), t_shape = timed(lambda: net.infer_shape(**shapes))
    assert outs is not None and all(s is not None for s in outs)
    joint, t_grad = timed(lambda: sym.gradient(net.graph))
    return {"net": name, "forward_ops": len(net.graph.nodes), "joint_ops": len(joint.graph.nodes),
            "build_s": t_build, "infer_shape_s": t_shape, "gradient_s": t_grad}


def main():
    steps = 1600
    lstm_shapes = {f"t{t}_data": (64, 50) for t in range(steps)}
    lstm_shapes.update({f"l{i}_init_{k}": (64, 1024) for i in range(4) for k in "ch"})
    rows = [
        measure("resnet-1001", lambda: resnet.get_symbol(units=resnet.units_for_depth(1001)),
                {"data": (32, 3, 224, 224)}),
        measure("lstm-4x1024-1600", lambda: lstm.get_symbol(seq_len=steps, num_layers=4,
                                                            num_hidden=1024, input_size=50,
                                                            num_label=5000), lstm_shapes),
    ]
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
