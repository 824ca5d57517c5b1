"""Registry completeness and contracts."""
from __future__ import annotations

import pytest

from symbol.registry import NON_DIFFERENTIABLE, OPS, OpDef, Param, get_op, register
from symbol.ops._helpers import same_shape
from symbol.errors import AttrError, OpError


def test_every_op_has_a_shape_rule_and_forward_ops_have_gradients():
    for name, op in OPS.items():
        assert callable(op.infer_shape), name
        if op.gradient is None and not op.is_backward:
            assert name in NON_DIFFERENTIABLE, f"{name} has no gradient and is not listed"


def test_non_differentiable_list_is_exact():
    assert {n for n, op in OPS.items() if op.gradient is None and not op.is_backward} \
        == set(NON_DIFFERENTIABLE)


def test_backward_ops_are_marked_and_named():
    for name, op in OPS.items():
        if name.startswith("_backward_"):
            assert op.is_backward, name


def test_duplicate_registration_raises():
    op = OPS["elemwise_add"]
    with pytest.raises(ValueError, match="already registered"):
        register(op)


def test_registration_without_gradient_must_be_declared():
    with pytest.raises(ValueError, match="NON_DIFFERENTIABLE"):
        register(OpDef("my_new_op_xyz", "elemwise", ("data",), same_shape, None))
    assert "my_new_op_xyz" not in OPS


def test_unknown_op_suggests_a_close_name():
    with pytest.raises(OpError, match="did you mean 'Activation'"):
        get_op("Activatio")


def test_aliases_resolve():
    assert get_op("add_n") is OPS["ElementWiseSum"]


@pytest.mark.parametrize("kind,value,expected", [
    ("int", "3", 3), ("int", 4, 4), ("float", "0.5", 0.5), ("bool", "True", True),
    ("bool", "0", False), ("tuple", "(3, 3)", (3, 3)), ("tuple", [1, 2], (1, 2)),
    ("tuple", 2, (2,)),
])
def test_param_parses_python_and_string_values(kind, value, expected):
    assert Param("a", kind).parse(value) == expected


@pytest.mark.parametrize("kind,value", [("int", "x"), ("int", True), ("float", "abc"),
                                        ("bool", "maybe"), ("tuple", "(3, 'a')")])
def test_param_rejects_ill_typed_values(kind, value):
    with pytest.raises(ValueError):
        Param("a", kind).parse(value)


def test_param_defaults_are_filled_and_unknown_names_rejected():
    op = OPS["LeakyReLU"]
    assert op.parse_params({}, "n") == {"act_type": "leaky", "slope": 0.25}
    with pytest.raises(AttrError, match="unknown attribute 'slop'; did you mean 'slope'"):
        op.parse_params({"slop": 1}, "n")
    with pytest.raises(AttrError, match="missing required attribute 'act_type'"):
        OPS["Activation"].parse_params({}, "n")
    with pytest.raises(AttrError, match="expected one of"):
        OPS["Activation"].parse_params({"act_type": "gelu"}, "n")


def test_param_format_is_mxnet_style():
    assert Param.format((3, 3)) == "(3, 3)"
    assert Param.format(True) == "True"
