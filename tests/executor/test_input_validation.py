"""What the executor is given is checked before torch sees it: one ExecutorError (a SymbolError)
a user can act on, never a torch or numpy message; valid inputs still work, results unchanged."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import executor  # noqa: F401
import symbol as sym
from executor import ExecutorError
from executor.app.cli import main
from symbol.errors import SymbolError


def mlp(classes=3):
    h = sym.Activation(sym.FullyConnected(sym.Variable("data"), num_hidden=4, name="fc1"),
                       act_type="relu", name="relu1")
    return sym.SoftmaxOutput(sym.FullyConnected(h, num_hidden=classes, name="fc2"), name="sm")


def bound(net=None, seed=0, **kwargs):
    exe = (net or mlp()).simple_bind("cpu", **{"data": (4, 5), **kwargs})
    gen = torch.Generator().manual_seed(seed)
    for name, t in exe.arg_dict.items():
        if name != "data" and not name.endswith("label"):
            t.copy_(torch.randn(t.shape, generator=gen))
    return exe


X = np.random.default_rng(0).standard_normal((4, 5))
LABELS = [0, 2, 1, 2]


def error(call, match):
    with pytest.raises(ExecutorError, match=match) as info:
        call()
    assert isinstance(info.value, SymbolError)
    return str(info.value)


# -- forward: is_train ----------------------------------------------------------------------------

def test_forward_with_an_array_passed_positionally_says_inputs_go_by_name():
    exe = bound()
    error(lambda: exe.forward(X), r"is_train must be True or False, got a numpy array; inputs "
                                  r"are passed by name, e.g. forward\(is_train=True, data=x\)")


def test_forward_is_train_must_be_a_bool():
    exe = bound()
    error(lambda: exe.forward("yes"), "is_train must be True or False, got 'yes'")
    exe.forward(np.bool_(True), data=X)  # a numpy bool is a bool


# -- forward: values of the wrong type -------------------------------------------------------------

@pytest.mark.parametrize("value,got", [
    ("abc", "got a str"),
    (None, "got None"),
    ({"a": 1}, "got a dict"),
    ([["a"] * 5] * 4, "got a list of strings"),
    (np.array([None] * 20, dtype=object).reshape(4, 5), "got a numpy array of objects"),
    ([[1.0, 2.0], [3.0]], "got a list that is not a rectangular array of numbers"),
    (np.zeros((4, 5), np.complex64), "got a numpy array of complex numbers"),
    (torch.zeros(4, 5, dtype=torch.complex64), "got a complex array"),
], ids=["str", "None", "dict", "list-of-str", "object-array", "ragged-list", "complex-numpy",
        "complex-tensor"])
def test_forward_rejects_values_that_are_not_numeric_arrays(value, got):
    exe = bound()
    message = error(lambda: exe.forward(data=value), "forward: input 'data' ")
    assert got in message
    if "complex array" not in got:
        assert r"must be an array of shape (4, 5) (float32)" in message


def test_forward_wrong_shape_is_reported():
    error(lambda: bound().forward(data=np.zeros((4, 6))),
          r"forward: input 'data' has shape \(4, 5\), got an array of shape \(4, 6\)")


def test_float_array_for_an_integer_argument_is_refused():
    net = sym.Group([mlp(), sym.Variable("idx")])
    exe = net.simple_bind("cpu", type_dict={"idx": "int64"}, data=(4, 5), idx=(2,))
    error(lambda: exe.forward(idx=np.array([1.0, 2.0])),
          r"input 'idx' is int64, got a float array \(float64\): floats are not rounded")
    exe.forward(idx=np.array([1, 2], np.int32))  # integers of another width are cast
    assert exe.arg_dict["idx"].tolist() == [1, 2]


# -- forward: valid values are cast, results unchanged ---------------------------------------------

def test_numpy_float64_into_float32_is_cast_and_gives_the_same_result():
    exe = bound()
    want = exe.forward(data=torch.from_numpy(X).float())[0].clone()
    got = exe.forward(data=X)[0]
    assert exe.arg_dict["data"].dtype == torch.float32
    assert torch.equal(got, want)


def test_lists_integers_and_reversed_views_are_cast():
    exe = bound()
    want = exe.forward(data=torch.from_numpy(X[::-1].copy()).float())[0].clone()
    assert torch.equal(exe.forward(data=X[::-1])[0], want)  # negative strides
    assert torch.equal(exe.forward(data=X[::-1].tolist())[0], want)
    exe.forward(data=np.arange(20, dtype=np.uint8).reshape(4, 5))
    assert torch.equal(exe.arg_dict["data"], torch.arange(20.0).reshape(4, 5))


def test_a_tensor_that_requires_grad_is_copied_without_autograd():
    exe = bound()
    exe.forward(data=torch.ones(4, 5, requires_grad=True))
    assert not exe.arg_dict["data"].requires_grad


# -- forward: labels -------------------------------------------------------------------------------

@pytest.mark.parametrize("labels,got", [
    ([0, 1, 3, 2], "got 3 at index 2"),
    (np.array([0, -1, 2, 2]), "got -1 at index 1"),
    (torch.tensor([0.0, 1.5, 2.0, 2.0]), "got 1.5 at index 1"),
    (np.array([0.0, np.nan, 1.0, 1.0]), "got nan at index 1"),
], ids=["too-big", "negative", "not-whole", "nan"])
def test_labels_out_of_range_or_not_whole_are_refused(labels, got):
    exe = bound()
    message = error(lambda: exe.forward(data=X, sm_label=labels),
                    r"forward: label 'sm_label' of 'sm' \(SoftmaxOutput\) must hold class "
                    r"indices, whole numbers 0 \.\. 2 \(3 classes\)")
    assert got in message


def test_float_labels_of_whole_numbers_work_as_in_mxnet():
    exe = bound()
    for labels in (np.array(LABELS, np.float32), torch.tensor(LABELS, dtype=torch.float64),
                   LABELS, np.array(LABELS, np.int64)):
        exe.forward(is_train=True, data=X, sm_label=labels)
        exe.backward()
        assert exe.arg_dict["sm_label"].tolist() == LABELS


def test_integer_label_argument_takes_float_labels_of_whole_numbers():
    exe = bound(type_dict={"sm_label": "int64"})
    exe.forward(is_train=True, data=X, sm_label=np.array(LABELS, np.float32))
    assert exe.arg_dict["sm_label"].tolist() == LABELS
    error(lambda: exe.forward(data=X, sm_label=[0.5, 1, 1, 1]), "got 0.5 at index 0")


def test_ignore_label_is_accepted_with_use_ignore():
    net = sym.SoftmaxOutput(sym.FullyConnected(sym.Variable("data"), num_hidden=3, name="fc"),
                            use_ignore=True, ignore_label=-1, name="sm")
    exe = bound(net)
    exe.forward(is_train=True, data=X, sm_label=[0, -1, 2, -1])
    exe.backward()
    error(lambda: exe.forward(data=X, sm_label=[0, -2, 2, 1]),
          r"whole numbers 0 \.\. 2 or the ignore_label -1 \(3 classes\); got -2 at index 1")


def test_softmax_cross_entropy_labels_are_checked():
    net = sym.softmax_cross_entropy(sym.FullyConnected(sym.Variable("data"), num_hidden=3,
                                                       name="fc"), sym.Variable("y"), name="ce")
    exe = bound(net, y=(4,))
    exe.forward(data=X, y=LABELS)
    error(lambda: exe.forward(data=X, y=[0, 1, 2, 3]),
          r"label 'y' of 'ce' \(softmax_cross_entropy\) .* 0 \.\. 2 \(3 classes\); got 3")


def test_multi_output_labels_count_classes_on_axis_1():
    net = sym.SoftmaxOutput(sym.Variable("data"), multi_output=True, name="sm")
    exe = net.simple_bind("cpu", data=(2, 3, 4))
    exe.forward(data=np.zeros((2, 3, 4)), sm_label=np.full((2, 4), 2.0))
    error(lambda: exe.forward(data=np.zeros((2, 3, 4)), sm_label=np.full((2, 4), 3.0)),
          r"whole numbers 0 \.\. 2 \(3 classes\); got 3\.0 at index \(0, 0\)")


def test_labels_written_into_arg_dict_are_not_checked():
    exe = bound()
    exe.arg_dict["sm_label"].copy_(torch.tensor([0.0, 1.0, 5.0, 1.0]))
    exe.forward(is_train=True)  # documented: only values passed to forward() are checked


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_labels_on_the_device_are_checked_only_with_debug(monkeypatch):
    bad = torch.tensor([0.0, 1.0, 7.0, 1.0], device="cuda")
    exe = mlp().simple_bind("cuda", data=(4, 5))
    exe.forward(data=X, sm_label=bad)  # not checked: the check would wait for the device
    error(lambda: exe.forward(data=X, sm_label=bad.cpu()), "got 7.0 at index 2")
    monkeypatch.setenv("DEBUG", "1")
    exe = mlp().simple_bind("cuda", data=(4, 5))
    error(lambda: exe.forward(data=X, sm_label=bad), "got 7.0 at index 2")


# -- backward --------------------------------------------------------------------------------------

def trained(net=None):
    exe = bound(net or sym.FullyConnected(sym.Variable("data"), num_hidden=3, name="fc"))
    exe.forward(is_train=True, data=X)
    return exe


@pytest.mark.parametrize("grads,match", [
    ("abc", "out_grads must be a list with one array .* got a str"),
    (3, "out_grads must be a list with one array .* got an int"),
    ({"fc_output": np.ones((4, 3))}, "out_grads must be a list .* got a dict"),
    ([np.ones((4, 3)), np.ones((4, 3))], r"2 out_grads for 1 outputs \(fc_output\)"),
    ([np.ones((2, 2))], r"out_grads\[0\] \(the gradient of output 'fc_output'\) has shape "
                        r"\(4, 3\), got an array of shape \(2, 2\)"),
    (["abc"], r"out_grads\[0\] .* must be an array of shape \(4, 3\) \(float32\), got a str"),
    ([[["a"] * 3] * 4], r"out_grads\[0\] .* got a list of strings"),
], ids=["str", "int", "dict", "count", "shape", "element-str", "element-list-of-str"])
def test_backward_rejects_bad_out_grads(grads, match):
    exe = trained()
    error(lambda: exe.backward(grads), match)


def test_backward_with_numpy_out_grads_equals_tensor_out_grads():
    head = np.random.default_rng(1).standard_normal((4, 3))
    exe = trained()
    exe.backward(torch.from_numpy(head).float())
    want = exe.grad_dict["fc_weight"].clone()
    exe.forward(is_train=True, data=X)
    exe.backward([head])
    assert torch.equal(exe.grad_dict["fc_weight"], want)


# -- bind ------------------------------------------------------------------------------------------

def arrays(**changes):
    a = {"data": torch.zeros(4, 5), "fc1_weight": torch.zeros(4, 5), "fc1_bias": torch.zeros(4),
         "fc2_weight": torch.zeros(3, 4), "fc2_bias": torch.zeros(3), "sm_label": torch.zeros(4)}
    a.update(changes)
    return a


@pytest.mark.parametrize("value,got", [
    ("abc", "got a str"), (None, "got None"), ([[0.0] * 5] * 4, "got a list"),
    (np.zeros((4, 5), object), "got a numpy array of dtype object"),
], ids=["str", "None", "list", "object-array"])
def test_bind_rejects_arrays_of_the_wrong_type(value, got):
    message = error(lambda: mlp().bind("cpu", args=arrays(data=value)),
                    r"bind: args\['data'\] must be a torch tensor or a numeric numpy array")
    assert got in message


@pytest.mark.parametrize("dtype", [torch.int8, torch.complex64])
def test_bind_rejects_unsupported_dtypes(dtype):
    error(lambda: mlp().bind("cpu", args=arrays(data=torch.zeros(4, 5, dtype=dtype))),
          rf"bind: args\['data'\] has dtype {str(dtype)[6:]}, which the executor does not run")


def test_bind_rejects_operator_inputs_of_different_dtypes():
    # (float16 data with float32 weights is mixed precision, allowed; the reverse is not)
    half = arrays()["fc1_weight"].half()
    error(lambda: mlp().bind("cpu", args=arrays(fc1_weight=half)),
          r"bind: operator 'fc1' \(FullyConnected\): input 'data' \(variable 'data'\) is float32 "
          r"but input 'weight' \(variable 'fc1_weight'\) is float16; convert the arrays")


def test_bind_rejects_args_that_are_neither_dict_nor_list():
    error(lambda: mlp().bind("cpu", args="abc"),
          "bind: args must be a dict name -> array or a list of arrays in the order data, ")


@pytest.mark.parametrize("grad", [torch.zeros(5, 4), torch.zeros(4, 5, dtype=torch.float64)],
                         ids=["shape", "dtype"])
def test_bind_rejects_gradients_unlike_their_argument(grad):
    error(lambda: mlp().bind("cpu", args=arrays(), args_grad={"fc1_weight": grad}),
          r"bind: args_grad\['fc1_weight'\] must match its argument: shape \(4, 5\), float32")


def test_bind_accepts_numpy_arrays_and_integer_labels():
    exe = mlp().bind("cpu", args=arrays(data=np.zeros((4, 5), np.float32),
                                        sm_label=torch.zeros(4, dtype=torch.int64)))
    exe.forward(is_train=True, sm_label=np.array(LABELS, np.float64))
    exe.backward()


# -- simple_bind: dtypes and shapes ----------------------------------------------------------------

def test_simple_bind_type_dict_float16_weight_names_the_op_and_both_inputs():
    message = error(lambda: mlp().simple_bind("cpu", type_dict={"fc1_weight": "float16"},
                                              data=(4, 5)),
                    r"simple_bind: operator 'fc1' \(FullyConnected\)")
    assert "input 'data' (variable 'data') is float32" in message
    assert "input 'weight' (variable 'fc1_weight') is float16" in message
    assert "dtype=" in message and "type_dict" in message


@pytest.mark.parametrize("kwargs,match", [
    ({"type_dict": {"data": "float17"}},
     r"simple_bind: type_dict\['data'\]: unsupported dtype 'float17' \(supported: float32"),
    ({"dtype": "float17"}, r"simple_bind: dtype: unsupported dtype 'float17'"),
    ({"type_dict": {"dat": "float16"}}, "type_dict: 'dat' is not an argument or auxiliary state;"
                                        " did you mean 'data'"),
    ({"dtype": "int32"}, r"input 'data' \(variable 'data'\) is int32; operators compute in "
                         "float16, bfloat16, float32, float64"),
], ids=["unknown-dtype", "unknown-default", "unknown-name", "integer-data"])
def test_simple_bind_rejects_bad_dtypes_before_planning(kwargs, match, monkeypatch):
    import executor.binding as bind_module
    monkeypatch.setattr(bind_module, "plan_training", lambda *a, **k: pytest.fail("planned"))
    error(lambda: mlp().simple_bind("cpu", data=(4, 5), **kwargs), match)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", np.float16, torch.bfloat16])
def test_one_half_precision_dtype_runs_on_the_cpu(dtype):
    exe = bound(dtype=dtype, seed=3)
    out = exe.forward(is_train=True, data=X, sm_label=LABELS)[0]
    exe.backward()
    ref = bound(seed=3)
    want = ref.forward(data=X)[0]
    assert out.dtype in (torch.float16, torch.bfloat16)
    torch.testing.assert_close(out.float(), want, atol=2e-2, rtol=5e-2)


@pytest.mark.parametrize("shape,match", [
    ((0, 3), r"shape of 'data' must have positive sizes, got \(0, 3\)"),
    ("abc", "shape of 'data' must be a tuple of integers, got 'abc'"),
    ((2.5, 3), r"shape of 'data' must be a tuple of integers, got \(2\.5, 3\)"),
    ((True, 3), "shape of 'data' must be a tuple of integers"),
], ids=["zero", "str", "float", "bool"])
def test_simple_bind_rejects_bad_shapes_before_allocating(shape, match, monkeypatch):
    import executor.binding as bind_module
    monkeypatch.setattr(bind_module, "plan_training", lambda *a, **k: pytest.fail("planned"))
    with pytest.raises(SymbolError, match=match):
        mlp().simple_bind("cpu", data=shape)


def test_simple_bind_accepts_numpy_integer_sizes():
    exe = mlp().simple_bind("cpu", data=(np.int64(4), np.int32(5)))
    assert exe.arg_dict["data"].shape == (4, 5)


# -- the command line ------------------------------------------------------------------------------

def test_sublinear_check_exits_2_naming_both_uses(tmp_path, capsys):
    path = tmp_path / "b.sym"
    path.write_text("input data: (2, 3, 8, 8);\nw = Variable(\"w\");\n"
                    "c = Convolution(data, w, w, num_filter=4, kernel=(3,3));\noutput c;\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:3:5: error: variable 'w' is bound to two shapes: "
                          f"(4, 3, 3, 3) as input 'weight' of 'c' (Convolution) at {path}:3:5, "
                          f"and (4,) as input 'bias' of 'c' (Convolution) at {path}:3:5\n")
    assert main(["plan", str(path)]) == 2
