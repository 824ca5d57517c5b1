"""MXNet parity of what the nn ops keep and overwrite: in-place pairs run correctly when the
output aliases its input, the planner takes them, and the MXNet-exported nets of
``bench/mxnet_oracle.py`` load and plan (``bench/mxnet_compare.py``).

Every pair is checked twice: kernel by kernel (the output tensor *is* the input tensor, float64,
results equal to the unaliased run) and in a bound network (shared ``data_ptr`` where the plan
says so; outputs and gradients equal to the runs without in-place).
"""
from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

import executor  # noqa: F401  (installs simple_bind)
import symbol as sym
from executor.kernels import KERNELS, KernelContext
from symbol.gradient import MIRROR_OF
from symbol.graph import Entry
from symbol.registry import OPS, no_inplace

from .harness import bind_filled

BENCH = Path(__file__).resolve().parents[2] / "bench"
NETS = BENCH / "mxnet_nets"


# -- kernels: an output that aliases its input ---------------------------------------------------

@dataclass
class Alias:
    """One kernel call: op, attributes, input shapes; ``fill`` overrides generated inputs."""

    id: str
    op: str
    attrs: dict[str, Any]
    shapes: list[tuple[int, ...]]
    fill: dict[int, Any] = field(default_factory=dict)
    is_train: bool = True


def _ties(shape):
    return torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(1)).double()


def _mask(shape):
    return torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(2),
                         dtype=torch.uint8)


def _positive(shape):
    return torch.rand(shape, generator=torch.Generator().manual_seed(3),
                      dtype=torch.float64) + 0.5


ALIASES = [
    Alias("fc-flatten-4d", "_backward_FullyConnected", {"num_hidden": 5},
          [(4, 5), (4, 3, 2, 2), (5, 12)]),
    Alias("fc-no_bias", "_backward_FullyConnected", {"num_hidden": 5, "no_bias": True},
          [(4, 5), (4, 6), (5, 6)]),
    Alias("fc-flatten=False", "_backward_FullyConnected", {"num_hidden": 5, "flatten": False},
          [(2, 3, 5), (2, 3, 6), (5, 6)]),
    Alias("conv-3x3-s2-p1", "_backward_Convolution",
          {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "num_filter": 4},
          [(2, 4, 4, 4), (2, 3, 8, 8), (4, 3, 3, 3)]),
    Alias("conv-group-no_bias", "_backward_Convolution",
          {"kernel": (3, 3), "num_filter": 6, "num_group": 2, "no_bias": True},
          [(2, 6, 4, 4), (2, 4, 6, 6), (6, 2, 3, 3)]),
    Alias("bn-train", "_backward_BatchNorm", {"fix_gamma": False},
          [(2, 3, 4, 4), (2, 3, 4, 4), (3,), (3,), (3,)], {4: _positive}),
    Alias("bn-train-fix_gamma", "_backward_BatchNorm", {},
          [(4, 3), (4, 3), (3,), (3,), (3,)], {4: _positive}),
    Alias("bn-use_global_stats", "_backward_BatchNorm",
          {"fix_gamma": False, "use_global_stats": True},
          [(2, 3, 4, 4), (2, 3, 4, 4), (3,), (3,), (3,)], {4: _positive}),
    Alias("maxpool-3x3-s2-p1", "_backward_Pooling", {"kernel": (3, 3), "stride": (2, 2),
                                                     "pad": (1, 1)},
          [(2, 3, 4, 4), (2, 3, 7, 7)]),
    Alias("maxpool-2x2-s2-ties", "_backward_Pooling", {"kernel": (2, 2), "stride": (2, 2)},
          [(2, 3, 3, 3), (2, 3, 6, 6)], {1: _ties}),
    # more windows than input elements: the pooled values cannot borrow dx's buffer
    Alias("maxpool-2x2-s1-p1", "_backward_Pooling", {"kernel": (2, 2), "pad": (1, 1)},
          [(1, 2, 6, 6), (1, 2, 5, 5)]),
    Alias("maxpool-global-ties", "_backward_Pooling", {"global_pool": True},
          [(2, 3, 1, 1), (2, 3, 5, 5)], {1: _ties}),
    Alias("dropout-backward", "_backward_Dropout", {"p": 0.3}, [(4, 6), (4, 6)], {1: _mask}),
    Alias("dropout-backward-inference", "_backward_Dropout", {"p": 0.3}, [(4, 6), (4, 6)],
          {1: lambda s: torch.ones(s, dtype=torch.uint8)}, is_train=False),
    Alias("dropout", "Dropout", {"p": 0.3}, [(4, 6)]),
]


