"""Memory planning: the paper's examples, structural relations, invariants, corrupted plans."""
from __future__ import annotations

import dataclasses

import pytest

import symbol as sym
from examples import lstm, mlp, resnet
from optim.memory import PlanError, check_memory_plan
from optim.flags import read_flags

from .helpers import groups, plan_forward, plan_training, storage_of


def fig2():
    """Paper Fig. 2: B = sigmoid(A); C = sigmoid(B); F = pool(B); E = pool(C); G = E * F."""
    a = sym.Variable("A")
    b = sym.Activation(a, act_type="sigmoid", name="B")
    c = sym.Activation(b, act_type="sigmoid", name="C")
    pool = dict(kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="avg")
    f = sym.Pooling(b, name="F", **pool)
    e = sym.Pooling(c, name="E", **pool)
    return sym.elemwise_mul(e, f, name="G")


def _paper_order(net):
    by_name = {n.name: n for n in net.graph.nodes}
    return [by_name[n] for n in ("B", "C", "F", "E", "G")]


def test_paper_fig2_pool_is_exactly_the_papers():
    net = fig2()
    plan = plan_forward(net, {"A": (1, 2, 8, 8)}, order=_paper_order(net), strategy="pool")
    check_memory_plan(plan)
    assert groups(plan) == [{"B", "E", "G"}, {"C"}, {"F"}]
    assert [(o.node.name, i.node.name) for o, i in plan.inplace.items()] == [("G", "E")]


def _bytes_of(plan, name):
    e = next(e for e in plan.storage if e.node.name == name)
    start = plan.offsets[plan.storage[e]]
    return range(start, start + plan.nbytes[e])


def _overlap(a: range, b: range) -> bool:
    return a.start < b.stop and b.start < a.stop


def test_paper_fig2_arena_shares_the_papers_bytes():
    # the arena realises the same sharing by byte ranges: E and G (in place) reuse B's bytes
    # (B dies at F), C and F never overlap B or each other while live
    net = fig2()
    order = _paper_order(net)
    plan = plan_forward(net, {"A": (1, 2, 8, 8)}, order=order)
    pool = plan_forward(net, {"A": (1, 2, 8, 8)}, order=order, strategy="pool")
    check_memory_plan(plan)
    assert plan.strategy == "sharing" and plan.num_storage == 4  # in-place groups
    b, c, e, f = (_bytes_of(plan, n) for n in "BCEF")
    assert _overlap(e, b) and _bytes_of(plan, "G") == e
    assert not _overlap(c, b) and not _overlap(f, b) and not _overlap(c, f)
    assert plan.planned_bytes == plan.live_peak_bytes == pool.planned_bytes


def test_paper_fig2_strategies_none_and_inplace():
    net = fig2()
    order = _paper_order(net)
    none = plan_forward(net, {"A": (1, 2, 8, 8)}, order=order, strategy="none")
    inplace = plan_forward(net, {"A": (1, 2, 8, 8)}, order=order, strategy="inplace")
    assert none.num_storage == 5 and none.num_inplace == 0
    # C cannot overwrite B (F still reads B); G overwrites E
    assert groups(inplace) == [{"B"}, {"C"}, {"E", "G"}, {"F"}]
    assert none.planned_bytes > inplace.planned_bytes > plan_forward(
        net, {"A": (1, 2, 8, 8)}, order=order).planned_bytes


def test_paper_fig1_mlp_storages():
    # 8 internal nodes: fc1, sigmoid1, fc2, softmax and their four backward nodes. fc1's data
    # gradient is not needed (data has no gradient), so 7 entries are planned. They fit in 4
    # storages, not the figure's 3: the softmax output is a graph output that stays readable
    # after backward, so its gradient cannot take its buffer as the figure draws it.
    data = sym.Variable("data")
    a1 = sym.Activation(sym.FullyConnected(data, num_hidden=64, name="fc1"), act_type="sigmoid",
                        name="sigmoid1")
    net = sym.SoftmaxOutput(sym.FullyConnected(a1, num_hidden=64, name="fc2"), name="softmax")
    plan = plan_training(net, {"data": (32, 64)}, "sharing").plan
    check_memory_plan(plan)
    assert len(plan.storage) == 7 and plan.num_storage == 4
    assert groups(plan) == [{"fc1", "sigmoid1"}, {"fc2", "softmax"},
                            {"fc2_backward:0", "sigmoid1_backward"}, {"softmax_backward"}]


