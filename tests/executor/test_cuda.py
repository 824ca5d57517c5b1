"""The executor on a CUDA device: same results as on the CPU, every strategy equal to the
unoptimised run, the plan visible in the device's allocator, and ``memcost --measure``."""
from __future__ import annotations

import json

import pytest
import torch

import executor  # noqa: F401  (installs Symbol.simple_bind)
from examples import lstm, resnet
from executor.app.memcost import main as memcost_main
from executor.app.memcost_measure import predicted_bytes

from .harness import bind_filled

pytestmark = pytest.mark.gpu

RTOL, ATOL = 1e-9, 1e-12
#: (memory strategy, mirror strategy) pairs, the first being the unoptimised reference.
STRATEGIES = [("none", "none"), ("inplace", "none"), ("sharing", "none"),
              ("sharing", "drop-cheap"), ("sharing", "sublinear")]


def small_resnet(units=(2, 2, 2), batch=4):
    net = resnet.get_symbol(num_classes=10, units=units, filter_list=(8, 16, 32, 64),
                            image_shape=(3, 32, 32))
    return net, {"data": (batch, 3, 32, 32)}


def small_lstm(steps=6, layers=2):
    net = lstm.get_symbol(seq_len=steps, num_layers=layers, num_hidden=16, input_size=6,
                          num_label=10)
    shapes = {f"t{t}_data": (4, 6) for t in range(steps)}
    shapes.update({f"l{i}_init_{k}": (4, 16) for i in range(layers) for k in "ch"})
    return net, shapes


NETS = {"resnet": small_resnet, "lstm": small_lstm}


def bind(net, shapes, device, dtype="float64", strategy="sharing", mirror="none"):
    """Bind and fill with the same values whatever the device (drawn on the CPU)."""
    return bind_filled(net, shapes, device, init_seed=0, data_seed=1, dtype=dtype,
                       strategy=strategy, mirror=mirror)


def step(exe, steps=2):
    for _ in range(steps):
        exe.forward(is_train=True)
        exe.backward()
    results = {f"out{i}": o for i, o in enumerate(exe.outputs)}
    results.update({f"grad:{n}": g for n, g in exe.grad_dict.items()})
    results.update({f"aux:{n}": a for n, a in exe.aux_dict.items()})
    return {k: v.detach().cpu().clone() for k, v in results.items()}


@pytest.fixture(autouse=True)
def deterministic():
    before = torch.backends.cudnn.deterministic
    torch.backends.cudnn.deterministic = True
    yield
    torch.backends.cudnn.deterministic = before


@pytest.mark.parametrize("name", sorted(NETS))
def test_cuda_step_equals_cpu_step(name):
    net, shapes = NETS[name]()
    want = step(bind(net, shapes, "cpu"))
    got = step(bind(net, shapes, "cuda"))
    assert got.keys() == want.keys()
    for k in want:
        torch.testing.assert_close(got[k], want[k], rtol=1e-8, atol=1e-10,
                                   msg=lambda m, k=k: f"{k}: {m}")


@pytest.mark.parametrize("name", sorted(NETS))
def test_every_strategy_equals_the_unoptimised_run_on_cuda(name):
    net, shapes = NETS[name]()
    runs = {}
    for memory, mirror in STRATEGIES:
        exe = bind(net, shapes, "cuda", strategy=memory, mirror=mirror)
        runs[memory, mirror] = step(exe)
        assert (sum(exe.recompute_calls.values()) > 0) == (mirror != "none"), (memory, mirror)
    want = runs[STRATEGIES[0]]
    for key, got in runs.items():
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=RTOL, atol=ATOL,
                                       msg=lambda m, k=k, key=key: f"{key} {k}: {m}")


