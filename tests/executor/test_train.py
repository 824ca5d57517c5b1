"""``sublinear train`` and the Trainer: real data, a small ResNet, mirror plans giving the same
losses, exact resume, only parameters updated, and every bad input one clear error."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import executor  # noqa: F401
import symbol as sym
from executor.app.cli import main
from executor.training.data import DataError, synthetic
from executor.training.trainer import TrainConfig, Trainer, learning_rate

ROOT = Path(__file__).resolve().parents[2]
MLP = str(ROOT / "examples" / "mlp.sym")
RESNET = {"units": (1, 1, 1), "filter_list": (8, 16, 32, 64), "image_shape": (3, 32, 32),
          "num_classes": 10}


def run(capsys, *argv):
    code = main(["train", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(out):
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_digits_reach_95_percent_with_the_documented_json(capsys):
    code, out, err = run(capsys, MLP, "--param", "input_dim=64", "--data", "digits",
                         "--epochs", "30", "--json")
    assert code == 0, err
    records = json_lines(out)
    epochs, final = records[:-1], records[-1]
    assert len(epochs) == 30 and [r["epoch"] for r in epochs] == list(range(1, 31))
    for key in ("epochs", "final_loss", "train_accuracy", "test_accuracy", "samples_per_s",
                "checkpoint"):
        assert key in final
    assert final["epochs"] == 30 and final["test_accuracy"] >= 0.95
    assert final["final_loss"] < epochs[0]["loss"]


def _resnet_trainer(mirror, dtype="float64", epochs=3):
    net = sym.load(str(ROOT / "examples" / "resnet.sym"), params=RESNET)
    data = synthetic({"data": (3, 32, 32)}, "softmax_label", 10, samples=128, test_samples=32,
                     seed=1)
    return Trainer(net, data, TrainConfig(batch=16, epochs=epochs, lr=0.05, ctx="cpu",
                                          dtype=dtype, mirror=mirror, seed=3))


def test_a_small_resnet_learns_and_sublinear_gives_the_same_losses_in_less_memory():
    losses = {}
    planned = {}
    for mirror in ("none", "sublinear"):
        trainer = _resnet_trainer(mirror)
        records = []
        trainer.fit(on_epoch=lambda t, r: records.append(r))
        losses[mirror] = [r["loss"] for r in records]
        planned[mirror] = trainer.exe.plan.planned_bytes
        if mirror == "sublinear":
            assert trainer.exe.mirror_plan.counts  # something is recomputed
    assert losses["none"][-1] < losses["none"][0]  # it learns
    np.testing.assert_allclose(losses["sublinear"], losses["none"], rtol=1e-9)
    assert planned["sublinear"] < planned["none"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_two_epochs_and_a_resume_equal_three_epochs(tmp_path, capsys, optimizer):
    common = [MLP, "--param", "input_dim=64", "--param", "hidden=16", "--data", "digits",
              "--optimizer", optimizer, "--lr", "0.01", "--dtype", "float64", "--quiet",
              "--json"]
    assert run(capsys, *common, "--epochs", "3", "--save", str(tmp_path / "one"))[0] == 0
    assert run(capsys, *common, "--epochs", "2", "--save", str(tmp_path / "two"))[0] == 0
    code, out, err = run(capsys, *common, "--epochs", "3", "--resume", str(tmp_path / "two"),
                         "--save", str(tmp_path / "two"))
    assert code == 0, err
    assert json_lines(out)[0]["epoch"] == 3  # only the missing epoch ran
    from executor.training.checkpoint import load_checkpoint
    one = load_checkpoint(str(tmp_path / "one" / "epoch-0003.safetensors"))
    two = load_checkpoint(str(tmp_path / "two" / "epoch-0003.safetensors"))
    assert one.arg_params.keys() == two.arg_params.keys()
    for name in one.arg_params:
        assert torch.equal(one.arg_params[name], two.arg_params[name]), name
    for name, state in one.optimizer["state"].items():
        for key, value in state.items():
            other = two.optimizer["state"][name][key]
            assert (torch.equal(value, other) if isinstance(value, torch.Tensor)
                    else value == other), (name, key)


def test_only_parameters_are_updated(capsys):
    # an extra declared input (an initial state) and the data and labels never change
    net = sym.loads("input data: (8, 6);\ninput h0: (8, 5);\n"
                    "h = Activation(FullyConnected(data, num_hidden=5) + h0, act_type='tanh');\n"
                    "output SoftmaxOutput(FullyConnected(h, num_hidden=3));\n")
    label = next(a for a in net.list_arguments() if a.endswith("label"))
    data = synthetic({"data": (6,)}, label, 3, samples=64, test_samples=16)
    trainer = Trainer(net, data, TrainConfig(batch=8, epochs=2, lr=0.1, ctx="cpu"))
    assert trainer.inputs == ["data", label] and trainer.fixed == ["h0"]
    assert "h0" not in trainer.params and "data" not in trainer.params
    assert all(p.endswith(("weight", "bias")) for p in trainer.params)
    before = {n: t.clone() for n, t in trainer.exe.arg_dict.items()}
    trainer.fit()
    assert torch.count_nonzero(trainer.exe.arg_dict["h0"]) == 0
    changed = {n for n, t in trainer.exe.arg_dict.items() if not torch.equal(t, before[n])}
    assert set(trainer.params) <= changed
    assert changed - set(trainer.params) <= {"data", label}  # fed, not trained
    assert not set(trainer.exe.grad_dict) - set(trainer.params)


def test_learning_rate_schedules():
    def lr(schedule, step, warmup=0):
        return learning_rate(TrainConfig(lr=1.0, lr_schedule=schedule, warmup=warmup), step, 100)
    assert [lr("constant", s) for s in (0, 99)] == [1.0, 1.0]
    assert [lr("step", s) for s in (0, 50, 75)] == pytest.approx([1.0, 0.1, 0.01])
    assert lr("cosine", 0) == 1.0 and lr("cosine", 50) == pytest.approx(0.5)
    assert lr("cosine", 99) < 0.01
    assert [lr("constant", s, warmup=4) for s in (0, 3, 4)] == [0.25, 1.0, 1.0]


def test_a_diverging_run_stops_with_the_epoch_and_step(tmp_path, capsys):
    code, _, err = run(capsys, MLP, "--param", "input_dim=64", "--data", "digits",
                       "--lr", "1e30", "--epochs", "2", "--save", str(tmp_path))
    assert code == 1 and "training diverged at epoch 1, step" in err
    assert not list(tmp_path.glob("*.safetensors"))  # nothing half written


def _npz(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return str(path)


X, ZEROS = np.zeros((200, 64)), np.zeros(200)
BAD = [
    ("missing-file", lambda p: ["--data", str(p / "none.npz")], "no such file"),
    ("corrupt-file", lambda p: ["--data", _write(p / "bad.npz", b"not a zip")],
     "not a readable .npz file"),
    ("wrong-names", lambda p: ["--data", _npz(p, x=np.zeros((4, 64)), y=np.zeros(4))],
     "no array named 'data' or 'label' (found: x, y"),
    ("shape-mismatch", lambda p: ["--data", _npz(p, data=np.zeros((40, 32)), label=ZEROS[:40])],
     "the network's input 'data' is (32, 64) (samples of (64,)), but the"),
    ("labels-out-of-range", lambda p: ["--data", _npz(p, data=X, label=ZEROS + 12)],
     "has 13 classes but the network's output has 10"),
    ("labels-not-whole", lambda p: ["--data", _npz(p, data=X, label=ZEROS + 0.5)],
     "train label 0.5 (sample 0) is not a class index"),
    ("unknown-optimizer", lambda p: ["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    ("negative-lr", lambda p: ["--lr=-1"], "expected a positive number"),
    ("zero-epochs", lambda p: ["--epochs", "0"], "expected a positive integer, got '0'"),
    ("batch-too-large", lambda p: ["--data", "digits", "--batch", "5000"],
     "batch 5000 is larger than the 1438 training samples"),
    ("resume-missing", lambda p: ["--resume", str(p / "nothing")], "no such file or folder"),
    ("workers-above-batch", lambda p: ["--batch", "4", "--workers", "5"],
     "--workers 5 is larger than --batch 4"),
    ("workers-uneven", lambda p: ["--batch", "64", "--workers", "3"],
     "--batch 64 does not split into 3 equal worker shares"),
]


def _write(path, data):
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("name,extra,message", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_one_clear_error(tmp_path, capsys, name, extra, message):
    code, out, err = run(capsys, MLP, "--param", "input_dim=64", "--epochs", "1",
                         *extra(tmp_path), "--save", str(tmp_path / "ck"))
    assert code == 2, err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not list((tmp_path / "ck").glob("*.safetensors")) if (tmp_path / "ck").exists() \
        else True


def test_resume_of_another_network_names_what_differs(tmp_path, capsys):
    assert run(capsys, MLP, "--param", "input_dim=64", "--data", "digits", "--epochs", "1",
               "--save", str(tmp_path), "--quiet")[0] == 0
    code, _, err = run(capsys, MLP, "--param", "input_dim=64", "--param", "hidden=32",
                       "--data", "digits", "--epochs", "2", "--resume", str(tmp_path))
    assert code == 2 and "does not fit this network" in err and "fc1_weight" in err
    assert len(list(tmp_path.glob("*.safetensors"))) == 1  # nothing written


def test_config_errors_before_anything_is_bound():
    for bad in (dict(optimizer="lbfgs"), dict(epochs=0), dict(lr=-1.0), dict(lr=float("nan")),
                dict(lr_schedule="linear"), dict(batch=0)):
        with pytest.raises(Exception) as info:
            TrainConfig(**bad).check()
        assert "Traceback" not in str(info.value)
    net = sym.load(MLP)
    data = synthetic({"data": (7,)}, "softmax_label", 10, samples=64, test_samples=8)
    with pytest.raises(DataError, match=r"input 'data' is \(32, 784\)"):
        Trainer(net, data, TrainConfig(batch=8, ctx="cpu"))


def test_two_workers_train_the_same_parameters_as_one_process(tmp_path, capsys):
    """``--workers 2`` (two gloo processes, half of every batch each) ends where one process
    on the whole batch ends: the same losses and checkpoint arrays (float64, with momentum),
    and only rank 0 prints and saves."""
    common = [MLP, "--param", "input_dim=64", "--data", "digits", "--epochs", "2",
              "--dtype", "float64", "--batch", "32", "--json"]
    finals, arrays = {}, {}
    for workers, k in ((1, 1), (2, 1), (2, 2)):  # 2 workers x 2 microbatches: one reduction
        folder = tmp_path / f"w{workers}k{k}"
        code, out, err = run(capsys, *common, "--workers", str(workers), "--microbatch", str(k),
                             "--save", str(folder))
        assert code == 0, err
        records = json_lines(out)
        assert len(records) == 3 and records[-1]["workers"] == workers
        finals[workers, k] = records[-1]
        (ckpt,) = folder.glob("*-0002.safetensors")
        from safetensors.numpy import load_file
        arrays[workers, k] = load_file(ckpt)
    # float64; the sums are associated differently (two half-batch sums, then all-reduce), and
    # one process updates inside the backward pass: equal far inside the 1e-5 asked for
    one = (1, 1)
    params = [k for k in arrays[one] if k.startswith("arg:")]
    for run_ in ((2, 1), (2, 2)):
        assert finals[one]["final_loss"] == pytest.approx(finals[run_]["final_loss"], rel=1e-7)
        assert finals[one]["test_accuracy"] == finals[run_]["test_accuracy"]
        assert params and sorted(arrays[one]) == sorted(arrays[run_])
        for k in params:
            np.testing.assert_allclose(arrays[run_][k], arrays[one][k], rtol=1e-7, atol=1e-10)


def test_digits_without_scikit_learn_says_how_to_install_it(monkeypatch, capsys):
    import sys
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails
    code, _, err = run(capsys, MLP, "--param", "input_dim=64", "--data", "digits")
    assert code == 2 and "--data digits needs scikit-learn: pip install" in err
