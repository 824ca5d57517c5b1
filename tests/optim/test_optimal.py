"""The ``optimal`` mirror planner: fits every budget it accepts, by the exact planner's count;
a smaller budget never plans more bytes; on small chains, equal to a brute-force optimum."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbol as sym
from examples import resnet
from optim.mirror import MirrorError, describe, eligible
from optim.optimal import (CHEAP, LIGHT, NESTED, RECOMPUTE, STORE, Costs, Solution, Stage,
                           counts_of, model_peak, nested_step, solve, stage_model)
from optim.pipeline import default_grad_req, plan_network
from optim.mirror import forward_flops
from optim.search import EXHAUSTIVE, plan_training
from symbol.infer_shape import infer_shape

from .test_random_dags import random_net

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def random_chain(draw):
    """A chain: FC / activation / BatchNorm / scalar ops over (4, w) tensors, then a loss."""
    x = sym.Variable("data")
    with sym.NameManager():
        for _ in range(draw(st.integers(2, 9))):
            kind = draw(st.sampled_from(["fc", "act", "bn", "scalar"]))
            if kind == "fc":
                x = sym.FullyConnected(x, num_hidden=draw(st.sampled_from([8, 16, 32])))
            elif kind == "act":
                x = sym.Activation(x, act_type=draw(st.sampled_from(["relu", "tanh"])))
            elif kind == "bn":
                x = sym.BatchNorm(x, fix_gamma=False)
            else:
                x = x * 0.5
        return sym.MakeLoss(sym.FullyConnected(x, num_hidden=4))


def _plan(net, **kw):
    reqs = default_grad_req(net.list_arguments(), ["data"])
    return plan_training(net.graph, {"data": (4, 8)}, grad_req=reqs,
                         aux=net.list_auxiliary_states(), budget_scope="activations", **kw)


def _fractions(net, parts=(0.55, 0.75, 0.9)):
    base = _plan(net)[1].plan.planned_bytes
    return base, [int(base * f) for f in parts]


def _outcome(net, budget):
    """(planned bytes, extra FLOPs) of the optimal plan, or None when it cannot be met."""
    try:
        mplan, nplan = _plan(net, mirror="optimal", budget=budget)
    except MirrorError as e:
        assert "cannot be met: the smallest plan found needs" in str(e)
        return None
    assert nplan.plan.planned_bytes <= budget  # the exact planner's count fits
    assert mplan.strategy == "optimal" and mplan.budget == budget
    return nplan.plan.planned_bytes, mplan.recompute_flops


def _check_fits_and_monotone(net):
    base, budgets = _fractions(net)
    results = [_outcome(net, b) for b in budgets]  # budgets increase
    for smaller, larger in zip(results, results[1:]):
        if larger is None:
            assert smaller is None  # a smaller budget cannot succeed where a larger failed
        elif smaller is not None:
            assert smaller[0] <= larger[0]  # never more bytes for a smaller budget
            assert smaller[1] >= larger[1] - 1e-12  # nor less recomputation
    got = _outcome(net, base)
    assert got is not None and got[1] == 0  # the plan without recomputation fits its own bytes


@SETTINGS
@given(net=random_chain())
def test_random_chains_fit_the_budget_and_are_monotone(net):
    _check_fits_and_monotone(net)


@SETTINGS
@given(net=random_net())
def test_random_dags_fit_the_budget_and_are_monotone(net):
    _check_fits_and_monotone(net)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=st.one_of(random_chain(), random_net()))
def test_the_ladder_search_of_large_graphs_fits_the_budget(net):
    # graphs above FULL_LADDER nodes search the ladder in few exact plans and free the first
    # plan's memory plan (re-planned where a fallback needs it): here on small graphs
    from unittest import mock

    import optim.search as search
    base, budgets = _fractions(net, (0.3, 0.55, 0.75, 0.9))
    with mock.patch.object(search, "FULL_LADDER", 0):
        for budget in budgets:
            _outcome(net, budget)
        got = _outcome(net, base)
    assert got is not None and got[1] == 0


def _brute_force(net, budget):
    """(extra FLOPs, planned bytes) of the best keep/recompute choice, planned exactly."""
    graph = net.graph
    shapes = {"data": (4, 8)}
    reqs = default_grad_req(net.list_arguments(), ["data"])
    fwd = infer_shape(graph, shapes)
    cost = forward_flops(graph, fwd)
    nodes = eligible(graph)
    best = None
    for choice in itertools.product((0, 1), repeat=len(nodes)):
        counts = {n: 1 for n, c in zip(nodes, choice) if c}
        nplan = plan_network(graph, shapes, grad_req=reqs, aux=net.list_auxiliary_states(),
                             mirror=counts)
        if nplan.plan.planned_bytes <= budget:
            flops = describe("x", graph, fwd, nplan.joint, requested=counts,
                             cost=cost).recompute_flops
            key = (flops, nplan.plan.planned_bytes)
            best = key if best is None or key < best else best
    return best


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=random_chain(), part=st.sampled_from([0.5, 0.6, 0.7, 0.8, 0.9]))
def test_small_chains_equal_the_brute_force_optimum(net, part):
    if len(eligible(net.graph)) > EXHAUSTIVE:
        return  # (brute force is for small chains)
    base = _plan(net)[1].plan.planned_bytes
    budget = int(base * part)
    want = _brute_force(net, budget)
    got = _outcome(net, budget)
    if want is None:
        assert got is None
    else:
        assert got is not None and (got[1], got[0]) == pytest.approx(want)


# -- the chain model ---------------------------------------------------------------------------

def _resnet_model():
    net = resnet.get_symbol(num_classes=10, units=(4, 4, 4), filter_list=(8, 16, 32, 64),
                            image_shape=(3, 16, 16))
    shapes = {"data": (8, 3, 16, 16)}
    reqs = default_grad_req(net.list_arguments(), list(shapes))
    base = plan_network(net.graph, shapes, grad_req=reqs, aux=net.list_auxiliary_states())
    from optim.mirror import cut_groups
    from optim.optimal import saved_bytes
    from optim.search import _entry_bytes
    fwd = infer_shape(net.graph, shapes)
    nbytes = _entry_bytes(base)
    by_name = saved_bytes(base.joint, nbytes)
    saved = {n: by_name.get(n.name, 0) for n in net.graph.nodes}
    cost = forward_flops(net.graph, fwd)
    stages, tail, light = stage_model(net.graph, cut_groups(net.graph, fwd), nbytes, saved, cost)
    return net, stages, tail, light


def test_light_ops_are_batchnorm_and_relu_after_a_convolution_not_the_sums():
    net, stages, _, light = _resnet_model()
    ops = {n.op for n in light}
    assert ops <= {"BatchNorm", "Activation", "elemwise_add"} and {"BatchNorm", "Activation"} <= ops
    # a residual sum reads a convolution output the backward does not keep: never light
    sums = [n for s in stages for n in s.nodes if n.op == "elemwise_add"]
    assert sums and not any(n in light for n in sums)


def test_the_solution_is_the_cheapest_walk_that_fits_the_model():
    _, stages, tail, light = _resnet_model()
    everything = tuple((a, a + 1, STORE) for a in range(len(stages)))
    top = model_peak(stages, everything, tail)
    previous = -1.0
    for part in (1.0, 0.8, 0.6, 0.45):
        sol = solve(stages, tail, int(top * part))
        if sol is None:
            break
        assert sol.peak <= top * part  # the walk fits the model budget exactly
        assert sol.flops >= previous  # less memory costs at least as much recomputation
        previous = sol.flops
        assert {m for _, _, m in sol.pieces} <= {STORE, CHEAP, RECOMPUTE, LIGHT, NESTED}
        counts = counts_of(stages, sol, light)
        if all(m == STORE for _, _, m in sol.pieces):
            assert counts == {}
    assert solve(stages, tail, 1) is None


def test_counts_of_each_mode():
    _, stages, _, light = _resnet_model()
    k = len(stages)
    kept_end = set(stages[k - 1].group)
    for mode in (RECOMPUTE, LIGHT, NESTED):
        counts = counts_of(stages, Solution(((0, k, mode),), 0.0, 0), light)
        assert not kept_end & set(counts)  # the piece's last cut group is kept
        values = set(counts.values())
        assert values == ({1} if mode == RECOMPUTE else {1, 2})
        if mode == LIGHT:
            assert all(counts[n] == 2 for n in light if n in counts)
        if mode == NESTED:
            step = nested_step(k)
            inner = {n for j in range(step - 1, k - 1, step) for n in stages[j].group}
            assert {n for n, c in counts.items() if c == 1} == inner
    assert counts_of(stages, Solution(((0, 1, STORE),), 0.0, 0), light) == {}
    cheap = counts_of(stages, Solution(((1, 2, CHEAP),), 0.0, 0), light)
    assert cheap and set(cheap.values()) == {1} and set(cheap) <= light


def _scalar_solve(stages, tail, budget, buckets):
    """The dynamic program as a plain loop: each first stage pushes its row forward, strict
    improvements only (store, cheap, then pieces by length; per piece recompute, light,
    nested), up to the first length where no mode fits. ``solve`` must equal it."""
    costs, k, size = Costs(stages), len(stages), buckets + 1
    unit = budget / buckets
    table = [[math.inf] * size for _ in range(k + 1)]
    move = [[None] * size for _ in range(k + 1)]
    table[0][0] = 0.0

    def push(b, q, value, m, a):
        if value < table[b][q]:
            table[b][q], move[b][q] = value, (a, m)
    for a in range(k):
        for p in range(size):
            if table[a][p] == math.inf:
                continue
            for m in range(2):
                live, grow, fl = costs.single[m, :, a]
                q = p + math.ceil(grow / unit)
                if math.floor((budget - live) / unit) >= p and q < size:
                    push(a + 1, q, table[a][p] + fl, m, a)
        for ln in range(costs.longest):
            grow = costs.grow[a, ln]
            if not np.isfinite(grow):
                break
            shift = math.ceil(grow / unit)
            tops = [min(math.floor((budget - costs.live[m, a, ln]) / unit)
                        if np.isfinite(costs.live[m, a, ln]) else -1, size - 1 - shift)
                    for m in range(3)]
            if max(tops) < 0:
                break
            for p in range(size):
                if table[a][p] == math.inf:
                    continue
                fits = [m for m in range(3) if p <= tops[m]]
                if fits:
                    m = min(fits, key=lambda m: (costs.flops[m, a, ln], m))
                    push(a + ln + 1, p + shift, table[a][p] + costs.flops[m, a, ln], 2 + m, a)
    ok = [p for p in range(size) if table[k][p] < math.inf and p * unit + tail <= budget]
    if not ok:
        return None
    p = min(ok, key=lambda q: (table[k][q], q))
    flops, pieces, b = table[k][p], [], k
    modes = (STORE, CHEAP, RECOMPUTE, LIGHT, NESTED)
    while b > 0:
        a, m = move[b][p]
        pieces.append((a, b, modes[m]))
        grow = costs.single[m, 1, a] if m < 2 else costs.grow[a, b - a - 1]
        b, p = a, p - math.ceil(grow / unit)
    return tuple(reversed(pieces)), flops


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_solve_equals_the_scalar_dynamic_program(data):
    # small integer bytes and FLOPs: many ties, which must break as the scalar loop does
    k = data.draw(st.integers(1, 24))
    num = st.integers(0, 6)
    stages = []
    for _ in range(k):
        saved, flops, group = data.draw(num), data.draw(num), data.draw(num)
        stages.append(Stage((), (), flops=flops, cheap_flops=min(flops, data.draw(num)),
                            group_flops=min(flops, data.draw(num)), saved=saved,
                            heavy=min(saved, data.draw(num)), group_bytes=group,
                            largest=data.draw(st.integers(0, 3))))
    tail = data.draw(num)
    budget = data.draw(st.integers(1, 120))
    buckets = data.draw(st.sampled_from([4, 7, 16, 32]))
    got = solve(stages, tail, budget, buckets=buckets)
    want = _scalar_solve(stages, tail, budget, buckets)
    assert (None if got is None else (got.pieces, got.flops)) == want