def _bound_bytes(net, shapes, memory, mirror):
    """Bytes the device allocator holds for one bound executor, and its executor."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    exe = bind(net, shapes, "cuda", dtype="float32", strategy=memory, mirror=mirror)
    torch.cuda.synchronize()
    return torch.cuda.memory_allocated() - base, exe


def test_allocator_holds_what_the_plan_says():
    """Between strategies, bound bytes differ by exactly the planned bytes (each storage is one
    allocation, rounded up to the caching allocator's 512-byte blocks)."""
    net, shapes = small_resnet(units=(3, 3, 3), batch=8)
    bound = {}
    for memory, mirror in STRATEGIES:
        held, exe = _bound_bytes(net, shapes, memory, mirror)
        plan = exe.plan
        rounded = sum(-(-n // 512) * 512 for n in plan.storage_bytes)
        bound[memory, mirror] = (held, rounded, plan.planned_bytes)
        del exe
    ref_held, ref_rounded, _ = bound[STRATEGIES[0]]
    for key, (held, rounded, _) in bound.items():
        assert held - ref_held == rounded - ref_rounded, key
    planned = [bound[k][2] for k in STRATEGIES]
    assert planned[0] > planned[2] > planned[4]  # none > sharing > sublinear


def test_measured_step_peak_follows_the_plan_and_stays_under_the_prediction():
    from optim.pipeline import NetworkPlan
    net, shapes = small_resnet(units=(6, 6, 6), batch=16)
    peaks = {}
    for memory, mirror in [("none", "none"), ("sharing", "none"), ("sharing", "sublinear")]:
        torch.cuda.empty_cache()
        torch.cuda.synchronize()
        base, base_reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
        exe = bind(net, shapes, "cuda", dtype="float32", strategy=memory, mirror=mirror)
        step(exe, steps=2)
        peak = exe.last_step_peak - base
        peaks[memory if mirror == "none" else mirror] = peak
        nplan = NetworkPlan(exe.joint, exe.shapes, exe.dtypes, exe.plan)
        assert exe.plan.planned_bytes < peak <= predicted_bytes(nplan), (memory, mirror)
        reserved = torch.cuda.memory_reserved() - base_reserved
        assert reserved <= predicted_bytes(nplan), (memory, mirror)
        del exe
    assert peaks["none"] > peaks["sharing"] > peaks["sublinear"], peaks


def test_memcost_measure_on_tiny_sizes(capsys):
    argv = ["--net", "resnet", "--sweep", "26,50", "--batch", "2", "--image", "32",
            "--strategies", "sharing,sublinear", "--measure", "--warmup", "1", "--repeat", "2",
            "--quiet"]
    assert memcost_main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for p in report["points"]:
        m = p["measured"]
        assert m["status"] == "ok", m
        assert 0 < m["step_peak_bytes"] <= m["predicted_bytes"]
        assert m["time_per_batch_s"] > 0 and len(m["times_s"]) == 2
        assert set(m["breakdown_s"]) == {"forward", "recompute", "backward"}
        recomputes = m["recomputed_per_step"]
        assert (recomputes > 0) == (p["strategy"] == "sublinear"), p["strategy"]
    assert [r["size"] for r in report["time_sublinear_over_sharing"]] == [26, 50]
    assert report["device"]["cuda_device"]
    assert memcost_main(argv) == 0
    text = capsys.readouterr().out
    assert "s/batch" in text and "recompute s" in text and "sublinear / sharing time" in text


def test_memcost_measure_with_cuda_graphs(capsys):
    argv = ["--net", "lstm", "--sweep", "5", "--batch", "2", "--hidden", "16",
            "--strategies", "sharing,sublinear", "--measure", "--cuda-graph", "--repeat", "2",
            "--quiet"]
    assert memcost_main([*argv, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_strategy = {p["strategy"]: p for p in report["points"]}
    for p in report["points"]:
        m = p["measured"]
        assert m["status"] == "ok" and m["cuda_graph"] is True
        assert 0 < m["step_peak_bytes"] <= m["predicted_bytes"] and m["time_per_batch_s"] > 0
        assert (m["recomputed_per_step"] > 0) == (p["strategy"] == "sublinear")
    assert by_strategy["sublinear"]["measured"]["kernels_per_step"] > \
        by_strategy["sharing"]["measured"]["kernels_per_step"]
    assert memcost_main(argv) == 0
    assert "median of CUDA graph replays" in capsys.readouterr().out


def test_memcost_predicts_oom_before_allocating(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1 << 20, 1 << 30))
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    argv = ["--net", "resnet", "--sweep", "26", "--batch", "2", "--image", "32",
            "--strategies", "sharing", "--measure", "--quiet", "--json"]
    assert memcost_main(argv) == 0
    [point] = json.loads(capsys.readouterr().out)["points"]
    assert point["measured"]["status"] == "OOM"
    assert point["measured"]["predicted_bytes"] > point["measured"]["free_bytes"]
    assert torch.cuda.memory_allocated() == before


@pytest.mark.parametrize("mirror", ["none", "sublinear"])
def test_cuda_graph_steps_equal_eager_steps(mirror):
    """Warm-up, capture and replays give the eager steps' results, with new inputs and updated
    parameters each step; the counters advance as if every op had run."""
    net, shapes = small_resnet()
    eager = bind(net, shapes, "cuda", mirror=mirror)
    graphed = bind(net, shapes, "cuda", mirror=mirror)
    graphed.enable_cuda_graphs(warmup=1)
    gen = torch.Generator().manual_seed(3)
    for _ in range(4):
        data = torch.randn(shapes["data"], generator=gen, dtype=torch.float64)
        got, want = (step_with(e, data) for e in (graphed, eager))
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=0, atol=0,
                                       msg=lambda m, k=k: f"{k}: {m}")
    assert graphed.cuda_graphs.captured
    assert graphed.cuda_graphs.replays == {"forward": 2, "backward": 2}
    assert graphed.kernel_calls == eager.kernel_calls
    assert graphed.recompute_calls == eager.recompute_calls
    assert (sum(graphed.recompute_calls.values()) > 0) == (mirror != "none")


def step_with(exe, data):
    """One training step on ``data``, then a plain SGD update of the parameters in place."""
    exe.forward(is_train=True, data=data)
    exe.backward()
    for name, g in exe.grad_dict.items():
        exe.arg_dict[name].sub_(0.01 * g)
    return step(exe, steps=0)


def test_cuda_graphs_refuse_random_ops_and_phase_timing():
    from executor import ExecutorError
    from tests.executor.test_mirror_exec import mlp_dropout
    net = mlp_dropout()
    exe = net.simple_bind("cuda", data=(6, 10))
    with pytest.raises(ExecutorError, match="these nodes draw them: drop0, drop1, drop2, drop3"):
        exe.enable_cuda_graphs()
    net, shapes = small_resnet()
    exe = bind(net, shapes, "cuda")
    exe.enable_cuda_graphs()
    with pytest.raises(ExecutorError, match="cannot split a CUDA graph"):
        exe.timed_step()
