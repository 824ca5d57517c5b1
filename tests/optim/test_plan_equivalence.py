"""The planners' fast paths give what their plain forms give, on random DAGs (Hypothesis).

Each fast path (numpy liveness, the numpy sweep without sharing, hinted shape and dtype
seeding, forward-shape hints for a first plan, variants derived from a first plan) is compared
with a plain loop written here or with the plan made from scratch, on the joint graphs of
random networks, with and without recomputation.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optim.liveness import analyze_liveness, value_slots
from optim.memory import _sweep, colour_nodes
from optim.mirror import drop_cheap
from optim.flags import PlannerFlags
from optim.pipeline import PlanHints, default_grad_req, plan_network
from symbol.graph import Entry, output_name
from symbol.infer_shape import infer_shape, infer_type, output_hints

from .test_random_dags import random_net

SHAPES = {"data": (2, 8)}
EXAMPLES = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _plan(net, mirror, hints=None):
    reqs = default_grad_req(net.list_arguments(), list(SHAPES))
    return plan_network(net.graph, SHAPES, grad_req=reqs, aux=net.list_auxiliary_states(),
                        mirror=mirror, hints=hints)


def _plain_liveness(graph):
    """(entries, read numbers per node, readers, last step, definition step), by plain loops."""
    order = graph.nodes
    entries = [Entry(n, i) for n in (*graph.inputs, *order) for i in range(n.num_outputs)]
    number = {e: k for k, e in enumerate(entries)}
    defined = [-1 if e.node.is_variable else order.index(e.node) for e in entries]
    readers, last = [0] * len(entries), list(defined)
    reads = []
    for step, node in enumerate(order):
        ids = tuple(number[node.inputs[i]] for i in value_slots(node))
        reads.append(ids)
        for k in ids:
            readers[k] += 1
            last[k] = max(last[k], step)
    for e in graph.outputs:
        readers[number[e]] += 1
        last[number[e]] = len(order)
    return entries, reads, readers, last, defined


@EXAMPLES
@given(net=random_net(), recompute=st.booleans())
def test_liveness_equals_the_plain_count(net, recompute):
    graph = _plan(net, drop_cheap(net.graph) if recompute else {}).joint.graph
    live = analyze_liveness(graph)
    entries, reads, readers, last, defined = _plain_liveness(graph)
    assert list(live.entries) == entries
    assert list(live.read_ids) == reads
    assert list(live.num_readers) == readers
    assert list(live.last_step) == last
    assert list(live.def_step) == defined


def _plain_sweep(live, nbytes, skip, pair_ids):
    """Step 4 of ``plan_memory`` without sharing, entry by entry."""
    storage, sizes = {}, []
    ids = [-1] * len(live.entries)
    for node in live.order:
        for k in range(live.first[node], live.first[node] + node.num_outputs):
            e = live.entries[k]
            if e in skip:
                continue
            if k in pair_ids:
                ids[k] = ids[pair_ids[k]]
            else:
                ids[k] = len(sizes)
                sizes.append(nbytes[e])
            storage[e] = ids[k]
    return storage, sizes, ids


@EXAMPLES
@given(net=random_net(), recompute=st.booleans())
def test_sweep_without_sharing_equals_the_plain_sweep(net, recompute):
    plan = _plan(net, drop_cheap(net.graph) if recompute else {}).plan
    live = plan.liveness
    skip = plan.unallocated.union(plan.external)
    pair_ids = {live.entry_id(o): live.entry_id(i) for o, i in plan.inplace.items()}
    got = _sweep(live, plan.nbytes, skip, pair_ids, colour_nodes(live.order, 1), 0)
    want = _plain_sweep(live, plan.nbytes, skip, pair_ids)
    assert list(got[0].items()) == list(want[0].items())
    assert got[1:] == want[1:]


@EXAMPLES
@given(net=random_net(), recompute=st.booleans())
def test_hinted_shapes_and_dtypes_equal_the_rules(net, recompute):
    first = _plan(net, {})
    joint = _plan(net, drop_cheap(net.graph) if recompute else {}).joint
    by_shape, by_dtype = PlanHints.of(first).by_name()
    assert by_shape and by_dtype
    fwd = infer_shape(net.graph, SHAPES)
    known = dict(SHAPES)
    known.update({name: fwd[e] for name, e in zip(joint.head_grads, joint.forward_outputs,
                                                  strict=True) if name is not None})
    graph = joint.graph
    assert (infer_shape(graph, known, by_shape, given=fwd)
            == infer_shape(graph, known, given=fwd))
    assert infer_type(graph, {}, hints=by_dtype) == infer_type(graph, {})


@EXAMPLES
@given(net=random_net())
def test_forward_shape_hints_give_the_same_first_plan(net):
    # what the search's first plan reads: the forward shapes by node name, for the copies too
    graph = net.graph
    fwd = infer_shape(graph, SHAPES)
    counts = drop_cheap(graph)
    plain = _plan(net, counts, PlanHints({}, {}, forward=fwd))
    hinted = _plan(net, counts, PlanHints(output_hints(graph, fwd), {}, forward=fwd))

    def named(shapes):
        return [(output_name(e), s) for e, s in shapes.items()]
    assert named(plain.shapes) == named(hinted.shapes)
    assert plain.plan.planned_bytes == hinted.plan.planned_bytes
    assert plain.plan.storage_bytes == hinted.plan.storage_bytes


def _named_plan(net):
    """A plan's facts by output name: shapes, dtypes, bytes, arena offsets, in-place pairs."""
    plan = net.plan
    offsets = {output_name(e): plan.arena.offsets[sid] for e, sid in plan.storage.items()}
    return ([(output_name(e), net.shapes[e], net.dtypes[e], plan.nbytes.get(e))
             for e in net.joint.graph.entries()],
            offsets, sorted((output_name(o), output_name(i)) for o, i in plan.inplace.items()),
            plan.planned_bytes, plan.arena.live_peak)