def _inputs(case: Alias) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [case.fill[i](s) if i in case.fill
            else torch.randn(s, generator=gen, dtype=torch.float64)
            for i, s in enumerate(case.shapes)]


def _call(case: Alias, params, ins, pair: tuple[int, int] | None) -> list[torch.Tensor]:
    """Run the kernel; with ``pair`` = (i, o), output o is input i's tensor."""
    opdef = OPS[case.op]
    _, out_shapes = opdef.infer_shape(params, list(case.shapes))
    types = opdef.infer_type(params, [str(t.dtype).replace("torch.", "") for t in ins],
                             len(out_shapes))
    outs = []
    for shape, dtype in zip(out_shapes, types, strict=True):
        assert shape is not None and dtype is not None
        outs.append(torch.full(shape, float("nan")).to(getattr(torch, dtype)))
    if pair is not None:
        i, o = pair
        outs[o] = ins[i]
    state = {"is_train": case.is_train, "step": 1, "seed": 5}
    KERNELS[case.op](KernelContext("n", params, 0, state), ins, outs)
    return outs


@pytest.mark.parametrize("case", ALIASES, ids=[c.id for c in ALIASES])
def test_kernel_output_may_overwrite_its_declared_input(case):
    params = OPS[case.op].parse_params(case.attrs, "n")
    pairs = OPS[case.op].inplace(params)
    assert pairs, f"{case.op} declares no in-place pair for {case.attrs}"
    want = _call(case, params, _inputs(case), None)
    for pair in pairs:
        ins = _inputs(case)
        got = _call(case, params, ins, pair)
        assert got[pair[1]].data_ptr() == ins[pair[0]].data_ptr()
        for k, (g, w) in enumerate(zip(got, want, strict=True)):
            torch.testing.assert_close(g, w, rtol=0, atol=0,
                                       msg=f"pair {pair}, output {k} differs")


def test_every_nn_inplace_pair_has_an_alias_case():
    declared = {n for n, op in OPS.items() if op.family == "nn" and op.inplace is not no_inplace}
    assert declared <= {c.op for c in ALIASES}


# -- the planner takes the pairs in bound networks -----------------------------------------------

def _mlp() -> sym.Symbol:
    x = sym.Variable("data")
    for i, width in enumerate((32, 16)):
        x = sym.FullyConnected(x, num_hidden=width, name=f"fc{i + 1}")
        x = sym.Activation(x, act_type="relu", name=f"relu{i + 1}")
        x = sym.Dropout(x, p=0.5, name=f"drop{i + 1}")
    x = sym.FullyConnected(x, num_hidden=10, name="fc3")
    return sym.SoftmaxOutput(x, name="softmax")


def _convnet() -> sym.Symbol:
    """conv - BN - max pool - conv - flatten - FC - softmax: every nn backward pair applies."""
    x = sym.Convolution(sym.Variable("data"), kernel=(3, 3), pad=(1, 1), num_filter=4,
                        name="conv1")
    x = sym.BatchNorm(x, fix_gamma=False, name="bn")
    x = sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max", name="pool")
    x = sym.Convolution(x, kernel=(3, 3), num_filter=4, name="conv2")
    x = sym.FullyConnected(sym.Flatten(x, name="flat"), num_hidden=10, name="fc")
    return sym.SoftmaxOutput(x, name="softmax")


Shapes = dict[str, tuple[int, ...]]
NETWORKS: dict[str, tuple[Callable[[], sym.Symbol], Shapes, dict[str, str]]] = {
    # each backward writes its data gradient over the input it read last
    "mlp": (_mlp, {"data": (8, 20)}, {"fc2_backward": "drop1", "fc3_backward": "drop2"}),
    "convnet": (_convnet, {"data": (2, 3, 8, 8)},
                {"pool_backward": "bn", "conv2_backward": "pool", "fc_backward": "flat",
                 "bn_backward": "conv1"}),
}


def _run(name: str, strategy: str | None):
    build, shapes, _ = NETWORKS[name]
    exe = bind_filled(build(), shapes, init_seed=0, data_seed=0, strategy=strategy,
                      dtype="float64")
    exe.state["seed"] = 11  # one Dropout mask for every run
    exe.forward(is_train=True)
    exe.backward()
    return exe


