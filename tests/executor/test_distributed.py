"""Gradient-ready hooks, and data parallel training on torch.distributed (gloo, CPU).

The hook tests run in this process. The data parallel runs spawn 2 worker processes with
:func:`executor.training.distributed.launch` and compare them with a 1-process run in this
process (float64): without BatchNorm, 2 workers on half the global batch each take the same
steps as 1 process on the whole batch; with BatchNorm, each worker normalises with its own
half's statistics, so the reference is 1 process that runs each half separately (gradients
accumulated with ``grad_req='add'``, moving statistics kept per half).
"""
from __future__ import annotations

import time
from datetime import timedelta

import numpy as np
import pytest
import torch
import torch.distributed as dist

import executor  # noqa: F401  (installs simple_bind)
import symbol as sym
from examples import mlp, resnet
from executor import ExecutorError, initialize
from executor.cuda_graph import CudaGraphs
from executor.optimizer import SGD
from executor.training.distributed import (DataParallel, WorkerError, from_environment, launch,
                                           shard_batch)

GLOBAL_BATCH, STEPS, FEATURES, CLASSES = 8, 4, 12, 5
RTOL, ATOL = 1e-9, 1e-12  # float64; far inside the 1e-5 asked for


# -- nets and runs (module level: the workers unpickle them) --------------------------------------
def deep_mlp(layers: int = 6) -> sym.Symbol:
    return mlp.get_symbol(num_classes=CLASSES, hidden=(16,) * layers)


def bn_net() -> sym.Symbol:
    x = sym.FullyConnected(sym.Variable("data"), num_hidden=16, name="fc1")
    x = sym.Activation(sym.BatchNorm(x, fix_gamma=False, name="bn1"), act_type="relu",
                       name="relu1")
    return sym.SoftmaxOutput(sym.FullyConnected(x, num_hidden=CLASSES, name="fc2"),
                             name="softmax")


def bind(net: sym.Symbol, batch: int, seed: int, req: str = "write", **kw):
    reqs = {n: "null" if n in ("data", "softmax_label") else req for n in net.list_arguments()}
    exe = net.simple_bind("cpu", grad_req=reqs, dtype="float64", data=(batch, FEATURES), **kw)
    initialize(exe, seed=seed)
    return exe


def global_batch(step: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100 + step)
    return {"data": rng.normal(size=(GLOBAL_BATCH, FEATURES)),
            "softmax_label": rng.integers(0, CLASSES, GLOBAL_BATCH).astype(np.float64)}


def sgd() -> SGD:
    return SGD(lr=0.5, momentum=0.9, rescale_grad=1.0 / GLOBAL_BATCH)  # 1 / global batch


def snapshot(exe) -> dict[str, np.ndarray]:
    return {n: t.numpy().copy() for n, t in {**exe.arg_dict, **exe.aux_dict}.items()}


