"""``sublinear pareto``: every method's points on a small ResNet and a small LSTM, the
relations between them (optimal within its budget, never above uniform checkpointing at the
same or more bytes), the outputs, the option errors, and no torch import."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from executor.app.cli import main
from executor.app.pareto import FIXED, Point, budget_sweep, default_segments, mark_frontier

ROOT = Path(__file__).resolve().parents[2]
SMALL_RESNET = ["resnet", "--param", "units=1,6,1", "--param", "batch=2",
                "--param", "image_shape=3,16,16", "--param", "filter_list=8,16,32,64"]
SMALL_LSTM = ["lstm", "--param", "steps=12", "--param", "layers=2", "--param", "hidden=16",
              "--param", "input_size=4", "--param", "num_label=8", "--param", "batch=4"]
NETS = {"resnet": SMALL_RESNET, "lstm": SMALL_LSTM}


@pytest.fixture(scope="module")
def reports():
    """One --json run per network (default budgets and segments)."""
    out = {}
    for name, argv in NETS.items():
        res = subprocess.run([sys.executable, "-m", "executor.app.cli", "pareto", *argv, "--json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0 and res.stderr == "", res.stderr
        out[name] = json.loads(res.stdout)
    return out


def by_method(report, method):
    return [p for p in report["points"] if p["method"] == method]


@pytest.mark.parametrize("net", sorted(NETS))
def test_json_has_every_method_and_every_field(reports, net):
    report = reports[net]
    assert report["ok"] is True and report["net"] == net and report["cut_groups"] > 4
    methods = {p["method"] for p in report["points"]}
    assert methods == {*FIXED, "alg3", "uniform", "optimal"}
    assert len(by_method(report, "optimal")) == len(report["budgets"]) == 12
    assert [p["segments"] for p in by_method(report, "uniform")] == report["segments"]
    assert report["segments"] == default_segments(report["cut_groups"])
    for p in report["points"]:
        assert set(p) >= {"method", "setting", "planned_bytes", "recompute", "extra_forward_pct",
                          "seconds", "feasible", "frontier", "budget", "segments", "error",
                          "note"}
        assert p["feasible"] and p["planned_bytes"] > 0 and p["recompute"] >= 0
        assert p["extra_forward_pct"] == pytest.approx(100 * p["recompute"], abs=0.01)
    assert report["machine"]["cpus"] >= 1 and report["seconds"] > 0


@pytest.mark.parametrize("net", sorted(NETS))
def test_alg3_candidates_are_the_searched_plans_and_sublinear_the_smallest(reports, net):
    report = reports[net]
    cands = by_method(report, "alg3")
    assert len(cands) == 6 and all(p["alg3_budget"] > 0 for p in cands)
    assert all(not p["note"] for p in cands)  # replanned bytes equal the search's score
    sub = by_method(report, "sublinear")[0]
    assert sub["planned_bytes"] == min(p["planned_bytes"] for p in cands)


@pytest.mark.parametrize("net", sorted(NETS))
def test_every_optimal_point_fits_its_budget(reports, net):
    report = reports[net]
    none = by_method(report, "none")[0]["planned_bytes"]
    budgets = report["budgets"]
    assert budgets == sorted(budgets) and budgets[-1] == none
    smallest = min(by_method(report, m)[0]["planned_bytes"] for m in FIXED)
    assert budgets[0] == smallest
    for p in by_method(report, "optimal"):
        assert p["planned_bytes"] <= p["budget"]
    assert by_method(report, "optimal")[-1]["recompute"] == 0  # the plan without recompute


def fitting_pairs(report, method):
    """(optimal point, ``method`` point) pairs where the latter fits the former's budget."""
    return [(o, u) for u in by_method(report, method) for o in by_method(report, "optimal")
            if o["budget"] >= u["planned_bytes"]]


@pytest.mark.parametrize("net", sorted(NETS))
def test_optimal_never_recomputes_more_than_uniform_within_the_same_bytes(reports, net):
    # a uniform plan that fits an optimal point's budget is one optimal could have chosen
    pairs = fitting_pairs(reports[net], "uniform")
    assert pairs
    for o, u in pairs:
        assert o["recompute"] <= u["recompute"] + 1e-9, (o["setting"], u["setting"])


