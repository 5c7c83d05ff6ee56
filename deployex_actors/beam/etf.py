"""External Term Format: the bytes Erlang nodes exchange (`term_to_binary/1`).

`encode(term)` and `decode(data)` work on whole terms with the version byte 131; the distribution
layer uses `encode_body` / `Decoder` for terms packed back to back in one message. Python types
are described in `terms.py`.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

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
)

VERSION = 131
COMPRESSED = 80
NEW_FLOAT = 70
BIT_BINARY = 77
NEW_PID = 88
NEW_PORT = 89
NEWER_REFERENCE = 90
SMALL_INTEGER = 97
INTEGER = 98
FLOAT = 99
ATOM = 100
REFERENCE = 101
PORT = 102
PID = 103
SMALL_TUPLE = 104
LARGE_TUPLE = 105
NIL = 106
STRING = 107
LIST = 108
BINARY = 109
SMALL_BIG = 110
LARGE_BIG = 111
NEW_FUN = 112
EXPORT = 113
NEW_REFERENCE = 114
SMALL_ATOM = 115
MAP = 116
FUN = 117
ATOM_UTF8 = 118
SMALL_ATOM_UTF8 = 119
V4_PORT = 120

_INT32 = struct.Struct(">i")
_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_F64 = struct.Struct(">d")


class EtfError(ValueError):
    """Bytes that are not a valid term, or a Python value that has no Erlang form."""


# -- encoding ------------------------------------------------------------------------------------


def encode(term: Any) -> bytes:
    """`term_to_binary(Term)`."""
    out = bytearray([VERSION])
    _encode(term, out)
    return bytes(out)


def encode_body(term: Any) -> bytes:
    """The term without the version byte (as terms follow each other in a dist message)."""
    out = bytearray()
    _encode(term, out)
    return bytes(out)


def _encode(term: Any, out: bytearray) -> None:
    if term is True or term is False:
        _encode_atom("true" if term else "false", out)
    elif term is None:
        _encode_atom("undefined", out)
    elif isinstance(term, Atom):
        _encode_atom(term, out)
    elif isinstance(term, int):
        _encode_int(term, out)
    elif isinstance(term, float):
        out.append(NEW_FLOAT)
        out += _F64.pack(term)
    elif isinstance(term, bytes | bytearray | memoryview):
        data = bytes(term)
        out.append(BINARY)
        out += _U32.pack(len(data)) + data
    elif isinstance(term, str):
        _encode(term.encode("utf-8"), out)
    elif isinstance(term, tuple):
        _encode_tuple(term, out)
    elif isinstance(term, list):
        _encode_list(term, None, out)
    elif isinstance(term, dict):
        out.append(MAP)
        out += _U32.pack(len(term))
        for key, value in term.items():
            _encode(key, out)
            _encode(value, out)
    else:
        _encode_record(term, out)


def _encode_record(term: Any, out: bytearray) -> None:
    if isinstance(term, ImproperList):
        _encode_list(list(term.items), term.tail, out)
    elif isinstance(term, BitString):
        if not 1 <= term.bits <= 8 or not term.data:
            raise EtfError(f"bitstring needs data and 1..8 bits in its last byte: {term!r}")
        if term.bits == 8:  # a whole last byte: that is a plain binary
            _encode(term.data, out)
            return
        out.append(BIT_BINARY)
        out += _U32.pack(len(term.data)) + _U8.pack(term.bits) + term.data
    elif isinstance(term, ErlMap):
        out.append(MAP)
        out += _U32.pack(len(term.pairs))
        for key, value in term.pairs:
            _encode(key, out)
            _encode(value, out)
    elif isinstance(term, Pid):
        out.append(NEW_PID)
        _encode_atom(term.node, out)
        out += _U32.pack(term.id) + _U32.pack(term.serial) + _U32.pack(term.creation)
    elif isinstance(term, Port):
        if term.id > 0xFFFFFFFF:
            out.append(V4_PORT)
            _encode_atom(term.node, out)
            out += _U64.pack(term.id) + _U32.pack(term.creation)
        else:
            out.append(NEW_PORT)
            _encode_atom(term.node, out)
            out += _U32.pack(term.id) + _U32.pack(term.creation)
    elif isinstance(term, Reference):
        out.append(NEWER_REFERENCE)
        out += _U16.pack(len(term.ids))
        _encode_atom(term.node, out)
        out += _U32.pack(term.creation)
        for part in term.ids:
            out += _U32.pack(part)
    elif isinstance(term, ExportFun):
        out.append(EXPORT)
        _encode_atom(term.module, out)
        _encode_atom(term.function, out)
        _encode_int(term.arity, out)
    elif isinstance(term, OpaqueFun):
        out += term.encoded
    else:
        raise EtfError(f"no Erlang form for {type(term).__name__}: {term!r}")


def _encode_atom(name: str, out: bytearray) -> None:
    data = name.encode("utf-8")
    if len(data) > 255 * 4 or len(name) > 255:
        raise EtfError(f"atom longer than 255 characters: {name[:40]!r}...")
    if len(data) < 256:
        out.append(SMALL_ATOM_UTF8)
        out += _U8.pack(len(data))
    else:
        out.append(ATOM_UTF8)
        out += _U16.pack(len(data))
    out += data


def _encode_int(value: int, out: bytearray) -> None:
    if 0 <= value <= 255:
        out.append(SMALL_INTEGER)
        out.append(value)
    elif -(2**31) <= value < 2**31:
        out.append(INTEGER)
        out += _INT32.pack(value)
    else:
        magnitude = abs(value)
        digits = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "little")
        if len(digits) < 256:
            out.append(SMALL_BIG)
            out += _U8.pack(len(digits))
        else:
            out.append(LARGE_BIG)
            out += _U32.pack(len(digits))
        out.append(1 if value < 0 else 0)
        out += digits


def _encode_tuple(items: tuple[Any, ...], out: bytearray) -> None:
    if len(items) < 256:
        out.append(SMALL_TUPLE)
        out += _U8.pack(len(items))
    else:
        out.append(LARGE_TUPLE)
        out += _U32.pack(len(items))
    for item in items:
        _encode(item, out)


def _encode_list(items: list[Any], tail: Any, out: bytearray) -> None:
    if not items and tail is None:
        out.append(NIL)
        return
    is_bytes = tail is None and len(items) <= 0xFFFF
    if is_bytes and all(type(i) is int and 0 <= i <= 255 for i in items):
        out.append(STRING)  # as Erlang encodes short lists of bytes
        out += _U16.pack(len(items)) + bytes(items)
        return
    out.append(LIST)
    out += _U32.pack(len(items))
    for item in items:
        _encode(item, out)
    if tail is None:
        out.append(NIL)
    else:
        _encode(tail, out)


# -- decoding ------------------------------------------------------------------------------------


def decode(data: bytes) -> Any:
    """`binary_to_term(Data)`; EtfError if the bytes are not exactly one term."""
    decoder = Decoder(data)
    term = decoder.term_with_version()
    if decoder.pos != len(decoder.data):
        raise EtfError(f"{len(decoder.data) - decoder.pos} bytes left after the term")
    return term


class Decoder:
    """Reads terms one after another from a buffer."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def term_with_version(self) -> Any:
        if self._u8() != VERSION:
            raise EtfError("not an external term (missing version byte 131)")
        if self.data[self.pos : self.pos + 1] == bytes([COMPRESSED]):
            self.pos += 1
            size = self._u32()
            try:
                inner = zlib.decompress(self._take(len(self.data) - self.pos))
            except zlib.error as exc:
                raise EtfError(f"bad compressed term: {exc}") from None
            if len(inner) != size:
                raise EtfError("compressed term has the wrong size")
            return Decoder(inner).term()
        return self.term()

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise EtfError("term is truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def _u8(self) -> int:
        return self._take(1)[0]

    def _u16(self) -> int:
        return _U16.unpack(self._take(2))[0]

    def _u32(self) -> int:
        return _U32.unpack(self._take(4))[0]

    def term(self) -> Any:
        """The next term; EtfError if the bytes end inside it."""
        try:
            return self._term()
        except (IndexError, struct.error):
            raise EtfError("term is truncated") from None

    def _term(self) -> Any:
        # The common tags read the buffer in place (a Monitor decodes a reply every second:
        # one method call and one slice per byte made decoding most of a sample's work); a
        # read past the end raises IndexError or struct.error, which `term` reports.
        data, pos = self.data, self.pos
        tag = data[pos]
        if tag == SMALL_INTEGER:
            self.pos = pos + 2
            return data[pos + 1]
        if tag == INTEGER:
            self.pos = pos + 5
            return _INT32.unpack_from(data, pos + 1)[0]
        if tag in (SMALL_ATOM_UTF8, SMALL_ATOM):
            self.pos = pos + 2
            return self._atom_body(data[pos + 1], tag == SMALL_ATOM_UTF8)
        # Tuples from lists, never from generators: tuple(<generator>) allocates ten slots and
        # shrinks them, and each shrunk tuple ends on CPython's free list for its size (up to
        # 2000 per size), so a link's replies kept growing its process for ~2000 calls.
        if tag == SMALL_TUPLE:
            self.pos = pos + 2
            return tuple([self._term() for _ in range(data[pos + 1])])
        if tag == NIL:
            self.pos = pos + 1
            return []
        if tag == LIST:
            self.pos = pos + 5
            return self._list(_U32.unpack_from(data, pos + 1)[0])
        self.pos = pos + 1
        return self._rare(tag)

    def _rare(self, tag: int) -> Any:
        if tag in (ATOM_UTF8, ATOM):
            return self._atom_body(self._u16(), tag == ATOM_UTF8)
        if tag == LARGE_TUPLE:
            return tuple([self._term() for _ in range(self._u32())])
        if tag == STRING:
            return list(self._take(self._u16()))
        if tag == BINARY:
            return self._take(self._u32())
        if tag == MAP:
            return self._map()
        if tag == NEW_FLOAT:
            return _F64.unpack(self._take(8))[0]
        if tag == FLOAT:
            return float(self._take(31).split(b"\0", 1)[0])
        if tag in (SMALL_BIG, LARGE_BIG):
            size = self._u8() if tag == SMALL_BIG else self._u32()
            sign = self._u8()
            value = int.from_bytes(self._take(size), "little")
            return -value if sign else value
        if tag == BIT_BINARY:
            size = self._u32()
            bits = self._u8()
            data = self._take(size)
            return data if bits == 8 else BitString(data, bits)
        return self._identifier(tag)

    def _identifier(self, tag: int) -> Any:
        if tag in (NEW_PID, PID):
            node = self._atom()
            pid_id, serial = self._u32(), self._u32()
            creation = self._u32() if tag == NEW_PID else self._u8()
            return Pid(node, pid_id, serial, creation)
        if tag in (NEW_PORT, PORT, V4_PORT):
            node = self._atom()
            port_id = _U64.unpack(self._take(8))[0] if tag == V4_PORT else self._u32()
            creation = self._u8() if tag == PORT else self._u32()
            return Port(node, port_id, creation)
        if tag in (NEWER_REFERENCE, NEW_REFERENCE):
            count = self._u16()
            node = self._atom()
            creation = self._u32() if tag == NEWER_REFERENCE else self._u8()
            ids = struct.unpack(f">{count}I", self._take(4 * count))
            return Reference(node, creation, ids)
        if tag == REFERENCE:
            node = self._atom()
            ref_id = self._u32()
            return Reference(node, self._u8(), (ref_id,))
        if tag == EXPORT:
            return ExportFun(self._atom(), self._atom(), self._term())
        if tag == NEW_FUN:
            start = self.pos - 1
            size = self._u32()  # counts itself, not the tag
            self._take(size - 4)
            return OpaqueFun(bytes(self.data[start : self.pos]))
        raise EtfError(f"unknown term tag {tag} at byte {self.pos - 1}")

    def _atom(self) -> Any:
        atom = self._term()
        if not isinstance(atom, Atom | bool):
            raise EtfError(f"expected an atom at byte {self.pos}")
        return Atom("true" if atom is True else "false") if isinstance(atom, bool) else atom

    def _atom_body(self, size: int, utf8: bool) -> Any:
        name = self._take(size).decode("utf-8" if utf8 else "latin-1")
        if name == "true":
            return True
        if name == "false":
            return False
        return Atom(name)

    def _list(self, count: int) -> Any:
        items = [self._term() for _ in range(count)]
        tail = self._term()
        if tail == [] and isinstance(tail, list):
            return items
        return ImproperList(tuple(items), tail)

    def _map(self) -> Any:
        pairs = [(self._term(), self._term()) for _ in range(self._u32())]
        try:
            return dict(pairs)
        except TypeError:  # a list or map as key
            return ErlMap(tuple(pairs))
