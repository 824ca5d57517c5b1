"""check_memory_plan (arena included) holds on random DAGs, for every strategy (Hypothesis)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbol as sym
from optim.memory import check_memory_plan

from .helpers import plan_training

WIDTHS = (4, 8, 16)


@st.composite
def random_net(draw):
    """A random DAG of elementwise, shape and dense ops over (2, w) tensors."""
    x = sym.Variable("data")
    nodes = [(x, 8)]
    with sym.NameManager():
        for i in range(draw(st.integers(2, 14))):
            kind = draw(st.sampled_from(["act", "add", "mul", "fc", "sum", "slice", "cat",
                                         "scalar", "block"]))
            a, wa = nodes[draw(st.integers(0, len(nodes) - 1))]
            same = [(s, w) for s, w in nodes if w == wa]
            b, _ = same[draw(st.integers(0, len(same) - 1))]
            if kind == "act":
                act = draw(st.sampled_from(["relu", "sigmoid", "tanh", "softrelu"]))
                nodes.append((sym.Activation(a, act_type=act), wa))
            elif kind == "add":
                nodes.append((a + b, wa))
            elif kind == "mul":
                nodes.append((a * b, wa))
            elif kind == "fc":
                w = draw(st.sampled_from(WIDTHS))
                nodes.append((sym.FullyConnected(a, num_hidden=w), w))
            elif kind == "sum":
                nodes.append((sym.ElementWiseSum(a, b, a), wa))
            elif kind == "slice" and wa % 2 == 0:
                s = sym.SliceChannel(a, num_outputs=2)
                nodes.extend([(s[0], wa // 2), (s[1], wa // 2)])
            elif kind == "cat":
                nodes.append((sym.Concat(a, b, dim=1), 2 * wa))
            elif kind == "scalar":
                nodes.append((a * 0.5, wa))
            else:
                nodes.append((sym.BlockGrad(a), wa))
    k = draw(st.integers(1, 3))
    heads = [s for s, _ in nodes[-k:] if s.outputs[0].node.op != "null"] or [nodes[-1][0]]
    return sym.Group([sym.MakeLoss(h) if draw(st.booleans()) else h for h in heads])


@pytest.mark.parametrize("strategy", ["none", "inplace", "pool", "sharing"])
@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=random_net(), num_temp=st.sampled_from([1, 1, 2, 3]),
       match_range=st.sampled_from([1, 2, 16]))
def test_random_dag_plans_pass_the_checker(strategy, net, num_temp, match_range):
    from optim.flags import read_flags
    flags = read_flags({"MXNET_EXEC_NUM_TEMP": str(num_temp),
                        "MXNET_EXEC_MATCH_RANGE": str(match_range)})
    plan = plan_training(net, {"data": (2, 8)}, strategy, flags=flags).plan
    check_memory_plan(plan)
    if strategy == "none":
        assert plan.num_storage == len(plan.storage)
    # the arena is within one alignment unit per storage of the liveness bound
    assert plan.live_peak_bytes <= plan.planned_bytes
    if strategy in ("none", "inplace"):
        assert plan.planned_bytes == plan.live_peak_bytes
