"""Erlang term text, as `file:consult/1` reads it: the format of .rel, relup and appup files.

`consult(text)` returns the dot-terminated terms of a file, in the Python types of `terms.py`
(the same mapping as the distribution codec), with one difference: a "string" literal becomes a
Python `str`, since the text says which literals were strings (`etf.py` gets a list of ints).

    atom / 'quoted atom'    Atom; `true`/`false` become True/False
    123, 16#ff, 1_000, $a   int            1.5, 2.0e3      float
    "string" "joined"       str            <<"bin", 1>>    bytes (`/utf8` segments allowed)
    {a, b}  [a, b]          tuple, list    [a | b]         ImproperList
    #{k => v}               dict (ErlMap when a key is unhashable)

Anything else (variables, funs, records, expressions) is a TermSyntaxError naming the line and
column, as is nesting deeper than MAX_DEPTH: the files come from release tarballs, so a
hostile one must fail cleanly rather than exhaust the stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from deployex_actors.beam.terms import Atom, ErlMap, ImproperList
from deployex_actors.errors import TermSyntaxError

MAX_DEPTH = 100

_TOKEN_RE = re.compile(
    r"""
      (?P<space>(?:\s+|%[^\n]*)+)
    | (?P<float>\d+(?:_\d+)*\.\d+(?:_\d+)*(?:[eE][+-]?\d+)?)
    | (?P<based>\d+\#[0-9A-Za-z]+(?:_[0-9A-Za-z]+)*)
    | (?P<int>\d+(?:_\d+)*)
    | (?P<atom>[a-z][A-Za-z0-9_@]*)
    | (?P<var>[A-Z_][A-Za-z0-9_@]*)
    | (?P<quoted>'(?:[^'\\]|\\.)*')
    | (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<char>\$(?:\\(?:[0-7]{1,3}|x[0-9A-Fa-f]{2}|x\{[0-9A-Fa-f]+\}|\^.|.)|.))
    | (?P<end>\.(?=\s|%|$))
    | (?P<punct>\#\{|<<|>>|=>|[{}\[\](),|/+-])
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPE_RE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]{2})|x\{([0-9A-Fa-f]+)\}|\^(.)|(.))", re.S)
_SIMPLE_ESCAPES = {
    "b": "\b",
    "d": "\x7f",
    "e": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "s": " ",
    "t": "\t",
    "v": "\v",
}
_BOOLEANS = {"true": True, "false": False}
_NUMBERS = ("int", "float", "based", "char")


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    at: int  # offset in the source


def consult(source: str | bytes) -> list[Any]:
    """The terms of an Erlang term file, each ended by a dot; TermSyntaxError when it is not one."""
    text = _decode(source) if isinstance(source, bytes) else source
    return _Parser(text).terms()


