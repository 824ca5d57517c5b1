"""The optimizer inside the backward pass, executed: updates applied from gradient-ready hooks
give exactly the parameters of the update after the backward pass, while the parameter
gradients live in the plan's arena instead of arrays of their own."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import executor  # noqa: F401
from executor import initialize
from executor.app.cli import main

from ..optim.mirror_nets import EXAMPLE_NETS
from .test_train import MLP, json_lines

LR = 0.05


def _batch(exe, rng):
    """Random inputs for every bound non-parameter argument (labels: class indices)."""
    feed = {}
    for name in exe.symbol.list_arguments():
        if name in exe.grad_dict and exe.grad_req.get(name) != "null":
            continue
        shape = tuple(exe.arg_dict[name].shape)
        if name.endswith("label"):
            classes = exe.outputs[0].shape[-1]
            feed[name] = rng.integers(0, classes, shape).astype(np.float64)
        else:
            feed[name] = rng.normal(size=shape)
    return feed


def _train(name, mirror, update, steps=3):
    net, shapes = EXAMPLE_NETS[name]()
    reqs = {a: "null" if a in shapes or a.endswith("label") else "write"
            for a in net.list_arguments()}
    torch.manual_seed(0)
    exe = net.simple_bind("cpu", grad_req=reqs, dtype="float64", mirror=mirror,
                          update_in_backward=update, **shapes)
    initialize(exe, seed=1)
    start = {n: t.clone() for n, t in exe.arg_dict.items()}
    seen: list[str] = []
    if update:
        def sgd(n, g):
            seen.append(n)
            exe.arg_dict[n].sub_(g, alpha=LR)
        exe.on_gradient_ready(sgd)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        exe.forward(is_train=True, **_batch(exe, rng))
        exe.backward()
        if not update:
            with torch.no_grad():
                for n, g in exe.grad_dict.items():
                    exe.arg_dict[n].sub_(g, alpha=LR)
    return exe, start, seen


@pytest.mark.parametrize("mirror", ["none", "sublinear"])
@pytest.mark.parametrize("name", ["resnet.py", "lstm.py"])
def test_updates_in_backward_equal_the_update_after_it(name, mirror):
    base, start, _ = _train(name, mirror, False)
    upd, _, seen = _train(name, mirror, True)
    params = [n for n in base.grad_dict]
    assert sorted(seen) == sorted(params * 3)  # each parameter once per step
    for n in params:
        assert not torch.equal(base.arg_dict[n], start[n]) or n.endswith("gamma")
        torch.testing.assert_close(upd.arg_dict[n], base.arg_dict[n], rtol=0, atol=0,
                                   msg=f"{n} differs")
    # structure: the gradients are views of the arena, nothing else holds them
    lo = upd._arena.data_ptr()
    hi = lo + upd._arena.numel()
    for n in params:
        g = upd.grad_dict[n]
        assert lo <= g.data_ptr() < hi, n
    rb, ru = base.memory_report(), upd.memory_report()
    assert rb["bytes_by_class"]["parameter_gradients"] > 0
    assert ru["bytes_by_class"]["parameter_gradients"] == 0
    assert upd.plan.total_bytes < base.plan.total_bytes
    assert len(upd.plan.released) == len(params)


def test_train_updates_in_backward_by_default_with_the_same_parameters(tmp_path, capsys):
    """``sublinear train`` (update inside backward by default) and
    ``--no-update-in-backward`` end on identical checkpoints, with Adam and with SGD
    momentum; the default plans fewer bytes."""
    from safetensors.numpy import load_file
    for optimizer in ("sgd", "adam"):
        results = {}
        for flag in ("--update-in-backward", "--no-update-in-backward"):
            folder = tmp_path / f"{optimizer}{flag}"
            code = main(["train", MLP, "--param", "input_dim=64", "--data", "digits",
                         "--epochs", "2", "--dtype", "float64", "--optimizer", optimizer,
                         "--lr", "0.01", "--json", "--save", str(folder), flag])
            out, err = capsys.readouterr()
            assert code == 0, err
            final = json_lines(out)[-1]
            assert final["update_in_backward"] is (flag == "--update-in-backward")
            (ckpt,) = folder.glob("*-0002.safetensors")
            results[flag] = (final, load_file(ckpt))
        (f1, a1), (f0, a0) = results["--update-in-backward"], results["--no-update-in-backward"]
        assert f1["final_loss"] == f0["final_loss"]
        assert f1["total_bytes"] < f0["total_bytes"]
        for k in a0:
            if k.startswith(("arg:", "opt:")):
                np.testing.assert_array_equal(a1[k], a0[k], err_msg=f"{optimizer}: {k}")
