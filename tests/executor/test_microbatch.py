"""Microbatching: K slices of each batch run in turn with gradient accumulation
(``grad_req='add'``) and one update, the plan made for the slice."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import executor  # noqa: F401
import symbol as sym
from executor.arrays import ExecutorError
from executor.training.data import DataError, synthetic
from executor.training.trainer import TrainConfig, Trainer

from .test_train import MLP, run

STEPS = 5


def _mlp_trainer(k, **kw):
    net = sym.load(MLP, params={"input_dim": 12, "hidden": (32, 16), "num_classes": 4})
    data = synthetic({"data": (12,)}, "softmax_label", 4, samples=256, test_samples=32, seed=2)
    return Trainer(net, data, TrainConfig(batch=16, epochs=1, dtype="float64", ctx="cpu",
                                          lr=0.1, microbatch=k, seed=5, **kw))


def _bn_trainer(k):
    x = sym.FullyConnected(sym.Variable("data"), num_hidden=16, name="fc1")
    x = sym.Activation(sym.BatchNorm(x, fix_gamma=False, name="bn1"), act_type="relu")
    net = sym.SoftmaxOutput(sym.FullyConnected(x, num_hidden=4, name="fc2"), name="softmax")
    data = synthetic({"data": (12,)}, "softmax_label", 4, samples=256, test_samples=32, seed=2)
    return Trainer(net, data, TrainConfig(batch=16, epochs=1, dtype="float64", ctx="cpu",
                                          lr=0.1, microbatch=k, seed=5))


def _deep_bn_trainer(k, bn_stats="slice", mirror=None, dropout=0.0):
    """Three BatchNorm layers, one read by the other two (a residual), one with fix_gamma:
    forward and backward depth 3."""
    data = sym.Variable("data")
    a = sym.Activation(sym.BatchNorm(sym.FullyConnected(data, num_hidden=16, name="fc1"),
                                     fix_gamma=False, name="bn1"), act_type="relu")
    b = sym.Activation(sym.BatchNorm(sym.FullyConnected(a, num_hidden=16, name="fc2"),
                                     name="bn2"), act_type="relu")
    x = sym.FullyConnected(a + b, num_hidden=16, name="fc3")
    if dropout:
        x = sym.Dropout(x, p=dropout)
    c = sym.Activation(sym.BatchNorm(x, fix_gamma=False, name="bn3"), act_type="tanh")
    net = sym.SoftmaxOutput(sym.FullyConnected(c, num_hidden=4, name="fc4"), name="softmax")
    data = synthetic({"data": (12,)}, "softmax_label", 4, samples=256, test_samples=32, seed=2)
    return Trainer(net, data, TrainConfig(batch=16, epochs=1, dtype="float64", ctx="cpu",
                                          lr=0.1, microbatch=k, seed=5, bn_stats=bn_stats,
                                          mirror=mirror))


def _train(trainer):
    rng = np.random.default_rng(0)
    losses = []
    for _, batch in zip(range(STEPS), trainer.dataset.batches(16, rng)):
        losses.append(trainer.train_step(batch, STEPS)[0])
    return losses, {n: trainer.exe.arg_dict[n].clone() for n in trainer.params}


def test_microbatches_take_the_steps_of_the_whole_batch_without_batchnorm():
    results = {k: _train(_mlp_trainer(k)) for k in (1, 2, 4)}
    losses1, params1 = results[1]
    for k in (2, 4):
        losses, params = results[k]
        np.testing.assert_allclose(losses, losses1, rtol=1e-12)
        for n, t in params.items():
            assert not torch.equal(t, _mlp_trainer(1).exe.arg_dict[n]) or n.endswith("bias")
            torch.testing.assert_close(t, params1[n], rtol=1e-9, atol=1e-12, msg=n)


def test_the_plan_is_made_for_the_slice():
    planned = {}
    for k in (1, 2, 4):
        t = _mlp_trainer(k)
        assert tuple(t.exe.arg_dict["data"].shape) == (16 // k, 12)
        assert all(t.exe.grad_req[n] == ("add" if k > 1 else "write") for n in t.params)
        planned[k] = t.exe.plan.bytes_by_class()["activations"]
    assert planned[2] <= 0.55 * planned[1] and planned[4] <= 0.3 * planned[1], planned


def test_batchnorm_uses_per_slice_statistics_by_default():
    (l1, p1), (l2, p2) = _train(_bn_trainer(1)), _train(_bn_trainer(2))
    a, b = (torch.cat([p[n].flatten() for n in sorted(p1)]) for p in (p1, p2))
    diff = float((b - a).norm() / a.norm())
    print(f"per-slice BatchNorm: losses {l1} vs {l2}; parameters {diff:.3g} apart")
    # documented: slices of 8 normalise with their own statistics, so the losses (from the
    # first forward on) and the parameters differ from the whole batch's, a little
    assert l1[0] != l2[0] and 1e-6 < diff < 0.3, diff


def _aux(trainer):
    return {n: t.clone() for n, t in trainer.exe.aux_dict.items()}


@pytest.mark.parametrize("mirror", [None, "drop-cheap"])
def test_exact_batchnorm_takes_the_step_of_the_whole_batch(mirror):
    whole = _deep_bn_trainer(1)
    (losses1, params1), aux1 = _train(whole), _aux(whole)
    for k in (2, 4):
        t = _deep_bn_trainer(k, "exact", mirror)
        (losses, params), aux = _train(t), _aux(t)
        np.testing.assert_allclose(losses, losses1, rtol=1e-12)
        for n, v in params.items():
            torch.testing.assert_close(v, params1[n], rtol=1e-9, atol=1e-12, msg=n)
        for n, v in aux.items():  # the moving statistics, updated once per batch
            torch.testing.assert_close(v, aux1[n], rtol=1e-9, atol=1e-12, msg=n)
        # the passes: 3 statistics passes, 3 gradient-sum passes, the final one; statistics
        # pass d stops after layer d (reaching d layers), gradient-sum pass d after the
        # backward of the d-th layer from the end (d layers)
        layers = len(t.exact_bn.layers)
        assert (layers, *t.exact_bn.depths.passes()) == (3, 7, 4), t.exact_bn.summary()
        recomputed = sum(t.exe.recompute_calls.values())
        reached = sum(range(1, layers + 1))
        assert t.exe.kernel_calls["BatchNorm"] == STEPS * k * (reached + layers * layers
                                                               + layers) + \
            sum(v for n, v in t.exe.recompute_calls.items() if n.startswith("bn"))
        assert t.exe.kernel_calls["_backward_BatchNorm"] == STEPS * k * (reached + layers)
        assert (recomputed > 0) == (mirror is not None)
    # per-slice statistics differ from the whole batch's, so the test above can fail
    losses2, _ = _train(_deep_bn_trainer(2))
    assert abs(losses2[0] - losses1[0]) > 1e-6


def test_truncated_passes_stop_after_the_named_nodes():
    exe = _deep_bn_trainer(1).exe
    exe.forward(is_train=True)
    exe.backward()
    full = exe.kernel_calls.copy()
    with exe.truncated(forward_until=["bn2"]):
        exe.forward(is_train=True)
    assert exe.kernel_calls["BatchNorm"] == full["BatchNorm"] + 2
    assert exe.kernel_calls["FullyConnected"] == full["FullyConnected"] + 2
    backward_bn3 = next(n.name for n in exe.joint.graph.nodes
                        if n.op == "_backward_BatchNorm" and n.inputs[3].node.name == "bn3")
    before = exe.kernel_calls.copy()
    with exe.truncated(backward_until=[backward_bn3]):
        exe.forward(is_train=True)
        exe.backward()
    assert exe.kernel_calls["_backward_BatchNorm"] == before["_backward_BatchNorm"] + 1
    assert exe.kernel_calls["BatchNorm"] == before["BatchNorm"] + 3
    with pytest.raises(ExecutorError, match="the forward pass runs no node named nope"):
        with exe.truncated(forward_until=["bn1", "nope"]):
            pass
    exe.forward(is_train=True)  # whole again
    assert exe.kernel_calls["BatchNorm"] == before["BatchNorm"] + 6


def test_exact_batchnorm_with_dropout_is_reproducible():
    (l1, p1), (l2, p2) = (_train(_deep_bn_trainer(2, "exact", dropout=0.3)) for _ in range(2))
    assert all(np.isfinite(l1)) and l1 == l2
    assert all(torch.equal(p1[n], p2[n]) for n in p1)
    assert l1 != _train(_deep_bn_trainer(2, "exact"))[0]  # the masks are drawn


def test_microbatch_errors(capsys):
    with pytest.raises(DataError, match="does not split into 3 equal microbatches"):
        _mlp_trainer(3)
    with pytest.raises(DataError, match="leave out --update-in-backward"):
        _mlp_trainer(2, update_in_backward=True)
    assert not _mlp_trainer(2).update_in_backward
    code, _, err = run(capsys, MLP, "--param", "input_dim=64", "--data", "digits",
                       "--microbatch", "0")
    assert code == 2 and "expected a positive integer" in err
    with pytest.raises(ExecutorError, match="unknown BatchNorm statistics mode 'whole'"):
        _mlp_trainer(2, bn_stats="whole")
    code, _, err = run(capsys, MLP, "--param", "input_dim=64", "--data", "digits",
                       "--bn-stats", "whole")
    assert code == 2 and "invalid choice: 'whole'" in err


def test_cli_exact_batchnorm(capsys, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "small.npz", data=rng.standard_normal((32, 3, 16, 16)).astype("f4"),
             label=rng.integers(0, 10, 32))
    code, out, err = run(capsys, "resnet", "--param", "units=1,1,1",
                         "--param", "filter_list=8,8,16,16", "--param", "image_shape=3,16,16",
                         "--data", str(tmp_path / "small.npz"), "--batch", "8",
                         "--microbatch", "2", "--bn-stats", "exact", "--epochs", "1", "--json")
    assert code == 0, err
    assert json.loads(out.splitlines()[-1])["final_loss"] > 0
    code, out, err = run(capsys, "resnet", "--param", "units=1,1,1",
                         "--param", "filter_list=8,8,16,16", "--param", "image_shape=3,16,16",
                         "--data", str(tmp_path / "small.npz"), "--batch", "8",
                         "--microbatch", "2", "--bn-stats", "exact", "--epochs", "1", "--quiet")
    assert code == 0, err
    assert "microbatches: 2 slices of 4 per batch; exact BatchNorm: " in out, out
