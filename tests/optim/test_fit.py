"""``--fit``: dtype, microbatches and recomputation chosen together for a byte budget."""
from __future__ import annotations

import pytest

import symbol as sym
from optim.fit import FitError, fit_plan
from optim.pipeline import default_grad_req

from .mirror_nets import EXAMPLES

PARAMS = dict(depth=10, widen=2, batch=16)
SHAPES = {"data": (16, 3, 32, 32)}


def _fit(budget, **kw):
    net = sym.load(str(EXAMPLES / "wrn.sym"), params=PARAMS)
    reqs = default_grad_req(net.list_arguments(), ["data"])
    return fit_plan(net, SHAPES, budget=budget, grad_req=reqs,
                    aux=net.list_auxiliary_states(), **kw)


def test_the_choice_fits_and_tighter_budgets_pull_more_levers():
    loose = _fit(2 ** 30)
    assert loose.chosen.fits and loose.chosen.microbatch == 1 and loose.chosen.mirror == "none"
    steps, counts = [], []
    budget = loose.chosen.step_bytes
    while True:
        budget = int(budget * 0.8)
        try:
            r = _fit(budget)
        except FitError as e:
            assert "the smallest step found is" in str(e)
            break
        c = r.chosen
        assert c.fits and c.step_bytes <= budget
        # every candidate is an exact plan of its combination; the chosen one is the fastest
        assert c.seconds == min(x.seconds for x in r.candidates if x.fits)
        steps.append(c.step_bytes)
        counts.append(c.microbatch)
    assert len(steps) >= 3 and steps == sorted(steps, reverse=True)
    assert counts[-1] > 1  # the smallest budgets needed microbatches


def test_an_impossible_budget_names_the_smallest_step():
    with pytest.raises(FitError) as info:
        _fit(1 << 20)
    text = str(info.value)
    assert "fits 1.00 MiB; the smallest step found is" in text
    smallest = text.split("the smallest step found is ")[1].split(" (")[0]
    # that figure is itself feasible: a budget of it (rounded up) finds a plan
    value, unit = smallest.split()
    budget = int(float(value) * {"KiB": 2 ** 10, "MiB": 2 ** 20, "GiB": 2 ** 30}[unit]) + 2 ** 14
    assert _fit(budget).chosen.fits


def test_optimizer_state_is_counted():
    one, two = _fit(2 ** 30), _fit(2 ** 30, optimizer_slots=2)
    assert two.chosen.step_bytes > one.chosen.step_bytes
