"""The prepared step: kernels are prepared once at bind, a step only runs the prepared calls,
and the counters still say exactly what the plan runs."""
from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import executor  # noqa: F401
import executor.executor as executor_module
import executor.kernels.nn as nn_kernels
import symbol as sym
from examples import resnet
from symbol.gradient import MIRROR_OF
from symbol.graph import topo_sort

from .harness import bind_filled


def small_resnet(mirror="none"):
    net = resnet.get_symbol(num_classes=5, units=(2, 1), filter_list=(8, 16, 32),
                            image_shape=(3, 16, 16))
    return bind_filled(net, {"data": (2, 3, 16, 16)}, init_seed=1, data_seed=2, classes=5,
                       mirror=mirror)


def step(exe):
    exe.forward(is_train=True)
    exe.backward()


def _refuse(*args, **kwargs):
    raise AssertionError("called during a step")


def test_a_step_prepares_and_parses_nothing(monkeypatch):
    exe = small_resnet("drop-cheap")
    step(exe)
    want = [t.clone() for t in exe.grad_dict.values()]
    phases = exe._forward_steps, exe._backward_steps
    calls = phases[0].calls, phases[1].calls
    # after bind: no kernel preparation, no window parsing of Convolution / Pooling params
    monkeypatch.setattr(executor_module, "prepare", _refuse)
    monkeypatch.setattr(nn_kernels, "conv_window", _refuse)
    monkeypatch.setattr(nn_kernels, "pool_window", _refuse)
    step(exe)
    assert (exe._forward_steps, exe._backward_steps) == phases
    assert (phases[0].calls, phases[1].calls) == calls
    for got, w in zip(exe.grad_dict.values(), want, strict=True):
        torch.testing.assert_close(got, w)  # the same inputs give the same gradients


@pytest.mark.parametrize("mirror", ["none", "drop-cheap", "sublinear"])
def test_counters_equal_the_plan_after_every_phase(mirror):
    exe = small_resnet(mirror)
    order = exe.plan.liveness.order
    forward = set(topo_sort(exe.joint.forward_outputs))
    fwd = Counter(n.op for n in order if n in forward)
    total = Counter(n.op for n in order)
    again = Counter(n.attrs[MIRROR_OF] for n in order if MIRROR_OF in n.attrs)
    assert (mirror == "none") == (not again)
    exe.forward(is_train=True)
    assert exe.kernel_calls == fwd and not exe.recompute_calls
    exe.backward()
    assert exe.kernel_calls == total and exe.recompute_calls == again
    exe.forward(is_train=False)
    assert exe.kernel_calls == total + fwd
    step(exe)
    assert exe.kernel_calls == total + fwd + total
    assert exe.recompute_calls == again + again


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torch's CPU convolution then takes its im2col kernel here
    yield
    torch.set_num_threads(threads)


def test_cpu_im2col_convolution_writes_into_the_plan(one_thread):
    # where torch's CPU convolution is its im2col kernel (one thread, these shapes), both
    # passes call that kernel's out= form, never the generated compute-then-copy overloads
    x = sym.Convolution(sym.Variable("data"), num_filter=8, kernel=(3, 3), pad=(1, 1),
                        name="conv")
    net = sym.SoftmaxOutput(sym.FullyConnected(x, num_hidden=5, name="fc"), name="softmax")
    reqs = {n: "null" if n == "softmax_label" else "write" for n in net.list_arguments()}
    exe = net.simple_bind("cpu", grad_req=reqs, data=(1, 8, 8, 8))
    step(exe)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step(exe)
    ops = Counter({e.key: e.count for e in prof.key_averages()})
    assert ops["aten::_slow_conv2d_forward"] == 1 and ops["aten::convolution"] == 0
    assert ops["aten::_slow_conv2d_backward"] == 1 and ops["aten::convolution_backward"] == 0


def test_a_strided_bound_argument_is_read_afresh_every_step():
    # the prepared FullyConnected holds a matrix view of its input; a strided argument has
    # none, so that node prepares on a contiguous copy at every call
    from examples import mlp
    net = mlp.get_symbol(num_classes=3, hidden=(4,))
    gen = torch.Generator().manual_seed(0)
    shapes = {"data": (5, 2, 3), "fc1_weight": (4, 6), "fc1_bias": (4,), "fc2_weight": (3, 4),
              "fc2_bias": (3,)}
    args = {n: torch.randn(s, generator=gen) for n, s in shapes.items()}
    args["softmax_label"] = torch.tensor([0.0, 1, 2, 1, 0])
    strided = {**args, "data": args["data"].transpose(1, 2).contiguous().transpose(1, 2)}
    assert not strided["data"].is_contiguous()
    reqs = {n: "null" if n in ("data", "softmax_label") else "write"
            for n in net.list_arguments()}
    plain, other = (net.bind("cpu", args=a, grad_req=reqs) for a in (args, strided))
    for _ in range(2):
        for exe in (plain, other):
            exe.arg_dict["data"].add_(1.0)
            step(exe)
        assert torch.equal(plain.outputs[0], other.outputs[0])
        for name, grad in plain.grad_dict.items():
            assert torch.equal(grad, other.grad_dict[name]), name
