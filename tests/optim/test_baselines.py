"""Uniform checkpointing as checkpoint_sequential does it: which cut groups are kept, the last
piece stored whole, the edge cases, and the sqrt(n) shape of its planned bytes (no torch)."""
from __future__ import annotations

import pytest

import symbol as sym
from examples import lstm, resnet
from optim.baselines import plan_uniform, uniform_counts, uniform_pieces
from optim.memory import check_memory_plan
from optim.mirror import (FORCE, MirrorError, check_mirror_plan, cut_groups, eligible,
                          has_marks)
from optim.pipeline import default_grad_req
from optim.search import plan_training
from symbol.infer_shape import infer_shape


def small_resnet(units=(1, 33, 1)):
    """CIFAR-stem ResNet with len(units) stages: 1 + sum(units) cut groups (conv0, every
    unit's sum)."""
    filters = (8, 16, 32, 64)[:len(units) + 1]
    net = resnet.get_symbol(num_classes=10, units=units, filter_list=filters,
                            image_shape=(3, 16, 16))
    return net, {"data": (2, 3, 16, 16)}


def setup(net, shapes):
    fwd = infer_shape(net.graph, shapes)
    reqs = default_grad_req(net.list_arguments(), list(shapes))
    return cut_groups(net.graph, fwd), reqs


def uniform(net, shapes, segments):
    groups, reqs = setup(net, shapes)
    return plan_uniform(net.graph, shapes, groups, segments, grad_req=reqs,
                        aux=net.list_auxiliary_states())


