"""``sublinear memcost`` on tiny sizes: tables, JSON, orderings, plots, errors, timed steps."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import executor  # noqa: F401  (installs Symbol.simple_bind)
from examples import resnet
from executor.app import memcost
from executor.app.memcost import main

ROOT = Path(__file__).resolve().parents[2]
TINY_RESNET = ["--net", "resnet", "--sweep", "26,50", "--batch", "2", "--image", "32",
               "--quiet"]
TINY_LSTM = ["--net", "lstm", "--sweep", "5,10", "--batch", "2", "--hidden", "16", "--quiet"]
ORDER = {"resnet": ("no_optimization", "inplace", "sharing", "drop_bn_relu"),
         "lstm": ("no_optimization", "inplace", "sharing")}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def reports() -> dict[str, dict]:
    """The JSON report of each tiny sweep, computed once."""
    out = {}
    for name, argv in (("resnet", TINY_RESNET), ("lstm", TINY_LSTM)):
        args = _parse(argv)
        wl = memcost.workload_from_args(args)
        report = memcost.run_sweep(wl, [int(s) for s in args.sweep.split(",")],
                                   memcost.DEFAULTS[name], progress=False)
        out[name] = report.to_json()
    return out


def _parse(argv: list[str]):
    import argparse
    parser = argparse.ArgumentParser()
    memcost.add_memcost_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["memcost", *argv])


def _gib(report: dict, size: int, strategy: str) -> float:
    [p] = [p for p in report["points"] if p["size"] == size and p["strategy"] == strategy]
    return p["planned_gib"]


@pytest.mark.parametrize("net", ["resnet", "lstm"])
def test_strategies_are_ordered_as_in_the_paper(reports, net):
    report = reports[net]
    for size in report["sizes"]:
        values = [_gib(report, size, s) for s in ORDER[net]]
        assert values == sorted(values, reverse=True), (size, values)
        assert _gib(report, size, "sharing") >= _gib(report, size, "sublinear")


def test_json_has_every_point_and_summary(reports):
    report = reports["resnet"]
    assert {"net", "workload", "setup", "sizes", "strategies", "strategy_map", "points",
            "slopes", "sharing_over_sublinear", "seconds", "device", "options"} <= set(report)
    assert len(report["points"]) == 2 * 5
    point = report["points"][0]
    assert {"size", "strategy", "memory_strategy", "mirror", "planned_bytes", "planned_gib",
            "paper_gib", "ratio", "plan_s", "bytes_by_class", "recompute_flops",
            "num_storage", "info", "measured"} <= set(point)
    assert report["points"][0]["info"] == {"layers": 26, "units": [3, 1, 1, 3]}
    assert report["strategy_map"]["drop_bn_relu"] == {"memory": "sharing", "mirror": "drop-cheap"}
    # not the paper's setup (batch 2, 32x32): no paper values, no ratios
    assert all(p["paper_gib"] is None and p["ratio"] is None for p in report["points"])
    assert set(report["slopes"]) == set(memcost.DEFAULTS["resnet"])
    assert [r["size"] for r in report["sharing_over_sublinear"]] == [26, 50]
    lstm = reports["lstm"]
    assert lstm["strategies"] == list(memcost.DEFAULTS["lstm"])  # no drop bn-relu
    assert lstm["points"][0]["info"] == {"steps": 5}


def test_table_for_people(capsys):
    code, out, _ = run(capsys, *TINY_RESNET)
    assert code == 0
    lines = out.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("depth  layers  no-opt"))
    assert header.split() == ["depth", "layers"] + [
        c for s in ("no-opt", "inplace", "sharing", "drop-bn", "sublinear")
        for c in (s, "paper", "ratio")]
    rows = [line.split() for line in lines if line.split()[:1] in (["26"], ["50"])]
    assert [r[:2] for r in rows[:2]] == [["26", "26"], ["50", "50"]]
    assert all(len(r) == 17 for r in rows[:2]) and rows[0][3:5] == ["-", "-"]
    assert any(line.startswith("slope") for line in lines)
    units = [line.split() for line in lines if "units per stage" in line]
    assert units and units[0][:3] == ["depth", "layers", "units"]
    assert "3,1,1,3" in out and "3,4,6,3" in out  # the unit lists used


def test_paper_values_and_ratios_at_the_papers_setup(capsys):
    code, out, _ = run(capsys, "--net", "resnet", "--sweep", "100", "--strategies",
                       "sharing,sublinear", "--json", "--quiet")
    report = json.loads(out)
    sharing, sublinear = report["points"]
    assert sharing["info"]["units"] == list(resnet.units_for_depth(100))
    assert (sharing["paper_gib"], sublinear["paper_gib"]) == (5.3, 1.57)
    assert sharing["ratio"] == pytest.approx(sharing["planned_gib"] / 5.3, abs=1e-3)
    assert sublinear["ratio"] <= 1.1  # at or below the paper's sublinear plan
    [saving] = report["sharing_over_sublinear"]
    assert saving["paper"] == pytest.approx(5.3 / 1.57, abs=1e-3)


def test_out_writes_plots_json_and_markdown(capsys, tmp_path):
    code, out, _ = run(capsys, *TINY_LSTM, "--strategies", "sharing,sublinear",
                       "--out", str(tmp_path))
    assert code == 0
    assert (tmp_path / "lstm_memory.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((tmp_path / "memcost_lstm.json").read_text())
    assert data["sizes"] == [5, 10] and len(data["points"]) == 4
    markdown = (tmp_path / "memcost_lstm.md").read_text()
    assert "| steps | sharing | paper | ratio | sublinear | paper | ratio |" in markdown


def test_a_network_file_sweeps_its_param(capsys):
    net = ROOT / "examples" / "lstm.sym"
    if not net.exists():
        pytest.skip("examples/lstm.sym not present")
    code, out, err = run(capsys, "--net", str(net), "--sweep-param", "steps", "--sweep", "2,3",
                         "--param", "hidden=8", "--param", "layers=2", "--batch", "2",
                         "--strategies", "sharing,sublinear", "--json", "--quiet")
    assert code == 0, err
    report = json.loads(out)
    assert report["size_name"] == "steps" and [p["size"] for p in report["points"]] == [2, 2, 3, 3]


def test_measure_without_cuda_fails_before_doing_anything(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def no_build(*args, **kwargs):
        raise AssertionError("nothing may be built or planned without a GPU")
    monkeypatch.setattr(memcost.Workload, "build", no_build)
    code, out, err = run(capsys, "--net", "resnet", "--measure")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        "sublinear: error: memcost --measure runs real training steps on a CUDA device, and "
        "none is available here (torch.cuda.is_available() is False); drop --measure to plan "
        "only"]


@pytest.mark.parametrize("argv, message", [
    (["--strategies", "sharing,fast"], "--strategies: unknown fast"),
    (["--sweep", "100,x"], "--sweep '100,x': expected positive integers"),
    (["--sweep", "5"], "depth 5 is too small"),
    (["--net", "lstm", "--image", "32"], "--image does not apply to --net lstm"),
    (["--net", "nosuch.sym"], "no such network file"),
    (["--cuda-graph"], "--cuda-graph times the steps of --measure; add --measure"),
])
def test_option_mistakes_are_one_line_errors(capsys, argv, message):
    code, out, err = run(capsys, *argv, "--quiet")
    assert code == 2 and out == "" and message in err and "Traceback" not in err


def _small_resnet_exe(mirror: str):
    net = resnet.get_symbol(num_classes=10, units=(1, 1, 1, 1), filter_list=(8, 16, 32, 64, 128),
                            image_shape=(3, 32, 32))
    exe = net.simple_bind("cpu", grad_req={a: "write" for a in net.list_arguments()
                                           if a not in ("data", "softmax_label")},
                          mirror=mirror, dtype="float64", data=(2, 3, 32, 32))
    gen = torch.Generator().manual_seed(0)
    for name, t in exe.arg_dict.items():
        if name != "softmax_label":
            t.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype))
    exe.arg_dict["softmax_label"].copy_(torch.tensor([1.0, 3.0]))
    return exe


def test_timed_step_is_a_training_step_split_by_phase():
    plain, timed = _small_resnet_exe("sublinear"), _small_resnet_exe("sublinear")
    plain.forward(is_train=True)
    plain.backward()
    phases = timed.timed_step()
    assert set(phases) == {"forward", "recompute", "backward"}
    assert all(v > 0 for v in phases.values())
    for name, g in plain.grad_dict.items():
        torch.testing.assert_close(timed.grad_dict[name], g, rtol=0, atol=0)
    assert timed.recompute_calls == plain.recompute_calls and sum(plain.recompute_calls.values())
    assert "_run" not in vars(timed)  # the timing hook is gone after the step


def test_timed_step_without_mirroring_has_no_recompute():
    phases = _small_resnet_exe("none").timed_step()
    assert phases["recompute"] == 0.0 and phases["forward"] > 0 and phases["backward"] > 0


def _fake_measure(built, planned):
    """What ``memcost_measure`` returns per point, without a GPU: 10 steps do not fit."""
    steps = built.info["steps"]
    if steps == 10:
        return {"status": "OOM", "predicted_bytes": 2**40, "free_bytes": 2**30}
    slower = 1.3 if planned[0].strategy == "sublinear" else 1.0
    return {"status": "ok", "step_peak_bytes": 2**29, "allocated_bytes": 2**28,
            "time_per_batch_s": 0.1 * slower,
            "breakdown_s": {"forward": 0.03, "recompute": 0.03 * (slower - 1), "backward": 0.07}}


def test_measured_points_get_a_table_a_time_ratio_and_plots(tmp_path):
    from executor.app.memcost_report import format_report, plot_report
    wl = memcost.workload_from_args(_parse(TINY_LSTM))
    report = memcost.run_sweep(wl, [5, 10], ["sharing", "sublinear"], measure=_fake_measure,
                               progress=False)
    text = format_report(report)
    rows = {tuple(line.split()[:3]) for line in text.splitlines()}
    assert ("10", "sharing", "OOM") in rows and ("5", "sublinear", "0.50") in rows
    assert report.time_ratios() == [{"size": 5, "ours": 1.3, "paper": None}]
    assert "sublinear / sharing time per batch: 5: 1.30x" in text
    paths = plot_report(report, tmp_path)
    assert [p.name for p in paths] == ["lstm_memory.png", "lstm_time.png"]


def test_a_point_is_bound_to_the_plan_already_made():
    from executor.app.memcost_measure import bind_planned, predicted_bytes
    from optim.pipeline import default_grad_req
    built = memcost.workload_from_args(_parse(TINY_LSTM)).build(10)
    point, planned = memcost.plan_point(built, 10, "sublinear", None)
    reqs = default_grad_req(built.symbol.list_arguments(), built.inputs)
    exe = bind_planned(built.symbol, torch.device("cpu"), planned, reqs)
    assert exe.plan is planned[1].plan and exe.mirror_plan is planned[0]
    assert exe.timed_step()["recompute"] > 0
    bound = sum(t.numel() * t.element_size() for t in (*exe.arg_dict.values(),
                                                       *exe.grad_dict.values()))
    assert predicted_bytes(planned[1]) >= point.planned_bytes + bound


def test_a_stopped_sweep_leaves_a_partial_report_that_from_json_shows(capsys, tmp_path,
                                                                      monkeypatch):
    real, calls = memcost.plan_point, []

    def stop_at_the_third(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    monkeypatch.setattr(memcost, "plan_point", stop_at_the_third)
    with pytest.raises(KeyboardInterrupt):
        main([*TINY_LSTM, "--strategies", "sharing,sublinear", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "memcost_lstm.json").read_text())
    assert saved["complete"] is False and [p["size"] for p in saved["points"]] == [5, 5]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob("*.png"))
    monkeypatch.setattr(memcost, "plan_point", real)
    code, out, err = run(capsys, "--from-json", str(tmp_path / "memcost_lstm.json"),
                         "--out", str(tmp_path / "again"))
    assert code == 0, err
    assert out.startswith("PARTIAL: the sweep stopped after 2 of 4 points")
    rows = [line.split()[0] for line in out.splitlines()
            if line.split() and line.split()[0].isdigit() and "plans" not in line]
    assert rows == ["5", "5"]  # one memory row and one summary row, for the one size planned
    assert (tmp_path / "again" / "lstm_memory.png").is_file()


def test_from_json_shows_what_the_sweep_showed(capsys, tmp_path):
    code, first, _ = run(capsys, *TINY_RESNET, "--out", str(tmp_path))
    assert code == 0
    code, again, _ = run(capsys, "--from-json", str(tmp_path / "memcost_resnet.json"))

    def tables(text):  # the timing line sums times the JSON keeps to the millisecond
        return [line for line in text.splitlines() if "s planning" not in line]
    assert code == 0 and tables(again) == tables(first)
    code, as_json, _ = run(capsys, "--from-json", str(tmp_path / "memcost_resnet.json"),
                           "--json")
    assert json.loads(as_json) == json.loads((tmp_path / "memcost_resnet.json").read_text())


@pytest.mark.parametrize("extra, message", [
    (["--sweep", "20"], "drop --sweep"),
    (["--measure"], "drop --measure"),
    (["--net", "lstm"], "drop --net"),
])
def test_from_json_refuses_planning_options(capsys, tmp_path, extra, message):
    path = tmp_path / "r.json"
    path.write_text("{}")
    code, out, err = run(capsys, "--from-json", str(path), *extra)
    assert code == 2 and out == "" and message in err


@pytest.mark.parametrize("content, message", [
    (None, "No such file or directory"),
    ("{not json", "Expecting property name"),
    ('{"workload": {"net": "resnet", "batch": 2}}', "not a memcost report (missing 'points')"),
])
def test_from_json_bad_files_are_one_line_errors(capsys, tmp_path, content, message):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run(capsys, "--from-json", str(path))
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_device_block_rounds_as_the_caching_allocator():
    from executor.app.memcost_measure import device_block
    mib = 2**20
    assert [device_block(n) for n in (1, 512, 513, 10 * mib - 1)] == [512, 512, 1024, 10 * mib]
    assert [device_block(n) for n in (10 * mib, 10 * mib + 1, 11 * mib)] == \
        [10 * mib, 12 * mib, 12 * mib]


@pytest.mark.parametrize("name", ["resnet", "lstm"])
def test_mixed_precision_halves_the_planned_bytes(name):
    # (the LSTM at a size where activations, not the weight gradients, dominate)
    argv = TINY_RESNET if name == "resnet" else ["--net", "lstm", "--sweep", "10", "--batch",
                                                 "64", "--hidden", "64", "--quiet"]
    plans = {}
    for dtype in ("float32", "bfloat16"):
        args = _parse([*argv, "--dtype", dtype])
        wl = memcost.workload_from_args(args)
        assert dtype in wl.describe() and (wl.paper is None or dtype == "float32")
        size = int(args.sweep.split(",")[0])
        plans[dtype] = memcost.run_sweep(wl, [size], ["sharing"], progress=False).to_json()
    full, low = ([p["planned_bytes"] for p in plans[d]["points"]][0]
                 for d in ("float32", "bfloat16"))
    # (float32 weight gradients of the 5,000-label decoder weigh more at this small size)
    assert 0.4 * full < low <= (0.55 if name == "resnet" else 0.65) * full, (full, low)
