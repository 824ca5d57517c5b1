"""Cut points found without marks, plans never worse than no recomputation, and the
post-activation ResNet's drop-cheap plan (no torch)."""
from __future__ import annotations

import math

import pytest

import symbol as sym
from examples import lstm, resnet, resnet_postact
from optim.cuts import auto_cut_groups, check_cut_groups
from optim.liveness import analyze_liveness
from optim.memory import check_memory_plan
from optim.mirror import (MIRROR_STRATEGIES, check_mirror_plan, cut_groups, node_bytes,
                          stage_groups, unmirrored_lower_bound)
from optim.pipeline import default_grad_req
from optim.search import plan_training
from symbol.infer_shape import infer_shape

from .mirror_nets import (EXAMPLE_NETS, UNMARKED, densenet_style, inception_style,
                          lstm_without_marks, rnn_style)

MIRRORS = [m for m in MIRROR_STRATEGIES if m != "none"]


def plan(net, shapes, mirror, **kw):
    declared = [v.name for v in net.graph.inputs if "__shape__" in v.attrs]
    reqs = default_grad_req(net.list_arguments(), [*shapes, *declared])
    return plan_training(net.graph, shapes, grad_req=reqs, aux=net.list_auxiliary_states(),
                         mirror=mirror, **kw)


def groups_of(net, shapes):
    fwd = infer_shape(net.graph, shapes)
    return [[n.name for n in g] for g in auto_cut_groups(net.graph, fwd)]


@pytest.mark.parametrize("name", sorted({**UNMARKED, **EXAMPLE_NETS}))
def test_automatic_cut_groups_are_disjoint_frontiers_in_forward_order(name):
    net, shapes = {**UNMARKED, **EXAMPLE_NETS}[name]()
    groups = auto_cut_groups(net.graph, infer_shape(net.graph, shapes))
    assert groups
    check_cut_groups(net.graph, groups)


def test_densenet_cuts_are_the_block_boundaries_never_inside_a_block():
    net, shapes = densenet_style()
    groups = groups_of(net, shapes)
    for cut in ("conv0", "block0_concat", "transition0_pool", "block1_concat"):
        assert [cut] in groups
    # inside a block every frontier holds the block's input and more: never a candidate
    inside = {n for g in groups for n in g if n.startswith(("b0_", "b1_"))}
    assert not inside


def test_inception_cuts_are_the_concats_never_the_branches_alone():
    net, shapes = inception_style()
    groups = groups_of(net, shapes)
    for b in range(3):
        assert [f"block{b}_concat"] in groups
    # the block input is read by all four branches: no cut separates one branch
    assert not any(n.startswith("block") and n.endswith(("_3x3r_relu", "_5x5r_relu"))
                   for g in groups for n in g)


@pytest.mark.parametrize("build,state_ops", [(rnn_style, 1), (lstm_without_marks, 2)])
def test_unrolled_rnn_cuts_are_one_recurrent_state_set_per_step(build, state_ops):
    net, shapes = build(steps=8, layers=2, hidden=8)
    fwd = infer_shape(net.graph, shapes)
    groups = auto_cut_groups(net.graph, fwd)
    # a wavefront of the recurrence: the state (h, or c and h) of each of the 2 layers
    width = 2 * state_ops
    states = [g for g in groups if len(g) == width]
    steps = {int(g[-1].name.split("_")[0][1:]) for g in states}
    assert steps >= set(range(1, 7))  # every step but the ends, where frontiers are smaller
    assert all(sum(node_bytes(n, fwd) for n in g) == width * 3 * 8 * 4 for g in states)


@pytest.mark.parametrize("name", sorted(UNMARKED))
def test_sublinear_without_marks_plans_recomputes_and_saves_memory(name):
    net, shapes = UNMARKED[name]()
    mplan, nplan = plan(net, shapes, "sublinear")
    base = plan(net, shapes, "none")[1].plan.planned_bytes
    assert mplan.cuts == "automatic" and "automatic cut points" in mplan.summary()
    assert mplan.num_recomputed > 0 and not mplan.note
    assert nplan.plan.planned_bytes < base
    check_mirror_plan(nplan.joint, mplan.counts)
    check_memory_plan(nplan.plan)


@pytest.mark.parametrize("build,shapes", [
    (lambda: resnet.get_symbol(num_classes=10, units=(2, 2), filter_list=(8, 16, 32),
                               image_shape=(3, 32, 32)), {"data": (2, 3, 32, 32)}),
    (lambda: lstm.get_symbol(seq_len=4, num_layers=2, num_hidden=8, input_size=4),
     {**{f"t{t}_data": (2, 4) for t in range(4)},
      **{f"l{i}_init_{k}": (2, 8) for i in range(2) for k in "ch"}})])
def test_marks_win_over_automatic_cut_points(build, shapes):
    net = build()
    fwd = infer_shape(net.graph, shapes)
    # the candidates are the marks, as before automatic cut points existed: the same plan
    assert cut_groups(net.graph, fwd) == stage_groups(net.graph)
    assert cut_groups(net.graph, fwd) != auto_cut_groups(net.graph, fwd)
    mplan, _ = plan(net, shapes, "sublinear")
    assert mplan.cuts == "marks"


