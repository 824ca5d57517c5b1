"""Structure of the joint forward+backward graph."""
from __future__ import annotations

import pytest

import symbol as sym
from symbol.errors import SymbolError


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
