"""Structure of the joint forward+backward graph."""
from __future__ import annotations

import dataclasses

import pytest

import symbol as sym
from symbol.errors import SymbolError
from symbol.gradient import MIRROR_OF, remirror


def test_joint_graph_names_backward_nodes_after_forward_nodes():
    x = sym.Variable("x")
    y = sym.Activation(x * x, act_type="relu", name="r")
    joint = sym.gradient(y.graph, ["x"])
    joint.graph.verify()
    names = [n.name for n in joint.graph.nodes]
    m = y.graph.nodes[0].name
    assert names[-4:] == ["r_backward", f"{m}_in0_backward", f"{m}_in1_backward", "x_grad_sum"]
    assert joint.head_grads == ("r_output_head_grad",)
    assert joint.grad_outputs[0].node.op == "ElementWiseSum"


def test_relu_backward_reads_only_the_output():
    x = sym.Variable("x")
    y = sym.Activation(x, act_type="relu", name="r")
    joint = sym.gradient(y.graph, ["x"])
    bwd = [n for n in joint.graph.nodes if n.name == "r_backward"][0]
    assert [e.node.name for e in bwd.inputs] == ["r_output_head_grad", "r"]


def test_loss_heads_need_no_head_gradient_and_labels_get_none():
    net = sym.SoftmaxOutput(sym.FullyConnected(sym.Variable("data"), num_hidden=3, name="fc"),
                            name="sm")
    joint = sym.gradient(net.graph)
    assert joint.head_grads == (None,)
    assert joint.wrt == ("data", "fc_weight", "fc_bias", "sm_label")
    label_grad = joint.grad_outputs[-1].node
    assert label_grad.op == "zeros_like" and label_grad.name == "sm_label_grad_zeros"


def test_only_nodes_leading_to_wrt_are_differentiated():
    a, b = sym.Variable("a"), sym.Variable("b")
    y = (sym.Activation(a, act_type="tanh", name="ta")
         * sym.Activation(b, act_type="tanh", name="tb"))
    joint = sym.gradient(y.graph, ["a"])
    names = {n.name for n in joint.graph.nodes}
    assert "ta_backward" in names and "tb_backward" not in names


def test_gradient_names_are_deterministic():
    def build():
        x = sym.Variable("x")
        with sym.NameManager():
            return sym.Activation(x * x + x, act_type="sigmoid", name="s")
    assert str(sym.gradient(build().graph).graph) == str(sym.gradient(build().graph).graph)


def test_unknown_wrt_is_an_error():
    with pytest.raises(SymbolError, match="'z' is not a variable"):
        sym.gradient(sym.Variable("x").graph, ["z"])


def _random_counts(graph, seed, levels=2):
    """Mirror counts for a random subset of the forward graph's non-loss operators."""
    import random
    rng = random.Random(seed)
    nodes = [n for n in graph.nodes if not n.opdef.is_loss]
    return {n: rng.randint(1, levels) for n in nodes if rng.random() < 0.4}


def _example_nets():
    from examples import lstm, mlp, resnet, resnet_postact
    yield mlp.get_symbol()
    yield resnet.get_symbol(units=(1, 1, 1, 1))
    yield resnet_postact.get_symbol(units=(1, 1, 1))
    yield lstm.get_symbol(seq_len=12, num_hidden=8)  # 12 steps: sums beyond the cap of 8


@pytest.mark.parametrize("net", list(_example_nets()), ids=lambda n: n.list_outputs()[0])
@pytest.mark.parametrize("seed", [0, 1])
def test_remirror_makes_the_graph_gradient_makes(net, seed):
    graph = net.graph
    wrt = [a for a in net.list_arguments() if not a.endswith(("data", "label"))]
    counts = _random_counts(graph, seed)
    want = sym.gradient(graph, wrt, mirror=counts)
    for base in (sym.gradient(graph, wrt), sym.gradient(graph, wrt,
                                                        mirror=_random_counts(graph, 9, 1))):
        got, origin = remirror(base, graph, counts)
        assert str(got.graph) == str(want.graph)
        assert got.wrt == want.wrt and got.head_grads == want.head_grads
        assert got.num_forward == want.num_forward
        old = {*base.graph.inputs, *base.graph.nodes}
        new_nodes = [n for n in (*got.graph.inputs, *got.graph.nodes) if n not in old]
        assert new_nodes and set(new_nodes) <= set(origin)
        for n in new_nodes:  # a copy stands for its forward node, a remade node for its old self
            src = origin[n]
            assert src.op == n.op and src in old
            assert src.name == n.attrs.get(MIRROR_OF, n.name)
        again, _ = remirror(got, graph, {})  # and back: the graph without recomputation
        assert str(again.graph) == str(sym.gradient(graph, wrt).graph)


def test_remirror_needs_a_graph_made_by_gradient():
    x = sym.Variable("x")
    y = sym.Activation(x, act_type="relu", name="r")
    joint = sym.gradient(y.graph, ["x"])
    bare = dataclasses.replace(joint, replay=None)
    with pytest.raises(ValueError, match="not made by gradient"):
        remirror(bare, y.graph, {y.graph.nodes[0]: 1})