def _assert_same_results(exe, base) -> None:
    for got, want in zip(exe.outputs, base.outputs, strict=True):
        assert torch.equal(got, want)
    for n in base.grad_dict:
        assert torch.equal(exe.grad_dict[n], base.grad_dict[n]), n


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_planner_writes_data_gradients_over_dead_inputs(name):
    exe = _run(name, "sharing")
    by_name = {n.name: n for n in exe.plan.graph.nodes}
    for bwd, src in NETWORKS[name][2].items():
        out, into = Entry(by_name[bwd], 0), Entry(by_name[src], 0)
        assert exe.plan.inplace.get(out) == into, f"{bwd} does not overwrite {src}"
        assert exe._buffers[out].data_ptr() == exe._buffers[into].data_ptr()
    _assert_same_results(exe, _run(name, "none"))


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_results_equal_without_inplace(name, monkeypatch):
    exe = _run(name, None)
    assert exe.plan.num_inplace > 0
    monkeypatch.setenv("NO_INPLACE", "1")
    base = _run(name, None)
    assert base.plan.num_inplace == 0
    _assert_same_results(exe, base)


def _vgg_like() -> sym.Symbol:
    x = sym.Variable("data")
    for i, width in enumerate((4, 8)):
        x = sym.Convolution(x, kernel=(3, 3), pad=(1, 1), num_filter=width, name=f"conv{i}")
        x = sym.Activation(x, act_type="relu", name=f"relu{i}")
        x = sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type="max", name=f"pool{i}")
    x = sym.Dropout(sym.FullyConnected(x, num_hidden=16, name="fc1"), p=0.5, name="drop")
    return sym.SoftmaxOutput(sym.FullyConnected(x, num_hidden=10, name="fc2"), name="softmax")


def test_recomputed_max_pooling_and_dropout_give_the_same_step():
    # drop-cheap recomputes ReLU, Pooling and Dropout: the pooling backward then reads the
    # recomputed ReLU output, and the recomputed Dropout redraws its uint8 mask
    runs = []
    for mirror in ("none", "drop-cheap"):
        exe = bind_filled(_vgg_like(), {"data": (2, 3, 8, 8)}, init_seed=0, data_seed=0,
                          mirror=mirror, dtype="float64")
        exe.state["seed"] = 11
        exe.forward(is_train=True)
        exe.backward()
        runs.append(exe)
    mirrored = {n.op for n in runs[1].plan.graph.nodes if MIRROR_OF in n.attrs}
    assert {"Pooling", "Dropout", "Activation"} <= mirrored
    _assert_same_results(runs[1], runs[0])


def _planned(pool_type: str) -> int:
    x = sym.Activation(sym.Convolution(sym.Variable("data"), kernel=(3, 3), num_filter=4,
                                       name="conv"), act_type="relu", name="relu")
    net = sym.Pooling(x, kernel=(2, 2), stride=(2, 2), pool_type=pool_type, name="pool")
    net = sym.SoftmaxOutput(sym.FullyConnected(net, num_hidden=3, name="fc"), name="sm")
    exe = net.simple_bind("cpu", grad_req={"data": "null", "sm_label": "null",
                                           "conv_weight": "write", "conv_bias": "write",
                                           "fc_weight": "write", "fc_bias": "write"},
                          strategy="sharing", data=(4, 3, 10, 10))
    return exe.plan.planned_bytes


def test_max_pooling_after_relu_plans_what_avg_pooling_plans():
    # the ReLU backward keeps the pooling input alive anyway, so recomputing the argmax from it
    # costs no planned byte, and no index buffer is left
    assert _planned("max") == _planned("avg")


# -- MXNet-exported nets (bench/mxnet_oracle.py) and bench/mxnet_compare.py ----------------------


def _record(net: str) -> dict:
    path = NETS / "shapes.json"
    record = json.loads(path.read_text())["nets"].get(net) if path.exists() else None
    if record is None or not (NETS / record["file"]).exists():
        pytest.skip(f"no MXNet JSON saved for {net} (run bench/mxnet_oracle.py)")
    return record


def _compare_module():
    spec = importlib.util.spec_from_file_location("mxnet_compare", BENCH / "mxnet_compare.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_script_reports_ratios_for_every_setting():
    _record("mlp_dropout")
    report = _compare_module().compare(["mlp_dropout"], 0.9)
    (row,) = report["nets"]
    oracle = {r["net"]: r for r in json.loads((NETS / "oracle.json").read_text())["results"]}
    for setting in ("default", "mirror", "no_sharing"):
        got = row[setting]
        assert got["mxnet_mib"] == oracle["mlp_dropout"][setting + "_mib"]
        assert got["ratio"] == round(got["planned_bytes"] / 2**20 / got["mxnet_mib"], 3)
        # three FC backward ops write their data gradient over a dead Dropout output
        assert got["num_inplace"] >= 3
    assert row["mirror"]["mirror"] == "drop-cheap" and row["default"]["mirror"] == "none"
    assert row["no_sharing"]["strategy"] == "inplace"
    assert set(row["targets"]) == {"default_le_0.9x_mxnet", "mirror_le_mxnet_mirror"}