def data_parallel_worker(net_name: str) -> dict:
    """One worker: its own initialisation (seed = rank + 1), broadcast, STEPS SGD steps."""
    env = from_environment("cpu", timeout=timedelta(seconds=60))
    exe = bind(NETS[net_name](), GLOBAL_BATCH // env.world_size, seed=env.rank + 1)
    before = snapshot(exe)
    dp = DataParallel(exe, bucket_bytes=2048)  # small buckets: several per step
    dp.broadcast()
    started = snapshot(exe)
    opt = sgd()
    for step in range(STEPS):
        exe.forward(is_train=True, **dp.shard(global_batch(step)))
        exe.backward()
        dp.finish()
        opt.update(exe)
    return {"before": before, "started": started, "final": snapshot(exe), "stats": dp.stats,
            "order": dp.params}


def failing_worker() -> None:
    env = from_environment("cpu", timeout=timedelta(seconds=60))
    if env.rank == 1:
        raise ValueError("worker one gives up")
    dist.all_reduce(torch.ones(3))  # waits for rank 1, which never comes
    time.sleep(60)


NETS = {"mlp": deep_mlp, "bn": bn_net}


@pytest.fixture(scope="module")
def mlp_workers():
    return launch(data_parallel_worker, 2, "mlp")


# -- gradient-ready hooks -------------------------------------------------------------------------
def record(exe):
    """Hook every gradient: (name, clone at firing, kernel calls so far) per call."""
    seen: list[tuple[str, torch.Tensor, int]] = []
    exe.on_gradient_ready(lambda n, g: seen.append((n, g.clone(),
                                                    sum(exe.kernel_calls.values()))))
    return seen


def step(exe, s: int = 0, timed: bool = False) -> None:
    batch = global_batch(s)
    if timed:
        for k, v in batch.items():
            exe.arg_dict[k].copy_(torch.from_numpy(v))
        exe.timed_step()
        return
    exe.forward(is_train=True, **batch)
    exe.backward()


def test_hook_sees_each_gradient_once_with_its_final_value():
    plain, hooked = bind(deep_mlp(), GLOBAL_BATCH, 1), bind(deep_mlp(), GLOBAL_BATCH, 1)
    seen = record(hooked)
    for s in range(2):
        seen.clear()
        step(plain, s)
        step(hooked, s)
        assert sorted(n for n, _, _ in seen) == sorted(hooked.grad_dict)  # once each
        for name, grad, _ in seen:
            assert torch.equal(grad, hooked.grad_dict[name]), name  # nothing wrote it later
            assert torch.equal(grad, plain.grad_dict[name]), name  # hooks change nothing


def test_hook_fires_last_layer_first_long_before_the_pass_ends():
    exe = bind(deep_mlp(layers=6), GLOBAL_BATCH, 1)
    exe.forward(is_train=True, **global_batch(0))
    forward_calls = sum(exe.kernel_calls.values())
    seen = record(exe)
    exe.backward()
    total = sum(exe.kernel_calls.values()) - forward_calls
    weights = [n for n, _, _ in seen if n.endswith("_weight")]
    assert weights == [f"fc{i}_weight" for i in range(7, 0, -1)]  # reverse layer order
    assert tuple(n for n, _, _ in seen) == exe.gradient_order
    first = seen[0][2] - forward_calls
    assert first <= total // 4, (first, total)  # fc7's gradient: within the first quarter
    assert seen[-1][2] - forward_calls == total  # fc1's: with the last step


@pytest.mark.parametrize("mirror", ["drop-cheap", "sublinear"])
def test_hook_with_recomputation_and_timed_step(mirror):
    net = resnet.get_symbol(num_classes=CLASSES, units=(1, 1, 1), filter_list=(8, 16, 32, 64),
                            image_shape=(3, 8, 8))
    reqs = {n: "null" if n in ("data", "softmax_label") else "write"
            for n in net.list_arguments()}
    exes = [net.simple_bind("cpu", grad_req=reqs, dtype="float64", mirror=m, data=(4, 3, 8, 8))
            for m in ("none", mirror)]
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for exe in exes:
        initialize(exe, seed=3)
        exe.arg_dict["data"].copy_(x)
        exe.arg_dict["softmax_label"].copy_(torch.tensor([0, 1, 2, 3]))
    plain, mirrored = exes
    seen = record(mirrored)
    plain.timed_step()
    mirrored.timed_step()
    assert mirrored.recompute_calls, "the plan recomputes nothing"
    assert sorted(n for n, _, _ in seen) == sorted(mirrored.grad_dict)
    for name, grad, _ in seen:
        torch.testing.assert_close(grad, plain.grad_dict[name], rtol=RTOL, atol=ATOL)
    assert seen[0][2] < seen[-1][2]  # the first fired well before the last


def test_hook_fires_after_add_and_after_copies():
    # p and q receive one gradient entry: it is written into p's array and copied to q's
    p, q = sym.Variable("p"), sym.Variable("q")
    net = sym.SoftmaxOutput(sym.FullyConnected(sym.elemwise_add(p, q), num_hidden=CLASSES,
                                               name="fc"), name="softmax")
    reqs = {"p": "write", "q": "write", "fc_weight": "add", "fc_bias": "write",
            "softmax_label": "null"}
    exe = net.simple_bind("cpu", grad_req=reqs, dtype="float64", p=(4, 3), q=(4, 3))
    initialize(exe, seed=0, skip=())
    exe.arg_dict["softmax_label"].copy_(torch.tensor([0, 1, 2, 3]))
    seen = record(exe)
    for _ in range(2):
        seen.clear()
        exe.forward(is_train=True)
        exe.backward()
        assert sorted(n for n, _, _ in seen) == ["fc_bias", "fc_weight", "p", "q"]
        for name, grad, _ in seen:
            assert torch.equal(grad, exe.grad_dict[name]), name
    order = [n for n, _, _ in seen]
    assert order.index("p") < order.index("q")  # q's copy is made after the pass


def test_removed_hook_is_not_called_and_cuda_graphs_refuse_hooks():
    exe = bind(deep_mlp(layers=1), GLOBAL_BATCH, 1)
    seen = []
    handle = exe.on_gradient_ready(lambda n, g: seen.append(n))
    handle.remove()
    step(exe)
    assert not seen
    exe.cuda_graphs = CudaGraphs(1)  # as enable_cuda_graphs leaves it (no CUDA here)
    with pytest.raises(ExecutorError, match="CUDA graph"):
        exe.on_gradient_ready(lambda n, g: None)


# -- sharding and the environment (no processes) --------------------------------------------------
def test_shard_batch_takes_contiguous_equal_slices():
    batch = {"data": np.arange(12).reshape(6, 2), "label": np.arange(6)}
    parts = [shard_batch(batch, r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate([p["data"] for p in parts]), batch["data"])
    assert parts[1]["label"].tolist() == [2, 3]
    assert shard_batch({"x": torch.arange(6)}, 2, 3)["x"].tolist() == [4, 5]  # torch too
    with pytest.raises(ExecutorError, match="does not split into 4"):
        shard_batch(batch, 0, 4)
    with pytest.raises(ExecutorError, match="rank 3 outside"):
        shard_batch(batch, 3, 3)


def test_without_torchrun_environment_the_run_is_not_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    env = from_environment("cpu")
    assert (env.rank, env.world_size, env.backend) == (0, 1, None)
    assert not dist.is_initialized()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    with pytest.raises(ExecutorError, match="MASTER_ADDR"):
        from_environment("cpu")


@pytest.fixture
def group_of_one(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/store", rank=0,
                            world_size=1)
    yield
    dist.destroy_process_group()


def test_buckets_follow_the_backward_order_and_misuse_is_reported(group_of_one):
    exe = bind(deep_mlp(), GLOBAL_BATCH, 1)
    dp = DataParallel(exe, bucket_bytes=2048)
    assert dp.params == list(exe.gradient_order)
    assert len(dp.bucket_sizes) > 2
    assert all(size < 2048 + 16 * 16 * 8 for size in dp.bucket_sizes)  # closed at the cap
    with pytest.raises(ExecutorError, match="call exe.backward"):
        dp.finish()
    step(exe)
    dp.finish()
    assert dp.stats["steps"] == 1 and dp.stats["buckets"] == len(dp.bucket_sizes)
    exe.forward(is_train=True, **global_batch(1))
    exe.backward()
    with pytest.raises(ExecutorError, match="without finish"):
        exe.backward()
    with pytest.raises(ExecutorError, match="no gradient for data"):
        DataParallel(exe, params=["data"])


# -- two workers ----------------------------------------------------------------------------------
def test_broadcast_starts_every_worker_from_rank_0(mlp_workers):
    r0, r1 = mlp_workers
    assert any(not np.array_equal(r0["before"][n], r1["before"][n]) for n in r0["before"])
    for n in r0["before"]:
        np.testing.assert_array_equal(r1["started"][n], r0["before"][n], err_msg=n)


def test_two_workers_on_half_batches_equal_one_process_on_the_whole_batch(mlp_workers):
    exe = bind(deep_mlp(), GLOBAL_BATCH, seed=1)  # rank 0's initialisation
    opt = sgd()
    for s in range(STEPS):
        step(exe, s)
        opt.update(exe)
    want = snapshot(exe)
    assert any(not np.allclose(want[n], mlp_workers[0]["started"][n])
               for n in exe.grad_dict)  # it trained
    for rank, got in enumerate(mlp_workers):
        for n in exe.grad_dict:
            np.testing.assert_allclose(got["final"][n], want[n], rtol=RTOL, atol=ATOL,
                                       err_msg=f"rank {rank}: {n}")
    stats = mlp_workers[0]["stats"]
    assert stats["steps"] == STEPS and stats["buckets"] > 2 and stats["world_size"] == 2
    assert 0 <= stats["overlap_fraction"] <= 1 and stats["tail_s"] >= 0
    assert mlp_workers[0]["order"][:2] == ["fc7_weight", "fc7_bias"]


def test_batchnorm_statistics_stay_per_worker():
    workers = launch(data_parallel_worker, 2, "bn")
    # reference: one process runs each half separately, summing gradients (grad_req 'add')
    # and keeping each half's moving statistics apart, as the two workers do
    exe = bind(bn_net(), GLOBAL_BATCH // 2, seed=1, req="add")
    aux = [{n: t.clone() for n, t in exe.aux_dict.items()} for _ in range(2)]
    opt = sgd()
    for s in range(STEPS):
        for g in exe.grad_dict.values():
            g.zero_()
        for rank in range(2):
            for n, t in aux[rank].items():
                exe.aux_dict[n].copy_(t)
            exe.forward(is_train=True, **shard_batch(global_batch(s), rank, 2))
            exe.backward()
            aux[rank] = {n: t.clone() for n, t in exe.aux_dict.items()}
        opt.update(exe)
    for rank, got in enumerate(workers):
        for n in exe.grad_dict:
            np.testing.assert_allclose(got["final"][n], exe.arg_dict[n].numpy(), rtol=RTOL,
                                       atol=ATOL, err_msg=f"rank {rank}: {n}")
        for n, t in aux[rank].items():
            np.testing.assert_allclose(got["final"][n], t.numpy(), rtol=RTOL, atol=ATOL,
                                       err_msg=f"rank {rank}: {n}")
    assert not np.allclose(workers[0]["final"]["bn1_moving_mean"],
                           workers[1]["final"]["bn1_moving_mean"])
    # whole-batch statistics would have given other parameters: the per-worker ones matter
    full = bind(bn_net(), GLOBAL_BATCH, seed=1)
    opt = sgd()
    for s in range(STEPS):
        step(full, s)
        opt.update(full)
    assert not np.allclose(full.arg_dict["fc1_weight"].numpy(),
                           workers[0]["final"]["fc1_weight"], rtol=1e-6, atol=0)


def test_a_failing_worker_stops_the_run_with_one_clear_error():
    t = time.perf_counter()
    with pytest.raises(WorkerError, match=r"worker 1 of 2 failed: ValueError: worker one "
                                          r"gives up") as info:
        launch(failing_worker, 2)
    assert time.perf_counter() - t < 30  # rank 0 was stopped, not waited for
    assert info.value.rank == 1
    assert isinstance(info.value.__cause__, ValueError)
    assert "failing_worker" in (info.value.remote_traceback or "")
