"""A mirror plan describes exactly what the executor runs: copies per node and their flops.

For every mirror strategy (and a memory budget) on every example network at a small size, one
training step's ``recompute_calls`` equal the plan's per-node counts, the flops of those calls
equal the plan's ``recompute_flops``, the kernel calls are the joint graph's nodes, and the
step's results equal the unmirrored step's.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest
import torch

import executor  # noqa: F401  (installs simple_bind)
import symbol as sym
from examples import lstm, mlp, resnet
from optim.pipeline import default_grad_req
from optim.search import plan_training
from symbol.graph import Entry

from tests.optim.mirror_nets import SYM_PARAMS

from .harness import bind_filled

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RTOL, ATOL = 1e-9, 1e-12
API_NETS = {
    "mlp.py": (lambda: mlp.get_symbol(num_classes=5, hidden=(16, 8)), {"data": (4, 10)}),
    "resnet.py": (lambda: resnet.get_symbol(num_classes=5, units=(2, 2, 1),
                                            filter_list=(8, 16, 32, 64),
                                            image_shape=(3, 16, 16)),
                  {"data": (3, 3, 16, 16)}),
    "lstm.py": (lambda: lstm.get_symbol(seq_len=4, num_layers=2, num_hidden=6, input_size=3,
                                        num_label=5, dropout=0.5),
                {**{f"t{t}_data": (2, 3) for t in range(4)},
                 **{f"l{i}_init_{k}": (2, 6) for i in range(2) for k in "ch"}}),
}
NETS = sorted([*SYM_PARAMS, *API_NETS])
MIRRORS = ["drop-cheap", "drop-cheap-keep-bn", "sublinear", "recursive", "budget"]


def build(name: str) -> tuple[sym.Symbol, dict[str, tuple[int, ...]]]:
    """The network and the shapes of its data inputs (not labels)."""
    if name in API_NETS:
        make, shapes = API_NETS[name]
        return make(), shapes
    net = sym.load(str(EXAMPLES / name), params=SYM_PARAMS[name])
    shapes = {v.name: tuple(ast.literal_eval(v.attrs["__shape__"])) for v in net.graph.inputs
              if "__shape__" in v.attrs and not v.name.endswith("label")}
    return net, shapes


@lru_cache(maxsize=None)
def smallest_plan(name: str) -> int:
    """Bytes of the smallest plan any strategy finds in float64 (a budget the net meets)."""
    net, shapes = build(name)
    reqs = default_grad_req(net.list_arguments(), list(shapes))
    return min(plan_training(net.graph, shapes, grad_req=reqs, mirror=m,
                             aux=net.list_auxiliary_states(),
                             default_dtype="float64")[1].plan.planned_bytes
               for m in MIRRORS[:-1])


def step(name: str, mirror: str):
    """An executor after one training step with ``mirror`` (a strategy or ``budget``)."""
    net, shapes = build(name)
    bind = ({"budget": smallest_plan(name), "budget_scope": "activations"}
            if mirror == "budget" else {"mirror": mirror})
    torch.manual_seed(0)  # the executor's dropout seed comes from torch's generator
    exe = bind_filled(net, shapes, init_seed=1, data_seed=2, classes=5, dtype="float64",
                      **bind)
    exe.forward(is_train=True)
    exe.backward()
    return exe


@lru_cache(maxsize=None)
def unmirrored(name: str):
    exe = step(name, "none")
    return ([o.clone() for o in exe.outputs], {n: g.clone() for n, g in exe.grad_dict.items()})


def flops(exe, node) -> int:
    ins = [exe.shapes[e] for e in node.inputs]
    outs = [exe.shapes[Entry(node, i)] for i in range(node.num_outputs)]
    return node.opdef.cost(node.params, ins, outs).flops


@pytest.mark.parametrize("mirror", MIRRORS)
@pytest.mark.parametrize("name", NETS)
def test_plan_counts_and_flops_are_what_the_executor_runs(name, mirror):
    exe = step(name, mirror)
    plan = exe.mirror_plan
    # per node: the plan's copies are the recompute calls of one step (equality)
    assert dict(exe.recompute_calls) == {n.name: k for n, k in plan.counts.items()}
    assert plan.num_copies == sum(exe.recompute_calls.values())
    assert plan.num_recomputed == len(exe.recompute_calls)
    # every kernel call is a node of the joint graph, once
    ops = [n.op for n in exe.joint.graph.nodes]
    assert dict(exe.kernel_calls) == {op: ops.count(op) for op in set(ops)}
    # flops of the recompute calls / flops of one forward pass == the plan's figure
    by_name = {n.name: n for n in exe.symbol.graph.nodes}
    extra = sum(k * flops(exe, by_name[n]) for n, k in exe.recompute_calls.items())
    total = sum(flops(exe, n) for n in exe.symbol.graph.nodes)
    assert plan.recompute_flops == pytest.approx(extra / total, rel=1e-12, abs=0)
    # and the step computes what the unmirrored step does
    outs, grads = unmirrored(name)
    for got, want in zip(exe.outputs, outs, strict=True):
        torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)
    for n, want in grads.items():
        torch.testing.assert_close(exe.grad_dict[n], want, rtol=RTOL, atol=ATOL,
                                   msg=lambda m, n=n: f"{name} {mirror} {n}: {m}")


@pytest.mark.parametrize("name", NETS)
def test_requested_counts_bound_the_copies(name):
    # copies are made lazily where the backward pass reads them: a requested count k yields
    # at most k copies (fewer where nothing reads a level's copy)
    exe = step(name, "recursive")
    plan = exe.mirror_plan
    for node, k in plan.counts.items():
        assert 1 <= k <= plan.requested[node]