def test_pieces_split_as_checkpoint_sequential_does():
    # segment_size = n // segments; the last piece takes the remainder
    assert uniform_pieces(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert uniform_pieces(9, 3) == [(0, 3), (3, 6), (6, 9)]
    assert uniform_pieces(5, 1) == [(0, 5)]
    assert uniform_pieces(4, 9) == [(0, 1), (1, 2), (2, 3), (3, 4)]  # at most one a group
    assert uniform_pieces(0, 3) == []


def test_counts_keep_the_group_ending_each_piece_and_store_the_last_piece():
    net, shapes = small_resnet(units=(1, 7, 1))  # 10 cut groups
    groups, _ = setup(net, shapes)
    assert len(groups) == 10 and has_marks(net.graph)
    counts = uniform_counts(net.graph, groups, 3)  # pieces of 3, 3 and 4 groups
    kept = [i for i, g in enumerate(groups) if all(counts.get(n, 0) == 0 for n in g)]
    assert kept[:2] == [2, 5]  # the groups ending the two checkpointed pieces
    order = eligible(net.graph)
    boundary = order.index(groups[5][-1])
    for n in order[:boundary]:  # the first two pieces: recomputed once, bar their ends
        assert counts.get(n, 0) == (0 if n in groups[2] else 1), n.name
    for n in order[boundary:]:  # the last piece (and the head) is stored whole
        assert n not in counts, n.name
    assert set(counts.values()) == {1}


def test_one_segment_recomputes_nothing():
    net, shapes = small_resnet(units=(1, 3, 1))
    groups, _ = setup(net, shapes)
    assert uniform_counts(net.graph, groups, 1) == {}
    mplan, nplan = uniform(net, shapes, 1)
    _, base = plan_training(net.graph, shapes, grad_req=setup(net, shapes)[1],
                            aux=net.list_auxiliary_states(), mirror="none")
    assert mplan.recompute_flops == 0 and not mplan.counts
    assert nplan.plan.planned_bytes == base.plan.planned_bytes


def test_more_segments_than_groups_keeps_every_group_but_the_last_piece():
    net, shapes = small_resnet(units=(1, 3, 1))  # 6 cut groups
    groups, _ = setup(net, shapes)
    counts = uniform_counts(net.graph, groups, len(groups))
    assert uniform_counts(net.graph, groups, 100) == counts  # clamped to one group a piece
    for g in groups[:-1]:
        assert all(n not in counts for n in g)
    assert all(n not in counts for n in groups[-1])  # inside the stored last piece
    assert counts and all(k == 1 for k in counts.values())


def test_segments_must_be_positive():
    net, shapes = small_resnet(units=(1, 3, 1))
    groups, _ = setup(net, shapes)
    with pytest.raises(MirrorError, match="at least 1 segment"):
        uniform_counts(net.graph, groups, 0)


def test_no_groups_means_nothing_to_checkpoint():
    x = sym.FullyConnected(sym.Variable("data"), num_hidden=4, name="fc")
    net = sym.SoftmaxOutput(x, name="softmax")
    assert uniform_counts(net.graph, [], 4) == {}


def chain(n, force=None):
    """FC-ReLU layers, every ReLU a cut group; ``force``: node name -> __force_mirroring__."""
    force = force or {}
    x = sym.Variable("data")
    for i in range(n):
        x = sym.FullyConnected(x, num_hidden=8, name=f"fc{i}",
                               attr={FORCE: force[f"fc{i}"]} if f"fc{i}" in force else None)
        attrs = {"mirror_stage": "True", **({FORCE: force[f"relu{i}"]}
                                            if f"relu{i}" in force else {})}
        x = sym.Activation(x, act_type="relu", name=f"relu{i}", attr=attrs)
    return sym.SoftmaxOutput(sym.FullyConnected(x, num_hidden=3, name="head"), name="softmax")


def names(counts):
    return {n.name: k for n, k in counts.items()}


def test_a_chain_keeps_every_third_relu():
    net = chain(9)
    groups, _ = setup(net, {"data": (2, 4)})
    counts = names(uniform_counts(net.graph, groups, 3))
    assert counts == {**{f"fc{i}": 1 for i in range(6)},
                      **{f"relu{i}": 1 for i in (0, 1, 3, 4)}}


def test_force_mirroring_overrides_the_counts():
    net = chain(9, force={"relu2": "True", "fc1": "False"})
    groups, _ = setup(net, {"data": (2, 4)})
    counts = names(uniform_counts(net.graph, groups, 3))
    assert counts["relu2"] == 1 and "fc1" not in counts and counts["fc0"] == 1


def test_planned_bytes_fall_then_rise_as_segments_grow():
    # the sqrt(n) shape: few segments store long pieces, many keep many groups; 36 groups,
    # segment counts that divide them (equal pieces)
    net, shapes = small_resnet(units=(1, 33, 1))
    planned = {}
    for s in (1, 2, 3, 4, 6, 9, 12, 18, 36):
        mplan, nplan = uniform(net, shapes, s)
        planned[s] = nplan.plan.planned_bytes
        check_memory_plan(nplan.plan)
        check_mirror_plan(nplan.joint, mplan.counts)
        assert max(mplan.counts.values(), default=0) <= 1  # recomputed at most once
        assert (mplan.recompute_flops > 0) == (s > 1)
    best = min(planned, key=planned.__getitem__)
    assert 4 <= best <= 12  # around sqrt(36)
    falling = [planned[s] for s in (1, 2, 3, 4, 6) if s <= best]
    rising = [planned[s] for s in (12, 18, 36) if s >= best]
    assert falling == sorted(falling, reverse=True) and rising == sorted(rising)
    assert planned[1] > 3 * planned[best] and planned[36] > 1.5 * planned[best]


def test_recompute_is_under_one_forward_pass():
    # everything but the last piece recomputed once at most: less than one extra forward
    net, shapes = small_resnet(units=(1, 7, 1))
    for s in (2, 3, 10):
        mplan, _ = uniform(net, shapes, s)
        assert 0 < mplan.recompute_flops < 1


def test_lstm_pieces_keep_whole_steps():
    net = lstm.get_symbol(seq_len=8, num_layers=2, num_hidden=6, input_size=3, num_label=5)
    shapes = {**{f"t{t}_data": (2, 3) for t in range(8)},
              **{f"l{i}_init_{k}": (2, 6) for i in range(2) for k in "ch"}}
    groups, reqs = setup(net, shapes)
    assert len(groups) == 8 and all(len(g) == 4 for g in groups)  # c and h of both layers
    counts = uniform_counts(net.graph, groups, 4)
    for i in (1, 3, 5):  # the ends of the three checkpointed pieces of two steps
        assert all(n not in counts for n in groups[i])
    for i in (0, 2, 4):
        assert all(counts.get(n) == 1 for n in groups[i])
    mplan, nplan = plan_uniform(net.graph, shapes, groups, 4, grad_req=reqs,
                                aux=net.list_auxiliary_states())
    check_mirror_plan(nplan.joint, mplan.counts)
    assert mplan.strategy == "uniform" and "4 segments of 2" in mplan.note
