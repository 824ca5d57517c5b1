"""Mirror plans: policies, attributes, Alg. 3, recursion, budgets, the checker (no torch)."""
from __future__ import annotations

import pytest

import symbol as sym
from examples import resnet
from optim.memory import check_memory_plan
from optim.mirror import (MirrorError, alg3, apply_attributes, check_mirror_plan, drop_cheap,
                          node_bytes, parse_bytes, recursive_counts, resolve_mirror, stage_groups)
from optim.pipeline import default_grad_req, plan_network
from optim.search import plan_training
from symbol.infer_shape import infer_shape


def small_resnet():
    return resnet.get_symbol(num_classes=10, units=(2, 2, 2, 2), filter_list=(8, 16, 32, 64, 64),
                             image_shape=(3, 64, 64))


SHAPES = {"data": (2, 3, 64, 64)}


def plan(net, mirror, **kw):
    """Plan; a budget counts activations and gradients here (what the sizes compared are)."""
    reqs = default_grad_req(net.list_arguments(), list(SHAPES))
    if "budget" in kw:
        kw.setdefault("budget_scope", "activations")
    return plan_training(net.graph, SHAPES, grad_req=reqs, aux=net.list_auxiliary_states(),
                         mirror=mirror, **kw)


def test_none_recomputes_nothing_and_equals_the_plain_plan():
    net = small_resnet()
    mplan, nplan = plan(net, "none")
    reqs = default_grad_req(net.list_arguments(), list(SHAPES))
    plain = plan_network(net.graph, SHAPES, grad_req=reqs, aux=net.list_auxiliary_states())
    assert not mplan.counts and not mplan.recomputed
    assert nplan.plan.planned_bytes == plain.plan.planned_bytes
    assert not any("__mirror_of__" in n.attrs for n in nplan.joint.graph.nodes)


def test_drop_cheap_keeps_conv_fc_concat_softmax_and_optionally_bn():
    g = small_resnet().graph
    counts = drop_cheap(g)
    assert {"BatchNorm", "Activation", "Pooling", "elemwise_add"} <= {n.op for n in counts}
    assert not {n.op for n in counts} & {"Convolution", "FullyConnected", "SoftmaxOutput"}
    assert "BatchNorm" not in {n.op for n in drop_cheap(g, keep_bn=True)}


def test_every_plan_passes_both_checkers_and_the_orderings_hold():
    net = small_resnet()
    sizes = {}
    for m in ("none", "drop-cheap", "drop-cheap-keep-bn", "sublinear", "recursive"):
        mplan, nplan = plan(net, m)
        check_memory_plan(nplan.plan)
        check_mirror_plan(nplan.joint, mplan.counts)
        sizes[m] = nplan.plan.planned_bytes
    # (drop-cheap-keep-bn is not smaller here: keeping the batch-norm output instead of the
    # ReLU output saves nothing, and the greedy pool grows storages for the transient ReLU)
    assert sizes["none"] > sizes["drop-cheap"] > sizes["sublinear"] >= sizes["recursive"]


def test_mirror_copies_are_named_and_read_by_the_backward_pass():
    net = small_resnet()
    mplan, nplan = plan(net, "drop-cheap")
    names = {n.name for n in nplan.joint.graph.nodes}
    assert "stage1_unit2_1_relu_mirror" in names and "stage1_unit2_1_relu_backward" in names
    relu_bwd = next(n for n in nplan.joint.graph.nodes
                    if n.name == "stage1_unit2_1_relu_backward")
    assert relu_bwd.inputs[1].node.name == "stage1_unit2_1_relu_mirror"
    # the copy is scheduled lazily: after the backward of the unit's later convolutions, right
    # before the first backward node that reads it (the convolution it feeds)
    order = [n.name for n in nplan.plan.liveness.order]
    i = order.index("stage1_unit2_1_relu_mirror")
    assert order.index("stage1_unit2_2_conv_backward") < i < order.index(
        "stage1_unit2_1_conv_backward")


def test_force_mirroring_attribute_overrides_the_strategy():
    x = sym.Variable("data")
    a = sym.FullyConnected(x, num_hidden=8, name="fc", attr={"__force_mirroring__": "True"})
    b = sym.Activation(a, act_type="relu", name="relu", attr={"__force_mirroring__": "False"})
    net = sym.MakeLoss(sym.FullyConnected(b, num_hidden=2, name="fc2"), name="loss")
    counts = apply_attributes(net.graph, drop_cheap(net.graph))
    assert {n.name for n in counts} == {"fc"}
    # __force_mirroring__='True' mirrors even with the strategy off
    reqs = default_grad_req(net.list_arguments(), ["data"])
    mplan, _ = plan_training(net.graph, {"data": (4, 3)}, grad_req=reqs, mirror="none")
    assert not mplan.counts  # none with no budget: attributes apply to mirroring strategies


def test_bad_force_mirroring_value():
    net = sym.MakeLoss(sym.Activation(sym.Variable("data"), act_type="relu", name="r",
                                      attr={"__force_mirroring__": "yes"}), name="l")
    with pytest.raises(MirrorError, match="__force_mirroring__='yes' must be 'True' or 'False'"):
        apply_attributes(net.graph, {})


