"""The printer: ``loads(dumps(s))`` builds the same graph as ``s``."""
from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

import symbol as sym
from examples import lstm, mlp, resnet
from symbol import SymbolError
from symbol.graph import Entry, make_node, make_variable

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def same_graph(a: sym.Symbol, b: sym.Symbol) -> bool:
    def printed(s: sym.Symbol) -> str:
        return re.sub(r"  # \S+$", "", str(s.graph), flags=re.M)
    return json.loads(a.tojson()) == json.loads(b.tojson()) and printed(a) == printed(b)


def round_trip(s: sym.Symbol) -> sym.Symbol:
    return sym.loads(sym.dumps(s), filename="printed.sym")


@pytest.mark.parametrize("name, params", [
    ("mlp.sym", {}), ("resnet.sym", {"units": (2, 3, 1, 1)}), ("lstm.sym", {"steps": 4}),
    ("inception.sym", {}), ("densenet.sym", {"blocks": (3, 2)}),
    ("gru.sym", {"steps": 3, "layers": 2}),
])
def test_examples_round_trip(name, params):
    s = sym.load(str(EXAMPLES / name), params=params)
    assert same_graph(round_trip(s), s)


@pytest.mark.parametrize("build", [
    lambda: mlp.get_symbol(hidden=(8, 4), act_type="tanh"),
    lambda: resnet.get_symbol(units=(1, 1), filter_list=(4, 8, 16), image_shape=(3, 32, 32)),
    lambda: lstm.get_symbol(seq_len=3, num_layers=2, num_hidden=4, dropout=0.5),
])
def test_api_networks_round_trip(build):
    s = build()
    assert same_graph(round_trip(s), s)


def test_printed_text_is_readable():
    s = sym.loads("input data: (2, 3);\nfc = FullyConnected(data, num_hidden=4) "
                  "with mirror_stage = 'True';\nparts = SliceChannel(fc, num_outputs=2);\n"
                  "y = Concat(parts[1], parts[0], dim=1);\noutput y, parts[0];")
    assert sym.dumps(s) == textwrap.dedent("""\
        # written by symbol.dumps

        input data: (2, 3);
        input fc_weight with mirror_stage = "True";
        input fc_bias with mirror_stage = "True";
        fc = FullyConnected(data, fc_weight, fc_bias, num_hidden=4) with mirror_stage = "True";
        parts = SliceChannel(fc, num_outputs=2);
        y = Concat(parts[1], parts[0], dim=1);
        output y, parts[0];
        """)


def test_odd_names_and_attribute_strings_survive():
    # as an imported MXNet JSON file may have them: names that are not identifiers or are
    # keywords, attribute strings that are not in canonical form, attribute keys with dashes
    data = make_variable("in put", {"__shape__": "[2,3]", "ctx-group": "dev1"})
    weight = make_variable("for")
    fc = make_node("FullyConnected", "fc-1", [Entry(data, 0), Entry(weight, 0)],
                   attrs={"num_hidden": "03", "no_bias": "1"})
    s = sym.Symbol([Entry(fc, 0)])
    text = sym.dumps(s)
    assert 'as "fc-1"' in text and 'num_hidden="03"' in text and '"ctx-group" = "dev1"' in text
    assert same_graph(round_trip(s), s)


def test_scalar_attributes_print_as_literals_only_when_exact():
    s = sym.loads('input x; y = BatchNorm(x, eps="0.00002", momentum=0.9, fix_gamma=False);'
                  'z = Pooling(y, kernel="(2,2)", pool_type="max"); output z;')
    text = sym.dumps(s)
    assert 'eps="0.00002", momentum=0.9, fix_gamma=False' in text
    assert 'kernel="(2,2)"' in text
    assert same_graph(round_trip(s), s)


def test_hidden_outputs_cannot_be_printed():
    s = sym.loads("input x; y = BatchNorm(x); output y;")
    joint = s.gradient(["x"])
    with pytest.raises(SymbolError, match="hidden output"):
        sym.dumps(sym.Symbol(joint.graph.outputs))