def test_inplace_skipped_when_input_used_later():
    x = sym.Variable("x")
    a = sym.Activation(x, act_type="relu", name="a")
    b = sym.Activation(a, act_type="tanh", name="b")  # must not overwrite a: c reads a later
    c = sym.elemwise_add(a, b, name="c")
    plan = plan_forward(c, {"x": (4, 4)})
    assert storage_of(plan, "b") != storage_of(plan, "a")
    assert storage_of(plan, "c") in (storage_of(plan, "a"), storage_of(plan, "b"))


def test_inplace_never_overwrites_a_variable_or_a_graph_output():
    x = sym.Variable("x")
    a = sym.Activation(x, act_type="relu", name="a")  # x is a caller array
    b = sym.Activation(a, act_type="tanh", name="b")
    plan = plan_forward(sym.Group([a, b]), {"x": (4, 4)})  # a is an output
    assert plan.num_inplace == 0 and storage_of(plan, "a") != storage_of(plan, "b")


def test_inplace_needs_equal_sizes():
    x = sym.Variable("x")
    s = sym.SliceChannel(x, num_outputs=2, name="s")
    # elemwise_add(s0, s1) may overwrite either input; both die here, sizes equal
    y = sym.Activation(sym.elemwise_add(s[0], s[1], name="add"), act_type="relu", name="r")
    plan = plan_forward(y, {"x": (4, 8)})
    assert plan.inplace and all(plan.nbytes[o] == plan.nbytes[i] for o, i in plan.inplace.items())


def test_match_range_zero_disables_sharing_and_ranges_limit_reuse():
    net = fig2()
    order = _paper_order(net)
    off = plan_forward(net, {"A": (1, 2, 8, 8)}, order=order, match_range=0, strategy="pool")
    assert off.num_storage == 4  # in-place only


def test_shape_only_inputs_do_not_extend_liveness():
    x = sym.Variable("x")
    p = sym.Pooling(sym.Activation(x, act_type="relu", name="r"), kernel=(2, 2), stride=(2, 2),
                    pool_type="avg", name="p")
    net = sym.MakeLoss(sym.FullyConnected(sym.Flatten(p, name="f"), num_hidden=3, name="fc"),
                       name="loss")
    plan = plan_training(net, {"x": (2, 3, 8, 8)}, "sharing").plan
    check_memory_plan(plan)
    live = plan.liveness
    r = next(e for e in plan.storage if e.node.name == "r")
    # the pooling backward reads r only for its shape: r dies at the pooling node
    assert live.last_use[r] == live.position[next(n for n in live.order if n.name == "p")]


@pytest.mark.parametrize("strategy", ["none", "inplace", "pool", "sharing"])
@pytest.mark.parametrize("name,build,shapes", [
    ("mlp", lambda: mlp.get_symbol(), {"data": (8, 100)}),
    ("resnet", lambda: resnet.get_symbol(num_classes=10, units=(2, 2, 2),
                                         filter_list=(16, 64, 128, 256),
                                         image_shape=(3, 32, 32)), {"data": (4, 3, 32, 32)}),
    ("resnet-imagenet", lambda: resnet.get_symbol(units=(1, 1, 1, 1)), {"data": (2, 3, 64, 64)}),
    ("lstm", lambda: lstm.get_symbol(seq_len=5, num_layers=2, num_hidden=16, input_size=8,
                                     num_label=10),
     {**{f"t{t}_data": (4, 8) for t in range(5)},
      **{f"l{i}_init_{k}": (4, 16) for i in range(2) for k in "ch"}}),
])
def test_example_nets_pass_the_checker(name, build, shapes, strategy):
    plan = plan_training(build(), shapes, strategy).plan
    check_memory_plan(plan)


def test_strategies_order_planned_bytes_on_resnet():
    net = resnet.get_symbol(num_classes=10, units=(2, 2, 2), filter_list=(16, 64, 128, 256),
                            image_shape=(3, 32, 32))
    sizes = {s: plan_training(net, {"data": (4, 3, 32, 32)}, s).plan
             for s in ("none", "inplace", "pool", "sharing")}
    assert sizes["none"].planned_bytes > sizes["inplace"].planned_bytes \
        > sizes["pool"].planned_bytes > sizes["sharing"].planned_bytes
    assert sizes["none"].num_storage > sizes["inplace"].num_storage \
        > sizes["pool"].num_storage
    # the arena keeps one storage per in-place group and shares bytes instead
    assert sizes["sharing"].num_storage == sizes["inplace"].num_storage
    assert sizes["none"].num_inplace == 0 < sizes["inplace"].num_inplace
    for s in ("none", "inplace"):  # nothing shared: the arena is the bound
        assert sizes[s].planned_bytes == sizes[s].live_peak_bytes
    assert sizes["pool"].live_peak_bytes == sizes["sharing"].live_peak_bytes
    assert sizes["sharing"].planned_bytes <= 1.05 * sizes["sharing"].live_peak_bytes


