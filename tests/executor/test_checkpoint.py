"""Checkpoints (executor/training/checkpoint.py): one safetensors file, MXNet's names, atomic.

A small MLP with BatchNorm (aux states) and Dropout (the executor's seed and step key its
masks) is trained with torch.optim on the executor's own tensors, its gradients aliased as
``.grad``. Equivalence: a restored run continues bitwise like one that never stopped. Effect:
what the file holds, and what it does not (inputs, labels, temporaries).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

import executor  # noqa: F401  (installs simple_bind)
import symbol as sym
from executor import initialize
from executor.training import checkpoint as ckpt_mod
from executor.training.checkpoint import (CheckpointError, load_checkpoint, load_params,
                                          parameter_names, restore, save_checkpoint)
from symbol import SymbolError

ROOT = Path(__file__).resolve().parents[2]
BATCH, DIM, CLASSES = 8, 6, 3
PARAMS = ["fc1_weight", "fc1_bias", "bn1_gamma", "bn1_beta", "fc2_weight", "fc2_bias"]
AUX = ["bn1_moving_mean", "bn1_moving_var"]
OPTIMIZERS = {"sgd": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=1e-4),
              "adam": lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99))}


def mlp(hidden: int = 16, layers: int = 1):
    h = sym.Variable("data")
    for i in range(1, layers + 1):
        h = sym.FullyConnected(h, num_hidden=hidden, name=f"fc{i}")
    h = sym.BatchNorm(h, name="bn1", fix_gamma=False)
    h = sym.Dropout(sym.Activation(h, act_type="relu", name="relu1"), p=0.2, name="drop1")
    out = sym.FullyConnected(h, num_hidden=CLASSES, name=f"fc{layers + 1}")
    return sym.SoftmaxOutput(out, name="softmax")


def bind(dtype: str = "float64", seed: int = 0, **kwargs):
    """A bound, initialised MLP; data and labels get gradients too (grad_req='write')."""
    exe = mlp(**kwargs).simple_bind("cpu", dtype=dtype, data=(BATCH, DIM))
    initialize(exe, seed=seed)
    return exe


def make_optimizer(exe, kind: str) -> torch.optim.Optimizer:
    names = parameter_names(exe)
    for n in names:  # torch.optim reads p.grad: alias the executor's planned gradient
        exe.arg_dict[n].grad = exe.grad_dict[n]
    return OPTIMIZERS[kind]([exe.arg_dict[n] for n in names])


def train(exe, opt, rng: np.random.Generator, steps: int) -> None:
    """Batches from ``rng`` plus noise from torch's global generator: both must be restored."""
    for _ in range(steps):
        x = torch.from_numpy(rng.standard_normal((BATCH, DIM)))
        x = x + 0.1 * torch.randn(BATCH, DIM, dtype=torch.float64)
        y = torch.from_numpy(rng.integers(0, CLASSES, BATCH))
        exe.forward(is_train=True, data=x, softmax_label=y)
        exe.backward()
        opt.step()


def trained(tmp_path, dtype="float64", kind="sgd", steps=3):
    """An executor and optimizer after ``steps`` steps, checkpointed to tmp_path/ck."""
    torch.manual_seed(0)
    exe = bind(dtype)
    opt, rng = make_optimizer(exe, kind), np.random.default_rng(0)
    train(exe, opt, rng, steps)
    path = save_checkpoint(tmp_path / "ck.safetensors", exe, optimizer=opt, numpy_rng=rng,
                           state={"epoch": 1, "step": steps, "seed": 0})
    return exe, opt, rng, path


def snapshot(exe) -> dict[str, torch.Tensor]:
    return {n: t.clone() for n, t in {**exe.arg_dict, **exe.aux_dict}.items()
            if n in PARAMS + AUX}


