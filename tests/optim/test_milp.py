"""The integer program of ``optim.milp``: its answer meets the model budget and is the model's
optimum (brute force on small stage sets); in the planner its plan fits the budget by the
exact planner's count and never recomputes more than the dynamic program's; at the time limit
the planner keeps the dynamic program's plan and says so."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optim import milp
from optim.flags import read_flags
from optim.mirror import MirrorError
from optim.pipeline import default_grad_req
from optim.search import plan_training

from .test_random_dags import random_net

pytest.importorskip("highspy")
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def random_terms(draw):
    k = draw(st.integers(1, 8))
    ints = st.integers(0, 1000)
    saved = np.array([draw(ints) for _ in range(k)], dtype=float)
    bound = np.array([min(s, draw(ints)) for s in saved], dtype=float)
    terms = milp.StageTerms(saved, bound, np.array([draw(ints) for _ in range(k)], float),
                            np.array([draw(st.integers(0, 100)) for _ in range(k)], float),
                            tuple(frozenset() for _ in range(k)), draw(st.integers(0, 200)))
    return terms, draw(st.floats(0.2, 1.0))


@SETTINGS
@given(case=random_terms())
def test_milp_meets_the_model_budget_and_equals_brute_force(case):
    terms, part = case
    budget = int(terms.top() * part)
    got = milp.solve_milp(terms, budget)
    best = min((float(terms.flops @ np.array(x)), x)
               for x in itertools.product((0, 1), repeat=len(terms.saved))
               if terms.peak(np.array(x, dtype=float)) <= budget) \
        if any(terms.peak(np.array(x, dtype=float)) <= budget
               for x in itertools.product((0, 1), repeat=len(terms.saved))) else None
    if best is None:
        assert got.x is None and got.status == "infeasible"
    else:
        assert got.status == "optimal" and got.peak <= budget
        assert float(terms.flops @ got.x) == pytest.approx(best[0])


def _plan(net, budget, **env):
    reqs = default_grad_req(net.list_arguments(), ["data"])
    return plan_training(net.graph, {"data": (2, 8)}, grad_req=reqs,
                         aux=net.list_auxiliary_states(), mirror="optimal", budget=budget,
                         budget_scope="activations", flags=read_flags(env))


@SETTINGS
@given(net=random_net(), part=st.sampled_from([0.5, 0.7, 0.9]))
def test_random_dags_fit_and_never_recompute_more_than_without_the_milp(net, part):
    reqs = default_grad_req(net.list_arguments(), ["data"])
    base = plan_training(net.graph, {"data": (2, 8)}, grad_req=reqs,
                         aux=net.list_auxiliary_states())[1].plan.planned_bytes
    budget = int(base * part)
    try:
        with_milp = _plan(net, budget)
    except MirrorError:
        with_milp = None
    try:
        without = _plan(net, budget, NO_MILP="1")
    except MirrorError:
        without = None
    if with_milp is None:
        assert without is None  # the integer program only adds candidates
        return
    assert with_milp[1].plan.planned_bytes <= budget  # the exact planner's count fits
    if without is not None:
        assert with_milp[0].recompute_flops <= without[0].recompute_flops + 1e-12


def test_time_limit_returns_no_solution():
    terms = milp.StageTerms(np.full(40, 100.0), np.full(40, 10.0),
                            np.arange(40, dtype=float) + 1, np.zeros(40),
                            tuple(frozenset() for _ in range(40)), 0)
    got = milp.solve_milp(terms, terms.top() // 3, time_limit=0.0)
    assert got.x is None and got.status == "time limit"


def test_planner_keeps_the_dynamic_program_at_the_time_limit(monkeypatch):
    from tests.optim.mirror_nets import densenet_style
    net, shapes = densenet_style()
    import optim.search as search
    monkeypatch.setattr(search, "is_chain", lambda graph, stages: False)  # force the program
    # the solver at its limit (test_time_limit_returns_no_solution checks HiGHS says so)
    monkeypatch.setattr(search, "solve_milp",
                        lambda terms, budget: milp.MilpResult(None, "time limit"))
    reqs = default_grad_req(net.list_arguments(), list(shapes))
    base = plan_training(net.graph, shapes, grad_req=reqs,
                         aux=net.list_auxiliary_states())[1].plan.planned_bytes
    mplan, nplan = plan_training(net.graph, shapes, grad_req=reqs,
                                 aux=net.list_auxiliary_states(), mirror="optimal",
                                 budget=int(base * 0.8), budget_scope="activations")
    assert nplan.plan.planned_bytes <= int(base * 0.8)
    assert f"integer program reached its {milp.TIME_LIMIT:g} s time limit" in mplan.note
