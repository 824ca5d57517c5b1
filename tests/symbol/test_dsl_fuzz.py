"""Fuzzing the network language: mutated example files never raise anything but SymbolError.

Each case takes one of examples/*.sym, applies one mutation (delete, duplicate, swap or replace
a token; insert random bytes) and loads it with small parameter values, then infers shapes. A
user mistake must come back as DslError (or another SymbolError); any other exception -- a
KeyError, a RecursionError, an AssertionError -- is a bug. 6 x 550 = 3300 cases.
"""
from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symbol as sym
from symbol import SymbolError, dsl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SMALL = {  # keep every case fast: tiny loops and layers
    "mlp.sym": {"hidden": (4, 3), "input_dim": 5, "batch": 2},
    "resnet.sym": {"units": (1, 1), "filter_list": (4, 8, 16), "image_shape": (3, 8, 8),
                   "batch": 1, "num_classes": 3},
    "lstm.sym": {"steps": 2, "layers": 2, "hidden": 4, "input_size": 3, "num_label": 5,
                 "batch": 2},
    "inception.sym": {"blocks": ((2, 2, 2, 2, 2, 2),), "image_size": 8, "batch": 1,
                      "num_classes": 3},
    "densenet.sym": {"blocks": (2, 2), "growth": 2, "stem": 4, "bn_size": 2, "image": (3, 8, 8),
                     "batch": 1, "num_classes": 3},
    "gru.sym": {"steps": 2, "layers": 2, "hidden": 4, "input_size": 3, "num_label": 5,
                "batch": 2},
}
TEXTS = {name: (EXAMPLES / name).read_text() for name in SMALL}
TOKENS = {name: [(t.start_pos, t.end_pos) for t in dsl._parser().lex(text)]
          for name, text in TEXTS.items()}
# tests/test_layering.py re-runs tests/symbol with torch blocked to check imports; a small
# sample is enough there (the full 3300 cases run in the normal session).
CASES = 40 if "torch" in sys.modules and sys.modules["torch"] is None else 550
SETTINGS = settings(max_examples=CASES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def mutated(draw, name: str) -> str:
    text, spans = TEXTS[name], TOKENS[name]
    i = draw(st.integers(0, len(spans) - 1))
    a, b = spans[i]
    kind = draw(st.sampled_from(["delete", "duplicate", "swap", "replace", "bytes"]))
    if kind == "delete":
        return text[:a] + text[b:]
    if kind == "duplicate":
        return text[:b] + " " + text[a:b] + text[b:]
    if kind == "swap":
        j = draw(st.integers(0, len(spans) - 1))
        (a, b), (c, d) = sorted([spans[i], spans[j]])
        if c < b:
            return text
        return text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]
    if kind == "replace":
        c, d = spans[draw(st.integers(0, len(spans) - 1))]
        return text[:a] + text[c:d] + text[b:]
    noise = draw(st.binary(min_size=1, max_size=8)).decode("latin-1")
    pos = draw(st.integers(0, len(text)))
    return text[:pos] + noise + text[pos:]


def load_mutant(name: str, text: str) -> None:
    try:
        net = sym.loads(text, SMALL[name], filename=name)
        net.infer_shape_partial()
    except SymbolError:
        pass


@SETTINGS
@given(mutated("mlp.sym"))
def test_fuzz_mlp(text):
    load_mutant("mlp.sym", text)


@SETTINGS
@given(mutated("resnet.sym"))
def test_fuzz_resnet(text):
    load_mutant("resnet.sym", text)


@SETTINGS
@given(mutated("lstm.sym"))
def test_fuzz_lstm(text):
    load_mutant("lstm.sym", text)


@SETTINGS
@given(mutated("inception.sym"))
def test_fuzz_inception(text):
    load_mutant("inception.sym", text)


@SETTINGS
@given(mutated("densenet.sym"))
def test_fuzz_densenet(text):
    load_mutant("densenet.sym", text)


@SETTINGS
@given(mutated("gru.sym"))
def test_fuzz_gru(text):
    load_mutant("gru.sym", text)


def test_unmutated_examples_load_with_the_small_parameters():
    for name, text in TEXTS.items():
        sym.loads(text, SMALL[name], filename=name).infer_shape()
