"""External Term Format: round trips, and agreement with a real node for the same terms."""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployex_actors.beam import etf
from deployex_actors.beam.link import NodeLink, connect
from deployex_actors.beam.terms import (
    Atom,
    BitString,
    ErlMap,
    ExportFun,
    ImproperList,
    OpaqueFun,
    Pid,
    Port,
    Reference,
    text,
)
from tests.erl_nodes import erl_node

atoms = st.text(max_size=40).filter(lambda s: s not in ("true", "false")).map(Atom)
integers = st.integers(min_value=-(2**300), max_value=2**300)
floats = st.floats(allow_nan=False, allow_infinity=False)
bitstrings = st.builds(BitString, st.binary(min_size=1, max_size=20), st.integers(1, 7)).map(
    # Erlang keeps only the high `bits` of the last byte; the rest must be zero to compare equal.
    lambda b: BitString(b.data[:-1] + bytes([b.data[-1] & (0xFF << (8 - b.bits)) & 0xFF]), b.bits)
)
scalars = st.one_of(atoms, st.booleans(), integers, floats, st.binary(max_size=64), bitstrings)
keys = st.one_of(
    atoms, integers, st.binary(max_size=16)
)  # no floats/bools: Python merges 1/1.0/True


def _containers(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(children, max_size=6),
        st.lists(children, max_size=6).map(tuple),
        st.dictionaries(keys, children, max_size=5),
        st.builds(
            ImproperList,
            st.lists(children, min_size=1, max_size=4).map(tuple),
            st.one_of(atoms, integers, st.binary(max_size=8)),
        ),
    )


terms = st.recursive(scalars, _containers, max_leaves=25)


@given(terms)
def test_every_term_round_trips(term: object) -> None:
    assert etf.decode(etf.encode(term)) == term


def test_identifiers_and_funs_round_trip() -> None:
    node = Atom("n@h")
    for term in (
        Pid(node, 7, 0, 3),
        Port(node, 9, 3),
        Port(node, 2**40, 3),
        Reference(node, 3, (1, 2, 3)),
        ExportFun(Atom("erlang"), Atom("node"), 0),
        ErlMap(((1, 2), ([1], 3))),
    ):
        assert etf.decode(etf.encode(term)) == term


def test_python_str_travels_as_a_utf8_binary_and_none_as_undefined() -> None:
    assert etf.decode(etf.encode("héllo")) == "héllo".encode()
    assert etf.decode(etf.encode(None)) == Atom("undefined")


def test_compressed_terms_decode() -> None:
    body = etf.encode_body(list(range(1000)))
    data = bytes([131, 80]) + len(body).to_bytes(4, "big") + zlib.compress(body)
    assert etf.decode(data) == list(range(1000))


@pytest.mark.parametrize(
    "data", [b"", b"\x83", b"\x84a\x01", b"\x83m\x00\x00\x00\x05ab", b"\x83a\x01\x00", b"\x83\xff"]
)
def test_bad_bytes_are_a_clear_error(data: bytes) -> None:
    with pytest.raises(etf.EtfError):
        etf.decode(data)


def test_values_without_an_erlang_form_are_refused() -> None:
    with pytest.raises(etf.EtfError, match="no Erlang form"):
        etf.encode({1, 2})


# -- against a real node -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def link(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeLink]:
    with erl_node(tmp_path_factory.mktemp("erl")) as node, connect(node.node, node.cookie) as lnk:
        yield lnk


@pytest.mark.slow
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(term=terms)
def test_a_real_node_echoes_every_term_unchanged(link: NodeLink, term: object) -> None:
    # erlang:element(1, {T}) returns T: our encoding in, the node's encoding back out.
    assert link.rpc("erlang", "element", [1, (term,)]) == term


@pytest.mark.slow
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(term=terms)
def test_node_term_to_binary_decodes_to_the_same_term(link: NodeLink, term: object) -> None:
    for options in ([], [Atom("compressed")], [(Atom("minor_version"), 2)]):
        assert etf.decode(link.rpc("erlang", "term_to_binary", [term, options])) == term
    assert link.rpc("erlang", "binary_to_term", [etf.encode(term)]) == term


@pytest.mark.slow
def test_pids_ports_refs_and_funs_from_a_node_survive_the_trip_back(link: NodeLink) -> None:
    pid = link.rpc("erlang", "whereis", [Atom("rex")])
    assert isinstance(pid, Pid) and pid.node == link.node
    assert link.rpc("erlang", "is_process_alive", [pid]) is True
    ref = link.rpc("erlang", "make_ref", [])
    assert isinstance(ref, Reference)
    assert link.rpc("erlang", "is_reference", [ref]) is True
    port = link.rpc("erlang", "hd", [link.rpc("erlang", "ports", [])])
    assert isinstance(port, Port)
    assert link.rpc("erlang", "is_port", [port]) is True
    export = link.rpc("erlang", "make_fun", [Atom("erlang"), Atom("node"), 0])
    assert export == ExportFun(Atom("erlang"), Atom("node"), 0)
    # A closure made on the node: opaque here, intact when sent back.
    _ok, tokens, _end = link.rpc("erl_scan", "string", [list(b"fun(X) -> {X, X} end.")])
    _ok, exprs = link.rpc("erl_parse", "parse_exprs", [tokens])
    _value, closure, _bindings = link.rpc("erl_eval", "exprs", [exprs, []])
    assert isinstance(closure, OpaqueFun)
    assert link.rpc("erlang", "fun_info", [closure, Atom("arity")]) == (Atom("arity"), 1)
    assert text(link.rpc("erlang", "atom_to_list", [Atom("héllo")])) == "héllo"
