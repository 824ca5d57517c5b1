"""Bad input at bind and run time: one clear SymbolError, never an internal traceback."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import executor  # noqa: F401
import symbol as sym
from executor import ExecutorError
from symbol.errors import SymbolError


def net():
    fc = sym.FullyConnected(sym.Variable("data"), num_hidden=3, name="fc")
    return sym.SoftmaxOutput(fc, name="sm")


def test_executor_errors_are_symbol_errors():
    assert issubclass(ExecutorError, SymbolError)


def test_simple_bind_without_data_shape_names_what_is_missing():
    with pytest.raises(ExecutorError, match="cannot infer the shape of data, fc_weight"):
        net().simple_bind("cpu")


def test_forward_with_wrong_shape_or_unknown_name():
    exe = net().simple_bind("cpu", data=(4, 5))
    with pytest.raises(ExecutorError, match=r"'data' has shape \(4, 5\), got an array of shape "
                                            r"\(4, 6\)"):
        exe.forward(data=np.zeros((4, 6), np.float32))
    with pytest.raises(ExecutorError, match="'dat' is not an argument"):
        exe.forward(dat=np.zeros((4, 5), np.float32))


def test_backward_needs_a_training_forward():
    exe = net().simple_bind("cpu", data=(4, 5))
    exe.forward(is_train=False)
    with pytest.raises(ExecutorError, match=r"needs a preceding forward\(is_train=True\)"):
        exe.backward()


def test_bad_grad_req_and_device():
    with pytest.raises(ExecutorError, match="grad_req for 'data' is 'wirte'"):
        net().simple_bind("cpu", grad_req={"data": "wirte"}, data=(4, 5))
    with pytest.raises(ExecutorError, match="grad_req names unknown arguments: x"):
        net().simple_bind("cpu", grad_req={"x": "write"}, data=(4, 5))
    with pytest.raises(ExecutorError, match="unknown device 'tpu'"):
        net().simple_bind("tpu", data=(4, 5))
    if not torch.cuda.is_available():
        with pytest.raises(ExecutorError, match="CUDA is not available"):
            net().simple_bind("cuda", data=(4, 5))


def test_bind_reports_missing_arrays():
    s = net()
    with pytest.raises(ExecutorError, match="no array for argument"):
        s.bind("cpu", args={"data": torch.zeros(4, 5)})
    with pytest.raises(ExecutorError, match=r"2 args for 4 names"):
        s.bind("cpu", args=[torch.zeros(4, 5), torch.zeros(3, 5)])


def test_bind_with_inconsistent_arrays_is_a_shape_error():
    s = net()
    args = {"data": torch.zeros(4, 5), "fc_weight": torch.zeros(3, 6), "fc_bias": torch.zeros(3),
            "sm_label": torch.zeros(4)}
    with pytest.raises(SymbolError, match=r"in operator 'fc' \(FullyConnected\): input 'weight'"):
        s.bind("cpu", args=args)


def test_bind_uses_caller_arrays_and_grad_add_accumulates():
    s = sym.FullyConnected(sym.Variable("data"), num_hidden=2, no_bias=True, name="fc")
    w = torch.ones(2, 3)
    g = torch.zeros(2, 3)
    exe = s.bind("cpu", args={"data": torch.ones(1, 3), "fc_weight": w},
                 args_grad={"fc_weight": g}, grad_req={"fc_weight": "add"})
    assert exe.arg_dict["fc_weight"] is w
    for _ in range(2):
        exe.forward(is_train=True)
        exe.backward(torch.ones(1, 2))
    assert torch.equal(g, torch.full((2, 3), 2.0))
    assert exe.grad_dict["fc_weight"] is g


def test_out_grads_count_must_match_outputs():
    x = sym.Variable("x")
    s = sym.Group([sym.Activation(x, act_type="relu", name="a"),
                   sym.Activation(x, act_type="tanh", name="b")])
    exe = s.simple_bind("cpu", x=(2,))
    exe.forward(is_train=True)
    with pytest.raises(ExecutorError, match="1 out_grads for 2 outputs"):
        exe.backward([torch.ones(2)])


def test_two_different_variables_with_one_name_are_rejected_at_bind():
    s = sym.Group([sym.Activation(sym.Variable("x"), act_type="relu", name="a"),
                   sym.Activation(sym.Variable("x"), act_type="tanh", name="b")])
    with pytest.raises(SymbolError, match="two different nodes are named 'x'"):
        s.simple_bind("cpu", x=(2,))


def test_cuda_graphs_need_a_cuda_device():
    from executor import ExecutorError
    exe = net().simple_bind("cpu", data=(4, 5))
    with pytest.raises(ExecutorError, match="CUDA graphs need a CUDA device; this executor is "
                                            "bound to cpu"):
        exe.enable_cuda_graphs()
