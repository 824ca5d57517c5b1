"""Mixed precision, executed: bfloat16/float16 networks store activations in the low dtype,
keep float32 parameters, gradients and statistics, train as well as float32; float16's
dynamic loss scaling skips overflowing steps and backs off."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import executor  # noqa: F401
from executor import initialize
from executor.training.data import synthetic
from executor.training.trainer import LossScaler, TrainConfig, Trainer
from symbol.amp import convert_symbol

from ..optim.mirror_nets import EXAMPLE_NETS
from .test_train import MLP, json_lines, run


def _step(net, shapes, mirror="none"):
    reqs = {a: "null" if a in shapes or a.endswith("label") else "write"
            for a in net.list_arguments()}
    torch.manual_seed(0)
    exe = net.simple_bind("cpu", grad_req=reqs, mirror=mirror, **shapes)
    initialize(exe, seed=1)
    rng = np.random.default_rng(0)
    feed = {k: rng.normal(size=v) for k, v in shapes.items()}
    classes = exe.outputs[0].shape[-1]
    feed.update({a: rng.integers(0, classes, exe.arg_dict[a].shape).astype(np.float32)
                 for a in net.list_arguments() if a.endswith("label")})
    exe.forward(is_train=True, **feed)
    exe.backward()
    return exe


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_a_low_precision_resnet_step_is_close_to_float32_with_low_activations(dtype):
    net, shapes = EXAMPLE_NETS["resnet.py"]()
    full = _step(net, shapes)
    low = _step(convert_symbol(net, dtype), shapes)
    want = getattr(torch, dtype)
    convs = [e for e in low._buffers if e.node.op == "Convolution"]
    assert convs and all(low._buffers[e].dtype == want for e in convs)
    for name, g in low.grad_dict.items():
        assert g.dtype == torch.float32 and low.arg_dict[name].dtype == torch.float32
    # all gradients as one vector: BatchNorm's backward cancels (dy - mean(dy) - ...), so
    # rounding grows through the layers, the more so with the 3-sample batch here (kernel by
    # kernel the results equal torch's own low-precision autograd)
    got = torch.cat([g.flatten() for g in low.grad_dict.values()])
    ref = torch.cat([full.grad_dict[n].flatten() for n in low.grad_dict])
    assert float(torch.nn.functional.cosine_similarity(got, ref, dim=0)) > 0.9
    assert float((got - ref).norm() / ref.norm()) < (0.5 if dtype == "bfloat16" else 0.2)
    torch.testing.assert_close(low.outputs[0].float(), full.outputs[0], atol=2e-2, rtol=0)
    for name, t in low.aux_dict.items():  # BatchNorm statistics stay float32
        assert t.dtype == torch.float32, name
    assert low.plan.planned_bytes < 0.6 * full.plan.planned_bytes


def test_recomputation_gives_the_same_low_precision_results():
    net, shapes = EXAMPLE_NETS["resnet.py"]()
    low = convert_symbol(net, "bfloat16")
    a, b = _step(low, shapes), _step(low, shapes, mirror="sublinear")
    assert sum(b.recompute_calls.values()) > 0
    for name in a.grad_dict:
        torch.testing.assert_close(b.grad_dict[name], a.grad_dict[name], rtol=0, atol=0)


def test_bfloat16_digits_train_within_a_point_of_float32(capsys):
    acc = {}
    for dtype in ("float32", "bfloat16"):
        code, out, err = run(capsys, MLP, "--param", "input_dim=64", "--data", "digits",
                             "--epochs", "30", "--json", "--quiet", "--dtype", dtype)
        assert code == 0, err
        final = json_lines(out)[-1]
        assert final["dtype"] == dtype
        acc[dtype] = final["test_accuracy"]
    assert acc["float32"] >= 0.95 and abs(acc["bfloat16"] - acc["float32"]) <= 0.01, acc


def _fp16_trainer():
    import symbol as sym
    net = sym.load(MLP, params={"input_dim": 8, "hidden": (16,), "num_classes": 3})
    data = synthetic({"data": (8,)}, "softmax_label", 3, samples=64, test_samples=0, seed=0)
    return Trainer(net, data, TrainConfig(batch=16, epochs=1, dtype="float16", ctx="cpu",
                                          lr=0.1))


def test_float16_overflow_skips_the_step_and_backs_off_the_scale():
    trainer = _fp16_trainer()
    assert trainer.scaler is not None and not trainer.update_in_backward
    batch = next(trainer.dataset.batches(16, np.random.default_rng(0)))
    before = {n: trainer.exe.arg_dict[n].clone() for n in trainer.params}
    trainer.scaler.scale = 2.0 ** 40  # the loss gradient overflows float16's range
    trainer.train_step(batch, 10)
    assert trainer.skipped == 1 and trainer.scaler.scale == 2.0 ** 39
    for n, t in before.items():
        assert torch.equal(trainer.exe.arg_dict[n], t), n  # nothing was updated
    trainer.scaler.scale = 2.0 ** 8
    trainer.train_step(batch, 10)
    assert trainer.skipped == 1 and trainer.scaler.good == 1
    assert any(not torch.equal(trainer.exe.arg_dict[n], t) for n, t in before.items())


def test_loss_scaler_grows_after_the_interval():
    s = LossScaler(scale=4.0, interval=2)
    ok = [torch.ones(3)]
    assert s.update(ok) and s.scale == 4.0
    assert s.update(ok) and s.scale == 8.0 and s.good == 0
    assert not s.update([torch.tensor([1.0, float("inf")])]) and s.scale == 4.0


def test_float16_and_updates_in_backward_exclude_each_other(capsys):
    code, _, err = run(capsys, MLP, "--param", "input_dim=64", "--data", "digits",
                       "--dtype", "float16", "--update-in-backward")
    assert code == 2 and "float16 training skips a step" in err


@pytest.mark.parametrize("op", ["FullyConnected", "Convolution", "BatchNorm"])
def test_mixed_kernels_equal_torchs_low_precision_autograd(op):
    """One op with bfloat16 data and float32 weights: forward and gradients bit-equal to
    torch's autograd on the same low-precision data (weights cast to bfloat16 for products,
    float32 for BatchNorm)."""
    import symbol as sym
    import torch.nn.functional as F
    x = sym.Variable("data")
    if op == "FullyConnected":
        net, shape = sym.FullyConnected(x, num_hidden=5, name="op"), (4, 6)
    elif op == "Convolution":
        net, shape = sym.Convolution(x, num_filter=4, kernel=(3, 3), name="op"), (2, 3, 6, 6)
    else:
        net, shape = sym.BatchNorm(x, fix_gamma=False, name="op"), (4, 3, 5, 5)
    net = sym.MakeLoss(net * sym.Variable("w_out"), name="loss")
    exe = net.simple_bind("cpu", type_dict={"data": "bfloat16", "w_out": "bfloat16"},
                          grad_req={a: "write" for a in net.list_arguments()
                                    if a.startswith("op_")}, data=shape)
    initialize(exe, seed=3)
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(shape, generator=gen).bfloat16()
    w_out = torch.randn(exe.arg_dict["w_out"].shape, generator=gen).bfloat16()
    out = exe.forward(is_train=True, data=data, w_out=w_out)[0]
    exe.backward()
    params = {n: exe.arg_dict[n].clone().requires_grad_() for n in exe.grad_dict}
    assert all(p.dtype == torch.float32 for p in params.values())
    if op == "FullyConnected":
        ref = F.linear(data, params["op_weight"].bfloat16(), params["op_bias"].bfloat16())
    elif op == "Convolution":
        ref = F.conv2d(data, params["op_weight"].bfloat16(), params["op_bias"].bfloat16())
    else:
        ref = F.batch_norm(data, None, None, params["op_gamma"], params["op_beta"],
                           training=True, eps=exe.symbol.graph.nodes[0].params["eps"])
    (ref * w_out).backward(torch.ones_like(ref))
    torch.testing.assert_close(out, (ref * w_out).detach(), rtol=0, atol=0)
    for n, p in params.items():
        assert exe.grad_dict[n].dtype == torch.float32
        if op == "FullyConnected" and n == "op_bias":  # summed in float32: closer than torch's
            want = w_out.float().sum(0)                 # bfloat16 sum, so equal to this one
            torch.testing.assert_close(exe.grad_dict[n], want, rtol=1e-6, atol=1e-6)
            torch.testing.assert_close(exe.grad_dict[n], p.grad, rtol=2e-2, atol=2e-2)
            continue
        torch.testing.assert_close(exe.grad_dict[n], p.grad, rtol=0, atol=0, msg=n)


def test_low_precision_inference_with_batchnorm_statistics():
    net, shapes = EXAMPLE_NETS["resnet.py"]()
    low = _step(convert_symbol(net, "bfloat16"), shapes)  # one training step: moving stats
    rng = np.random.default_rng(1)
    out = low.forward(is_train=False, data=rng.normal(size=shapes["data"]))[0]
    assert out.dtype == torch.bfloat16 and bool(torch.isfinite(out.float()).all())


def test_train_fit_chooses_the_levers_and_trains(capsys):
    code, out, err = run(capsys, str(MLP).replace("mlp.sym", "wrn.sym"), "--param", "depth=10",
                         "--data", "synthetic", "--epochs", "1", "--batch", "32", "--fit",
                         "12MiB", "--json", "--quiet")
    assert code == 0, err
    final = json_lines(out)[-1]
    assert final["dtype"] == "bfloat16" and final["microbatch"] > 1
    assert final["mirror"] != "none" and final["final_loss"] < 2.3