@pytest.mark.parametrize("net", sorted(NETS))
def test_optimal_never_recomputes_more_than_a_fixed_strategy_that_fits(reports, net):
    # both test networks are small enough (<= 400 nodes) for optimal to weigh the fixed
    # strategies at every budget
    pairs = [pair for m in FIXED for pair in fitting_pairs(reports[net], m)]
    assert pairs
    for o, f in pairs:
        assert o["recompute"] <= f["recompute"] + 1e-9, (o["setting"], f["setting"])


@pytest.mark.parametrize("net", sorted(NETS))
def test_the_frontier_is_the_undominated_points(reports, net):
    points = reports[net]["points"]
    front = [p for p in points if p["frontier"]]
    assert any(p["method"] == "none" for p in front)  # nothing has fewer recomputes
    smallest = min(p["planned_bytes"] for p in points)
    assert any(p["planned_bytes"] == smallest for p in front)
    for p in points:
        dominated = any(q["planned_bytes"] <= p["planned_bytes"] and
                        q["recompute"] <= p["recompute"] and
                        (q["planned_bytes"], q["recompute"]) != (p["planned_bytes"],
                                                                 p["recompute"])
                        for q in points)
        assert p["frontier"] == (not dominated)


def test_mark_frontier_skips_infeasible_points_and_keeps_ties():
    pts = [Point("none", "none", 100, 0.0, 0.1), Point("a", "x", 50, 0.5, 0.1),
           Point("b", "y", 50, 0.5, 0.1), Point("c", "z", 60, 0.6, 0.1),
           Point("optimal", "budget", None, None, 0.1, budget=10, error="cannot be met")]
    mark_frontier(pts)
    assert [p.frontier for p in pts] == [True, True, True, False, False]


def test_budget_sweep_and_default_segments():
    assert budget_sweep(100, 1600, 5) == [100, 200, 400, 800, 1600]
    assert budget_sweep(100, 1600, 1) == [100] and budget_sweep(100, 1600, 0) == []
    assert budget_sweep(500, 500, 4) == [500]
    assert default_segments(334) == [5, 6, 9, 13, 18, 26, 37, 52, 73]
    assert default_segments(4) == [1, 2, 3, 4] and default_segments(0) == [1]


