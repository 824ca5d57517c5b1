"""Mirroring (recompute) in the executor: exact results, and exactly the planned recomputes."""
from __future__ import annotations

import pytest
import torch

import executor  # noqa: F401
import symbol as sym
from examples import lstm, resnet
from optim.mirror import MIRROR_STRATEGIES, drop_cheap

from .harness import bind_filled

RTOL, ATOL = 1e-9, 1e-12


def mlp_dropout():
    x = sym.Variable("data")
    for i in range(4):
        with sym.AttrScope(mirror_stage="True") if i % 2 else _nullscope():
            x = sym.FullyConnected(x, num_hidden=16, name=f"fc{i}")
        x = sym.Activation(sym.BatchNorm(x, fix_gamma=False, name=f"bn{i}"), act_type="relu",
                           name=f"relu{i}")
        x = sym.Dropout(x, p=0.5, name=f"drop{i}")
    return sym.SoftmaxOutput(sym.FullyConnected(x, num_hidden=5, name="out"), name="softmax")


class _nullscope:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


NETS = {
    "mlp-dropout-bn": (mlp_dropout, {"data": (6, 10)}),
    "resnet": (lambda: resnet.get_symbol(num_classes=5, units=(2, 2, 1),
                                         filter_list=(8, 16, 32, 64), image_shape=(3, 16, 16)),
               {"data": (3, 3, 16, 16)}),
    "lstm-dropout": (lambda: lstm.get_symbol(seq_len=5, num_layers=2, num_hidden=8,
                                             input_size=4, num_label=5, dropout=0.5),
                     {**{f"t{t}_data": (3, 4) for t in range(5)},
                      **{f"l{i}_init_{k}": (3, 8) for i in range(2) for k in "ch"}}),
}


def run(name, mirror, steps=2):
    build, shapes = NETS[name]
    torch.manual_seed(0)  # the executor's dropout seed comes from torch's generator
    exe = bind_filled(build(), shapes, init_seed=1, data_seed=2, classes=5, dtype="float64",
                      mirror=mirror)
    for _ in range(steps):
        exe.forward(is_train=True)
        exe.backward()
    return exe


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("mirror", [m for m in MIRROR_STRATEGIES if m != "none"])
def test_mirrored_step_equals_the_unmirrored_step(name, mirror):
    base, exe = run(name, "none"), run(name, mirror)
    # a plan recomputes something unless it fell back (it would have planned more bytes)
    assert exe.recompute_calls or exe.mirror_plan.note.startswith("fell back to no "), \
        "the plan recomputes nothing"
    for got, want in zip(exe.outputs, base.outputs, strict=True):
        torch.testing.assert_close(got, want, rtol=RTOL, atol=ATOL)
    for d, b in ((exe.grad_dict, base.grad_dict), (exe.aux_dict, base.aux_dict)):
        for n in b:
            torch.testing.assert_close(d[n], b[n], rtol=RTOL, atol=ATOL,
                                       msg=lambda m, n=n: f"{mirror} {n}: {m}")


@pytest.mark.parametrize("name", sorted(NETS))
def test_no_mirror_runs_each_forward_op_once(name):
    exe = run(name, "none", steps=1)
    assert not exe.recompute_calls
    forward_ops = [n.op for n in exe.symbol.graph.nodes]
    for op in set(forward_ops):
        if not op.startswith("_backward"):
            extra = exe.kernel_calls[op] - forward_ops.count(op)
            assert extra == sum(1 for n in exe.plan.liveness.order
                                if n.op == op and n not in set(exe.symbol.graph.nodes)), op


@pytest.mark.parametrize("name", sorted(NETS))
def test_drop_cheap_recomputes_exactly_the_cheap_ops(name):
    exe = run(name, "drop-cheap", steps=1)
    cheap = {n.name for n in drop_cheap(exe.symbol.graph)}
    assert set(exe.recompute_calls) <= cheap
    assert all(v == 1 for v in exe.recompute_calls.values())
    ops = {n.name: n.op for n in exe.symbol.graph.nodes}
    kept_ops = {"Convolution", "FullyConnected", "SoftmaxOutput", "Concat"}
    assert not {ops[n] for n in exe.recompute_calls} & kept_ops
    if name == "mlp-dropout-bn":  # the cheap nodes whose outputs the backward pass reads
        assert {"relu0", "bn0", "drop0"} <= set(exe.recompute_calls)


@pytest.mark.parametrize("name", sorted(NETS))
def test_sublinear_recomputes_each_dropped_node_once(name):
    exe = run(name, "sublinear", steps=1)
    plan = exe.mirror_plan
    assert all(v == 1 for v in exe.recompute_calls.values())
    assert dict(exe.recompute_calls) == {n.name: k for n, k in plan.counts.items()}
    assert set(exe.recompute_calls) <= {n.name for n in plan.requested}
    assert sum(exe.recompute_calls.values()) <= len(exe.symbol.graph.nodes)  # <= one forward
    assert plan.searched and plan.budget is not None


def test_recursive_recomputes_as_planned():
    exe = run("resnet", "recursive", steps=1)
    plan = exe.mirror_plan
    # the plan counts the copies the joint graph holds: exactly the executor's calls
    assert dict(exe.recompute_calls) == {n.name: k for n, k in plan.counts.items()}
    assert max(exe.recompute_calls.values()) > 1
    # Alg. 2 was asked for more: copies are made only where the backward pass reads them
    requested = {n.name: k for n, k in plan.requested.items()}
    assert all(calls <= requested[name] for name, calls in exe.recompute_calls.items())
    assert sum(requested.values()) > sum(exe.recompute_calls.values())


def test_batchnorm_statistics_updated_once_per_step_when_recomputed():
    base, exe = run("resnet", "none", steps=1), run("resnet", "drop-cheap", steps=1)
    assert exe.recompute_calls["bn_data"] == 1 or exe.recompute_calls["stage1_unit1_1_bn"] == 1
    for n in base.aux_dict:
        torch.testing.assert_close(exe.aux_dict[n], base.aux_dict[n], rtol=RTOL, atol=ATOL)