@EXAMPLES
@given(net=random_net(), first=st.sampled_from(["none", "cheap", "half"]),
       then=st.sampled_from(["none", "cheap", "half", "twice"]))
def test_derived_variants_equal_plans_made_from_scratch(net, first, then):
    # the first plan may recompute too (the sublinear search's first plan does)
    graph = net.graph
    cheap = drop_cheap(graph)
    ops = [n for n in graph.nodes if not n.opdef.is_loss]
    counts = {"none": {}, "cheap": cheap, "half": {n: 1 for n in ops[::2]},
              "twice": {n: 2 for n in ops[1::2]}}
    base = _plan(net, counts[first])
    derived = _plan(net, counts[then], PlanHints.of(base))
    fresh = _plan(net, counts[then])
    assert derived.joint.graph is not fresh.joint.graph
    assert str(derived.joint.graph) == str(fresh.joint.graph)
    assert _named_plan(derived) == _named_plan(fresh)


def test_no_derive_plans_every_variant_from_scratch(monkeypatch):
    import optim.pipeline as pipeline
    from examples import mlp
    net = mlp.get_symbol()
    base = _plan(net, {})
    calls = []
    real = pipeline.remirror
    monkeypatch.setattr(pipeline, "remirror", lambda *a: calls.append(1) or real(*a))
    derived = _plan(net, drop_cheap(net.graph), PlanHints.of(base))
    assert calls == [1]
    monkeypatch.setenv("NO_DERIVE", "1")
    fresh = _plan(net, drop_cheap(net.graph), PlanHints.of(base))
    assert calls == [1]
    assert _named_plan(derived) == _named_plan(fresh)


def test_hints_of_another_network_are_not_derived_from(monkeypatch):
    import optim.pipeline as pipeline
    from examples import mlp
    net = mlp.get_symbol()
    calls = []
    real = pipeline.remirror
    monkeypatch.setattr(pipeline, "remirror", lambda *a: calls.append(1) or real(*a))
    reqs = default_grad_req(net.list_arguments(), ["data"])
    base = plan_network(net.graph, {"data": (2, 784)}, grad_req=reqs)
    hints = PlanHints.of(base)
    counts = drop_cheap(net.graph)
    # another batch, gradient request, dtype or sum cap: each planned from scratch
    capped = PlannerFlags(grad_sum_cap=1)
    for shapes, req, dtypes, flags in (({"data": (3, 784)}, reqs, None, None),
                                       ({"data": (2, 784)}, {**reqs, "data": "write"}, None,
                                        None),
                                       ({"data": (2, 784)}, reqs, {"data": "float64"}, None),
                                       ({"data": (2, 784)}, reqs, None, capped)):
        got = plan_network(net.graph, shapes, grad_req=req, mirror=counts, hints=hints,
                           dtypes=dtypes, flags=flags)
        fresh = plan_network(net.graph, shapes, grad_req=req, mirror=counts, dtypes=dtypes,
                             flags=flags)
        assert _named_plan(got) == _named_plan(fresh)
    assert calls == []
    plan_network(net.graph, {"data": (2, 784)}, grad_req=reqs, mirror=counts, hints=hints)
    assert calls == [1]