def _decode(data: bytes) -> str:
    # OTP reads term files as UTF-8 unless they say otherwise; older ones were Latin-1.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _unescape(body: str) -> str:
    def one(match: re.Match[str]) -> str:
        octal, hex2, hex_any, control, plain = match.groups()
        if octal or hex2 or hex_any:
            return chr(int(octal, 8) if octal else int(hex2 or hex_any, 16))
        if control:
            return chr(ord(control) & 0x1F)
        return _SIMPLE_ESCAPES.get(plain, plain)

    return _ESCAPE_RE.sub(one, body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._scan()
        self.pos = 0

    # -- tokens ------------------------------------------------------------------------------

    def _scan(self) -> list[_Token]:
        tokens, at = [], 0
        while at < len(self.text):
            match = _TOKEN_RE.match(self.text, at)
            if match is None:
                raise self._error(at, f"unexpected {self.text[at]!r}")
            kind = match.lastgroup or ""
            if kind == "var":
                raise self._error(at, f"variable {match.group()} in a term file")
            if kind != "space":
                tokens.append(_Token(kind, match.group(), at))
            at = match.end()
        return tokens

    def _error(self, at: int, problem: str) -> TermSyntaxError:
        line = self.text.count("\n", 0, at) + 1
        column = at - (self.text.rfind("\n", 0, at) + 1) + 1
        return TermSyntaxError(f"line {line}, column {column}: {problem}")

    def _peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self, what: str) -> _Token:
        token = self._peek()
        if token is None:
            raise self._error(len(self.text), f"the file ends where {what} was expected")
        self.pos += 1
        return token

    def _expect(self, text: str) -> None:
        token = self._next(repr(text))
        if token.text != text or token.kind not in ("punct", "end"):
            raise self._error(token.at, f"expected {text!r}, found {token.text!r}")

    def _accept(self, text: str) -> bool:
        token = self._peek()
        if token is not None and token.kind == "punct" and token.text == text:
            self.pos += 1
            return True
        return False

    # -- terms -------------------------------------------------------------------------------

    def terms(self) -> list[Any]:
        found = []
        while self._peek() is not None:
            found.append(self._term(0))
            token = self._next("'.' after a term")
            if token.kind != "end":
                raise self._error(token.at, f"expected '.' after a term, found {token.text!r}")
        return found

    def _term(self, depth: int) -> Any:
        token = self._next("a term")
        if depth > MAX_DEPTH:
            raise self._error(token.at, f"terms nested deeper than {MAX_DEPTH} levels")
        kind, text = token.kind, token.text
        if kind == "atom":
            return _BOOLEANS.get(text, Atom(text))
        if kind == "quoted":
            return Atom(_unescape(text[1:-1]))
        if kind == "string":
            return self._strings(_unescape(text[1:-1]))
        if kind in _NUMBERS:
            return self._number(token)
        if kind == "punct" and text in ("-", "+"):
            return self._signed(token)
        if kind == "punct" and text in _OPENERS:
            return _OPENERS[text](self, depth + 1)
        raise self._error(token.at, f"unexpected {text!r}")

    def _strings(self, first: str) -> str:
        parts = [first]
        while (token := self._peek()) is not None and token.kind == "string":
            parts.append(_unescape(token.text[1:-1]))
            self.pos += 1
        return "".join(parts)

    def _signed(self, sign: _Token) -> int | float:
        token = self._next("a number")
        if token.kind not in _NUMBERS:
            raise self._error(token.at, f"expected a number after {sign.text!r}")
        value = self._number(token)
        return -value if sign.text == "-" else value

    def _number(self, token: _Token) -> int | float:
        try:
            return _number(token.kind, token.text)
        except ValueError as e:  # 2#9, 99#1, a float too large
            raise self._error(token.at, f"{token.text!r} is not a number: {e}") from None

    def _items(self, close: str, depth: int) -> list[Any]:
        items: list[Any] = []
        if self._accept(close):
            return items
        while True:
            items.append(self._term(depth))
            if not self._accept(","):
                return items

    def _tuple(self, depth: int) -> tuple[Any, ...]:
        items = self._items("}", depth)
        if items:
            self._expect("}")
        return tuple(items)

    def _list(self, depth: int) -> list[Any] | ImproperList:
        items = self._items("]", depth)
        if not items:
            return items
        if self._accept("|"):
            tail = self._term(depth)
            self._expect("]")
            return _cons(items, tail)
        self._expect("]")
        return items

    def _map(self, depth: int) -> dict[Any, Any] | ErlMap:
        pairs: list[tuple[Any, Any]] = []
        if not self._accept("}"):
            while True:
                key = self._term(depth)
                self._expect("=>")
                pairs.append((key, self._term(depth)))
                if not self._accept(","):
                    break
            self._expect("}")
        try:
            return dict(pairs)
        except TypeError:
            return ErlMap(tuple(pairs))

    def _binary(self, depth: int) -> bytes:
        data = bytearray()
        if self._accept(">>"):
            return bytes(data)
        while True:
            token = self._next("a binary segment")
            if token.kind == "string":
                value: Any = self._strings(_unescape(token.text[1:-1]))
            elif token.kind in ("int", "based", "char"):
                value = self._number(token)
            else:
                raise self._error(token.at, f"unsupported binary segment {token.text!r}")
            data += self._segment(value)
            if not self._accept(","):
                break
        self._expect(">>")
        return bytes(data)

    def _segment(self, value: str | int) -> bytes:
        text = value if isinstance(value, str) else chr(value)
        if self._accept("/"):
            token = self._next("a segment type")
            if token.text != "utf8":
                raise self._error(token.at, f"unsupported binary segment type {token.text!r}")
            return text.encode("utf-8")
        # Without a type each character is one byte, truncated to 8 bits, as Erlang does.
        return bytes(ord(c) & 0xFF for c in text)


def _cons(items: list[Any], tail: Any) -> list[Any] | ImproperList:
    """`[items | tail]`: a proper list when the tail is one."""
    if isinstance(tail, list):
        return [*items, *tail]
    if isinstance(tail, ImproperList):
        return ImproperList((*items, *tail.items), tail.tail)
    if tail == "":  # "" is the empty list
        return items
    return ImproperList(tuple(items), tail)


def _number(kind: str, text: str) -> int | float:
    text = text.replace("_", "")
    if kind == "float":
        return float(text)
    if kind == "based":
        base, digits = text.split("#", 1)
        return int(digits, int(base))
    if kind == "char":
        body = text[1:]
        return ord(_unescape(body) if body.startswith("\\") else body)
    return int(text)


_OPENERS = {
    "{": _Parser._tuple,
    "[": _Parser._list,
    "#{": _Parser._map,
    "<<": _Parser._binary,
}