def test_stage_groups_follow_memonger_semantics():
    x = sym.Variable("data")
    nodes = []
    for i, stage in enumerate(["True", "True", "3", "3", "4", None, "4"]):
        x = sym.Activation(x, act_type="relu", name=f"r{i}",
                           attr={"mirror_stage": stage} if stage else None)
        nodes.append(x)
    net = sym.MakeLoss(x, name="loss")
    groups = [[n.name for n in g] for g in stage_groups(net.graph)]
    assert groups == [["r0"], ["r1"], ["r2", "r3"], ["r4", "r6"]]


def test_alg3_with_zero_budget_keeps_every_candidate_and_reports_x_y():
    net = small_resnet()
    g = net.graph
    shapes = infer_shape(g, SHAPES)
    counts, x, y = alg3(g, shapes, 0)
    kept = [grp[0] for grp in stage_groups(g)]
    assert not set(kept) & set(counts)
    assert x == sum(node_bytes(n, shapes) for n in kept)
    assert 0 < y
    _, x_inf, _ = alg3(g, shapes, float("inf"))
    assert x_inf == 0


def test_sublinear_search_tries_six_budgets_around_sqrt_xy():
    mplan, nplan = plan(small_resnet(), "sublinear")
    assert len(mplan.searched) == 6
    assert mplan.budget in [b for b, _ in mplan.searched]
    assert nplan.plan.planned_bytes == min(p for _, p in mplan.searched)


def test_recursive_counts_bisect_the_candidates():
    g = small_resnet().graph
    counts = recursive_counts(g)
    groups = stage_groups(g)
    levels = [counts.get(grp[0], 0) for grp in groups]
    assert levels.count(0) == 1 and max(levels) >= 2
    assert max(counts.values()) == max(levels) + 1


def test_sublinear_without_anything_to_recompute_is_a_clear_error():
    # the only op is the network's output: it is never recomputed, so there is no cut point
    net = sym.Activation(sym.Variable("data"), act_type="relu", name="r")
    reqs = default_grad_req(net.list_arguments(), [])
    with pytest.raises(MirrorError, match="the sublinear plan needs candidate cut points, and "
                                          "this graph has none: mark nodes with the attribute "
                                          "mirror_stage"):
        plan_training(net.graph, {"data": (2, 2)}, grad_req=reqs, mirror="sublinear")


def test_budget_picks_the_cheapest_plan_that_fits():
    # a budget alone asks for the least recomputation that fits (mirror strategy optimal),
    # never more than the cheapest fixed strategy that fits
    net = small_resnet()
    fixed = {m: plan(net, m) for m in ("none", "drop-cheap", "sublinear")}
    sizes = {m: n.plan.planned_bytes for m, (_, n) in fixed.items()}
    mplan, nplan = plan(net, None, budget=sizes["drop-cheap"] + 1)
    assert mplan.strategy == "optimal" and mplan.budget == sizes["drop-cheap"] + 1
    assert nplan.plan.planned_bytes <= sizes["drop-cheap"] + 1
    assert mplan.recompute_flops <= fixed["drop-cheap"][0].recompute_flops
    mplan, nplan = plan(net, None, budget=sizes["none"] + 1)
    assert mplan.recompute_flops == 0 and not mplan.counts
    assert mplan.note == "no recomputation needed"
    # with another strategy named, the budget picks among the fixed strategies, as before
    mplan, _ = plan(net, "sublinear", budget=sizes["drop-cheap"] + 1)
    assert mplan.strategy in ("drop-cheap", "drop-cheap-keep-bn")


def test_impossible_budget_fails_naming_the_smallest_plan():
    with pytest.raises(MirrorError, match=r"memory budget 1000 B cannot be met: the smallest "
                                          r"plan found needs [0-9.]+ [KM]iB .*\(mirror strategy "
                                          r"(sublinear|recursive|optimal), [0-9,]+ "
                                          r"bytes\)"):
        plan(small_resnet(), None, budget=1000)


def test_a_whole_step_budget_counts_the_bound_arrays_and_the_workspace():
    net = small_resnet()
    _, none = plan(net, "none")
    fixed = none.plan.step_bytes - none.plan.planned_bytes
    assert fixed > none.plan.workspace_bytes > 0
    # the default scope: the same budget as for activations alone plus the bound arrays
    activations = none.plan.planned_bytes // 2
    mstep, step = plan(net, None, budget=activations + fixed, budget_scope="step")
    mact, act = plan(net, None, budget=activations, budget_scope="activations")
    assert step.plan.planned_bytes == act.plan.planned_bytes <= activations
    assert step.plan.step_bytes <= activations + fixed
    assert mstep.recompute_flops == mact.recompute_flops > 0
    with pytest.raises(MirrorError, match="for the whole step cannot be met: parameters, their "
                                          "gradients, inputs, auxiliary states and the operator "
                                          "workspace alone take"):
        plan(net, None, budget=fixed, budget_scope="step")
    with pytest.raises(MirrorError, match=r"memory budget .* for the whole step \(.* left\) "
                                          "cannot be met: the smallest plan found needs"):
        plan(net, None, budget=fixed + 1000, budget_scope="step")
    with pytest.raises(MirrorError, match="budget scope 'all' is invalid: expected one of step, "
                                          "activations"):
        plan(net, None, budget=10**9, budget_scope="all")