@pytest.mark.parametrize("mirror", MIRRORS)
@pytest.mark.parametrize("name", sorted({**UNMARKED, **EXAMPLE_NETS}))
def test_no_mirror_strategy_plans_more_than_no_recomputation(name, mirror):
    net, shapes = {**UNMARKED, **EXAMPLE_NETS}[name]()
    base = plan(net, shapes, "none")[1].plan.planned_bytes
    mplan, nplan = plan(net, shapes, mirror)
    assert nplan.plan.planned_bytes <= base
    assert not mplan.note or mplan.note.startswith("fell back to ")
    check_mirror_plan(nplan.joint, mplan.counts)


@pytest.mark.parametrize("mirror", MIRRORS)
def test_without_memory_sharing_every_recomputation_costs_so_the_plan_falls_back(mirror):
    # memory strategy none gives every entry its own buffer: a copy only adds bytes
    net, shapes = densenet_style()
    base = plan(net, shapes, "none", strategy="none")[1].plan.planned_bytes
    mplan, nplan = plan(net, shapes, mirror, strategy="none")
    assert nplan.plan.planned_bytes == base
    assert not mplan.counts and mplan.requested == {}
    assert mplan.note.startswith("fell back to no recomputation (the ")
    assert f"the {mirror} plan was " in mplan.summary()
    assert not any("__mirror_of__" in n.attrs for n in nplan.joint.graph.nodes)


def test_force_mirroring_nodes_are_dropped_only_by_the_last_fall_back():
    x = sym.Variable("data")
    for i in range(3):
        x = sym.FullyConnected(x, num_hidden=16, name=f"fc{i}")
        x = sym.Activation(x, act_type="relu", name=f"relu{i}",
                           attr={"__force_mirroring__": "True"} if i == 1 else None)
    net = sym.SoftmaxOutput(sym.FullyConnected(x, num_hidden=4, name="out"), name="softmax")
    base = plan(net, {"data": (8, 8)}, "none", strategy="none")[1].plan.planned_bytes
    mplan, nplan = plan(net, {"data": (8, 8)}, "drop-cheap", strategy="none")
    assert nplan.plan.planned_bytes == base and not mplan.counts
    assert "__force_mirroring__ nodes included" in mplan.note


def live_peak(nplan) -> int:
    """The most bytes of operator outputs live at once along the execution order: a lower
    bound of any memory plan (read off the liveness, whatever the allocator)."""
    joint = nplan.joint.graph
    live = analyze_liveness(joint)
    size = {e: 4 * math.prod(nplan.shapes[e]) for e in live.entries}
    delta = [0] * (len(live.order) + 2)
    for k, e in enumerate(live.entries):
        if e.node.is_variable:
            continue
        start, end = live.def_pos(e), live.last_step[k]
        delta[start + 1] += size[e]
        delta[min(end, len(live.order)) + 1] -= size[e]
    peak = run = 0
    for d in delta:
        run += d
        peak = max(peak, run)
    return peak


@pytest.mark.slow
def test_post_activation_resnet_200_drop_cheap_plans_less_than_sharing():
    # ResNet-200, batch 32 at 224x224, planning only; MXNet 1.9.1 plans 10,424 MiB (default)
    # and 7,931 MiB (MXNET_BACKWARD_DO_MIRROR=1) for this network (bench/mxnet_oracle.py)
    shapes = {"data": (32, 3, 224, 224)}
    post = resnet_postact.get_symbol(units=(3, 24, 36, 3))
    pre = resnet.get_symbol(units=(3, 24, 36, 3))
    sharing, cheap = plan(post, shapes, "none")[1], plan(post, shapes, "drop-cheap")
    assert cheap[1].plan.planned_bytes < sharing.plan.planned_bytes
    assert cheap[0].num_recomputed > 0 and not cheap[0].note
    pre_cheap = plan(pre, shapes, "drop-cheap")[1]
    # what any allocator must hold: drop-cheap keeps about half of sharing's live bytes, and
    # the post-activation unit keeps its third convolution's output (read by its BatchNorm's
    # backward) where the pre-activation unit keeps its input: < 1.5x the pre-activation net
    assert live_peak(cheap[1]) < 0.6 * live_peak(sharing)
    assert live_peak(cheap[1]) < 1.5 * live_peak(pre_cheap)


@pytest.mark.parametrize("name", sorted({**UNMARKED, **EXAMPLE_NETS}))
def test_the_bound_read_off_a_mirror_plan_never_exceeds_the_unmirrored_plan(name):
    # plan_training skips planning without recomputation when the mirror plan is below it;
    # every variant gives the same bound: the forward values the backward pass reads
    net, shapes = {**UNMARKED, **EXAMPLE_NETS}[name]()
    none = plan(net, shapes, "none")[1]
    # (bytes by dtype: a dropout mask is one byte per element)
    exact = unmirrored_lower_bound(none.joint, lambda e: none.plan.nbytes[e])
    assert 0 < exact <= none.plan.planned_bytes
    for mirror in MIRRORS:
        nplan = plan(net, shapes, mirror)[1]
        assert unmirrored_lower_bound(nplan.joint, lambda e, b=nplan.plan.nbytes: b[e]) == exact
