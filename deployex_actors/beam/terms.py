"""Python values for Erlang terms that have no natural Python type.

Mapping used by the codec (`etf.py`):

    atom            Atom (a str subclass); `true`/`false` decode to True/False
    integer         int                   float        float
    binary          bytes                 bitstring    BitString
    list            list                  improper     ImproperList
    "string"        list of ints (Erlang's STRING_EXT); `text()` turns it into str
    tuple           tuple                 map          dict (ErlMap when a key is unhashable)
    pid / port / reference                Pid / Port / Reference
    fun M:F/A       ExportFun             closure      OpaqueFun (raw bytes, re-encodable)

Encoding also accepts `str` (sent as a UTF-8 binary, as Elixir strings are) and `None` (sent as
the atom `undefined`); both decode to their Erlang form, so they do not round-trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Atom(str):
    """An Erlang atom. Compares equal to the plain string of its name."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Atom({str.__repr__(self)})"


@dataclass(frozen=True)
class BitString:
    """A binary whose last byte holds only `bits` (1..8) significant high bits."""

    data: bytes
    bits: int


@dataclass(frozen=True)
class ImproperList:
    """`[a, b | tail]`: `items` then a non-list `tail`."""

    items: tuple[Any, ...]
    tail: Any


@dataclass(frozen=True)
class ErlMap:
    """A map with a key Python cannot hash (a list or a map), kept as ordered pairs."""

    pairs: tuple[tuple[Any, Any], ...]


@dataclass(frozen=True)
class Pid:
    node: Atom
    id: int
    serial: int
    creation: int

    def __str__(self) -> str:
        return f"<{self.node}.{self.id}.{self.serial}>"


@dataclass(frozen=True)
class Port:
    node: Atom
    id: int
    creation: int


@dataclass(frozen=True)
class Reference:
    node: Atom
    creation: int
    ids: tuple[int, ...]


@dataclass(frozen=True)
class ExportFun:
    """`fun Module:Function/Arity`: callable on any node that has the module."""

    module: Atom
    function: Atom
    arity: int


@dataclass(frozen=True)
class OpaqueFun:
    """A closure: meaningless outside the node that made it, kept as its encoded bytes."""

    encoded: bytes


def text(value: Any) -> str:
    """An Erlang string (list of code points), binary or atom as a Python str."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list) and all(isinstance(c, int) for c in value):
        return "".join(map(chr, value))
    raise TypeError(f"not text: {value!r}")
