"""Erlang term text (`file:consult`): real release files, every literal form, and refusals."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployex_actors.beam import etf
from deployex_actors.beam.consult import MAX_DEPTH, consult
from deployex_actors.beam.terms import Atom, ErlMap, ImproperList
from deployex_actors.errors import TermSyntaxError

OTP_APPUPS = sorted(Path("/usr/lib/erlang/lib").glob("*/ebin/*.appup"))

RELUP = """%% coding: utf-8
{"0.2.0",
 [{"0.1.0",[],
   [{load_object_code,{myerlangapp,"0.2.0",[myerlangapp_server]}},
    point_of_no_return,
    {suspend,[myerlangapp_server]},
    {load,{myerlangapp_server,brutal_purge,brutal_purge}},
    {code_change,up,[{myerlangapp_server,[]}]},
    {resume,[myerlangapp_server]}]}],
 [{"0.1.0",[],[point_of_no_return]}]}.
"""


def test_a_relup_reads_as_nested_tuples_lists_atoms_and_strings() -> None:
    [relup] = consult(RELUP)
    to, [(from_vsn, descr, script)], _down = relup
    assert (to, from_vsn, descr) == ("0.2.0", "0.1.0", [])
    assert script[0] == (
        Atom("load_object_code"),
        (Atom("myerlangapp"), "0.2.0", [Atom("myerlangapp_server")]),
    )
    assert script[1] == Atom("point_of_no_return") and isinstance(script[1], Atom)


def test_an_appup_with_regex_versions_reads_them_as_binaries() -> None:
    text = '{"4.2", [{<<"^4\\\\.0$">>, [restart_new_emulator]}], [{<<".*">>, []}]}.'
    assert consult(text) == [("4.2", [(b"^4\\.0$", [Atom("restart_new_emulator")])], [(b".*", [])])]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("'Elixir.My.Server'.", Atom("Elixir.My.Server")),
        ("'it''s'.", None),  # two quoted atoms: not one term
        ("'a\\'b\\n'.", Atom("a'b\n")),
        ("true. ", True),
        ("false.", False),
        ('"con" "cat" % a comment\n.', "concat"),
        ('"\\x{1F600}\\101\\^a\\s".', "\U0001f600A\x01 "),
        ('"".', ""),
        ("[].", []),
        ("{}.", ()),
        ("#{}.", {}),
        ("<<>>.", b""),
        ("-12.", -12),
        ("+7.", 7),
        ("1_000_000.", 1_000_000),
        ("16#ff.", 255),
        ("2#1010.", 10),
        ("-1.5e3.", -1500.0),
        ("2.0.", 2.0),
        ("$a.", 97),
        ("$\\n.", 10),
        ("[1, 2 | 3].", ImproperList((1, 2), 3)),
        ("[1 | [2, 3]].", [1, 2, 3]),
        ('[1 | ""].', [1]),
        ('#{a => 1, <<"k">> => [x]}.', {Atom("a"): 1, b"k": [Atom("x")]}),
        ("#{[1] => 2}.", ErlMap((([1], 2),))),
        ('<<"ab", 1, $c, 256>>.', b"ab\x01c\x00"),
        ('<<"é"/utf8, "é">>.', b"\xc3\xa9\xe9"),
        ("x@y_Z1.", Atom("x@y_Z1")),
    ],
)
def test_every_literal_form_of_a_term_file(text: str, expected: Any) -> None:
    if expected is None:
        with pytest.raises(TermSyntaxError):
            consult(text)
    else:
        assert consult(text) == [expected]


def test_several_terms_each_ended_by_a_dot() -> None:
    assert consult("a.\n{b, 1}.\n%% trailing comment\n") == [Atom("a"), (Atom("b"), 1)]


def test_an_empty_file_has_no_terms() -> None:
    assert consult("%% nothing here\n\n") == []


def test_latin1_bytes_are_read_as_latin1_utf8_as_utf8() -> None:
    assert consult('"caf\xe9".'.encode("latin-1")) == ["café"]
    assert consult('"café".'.encode()) == ["café"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{a, b", "line 1, column 6: the file ends where '}' was expected"),
        ("{a, b}", "the file ends where '.' after a term was expected"),
        ("{a, b} c.", "line 1, column 8: expected '.' after a term, found 'c'"),
        ("\n\n  [Var].", "line 3, column 4: variable Var in a term file"),
        ("fun() -> ok end.", "line 1, column 8: unexpected '>'"),
        ("#rec{a = 1}.", "unexpected '#'"),
        ("<<X:8>>.", "variable X"),
        ("<<1/binary>>.", "unsupported binary segment type 'binary'"),
        ("<<a>>.", "unsupported binary segment 'a'"),
        ("2#102.", "'2#102' is not a number"),
        ("- a.", "expected a number after '-'"),
        ("{a,}.", "unexpected '}'"),
        ("#{a, b}.", "expected '=>', found ','"),
        ("a.b.", "unexpected '.'"),
    ],
)
def test_what_is_not_a_term_file_is_refused_with_line_and_column(text: str, problem: str) -> None:
    with pytest.raises(TermSyntaxError, match=re.escape(problem)):
        consult(text)


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    deep = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "."
    with pytest.raises(TermSyntaxError, match=f"nested deeper than {MAX_DEPTH}"):
        consult(deep)
    shallow = "[" * MAX_DEPTH + "]" * MAX_DEPTH + "."
    assert consult(shallow)


# -- written by a tiny formatter, read back ---------------------------------------------------

atoms = st.from_regex(r"[a-z][a-zA-Z0-9_@]{0,10}", fullmatch=True).filter(
    lambda s: s not in ("true", "false")
)
quoted_atoms = st.text(max_size=12)
strings = st.text(max_size=20)
scalars = st.one_of(
    atoms.map(Atom),
    quoted_atoms.map(Atom),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
    st.binary(max_size=12),
)
terms = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.lists(children, max_size=5).map(tuple)
    ),
    max_leaves=25,
)


def erlang_text(term: Any) -> str:
    """How Erlang's ~p would write `term` (enough of it for the property below)."""
    if isinstance(term, bool):
        return "true" if term else "false"
    if isinstance(term, Atom):
        return "'" + "".join(_escape(c, "'") for c in term) + "'"
    if isinstance(term, str):
        return '"' + "".join(_escape(c, '"') for c in term) + '"'
    if isinstance(term, float):  # Erlang's floats always have a dot: 1.0e-5, never 1e-05
        mantissa, e, exponent = repr(term).partition("e")
        return (mantissa if "." in mantissa else mantissa + ".0") + e + exponent
    if isinstance(term, int):
        return repr(term)
    if isinstance(term, bytes):
        return "<<" + ",".join(str(b) for b in term) + ">>"
    inner = ",".join(erlang_text(t) for t in term)
    return "{" + inner + "}" if isinstance(term, tuple) else "[" + inner + "]"