def test_table_for_people(capsys):
    assert main(["pareto", *SMALL_RESNET, "--budgets", "3", "--segments", "2,4"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("network resnet: ") and "cut groups" in lines[0]
    assert lines[1].split() == ["method", "setting", "planned", "extra", "forward", "seconds",
                                "frontier"]
    rows = {tuple(line.split()[:2]) for line in lines[2:]}
    assert ("uniform", "4") in rows and ("none", "none") in rows
    assert any(line.startswith("optimal") and "iB" in line and line.endswith("*")
               for line in lines)
    assert lines[-1].endswith(" s") and "plans in" in lines[-1]


def test_infeasible_budgets_are_points_not_crashes(capsys, monkeypatch):
    import executor.app.pareto as pareto
    real = pareto.budget_sweep
    monkeypatch.setattr(pareto, "budget_sweep",
                        lambda lo, hi, n: [lo // 4, *real(lo, hi, n)])
    assert main(["pareto", *SMALL_RESNET, "--budgets", "2", "--segments", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    bad = by_method(report, "optimal")[0]
    assert not bad["feasible"] and bad["planned_bytes"] is None and not bad["frontier"]
    assert "cannot be met" in bad["error"]
    assert all(p["feasible"] for p in by_method(report, "optimal")[1:])


def test_out_writes_json_and_plot(capsys, tmp_path):
    folder = tmp_path / "plots" / "new"
    assert main(["pareto", *SMALL_LSTM, "--budgets", "3", "--segments", "3,6", "--out",
                 str(folder), "--quiet"]) == 0
    saved = json.loads((folder / "pareto_lstm.json").read_text())
    assert saved["net"] == "lstm" and len(by_method(saved, "optimal")) == 3
    png = (folder / "pareto_lstm.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert "network lstm" in capsys.readouterr().out


def test_no_progress_bar_under_json(capsys, monkeypatch):
    import executor.app.pareto as pareto
    from executor import progress
    monkeypatch.setattr(pareto, "_BAR_DELAY", 0)

    def eager(desc, **kw):
        return progress.progress_bar(desc, **{**kw, "delay": 0})
    monkeypatch.setattr(pareto, "progress_bar", eager)
    assert main(["pareto", *SMALL_RESNET, "--budgets", "2", "--segments", "2"]) == 0
    assert "pareto" in capsys.readouterr().err
    assert main(["pareto", *SMALL_RESNET, "--budgets", "2", "--segments", "2", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)["ok"]
    assert main(["pareto", *SMALL_RESNET, "--budgets", "2", "--segments", "2", "--quiet"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv, fragment", [
    (["--budgets", "-1"], "argument --budgets: expected an integer >= 0, got '-1'"),
    (["--segments", "0,4"], "argument --segments: expected positive integers separated by "
                            "commas, got '0,4'"),
    (["--segments", "four"], "argument --segments: expected positive integers"),
    (["--param", "units"], "argument --param: expected NAME=VALUE"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_option_mistakes_are_usage_errors(capsys, argv, fragment):
    assert main(["pareto", "resnet", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("sublinear: error: ") and fragment in err
    assert "sublinear pareto --help" in err and len(err.strip().splitlines()) == 1


def test_errors_under_json_are_json(capsys, tmp_path, monkeypatch):
    assert main(["pareto", "no-such-net", "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and doc["command"] == "pareto" and "no-such-net" in doc["error"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["pareto", *SMALL_RESNET, "--budgets", "1", "--segments", "2", "--out",
                 str(blocker), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["ok"] is False
    monkeypatch.setenv("SUBLINEAR_MEMORY_BUDGET", "1GiB")
    assert main(["pareto", *SMALL_RESNET]) == 2
    assert "unset SUBLINEAR_MEMORY_BUDGET" in capsys.readouterr().err


def test_pareto_never_imports_torch():
    code = ("import sys\nfrom executor.app.cli import main\nrc = main(sys.argv[1:])\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', rc)")
    res = subprocess.run([sys.executable, "-c", code, "pareto", *SMALL_RESNET, "--budgets",
                          "2", "--segments", "2", "--json"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert res.stdout.split()[-2:] == ["NO-TORCH", "0"], res.stderr


def test_a_uniform_plan_trains_as_the_unmirrored_one(monkeypatch):
    # the executor runs the uniform plan (bound through simple_bind's planner) and gets the
    # unmirrored outputs and gradients, recomputing what the plan counts
    import torch

    import executor.binding as binding
    from examples import resnet
    from optim.baselines import plan_uniform
    from optim.mirror import cut_groups
    from symbol.infer_shape import infer_shape

    from .harness import bind_filled
    net = resnet.get_symbol(num_classes=5, units=(1, 3, 1), filter_list=(8, 16, 32, 64),
                            image_shape=(3, 16, 16))
    shapes: dict[str, tuple[int, ...]] = {"data": (3, 3, 16, 16)}

    def uniform(graph, known, **kw):
        groups = cut_groups(graph, infer_shape(graph, known))
        kw = {k: v for k, v in kw.items() if k not in ("mirror", "budget", "budget_scope")}
        return plan_uniform(graph, known, groups, 3, **kw)

    def step(exe):
        exe.forward(is_train=True)
        exe.backward()
        return exe
    base = step(bind_filled(net, shapes, init_seed=1, data_seed=2, classes=5, dtype="float64"))
    monkeypatch.setattr(binding, "plan_training", uniform)
    exe = step(bind_filled(net, shapes, init_seed=1, data_seed=2, classes=5, dtype="float64"))
    assert exe.mirror_plan.strategy == "uniform" and exe.recompute_calls
    assert sum(exe.recompute_calls.values()) == sum(exe.mirror_plan.counts.values())
    torch.testing.assert_close(exe.outputs[0], base.outputs[0], rtol=1e-9, atol=1e-12)
    for n in base.grad_dict:
        torch.testing.assert_close(exe.grad_dict[n], base.grad_dict[n], rtol=1e-9, atol=1e-12)
