"""BatchNorm depths: how many passes over the slices exact whole-batch statistics need."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbol as sym
from optim.microbatch import BatchNormDepths, batch_norm_depths, check_batch_norm_depths

from .mirror_nets import EXAMPLES


def _bn(x, name, **kw):
    return sym.Activation(sym.BatchNorm(x, name=name, **kw), act_type="relu")


def _depths(net):
    d = batch_norm_depths(net.graph)
    check_batch_norm_depths(net.graph, d)
    return d


def test_a_chain_takes_one_pass_per_layer_each_way():
    x = sym.Variable("data")
    for i in range(3):
        x = _bn(sym.FullyConnected(x, num_hidden=8, name=f"fc{i}"), f"bn{i}")
    d = _depths(x)
    assert d.forward == {"bn0": 1, "bn1": 2, "bn2": 3}
    assert d.backward == {"bn0": 3, "bn1": 2, "bn2": 1}
    assert d.passes() == (7, 4)
    assert "3 BatchNorm layers" in d.summary() and "up to 7 forward and 4 backward" in d.summary()


def test_a_residual_counts_the_longest_path():
    a = _bn(sym.FullyConnected(sym.Variable("data"), num_hidden=8), "bn1")
    b = _bn(sym.FullyConnected(a, num_hidden=8), "bn2")
    c = _bn(sym.FullyConnected(a + b, num_hidden=8), "bn3")
    d = _depths(c)
    assert d.forward == {"bn1": 1, "bn2": 2, "bn3": 3}
    assert d.backward == {"bn1": 3, "bn2": 2, "bn3": 1}


def test_parallel_layers_share_a_pass_and_global_statistics_need_none():
    x = sym.Variable("data")
    left = _bn(sym.FullyConnected(x, num_hidden=8), "left")
    right = _bn(sym.FullyConnected(x, num_hidden=8), "right")
    frozen = _bn(sym.Concat(left, right, dim=1), "frozen", use_global_stats=True)
    d = _depths(frozen)
    assert d.forward == {"left": 1, "right": 1} and d.backward == {"left": 1, "right": 1}
    assert d.passes() == (3, 2)
    assert batch_norm_depths(sym.FullyConnected(x, num_hidden=4).graph).passes() == (1, 1)


def test_resnet_depths():
    net = sym.load(str(EXAMPLES / "resnet.sym"), params={"units": (2, 2, 2, 2)})
    d = _depths(net)
    layers = [n.name for n in net.graph.nodes if n.op == "BatchNorm"]
    assert set(d.forward) == set(layers)
    # every unit's first BatchNorm reads the previous unit's output: the depth grows with it
    assert d.forward_passes >= 8 and d.backward_passes == d.forward_passes


def test_the_checker_rejects_a_wrong_order():
    x = _bn(sym.FullyConnected(sym.Variable("data"), num_hidden=8), "bn1")
    x = _bn(sym.FullyConnected(x, num_hidden=8), "bn2")
    with pytest.raises(AssertionError):
        check_batch_norm_depths(x.graph, BatchNormDepths({"bn1": 1, "bn2": 1},
                                                         {"bn1": 2, "bn2": 1}))
    with pytest.raises(AssertionError):  # a depth skipped
        check_batch_norm_depths(x.graph, BatchNormDepths({"bn1": 1, "bn2": 3},
                                                         {"bn1": 2, "bn2": 1}))


@st.composite
def random_bn_net(draw):
    """A random DAG of dense layers, sums and BatchNorms over (2, 8) tensors."""
    nodes = [sym.Variable("data")]
    with sym.NameManager():
        for _ in range(draw(st.integers(1, 16))):
            kind = draw(st.sampled_from(["bn", "bn", "fc", "add", "global"]))
            a = nodes[draw(st.integers(0, len(nodes) - 1))]
            b = nodes[draw(st.integers(0, len(nodes) - 1))]
            if kind == "bn":
                nodes.append(sym.BatchNorm(a))
            elif kind == "global":
                nodes.append(sym.BatchNorm(a, use_global_stats=True))
            elif kind == "fc":
                nodes.append(sym.FullyConnected(a, num_hidden=8))
            else:
                nodes.append(a + b)
    return sym.Group(nodes[1:])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_bn_net())
def test_random_graphs(net):
    d = _depths(net)
    layers = sum(1 for n in net.graph.nodes
                 if n.op == "BatchNorm" and not n.params.get("use_global_stats"))
    assert len(d.forward) == layers
    assert d.passes() == ((d.forward_passes + d.backward_passes + 1, d.backward_passes + 1)
                          if layers else (1, 1))