def test_optimal_needs_a_budget():
    with pytest.raises(MirrorError, match="mirror strategy 'optimal' needs a memory budget"):
        plan(small_resnet(), "optimal")


@pytest.mark.parametrize("text,value", [
    ("3GB", 3 * 10**9), ("3GiB", 3 * 2**30), ("3 gib", 3 * 2**30), ("512MiB", 512 * 2**20),
    ("512MB", 512 * 10**6), ("2KB", 2000), ("2KiB", 2048), ("1.5G", int(1.5 * 2**30)),
    ("1000", 1000), ("2e9", 2 * 10**9), ("7B", 7), (4096, 4096)])
def test_parse_bytes(text, value):
    assert parse_bytes(text) == value


@pytest.mark.parametrize("text", ["", "abc", "-1GB", "3 parsecs", "0", "nan", "inf", "1e400",
                                  "0.1", "GB", "1..2GB", -5, 0, True])
def test_parse_bytes_rejects(text):
    with pytest.raises(MirrorError, match="memory budget .* is invalid"):
        parse_bytes(text)


def test_mirror_strategy_from_environment():
    assert resolve_mirror(None, {}) == "none"
    assert resolve_mirror(None, {"MXNET_BACKWARD_DO_MIRROR": "1"}) == "drop-cheap"
    assert resolve_mirror(None, {"SUBLINEAR_MIRROR": "sublinear"}) == "sublinear"
    assert resolve_mirror("recursive", {"SUBLINEAR_MIRROR": "sublinear"}) == "recursive"
    with pytest.raises(MirrorError, match="SUBLINEAR_MIRROR='fast' is invalid: expected one of "
                                          "none, drop-cheap, drop-cheap-keep-bn, sublinear, "
                                          "recursive"):
        resolve_mirror(None, {"SUBLINEAR_MIRROR": "fast"})
    with pytest.raises(MirrorError, match="MXNET_BACKWARD_DO_MIRROR='yes' is invalid"):
        resolve_mirror(None, {"MXNET_BACKWARD_DO_MIRROR": "yes"})
    with pytest.raises(MirrorError, match="unset one"):
        resolve_mirror(None, {"MXNET_BACKWARD_DO_MIRROR": "1", "SUBLINEAR_MIRROR": "sublinear"})
    with pytest.raises(MirrorError, match="unknown mirror strategy 'all'"):
        resolve_mirror("all", {})


def test_checker_rejects_a_backward_node_reading_a_dropped_original():
    net = small_resnet()
    mplan, nplan = plan(net, "none")
    relu = next(n for n in net.graph.nodes if n.op == "Activation")
    with pytest.raises(MirrorError, match="reads .* which is recomputed"):
        check_mirror_plan(nplan.joint, {relu: 1})


def test_saved_listing_and_summary():
    mplan, _ = plan(small_resnet(), "sublinear")
    rows = mplan.saved()
    assert {r["decision"] for r in rows} == {"kept", "recomputed x1"}
    assert sum(r["bytes"] for r in rows) == mplan.kept_bytes + mplan.recomputed_bytes
    assert mplan.summary().startswith("mirror sublinear: ")
    assert 0.9 < mplan.recompute_flops <= 1.0


@pytest.mark.parametrize("jobs", [2, 3])
def test_search_scored_in_forked_processes_equals_the_sequential_search(jobs, monkeypatch):
    import os

    import optim.search
    from optim.flags import read_flags
    monkeypatch.setattr(optim.search, "_FORK_MIN_NODES", 0)  # fork for a small graph too
    forks, real_fork = [], os.fork

    def counting_fork():
        forks.append(1)
        return real_fork()
    net = resnet.get_symbol(num_classes=10, units=(3, 6, 8, 3), filter_list=(8, 16, 32, 64, 64),
                            image_shape=(3, 64, 64))
    m1, n1 = plan(net, "sublinear", flags=read_flags({"SUBLINEAR_SEARCH_JOBS": "1"}))
    monkeypatch.setattr(os, "fork", counting_fork)
    mj, nj = plan(net, "sublinear", flags=read_flags({"SUBLINEAR_SEARCH_JOBS": str(jobs)}))
    assert len(forks) == jobs - 1  # the children scored candidates
    assert (mj.budget, mj.searched, mj.recomputed) == (m1.budget, m1.searched, m1.recomputed)
    assert {n.name: c for n, c in mj.counts.items()} == {n.name: c for n, c in m1.counts.items()}
    assert nj.plan.storage_bytes == n1.plan.storage_bytes
    check_memory_plan(nj.plan)


def test_planning_pauses_the_collector_and_restores_its_state():
    import gc

    from optim.pipeline import collector_paused
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    net = small_resnet()
    plan(net, "sublinear")
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.disable()
    try:
        plan(net, "sublinear")
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
