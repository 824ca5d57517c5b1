"""The optimizer inside the backward pass, as planned: parameter gradients become short-lived
planned entries (``optim.pipeline.update_points``) instead of arrays held to the end."""
from __future__ import annotations

from dataclasses import replace

import pytest

from optim.flags import PlannerFlags
from optim.memory import PlanError, check_memory_plan
from optim.pipeline import default_grad_req, plan_network
from optim.search import plan_training as plan_search
from symbol.graph import Entry

from .helpers import plan_training
from .mirror_nets import EXAMPLE_NETS

UPDATE = PlannerFlags(update_in_backward=True)
NETS = ["mlp.py", "resnet.py", "lstm.py"]  # the LSTM shares its weights over the steps


def _pair(name, strategy):
    net, shapes = EXAMPLE_NETS[name]()
    return (plan_training(net, shapes, strategy),
            plan_training(net, shapes, strategy, flags=UPDATE))


@pytest.mark.parametrize("strategy", ["none", "inplace", "pool", "sharing"])
@pytest.mark.parametrize("name", NETS)
def test_parameter_gradients_become_planned_entries_live_until_their_update(name, strategy):
    base, upd = _pair(name, strategy)
    bp, up = base.plan, upd.plan
    check_memory_plan(up)
    grads = {e for e, c in bp.external.items() if c == "parameter_gradients"}
    names = {(e.node.name, e.index) for e in grads}  # two plans: two joint graphs
    assert names and {(e.node.name, e.index) for e in up.released} == names
    assert "parameter_gradients" not in up.external.values()
    live = up.liveness
    params = {v.name for v in upd.joint.graph.inputs}
    for g, w in up.released.items():
        assert g in up.storage and w.node.name in params
        last = live.last_step[live.entry_id(g)]
        assert last == max(live.def_pos(g), live.last_step[live.entry_id(w)])
        assert last < len(live.order)  # not held to the end of the pass
    if strategy in ("none", "inplace"):  # no reuse: the same bytes, aligned in the arena
        assert up.total_bytes <= bp.total_bytes + 256 * len(up.released)
        return
    assert up.total_bytes < bp.total_bytes
    if strategy == "sharing":  # the arena finds room for most of their bytes
        assert bp.total_bytes - up.total_bytes >= 0.5 * sum(bp.nbytes[e] for e in grads)


@pytest.mark.parametrize("mirror", ["drop-cheap", "sublinear", "recursive"])
def test_mirror_plans_with_updates_in_backward(mirror):
    net, shapes = EXAMPLE_NETS["resnet.py"]()
    reqs = default_grad_req(net.list_arguments(), list(shapes))
    aux = net.list_auxiliary_states()
    m0, n0 = plan_search(net.graph, shapes, grad_req=reqs, aux=aux, mirror=mirror)
    m1, n1 = plan_search(net.graph, shapes, grad_req=reqs, aux=aux, mirror=mirror,
                         flags=UPDATE)
    check_memory_plan(n1.plan)
    assert n1.plan.released and n1.plan.total_bytes < n0.plan.total_bytes
    assert "parameter_gradients" not in n1.plan.external.values()


def test_the_checker_catches_an_update_before_the_last_read():
    _, upd = _pair("mlp.py", "sharing")
    plan, live = upd.plan, upd.plan.liveness
    g = next(iter(plan.released))
    # an update that writes something a later step (or the end) still reads
    late = Entry(upd.joint.graph.outputs[0].node, 0)
    assert live.last_step[live.entry_id(late)] > live.last_step[live.entry_id(g)]
    with pytest.raises(PlanError, match="before its last read"):
        check_memory_plan(replace(plan, released={**plan.released, g: late}))


def test_add_gradients_are_not_released():
    net, shapes = EXAMPLE_NETS["mlp.py"]()
    reqs = {a: ("null" if a in shapes or a.endswith("label") else "add")
            for a in net.list_arguments()}
    plan = plan_network(net.graph, shapes, grad_req=reqs, flags=UPDATE).plan
    assert not plan.released and "parameter_gradients" not in plan.external.values()