def assert_bitwise(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert list(a) == list(b)
    for n in a:
        assert a[n].dtype == b[n].dtype and torch.equal(a[n], b[n]), n


def optimizer_state(opt, exe) -> dict[str, dict[str, torch.Tensor]]:
    """The optimizer's per-parameter state keyed by argument name."""
    name = {id(t): n for n, t in exe.arg_dict.items()}
    return {name[id(p)]: dict(s) for p, s in opt.state.items()}


# -- round trip -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_restore_into_a_fresh_executor_gives_bitwise_equal_arrays_and_optimizer_state(
        tmp_path, dtype, kind):
    exe, opt, _, path = trained(tmp_path, dtype, kind)
    fresh = bind(dtype, seed=1)
    fresh_opt = make_optimizer(fresh, kind)
    assert not torch.equal(fresh.arg_dict["fc1_weight"], exe.arg_dict["fc1_weight"])
    restore(fresh, load_checkpoint(path), optimizer=fresh_opt)
    assert_bitwise(snapshot(fresh), snapshot(exe))
    ours, theirs = optimizer_state(fresh_opt, fresh), optimizer_state(opt, exe)
    assert sorted(ours) == sorted(theirs) == sorted(PARAMS)
    for n in PARAMS:
        assert ours[n].keys() == theirs[n].keys()
        assert_bitwise(ours[n], theirs[n])
    assert fresh_opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    if kind == "adam":
        assert fresh_opt.param_groups[0]["betas"] == (0.8, 0.99)  # a tuple again, not a list


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", sorted(OPTIMIZERS))
def test_training_after_restore_matches_never_stopping_bitwise(tmp_path, dtype, kind):
    exe, opt, rng, path = trained(tmp_path, dtype, kind)
    train(exe, opt, rng, 3)  # the run that never stopped
    torch.manual_seed(123)  # a new process: other torch and numpy random state
    fresh = bind(dtype, seed=1)
    fresh_opt, fresh_rng = make_optimizer(fresh, kind), np.random.default_rng(99)
    restore(fresh, load_checkpoint(path), optimizer=fresh_opt, numpy_rng=fresh_rng)
    train(fresh, fresh_opt, fresh_rng, 3)
    assert_bitwise(snapshot(fresh), snapshot(exe))
    assert fresh.state["step"] == exe.state["step"] == 6


def test_without_the_executor_seed_dropout_would_differ(tmp_path):
    # why the executor's seed and step are saved: they key every dropout mask
    exe, _, _, path = trained(tmp_path)
    fresh = bind(seed=1)
    restore(fresh, load_checkpoint(path))
    assert fresh.state["seed"] == exe.state["seed"]
    fresh.state["seed"] += 1
    x = torch.ones(BATCH, DIM, dtype=torch.float64)
    y = torch.zeros(BATCH)
    a = exe.forward(is_train=True, data=x, softmax_label=y)[0].clone()
    b = fresh.forward(is_train=True, data=x, softmax_label=y)[0]
    assert not torch.equal(a, b)


def test_state_and_metadata_round_trip(tmp_path):
    exe, _, _, path = trained(tmp_path, kind="adam")
    ck = load_checkpoint(path)
    assert ck.state == {"epoch": 1, "step": 3, "seed": 0}
    assert ck.optimizer is not None and ck.optimizer["class"] == "Adam"
    assert ck.optimizer["param_groups"][0]["params"] == PARAMS
    assert set(ck.optimizer["state"]["fc1_weight"]) == {"step", "exp_avg", "exp_avg_sq"}
    assert ck.rng.numpy is not None and ck.rng.numpy["bit_generator"] == "PCG64"
    assert ck.rng.cpu is not None and ck.rng.cpu.dtype == torch.uint8
    assert ck.rng.executor == {"seed": exe.state["seed"], "step": 3}
    assert ck.metadata["format"] == "sublinear-checkpoint"


# -- what the file holds --------------------------------------------------------------------------
def test_file_holds_mxnet_names_and_no_inputs_or_labels(tmp_path):
    exe, _, _, path = trained(tmp_path)
    assert exe.grad_req["data"] == exe.grad_req["softmax_label"] == "write"  # still left out
    names = set(safetensors.torch.load_file(path))
    assert {n for n in names if n.startswith(("arg:", "aux:"))} == (
        {f"arg:{n}" for n in PARAMS} | {f"aux:{n}" for n in AUX})
    assert {n for n in names if n.startswith("opt:")} == {f"opt:{n}:momentum_buffer"
                                                          for n in PARAMS}
    assert "rng:torch" in names
    assert not any("data" in n or "label" in n for n in names)
    ck = load_checkpoint(path)
    assert set(ck.arg_params) == set(PARAMS) and set(ck.aux_params) == set(AUX)


def test_inputs_bound_without_gradient_are_not_saved_and_params_adds_frozen_ones(tmp_path):
    exe = mlp().simple_bind("cpu", data=(BATCH, DIM),
                            grad_req={n: "write" for n in PARAMS if n != "fc1_bias"})
    assert parameter_names(exe) == [n for n in PARAMS if n != "fc1_bias"]
    save_checkpoint(tmp_path / "a", exe, params=PARAMS)  # keep the frozen fc1_bias too
    assert list(load_params(tmp_path / "a")[0]) == PARAMS
    with pytest.raises(CheckpointError, match="'fc9_weight', which are not arguments"):
        save_checkpoint(tmp_path / "b", exe, params=["fc9_weight"])


