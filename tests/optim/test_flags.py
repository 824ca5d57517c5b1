"""Environment settings: MXNet's names, defaults, aliases and clear errors."""
from __future__ import annotations

import pytest

from optim.flags import FlagError, read_flags
from optim.pipeline import resolve_strategy


def test_defaults_are_mxnets():
    f = read_flags({})
    assert (f.inplace, f.match_range, f.num_temp, f.auto_search_match_range,
            f.grad_sum_cap) == (True, 16, 1, False, 8)
    assert resolve_strategy(None, f) == "sharing"


@pytest.mark.parametrize("env,field,value", [
    ({"MXNET_EXEC_ENABLE_INPLACE": "0"}, "inplace", False),
    ({"NO_INPLACE": "1"}, "inplace", False),
    ({"MXNET_EXEC_MATCH_RANGE": "4"}, "match_range", 4),
    ({"NNVM_EXEC_MATCH_RANGE": "0"}, "match_range", 0),
    ({"MXNET_EXEC_NUM_TEMP": "3"}, "num_temp", 3),
    ({"NNVM_EXEC_NUM_TEMP": "2"}, "num_temp", 2),
    ({"NNVM_AUTO_SEARCH_MATCH_RANGE": "1"}, "auto_search_match_range", True),
    ({"MXNET_EXEC_INPLACE_GRAD_SUM_CAP": "100"}, "grad_sum_cap", 100),
    ({"SUBLINEAR_UPDATE_IN_BACKWARD": "1"}, "update_in_backward", True),
    ({"MXNET_EXEC_MATCH_RANGE": "4", "NNVM_EXEC_MATCH_RANGE": "4"}, "match_range", 4),
])
def test_each_variable_sets_its_field(env, field, value):
    assert getattr(read_flags(env), field) == value


def test_strategy_follows_the_environment():
    assert resolve_strategy(None, read_flags({"MXNET_EXEC_MATCH_RANGE": "0"})) == "inplace"
    assert resolve_strategy(None, read_flags({"NNVM_EXEC_MATCH_RANGE": "0",
                                              "MXNET_EXEC_ENABLE_INPLACE": "0"})) == "none"
    assert resolve_strategy(None, read_flags({"NO_MEMORY_PLAN": "1"})) == "none"
    assert resolve_strategy("inplace", read_flags({})) == "inplace"


@pytest.mark.parametrize("env,message", [
    ({"MXNET_EXEC_MATCH_RANGE": "abc"},
     "environment variable MXNET_EXEC_MATCH_RANGE='abc' is invalid: expected a non-negative "
     "integer"),
    ({"NNVM_EXEC_MATCH_RANGE": "-1"},
     "environment variable NNVM_EXEC_MATCH_RANGE='-1' is invalid: expected a non-negative "
     "integer"),
    ({"MXNET_EXEC_ENABLE_INPLACE": "2"},
     "environment variable MXNET_EXEC_ENABLE_INPLACE='2' is invalid: expected 0 or 1"),
    ({"SUBLINEAR_UPDATE_IN_BACKWARD": "yes"},
     "environment variable SUBLINEAR_UPDATE_IN_BACKWARD='yes' is invalid: expected 0 or 1"),
    ({"MXNET_EXEC_NUM_TEMP": "0"},
     "environment variable MXNET_EXEC_NUM_TEMP='0' is invalid: expected an integer >= 1"),
    ({"MXNET_EXEC_INPLACE_GRAD_SUM_CAP": "x"},
     "environment variable MXNET_EXEC_INPLACE_GRAD_SUM_CAP='x' is invalid: expected an "
     "integer >= 1"),
    ({"MXNET_EXEC_MATCH_RANGE": "4", "NNVM_EXEC_MATCH_RANGE": "8"},
     "environment variables MXNET_EXEC_MATCH_RANGE=4, NNVM_EXEC_MATCH_RANGE=8 name one setting "
     "but disagree; unset one or give both the same value"),
    ({"MXNET_EXEC_NUM_TEMP": "2", "NNVM_EXEC_NUM_TEMP": "3"},
     "environment variables MXNET_EXEC_NUM_TEMP=2, NNVM_EXEC_NUM_TEMP=3 name one setting but "
     "disagree; unset one or give both the same value"),
])
def test_bad_values_fail_with_one_clear_message(env, message):
    with pytest.raises(FlagError) as e:
        read_flags(env)
    assert str(e.value) == message


def test_unknown_strategy_lists_the_valid_ones():
    from symbol.errors import SymbolError
    with pytest.raises(SymbolError, match="unknown memory strategy 'shared'; expected one of "
                                          "none, inplace, pool, sharing"):
        resolve_strategy("shared", read_flags({}))
