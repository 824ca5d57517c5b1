"""docs/dsl.md cannot drift from the language.

* its grammar section is ``symbol/grammar/net.lark`` verbatim;
* every ``sym`` code block parses, and those with an ``output`` statement build a network;
* every ``sym-error`` block fails with exactly the report shown in the ``text`` block after it;
* every keyword, operator token and builtin of the language is named in the prose.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import symbol as sym
from symbol import DslError, dsl
from symbol.dsl_print import KEYWORDS
from symbol.dsl_values import BUILTINS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "dsl.md").read_text()
BLOCKS = re.findall(r"^```([\w-]*)\n(.*?)^```", DOC, re.S | re.M)
PROSE = re.sub(r"^```lark\n.*?^```", "", DOC, flags=re.S | re.M)
GRAMMAR = dsl.grammar_text()
RULES = re.sub(r"^(//|[A-Z_]+[.0-9]*:|%).*$", "", GRAMMAR, flags=re.M)  # no comments, terminals
LITERALS = sorted(set(re.findall(r'"([^"\s]+)"', RULES)))


def test_grammar_section_is_the_grammar_file_verbatim():
    assert [body for lang, body in BLOCKS if lang == "lark"] == [GRAMMAR]


@pytest.mark.parametrize("body", [b for lang, b in BLOCKS if lang == "sym"])
def test_every_sym_block_parses_and_complete_ones_build(body):
    dsl.parse(body, "doc.sym")
    if re.search(r"^\s*output\b", body, re.M):
        assert sym.loads(body, filename="doc.sym").list_outputs()


ERRORS = [(body, BLOCKS[i + 1]) for i, (lang, body) in enumerate(BLOCKS) if lang == "sym-error"]


@pytest.mark.parametrize("body, shown", ERRORS)
def test_every_error_block_shows_the_exact_report(body, shown):
    assert shown[0] == "text"
    with pytest.raises(DslError) as info:
        sym.loads(body, filename="net.sym")
    assert info.value.report + "\n" == shown[1]


@pytest.mark.parametrize("literal", LITERALS)
def test_every_token_of_the_grammar_is_named_in_the_prose(literal):
    assert f"`{literal}`" in PROSE or re.search(rf"`[^`\n]*{re.escape(literal)}[^`\n]*`", PROSE)


def test_keywords_are_the_alphabetic_tokens_of_the_grammar():
    assert KEYWORDS == {t for t in LITERALS if t.isalpha()}
    for kw in KEYWORDS:
        assert f"`{kw}`" in PROSE, kw


@pytest.mark.parametrize("name", [*BUILTINS, "Variable"])
def test_every_builtin_is_documented(name):
    assert f"`{name}(" in PROSE


@pytest.mark.parametrize("rule", sorted(set(re.findall(r"^[?!]?(\w+_stmt):", GRAMMAR, re.M))))
def test_every_statement_has_a_section(rule):
    keyword = {"assign_stmt": "Assignment"}.get(rule, f"`{rule[:-5]}`")
    assert re.search(rf"^### .*{re.escape(keyword)}", PROSE, re.M), rule