def test_parameters_that_are_views_of_one_buffer_are_saved(tmp_path):
    # bind() may be given views of one buffer; safetensors may refuse tensors sharing storage
    net = sym.FullyConnected(sym.Variable("data"), num_hidden=3, name="fc1")
    flat = torch.arange(15, dtype=torch.float32)
    args = {"data": torch.zeros(2, 4), "fc1_weight": flat[:12].view(3, 4),
            "fc1_bias": flat[12:]}
    exe = net.bind("cpu", args=args, grad_req={"fc1_weight": "write", "fc1_bias": "write"})
    arg_params, _ = load_params(save_checkpoint(tmp_path / "ck", exe))
    assert_bitwise(arg_params, {"fc1_weight": args["fc1_weight"], "fc1_bias": flat[12:]})


def test_load_params_returns_mxnet_named_dicts_in_argument_order(tmp_path):
    exe, _, _, path = trained(tmp_path)
    arg_params, aux_params = load_params(path)
    assert list(arg_params) == PARAMS and list(aux_params) == AUX
    assert_bitwise({**arg_params, **aux_params}, snapshot(exe))


def test_load_params_reads_a_plain_mxnet_style_safetensors_file(tmp_path):
    w = torch.ones(2, 3)
    safetensors.torch.save_file({"arg:fc_weight": w, "aux:bn_moving_var": w[0].clone()},
                                tmp_path / "p")
    arg_params, aux_params = load_params(tmp_path / "p")
    assert list(arg_params) == ["fc_weight"] and list(aux_params) == ["bn_moving_var"]
    safetensors.torch.save_file({"fc_weight": w}, tmp_path / "q")
    with pytest.raises(CheckpointError, match="tensor 'fc_weight' is not named arg:<name>"):
        load_params(tmp_path / "q")