def _escape(char: str, quote: str) -> str:
    if char in (quote, "\\"):
        return "\\" + char
    return char if char.isprintable() else f"\\x{{{ord(char):X}}}"


@given(terms)
def test_what_a_formatter_writes_reads_back_the_same(term: Any) -> None:
    text = erlang_text(term) + ".\n"
    [read] = consult(text)
    # "" is [] in Erlang; the parser keeps a literal "" as the empty str
    assert read == term


# -- agreement with Erlang's own file:consult --------------------------------------------------


def as_etf(term: Any) -> Any:
    """Our reading in the distribution codec's terms: a string is a list of code points there."""
    if isinstance(term, str) and not isinstance(term, Atom):
        return [ord(c) for c in term]
    if isinstance(term, list):
        return [as_etf(t) for t in term]
    if isinstance(term, tuple):
        return tuple(as_etf(t) for t in term)
    return term


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("erl") is None or not OTP_APPUPS, reason="needs Erlang/OTP")
def test_the_otp_appups_read_as_erlang_reads_them() -> None:
    files = ",".join(f'"{p}"' for p in OTP_APPUPS)
    program = (
        f'[io:format("~s~n", [base64:encode(term_to_binary(element(2, file:consult(F))))])'
        f" || F <- [{files}]], halt()."
    )
    result = subprocess.run(
        ["erl", "-noshell", "-eval", program], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert len(lines) == len(OTP_APPUPS)
    for path, line in zip(OTP_APPUPS, lines, strict=True):
        assert as_etf(consult(path.read_bytes())) == etf.decode(base64.b64decode(line)), path