def _corrupt(plan, **changes):
    return dataclasses.replace(plan, **changes)


def test_checker_rejects_two_live_entries_in_one_storage():
    net = fig2()
    plan = plan_forward(net, {"A": (1, 2, 8, 8)}, order=_paper_order(net), strategy="pool")
    storage = dict(plan.storage)
    c = next(e for e in storage if e.node.name == "C")
    f = next(e for e in storage if e.node.name == "F")
    storage[c] = storage[f]  # C and F are live together
    with pytest.raises(PlanError, match="overwrites"):
        check_memory_plan(_corrupt(plan, storage=storage))


def test_checker_rejects_two_live_storages_sharing_bytes():
    from optim.arena import Arena
    net = fig2()
    plan = plan_forward(net, {"A": (1, 2, 8, 8)}, order=_paper_order(net))
    c = plan.storage[next(e for e in plan.storage if e.node.name == "C")]
    f = plan.storage[next(e for e in plan.storage if e.node.name == "F")]
    offsets = list(plan.offsets)
    offsets[f] = offsets[c]  # C and F are live together
    bad = Arena(tuple(offsets), plan.arena.size, plan.arena.live_peak)
    with pytest.raises(PlanError, match="share bytes while both live"):
        check_memory_plan(_corrupt(plan, arena=bad))
    small = Arena(plan.offsets, plan.arena.size // 2, plan.arena.live_peak)
    with pytest.raises(PlanError, match="outside the arena"):
        check_memory_plan(_corrupt(plan, arena=small))


def test_checker_rejects_a_storage_too_small():
    net = fig2()
    plan = plan_forward(net, {"A": (1, 2, 8, 8)})
    with pytest.raises(PlanError, match="cannot hold"):
        check_memory_plan(_corrupt(plan, storage_bytes=tuple(s // 2 for s in
                                                             plan.storage_bytes)))


def test_checker_rejects_an_undeclared_inplace_pair():
    x = sym.Variable("x")
    a = sym.Activation(x, act_type="relu", name="a")
    b = sym.FullyConnected(a, num_hidden=16, no_bias=True, name="b")  # no in-place pair
    plan = plan_forward(b, {"x": (4, 16)})
    storage = dict(plan.storage)
    ea = next(e for e in storage if e.node.name == "a")
    eb = next(e for e in storage if e.node.name == "b")
    storage[eb] = storage[ea]
    with pytest.raises(PlanError, match="overwrites"):
        check_memory_plan(_corrupt(plan, storage=storage, inplace={eb: ea}))


def test_checker_rejects_an_unplanned_entry():
    plan = plan_forward(fig2(), {"A": (1, 2, 8, 8)})
    storage = dict(plan.storage)
    storage.pop(next(e for e in storage if e.node.name == "E"))
    with pytest.raises(PlanError, match="has no storage"):
        check_memory_plan(_corrupt(plan, storage=storage))


def test_coshare_keeps_parallel_branches_apart():
    # two parallel branches from one input, joined at the end (an Inception-like block)
    x = sym.Variable("x")
    left = sym.Activation(sym.Activation(sym.FullyConnected(x, num_hidden=32, name="l1"),
                                         act_type="relu", name="l2"), act_type="tanh", name="l3")
    right = sym.Activation(sym.FullyConnected(x, num_hidden=32, name="r1"), act_type="relu",
                           name="r2")
    net = sym.Concat(left, right, dim=1, name="cat")
    for strategy in ("pool", "sharing"):
        one = plan_forward(net, {"x": (4, 8)}, strategy=strategy)
        two = plan_forward(net, {"x": (4, 8)}, num_temp=2, strategy=strategy)
        check_memory_plan(two)
        colours = {n.name: two.colour[n] for n in two.liveness.order}
        assert colours["l1"] == colours["l2"] == colours["l3"] != colours["r1"]
        # every storage is used by nodes of a single colour
        for sid in range(two.num_storage):
            assert len({two.colour[e.node] for e in two.entries_of(sid)}) == 1
        assert two.num_storage >= one.num_storage
        assert two.planned_bytes >= one.planned_bytes
    # in the arena, the colours' byte ranges are apart: no left-branch value ever shares a byte
    # with a right-branch value, though l1 dies before r1 is made in this order
    left = [_bytes_of(two, n) for n in ("l1", "l2", "l3")]
    right = [_bytes_of(two, n) for n in ("r1", "r2")]
    assert not any(_overlap(a, b) for a in left for b in right)


def test_summary_and_class_breakdown():
    net = mlp.get_symbol()
    plan = plan_training(net, {"data": (8, 100)}, "sharing").plan
    classes = plan.bytes_by_class()
    assert classes["activations"] + classes["gradients"] + classes["unused"] \
        == plan.planned_bytes
    assert classes["activations"] > 0 and classes["gradients"] > 0
    assert classes["activations"] + classes["gradients"] == plan.live_peak_bytes
    assert classes["parameters"] == sum(4 * n for n in (128 * 100 + 128, 64 * 128 + 64,
                                                        10 * 64 + 10))
    assert classes["parameter_gradients"] > 0 and classes["inputs"] > 0
    assert plan.summary().startswith("sharing: planned ")


def test_grad_sum_cap_turns_sums_into_inplace_chains():
    # one weight used by 12 steps: above the cap its 12 gradient contributions are added in a
    # chain, in place, so they do not all live at once
    w = sym.Variable("w")
    x = sym.Variable("data")
    outs = [sym.MakeLoss(sym.FullyConnected(x, weight=w, num_hidden=64, no_bias=True,
                                            name=f"fc{t}"), name=f"loss{t}") for t in range(12)]
    net = sym.Group(outs)
    wide = plan_training(net, {"data": (16, 64)}, "sharing",
                         flags=read_flags({"MXNET_EXEC_INPLACE_GRAD_SUM_CAP": "16"}))
    chain = plan_training(net, {"data": (16, 64)}, "sharing", flags=read_flags({}))
    ops = [n.op for n in chain.joint.graph.nodes if "grad_sum" in n.name]
    assert ops == ["elemwise_add"] * 11
    assert [n.op for n in wide.joint.graph.nodes if "grad_sum" in n.name] == ["ElementWiseSum"]
    check_memory_plan(chain.plan)
    assert chain.plan.num_inplace > wide.plan.num_inplace
    assert chain.plan.planned_bytes < wide.plan.planned_bytes


def test_lstm_gradient_memory_does_not_grow_with_steps():
    # weight gradients of all steps are accumulated in place as the backward pass produces
    # them (reverse-mode order + in-place sum chain), so the intermediate-gradient storage of
    # an unrolled LSTM is independent of its length
    def gradients(steps):
        net = lstm.get_symbol(seq_len=steps, num_layers=2, num_hidden=32, input_size=8,
                              num_label=20)
        shapes = {f"t{t}_data": (4, 8) for t in range(steps)}
        shapes.update({f"l{i}_init_{k}": (4, 32) for i in range(2) for k in "ch"})
        plan = plan_training(net, shapes, "sharing").plan
        check_memory_plan(plan)
        return plan.bytes_by_class()["gradients"]
    assert gradients(10) == gradients(20) == gradients(40)


def test_joint_graph_runs_backward_in_reverse_forward_order():
    net = mlp.get_symbol(hidden=(16, 16, 16))
    joint = plan_training(net, {"data": (2, 8)}, "sharing").joint
    names = [n.name for n in joint.graph.nodes if n.name.endswith("_backward")]
    assert names == ["softmax_backward", "fc4_backward", "relu3_backward", "fc3_backward",
                     "relu2_backward", "fc2_backward", "relu1_backward", "fc1_backward"]


def test_inplace_never_pairs_an_output_nobody_reads():
    # BatchNorm on the network's input: its data gradient is read by nobody (the input has no
    # gradient), gets no storage, so it must not take over out_grad's buffer either
    x = sym.Variable("data")
    bn = sym.BatchNorm(x, fix_gamma=False, name="bn")
    net = sym.MakeLoss(sym.FullyConnected(sym.Activation(bn, act_type="relu", name="r"),
                                          num_hidden=4, name="fc"), name="loss")
    plan = plan_training(net, {"data": (4, 8)}, "sharing").plan
    check_memory_plan(plan)
    bwd = next(n for n in plan.liveness.order if n.op == "_backward_BatchNorm")
    from symbol.graph import Entry
    assert Entry(bwd, 0) in plan.unallocated and Entry(bwd, 0) not in plan.inplace