# -- atomic writes --------------------------------------------------------------------------------
def _fail_half_way(exc: BaseException):
    def write_half(f, data):
        f.write(data[:len(data) // 2])
        raise exc
    return write_half


@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_interrupted_save_keeps_the_previous_checkpoint_and_no_temporary(tmp_path, monkeypatch,
                                                                         exc):
    exe, opt, rng, path = trained(tmp_path)
    before = snapshot(exe)
    train(exe, opt, rng, 1)
    monkeypatch.setattr(ckpt_mod, "_write_all", _fail_half_way(exc))
    expected = CheckpointError if isinstance(exc, OSError) else KeyboardInterrupt
    with pytest.raises(expected) as info:
        save_checkpoint(path, exe, optimizer=opt)
    if expected is CheckpointError:
        assert "No space left on device" in str(info.value)
        assert "previous checkpoint" in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["ck.safetensors"]
    ck = load_checkpoint(path)
    assert_bitwise({**ck.arg_params, **ck.aux_params}, before)


def test_save_replaces_the_old_file_and_leaves_nothing_else(tmp_path):
    exe, opt, rng, path = trained(tmp_path)
    train(exe, opt, rng, 1)
    save_checkpoint(path, exe, optimizer=opt)
    assert sorted(os.listdir(tmp_path)) == ["ck.safetensors"]
    assert_bitwise(dict(load_params(path)[0]), {n: exe.arg_dict[n] for n in PARAMS})


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_process_killed_mid_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    exe, _, _, path = trained(tmp_path)
    before = snapshot(exe)
    script = textwrap.dedent(f"""
        import os, signal, torch
        import executor, symbol as sym
        from executor.training import checkpoint as c
        def die(f, data):
            f.write(data[:len(data) // 2]); f.flush(); os.kill(os.getpid(), signal.SIGKILL)
        c._write_all = die
        net = sym.FullyConnected(sym.Variable("data"), num_hidden=3, name="fc1")
        exe = net.simple_bind("cpu", data=(2, 4))
        c.save_checkpoint({str(path)!r}, exe)
    """)
    res = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True)
    assert res.returncode == -signal.SIGKILL, res.stderr.decode()[-2000:]
    ck = load_checkpoint(path)
    assert_bitwise({**ck.arg_params, **ck.aux_params}, before)
    # a killed process cannot clean up: its half-written temporary is hidden and ignored
    left = sorted(set(os.listdir(tmp_path)) - {"ck.safetensors"})
    assert len(left) == 1 and left[0].startswith(".ck.safetensors.") and left[0].endswith(".tmp")


def test_state_that_is_not_json_is_refused_before_writing(tmp_path):
    exe = bind()
    with pytest.raises(CheckpointError, match=r"state is not JSON \(it holds a Tensor\)"):
        save_checkpoint(tmp_path / "ck", exe, state={"lr": torch.tensor(0.1)})
    with pytest.raises(CheckpointError, match="folder .* does not exist"):
        save_checkpoint(tmp_path / "nowhere" / "ck", exe)
    assert os.listdir(tmp_path) == []


# -- clear errors ---------------------------------------------------------------------------------
def test_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="'.*nope.safetensors' does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_params(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("damage", ["truncated", "not safetensors", "empty", "flipped byte"])
def test_damaged_file_is_one_clear_error(tmp_path, damage):
    _, _, _, path = trained(tmp_path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[:len(data) * 2 // 3])
    elif damage == "not safetensors":
        path.write_text("epoch 3, step 12: definitely not a checkpoint\n")
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # inside the last tensor's bytes: only the digest notices
        path.write_bytes(data[:-3] + bytes([data[-3] ^ 0xFF]) + data[-2:])
    message = "is damaged" if damage == "flipped byte" else "not a safetensors checkpoint"
    for load in (load_checkpoint, load_params):
        with pytest.raises(CheckpointError, match=message) as info:
            load(path)
        assert isinstance(info.value, SymbolError)


def test_safetensors_file_without_checkpoint_metadata_is_refused(tmp_path):
    safetensors.torch.save_file({"arg:fc1_weight": torch.ones(2, 2)}, tmp_path / "w")
    with pytest.raises(CheckpointError, match="not a checkpoint: it has no "
                                              "'sublinear-checkpoint' metadata"):
        load_checkpoint(tmp_path / "w")


@pytest.mark.parametrize("other, expected", [
    ({"hidden": 32}, ["shape of fc1_weight: (16, 6) in the checkpoint, (32, 6) in the network",
                      "shape of fc2_weight: (3, 16) in the checkpoint, (3, 32) in the network",
                      "and 2 more shape differences"]),
    ({"layers": 2}, ["missing from the checkpoint: 'fc3_weight', 'fc3_bias'",
                     "shape of fc2_weight: (3, 16) in the checkpoint, (16, 16) in the network"]),
])
def test_checkpoint_of_another_network_is_one_error_and_changes_nothing(tmp_path, other,
                                                                        expected):
    _, _, _, path = trained(tmp_path)
    exe = bind(seed=1, **other)
    before = {n: t.clone() for n, t in {**exe.arg_dict, **exe.aux_dict}.items()}
    rng_before = torch.get_rng_state()
    with pytest.raises(CheckpointError) as info:
        restore(exe, load_checkpoint(path), optimizer=make_optimizer(exe, "sgd"))
    message = str(info.value)
    assert message.startswith(f"checkpoint '{path}' does not fit this network")
    for line in expected:
        assert f"  {line}" in message.splitlines()[1:], message
    for n, t in before.items():
        assert torch.equal(t, {**exe.arg_dict, **exe.aux_dict}[n]), n
    assert torch.equal(rng_before, torch.get_rng_state())


def test_checkpoint_with_names_the_network_lacks_is_refused(tmp_path):
    exe = bind(layers=2)
    path = save_checkpoint(tmp_path / "ck", exe)
    with pytest.raises(CheckpointError, match="not in the network: 'arg:fc3_weight', "
                                              "'arg:fc3_bias'"):
        restore(bind(), load_checkpoint(path))


def test_dtype_mismatch_is_named(tmp_path):
    _, _, _, path = trained(tmp_path, dtype="float64")
    with pytest.raises(CheckpointError, match="dtype of fc1_weight: float64 in the checkpoint, "
                                              "float32 in the network"):
        restore(bind("float32"), load_checkpoint(path))


def test_optimizer_mismatches_are_clear_errors(tmp_path):
    exe, _, _, path = trained(tmp_path, kind="sgd")
    fresh = bind(seed=1)
    ck = load_checkpoint(path)
    with pytest.raises(CheckpointError, match="holds SGD state; the optimizer is Adam"):
        restore(fresh, ck, optimizer=make_optimizer(fresh, "adam"))
    partial = torch.optim.SGD([fresh.arg_dict["fc1_weight"]], lr=0.1, momentum=0.9)
    with pytest.raises(CheckpointError, match="param group 0 .* lacks 'fc1_bias'"):
        restore(fresh, ck, optimizer=partial)
    stranger = torch.optim.SGD([torch.zeros(2)], lr=0.1)
    with pytest.raises(CheckpointError, match="not a tensor of the executor's arg_dict"):
        restore(fresh, ck, optimizer=stranger)
    bare = save_checkpoint(tmp_path / "bare", exe)
    with pytest.raises(CheckpointError, match="holds no optimizer state"):
        restore(fresh, load_checkpoint(bare), optimizer=make_optimizer(fresh, "sgd"))
    assert not torch.equal(fresh.arg_dict["fc1_weight"], exe.arg_dict["fc1_weight"])
