"""The executor realises the memory plan: identical results, shared storage where planned."""
from __future__ import annotations

import pytest
import torch

import executor  # noqa: F401
from examples import lstm, mlp, resnet
from optim.flags import FlagError
from optim.memory import check_memory_plan

from .harness import bind_filled

NETS = {
    "mlp": (lambda: mlp.get_symbol(num_classes=10), {"data": (8, 100)}),
    "resnet": (lambda: resnet.get_symbol(num_classes=10, units=(2, 2, 2),
                                         filter_list=(16, 64, 128, 256), image_shape=(3, 32, 32)),
               {"data": (4, 3, 32, 32)}),
    "lstm": (lambda: lstm.get_symbol(seq_len=6, num_layers=2, num_hidden=16, input_size=8,
                                     num_label=10),
             {**{f"t{t}_data": (4, 8) for t in range(6)},
              **{f"l{i}_init_{k}": (4, 16) for i in range(2) for k in "ch"}}),
}


def _run(name, strategy, seed=0, **bind_args):
    build, shapes = NETS[name]
    exe = bind_filled(build(), shapes, init_seed=seed, data_seed=seed, strategy=strategy,
                      **bind_args)
    exe.forward(is_train=True)
    exe.backward()
    return exe


def _assert_same(exe, base, what):
    for got, want in zip(exe.outputs, base.outputs, strict=True):
        assert torch.equal(got, want), what
    for n in base.grad_dict:
        assert torch.equal(exe.grad_dict[n], base.grad_dict[n]), (what, n)
    for n in base.aux_dict:
        assert torch.equal(exe.aux_dict[n], base.aux_dict[n]), (what, n)


@pytest.mark.parametrize("name", sorted(NETS))
def test_strategies_give_identical_results(name):
    base = _run(name, "none")
    assert base.plan.num_inplace == 0
    for strategy in ("inplace", "pool", "sharing"):
        exe = _run(name, strategy)
        check_memory_plan(exe.plan)
        _assert_same(exe, base, strategy)
        assert exe.plan.num_storage < base.plan.num_storage
        assert exe.plan.planned_bytes < base.plan.planned_bytes


#: Memory options, as MXNet's environment variables set them, with the structure they must show.
OPTIONS = [
    ({"MXNET_EXEC_NUM_TEMP": "2"}, "pool"), ({"MXNET_EXEC_NUM_TEMP": "3"}, "pool"),
    ({"MXNET_EXEC_NUM_TEMP": "2"}, "sharing"), ({"MXNET_EXEC_MATCH_RANGE": "1"}, "pool"),
    ({"MXNET_EXEC_MATCH_RANGE": "2"}, "pool"), ({"NNVM_AUTO_SEARCH_MATCH_RANGE": "1"}, "pool"),
]


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("env,strategy", OPTIONS,
                         ids=[f"{s}-{'-'.join(f'{k}={v}' for k, v in e.items())}"
                              for e, s in OPTIONS])
def test_coshare_and_match_ranges_run_equal_to_no_sharing(name, env, strategy, monkeypatch):
    # float64, so that any aliasing mistake shows as a difference, not as rounding
    base = _run(name, "none", dtype="float64")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    exe = _run(name, strategy, dtype="float64")
    check_memory_plan(exe.plan)
    _assert_same(exe, base, env)
    plan = exe.plan
    assert plan.strategy == strategy and plan.planned_bytes < base.plan.planned_bytes
    if "MXNET_EXEC_NUM_TEMP" in env:  # the colours were used (the MLP, a chain, has one path)
        assert plan.num_temp == int(env["MXNET_EXEC_NUM_TEMP"])
        used = len(set(plan.colour.values()))
        assert used == 1 if name == "mlp" else 1 < used <= plan.num_temp
    if "MXNET_EXEC_MATCH_RANGE" in env:
        assert plan.match_range == int(env["MXNET_EXEC_MATCH_RANGE"])


def test_inplace_pairs_share_data_pointers():
    exe = _run("resnet", "sharing")
    assert exe.plan.num_inplace > 0
    for out, src in exe.plan.inplace.items():
        assert exe._buffers[out].data_ptr() == exe._buffers[src].data_ptr()
    # every planned entry is a view of the one arena, at its storage's offset
    base = exe._arena.data_ptr()
    for e, sid in exe.plan.storage.items():
        assert exe._buffers[e].data_ptr() == base + exe.plan.offsets[sid]


@pytest.mark.parametrize("strategy", ["none", "inplace", "pool", "sharing"])
def test_the_arena_is_what_is_allocated(strategy):
    exe = _run("resnet", strategy)
    assert exe._arena.numel() == exe.plan.planned_bytes == exe.memory_report()["planned_bytes"]
    views = {exe._buffers[e].untyped_storage().data_ptr() for e in exe.plan.storage}
    assert views == {exe._arena.untyped_storage().data_ptr()}
    assert "Total" in exe.debug_str() and "MB allocated" in exe.debug_str()


def test_environment_selects_the_strategy(monkeypatch):
    monkeypatch.setenv("MXNET_EXEC_ENABLE_INPLACE", "0")
    exe = _run("mlp", None)
    assert exe.plan.strategy == "sharing" and exe.plan.num_inplace == 0
    monkeypatch.setenv("NNVM_EXEC_MATCH_RANGE", "0")
    assert _run("mlp", None).plan.strategy == "none"
    monkeypatch.delenv("NNVM_EXEC_MATCH_RANGE")
    monkeypatch.setenv("NO_ARENA", "1")  # the kill switch: MXNet's pool instead
    assert _run("mlp", None).plan.strategy == "pool"
    assert _run("mlp", "sharing").plan.strategy == "pool"


def test_bad_environment_fails_before_allocation(monkeypatch):
    monkeypatch.setenv("MXNET_EXEC_MATCH_RANGE", "sixteen")
    calls = []
    monkeypatch.setattr(torch, "full", lambda *a, **k: calls.append(a))
    with pytest.raises(FlagError, match="MXNET_EXEC_MATCH_RANGE='sixteen' is invalid"):
        mlp.get_symbol().simple_bind("cpu", data=(2, 100))
    assert calls == []


def test_memory_report_classes():
    exe = _run("resnet", "sharing")
    rep = exe.memory_report()
    c = rep["bytes_by_class"]
    assert c["activations"] + c["gradients"] + c["unused"] == rep["planned_bytes"]
    assert c["activations"] + c["gradients"] == exe.plan.live_peak_bytes
    assert c["parameters"] == sum(t.numel() * 4 for n, t in exe.arg_dict.items()
                                  if n in exe.grad_dict)
    assert c["aux_states"] == sum(t.numel() * 4 for t in exe.aux_dict.values())
    assert rep["total_bytes"] >= sum(c.values())
