"""Mixed precision as planned (no torch): ``symbol.amp.convert_symbol``'s casts, the dtypes of
stored entries, and planned activation bytes against float32."""
from __future__ import annotations

import pytest

import symbol as sym
from optim.pipeline import default_grad_req, plan_network
from symbol.amp import amp_summary, convert_symbol
from symbol.errors import SymbolError

from .mirror_nets import EXAMPLE_NETS, EXAMPLES

LOW = ["bfloat16", "float16"]
#: example files at sizes where activations dominate (the batch and the sequence matter)
SIZED = {"resnet.sym": dict(units=(1, 1, 1), filter_list=(8, 16, 32, 64),
                            image_shape=(3, 32, 32), num_classes=10, batch=16),
         "lstm.sym": dict(steps=8, layers=2, hidden=64, input_size=16, num_label=50, batch=16),
         "densenet.sym": dict(blocks=(2, 2), growth=8, stem=16, image=(3, 16, 16),
                              num_classes=10, batch=8)}


def _plan(net, shapes=None):
    shapes = shapes or {}
    declared = [v.name for v in net.graph.inputs if "__shape__" in v.attrs]
    reqs = default_grad_req(net.list_arguments(), [*shapes, *declared])
    return plan_network(net.graph, shapes, grad_req=reqs, aux=net.list_auxiliary_states())


@pytest.mark.parametrize("dtype", LOW)
@pytest.mark.parametrize("name", sorted(SIZED))
def test_activations_are_stored_in_the_low_dtype_at_about_half_the_bytes(name, dtype):
    net = sym.load(str(EXAMPLES / name), params=SIZED[name])
    full, low = _plan(net), _plan(convert_symbol(net, dtype))
    ratio = (low.plan.bytes_by_class()["activations"]
             / full.plan.bytes_by_class()["activations"])
    assert ratio <= 0.55, ratio
    # structure: matrix products, activations, sums in the low dtype; parameters, their
    # gradients, BatchNorm statistics and the loss in float32
    for node in low.joint.graph.nodes:
        outs = [low.dtypes[e] for e in low.joint.graph.node_entries[node]]
        if node.op in ("Convolution", "FullyConnected", "Activation", "elemwise_add",
                       "Pooling", "Concat"):
            assert outs[0] == dtype, (node.name, outs)
        if node.op == "BatchNorm" and not node.inputs[0].node.is_variable:
            assert outs == [dtype, "float32", "float32"]  # (a BatchNorm of the image: float32)
        if node.op == "softmax_cross_entropy":
            assert outs == ["float32"]
    for name_, e in zip(low.joint.wrt, low.joint.grad_outputs):
        assert low.dtypes[e] == "float32", name_
    for v in low.joint.graph.inputs:
        assert low.dtypes[sym_entry(v)] in ("float32", None) or v.name.endswith("label")


def sym_entry(v):
    from symbol.graph import Entry
    return Entry(v, 0)


def test_casts_are_made_once_and_only_where_dtypes_meet():
    net, shapes = EXAMPLE_NETS["resnet.py"]()
    low = convert_symbol(net, "bfloat16")
    casts = [n for n in low.graph.nodes if n.op == "Cast"]
    # only the (normalised) image is cast: weights stay float32 (cast inside the kernels),
    # everything downstream is already bfloat16
    assert [c.inputs[0].node.name for c in casts] == ["bn_data"]  # BatchNorm of the image
    assert low.list_arguments() == net.list_arguments()
    assert amp_summary(low) == "amp: 1 casts (1 to bfloat16)"
    lstm, _ = EXAMPLE_NETS["lstm.py"]()
    cast_lstm = convert_symbol(lstm, "bfloat16")
    inputs = {c.inputs[0].node.name for c in cast_lstm.graph.nodes if c.op == "Cast"}
    assert all(cast_lstm.graph.nodes.count(c) == 1 for c in cast_lstm.graph.nodes)
    # the step inputs and the initial states are cast once each, whatever their readers
    assert inputs == {v.name for v in lstm.graph.inputs
                      if v.name.endswith("data") or "_init_" in v.name}


def test_a_network_with_float32_only_is_unchanged_in_values_of_its_arguments():
    net, shapes = EXAMPLE_NETS["mlp.py"]()
    low = convert_symbol(net, "float16")
    assert low.infer_shape(**shapes) == net.infer_shape(**shapes)
    with pytest.raises(SymbolError, match="computes in bfloat16 or float16"):
        convert_symbol(net, "int8")
