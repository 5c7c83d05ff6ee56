"""The pieces of an rpc over a link: its request encoded once (`Request`), and what waits for
its answer, a bare lock for a caller (`Reply`: a Future builds a Condition and a waiter lock per
wait) or a callback on the link's thread (`Callback`); and the statistics call a Monitor makes
every second (`STATS_CALL`, `STATS_AT_CALL`), one call each.
"""

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from deployex_actors.beam import etf
from deployex_actors.beam.terms import Atom, ExportFun, Reference

if TYPE_CHECKING:
    from deployex_actors.beam.link import NodeLink

log = logging.getLogger(__name__)

PASS_THROUGH = 112  # 'p': a message without atom cache header


class NodeStats(NamedTuple):
    """A node's resource usage, as the watchdog compares it with thresholds. A named tuple: one
    is made every second per replica, and a frozen dataclass sets its fields one by one."""

    process_count: int
    process_limit: int
    port_count: int
    port_limit: int
    atom_count: int
    atom_limit: int
    memory_total: int

    def as_dict(self) -> dict[str, int]:
        return dict(zip(self._fields, self, strict=True))


STAT_KEYS = ("process_count", "process_limit", "port_count", "port_limit")
STAT_KEYS += ("atom_count", "atom_limit")
# stats() in one call: lists:zipwith3(fun erlang:apply/3, Modules, Functions, Args) applies
# erlang:system_info/1 to each key and erlang:memory(total): export funs, valid on any node.
STATS_ARGS = [
    ExportFun(Atom("erlang"), Atom("apply"), 3),
    [Atom("erlang")] * (len(STAT_KEYS) + 1),
    [Atom("system_info")] * len(STAT_KEYS) + [Atom("memory")],
    [[Atom(key)] for key in STAT_KEYS] + [[Atom("total")]],
]
STATS_CALL = ("lists", "zipwith3", STATS_ARGS)
# stats_at(): the same after timer:sleep(Ms), in the same call: lists:zipwith(fun
# erlang:apply/2, [fun timer:sleep/1, fun lists:zipwith3/4], [[Ms], StatsArgs]) -> [ok, Stats]
SLEEP_MARK = 0x7EADBEEF  # stands for Ms in the encoded request (see _Request)
STATS_AT_CALL = (
    "lists",
    "zipwith",
    [
        ExportFun(Atom("erlang"), Atom("apply"), 2),
        [ExportFun(Atom("timer"), Atom("sleep"), 1), ExportFun(Atom("lists"), Atom("zipwith3"), 4)],
        [[SLEEP_MARK], STATS_ARGS],
    ],
)


class Reply:
    """One awaited reply of a synchronous call: a lock the I/O thread releases (a Future would
    build a Condition and a waiter lock per wait)."""

    __slots__ = ("_arrived", "_done", "error", "value")

    def __init__(self) -> None:
        self._arrived = threading.Lock()
        self._arrived.acquire()
        self.value: Any = None
        self.error: BaseException | None = None
        self._done = False

    def done(self) -> bool:
        return self._done

    def set_result(self, value: Any) -> None:
        self.value, self._done = value, True
        self._arrived.release()

    def set_exception(self, error: BaseException) -> None:
        self.error, self._done = error, True
        self._arrived.release()

    def wait(self, timeout: float) -> bool:
        return self._arrived.acquire(timeout=max(timeout, 0.0))


class Callback:
    """A reply handed to `on_reply(value)` on the I/O thread; `on_reply(None)` when the call
    failed (badrpc, timeout, link down)."""

    __slots__ = ("_done", "_on_reply")

    def __init__(self, on_reply: Callable[[Any], None]) -> None:
        self._on_reply = on_reply
        self._done = False

    def done(self) -> bool:
        return self._done

    def set_result(self, value: Any) -> None:
        bad = isinstance(value, tuple) and len(value) == 2 and value[0] == "badrpc"
        self._call(None if bad else value)

    def set_exception(self, error: BaseException) -> None:
        self._call(None)

    def _call(self, value: Any) -> None:
        self._done = True
        try:
            self._on_reply(value)
        except Exception:  # the caller's bug must not take the link down
            log.exception("a callback of an rpc failed")


class Request:
    """A call's frame encoded once, but for its reference and, when the call has one, an integer
    argument (`SLEEP_MARK` in `args`): `frame(ids, number)` splices those in."""

    def __init__(self, link: NodeLink, module: str, function: str, args: Sequence[Any]) -> None:
        marker = Reference(link.pid.node, 1, (0xFFFFFFFF,) * 3)
        frame = encode_frame(link.encoded_control, link.request(marker, module, function, args))
        mark = etf.encode_body(marker)
        at = frame.index(mark) + len(mark) - _IDS.size
        self._head, rest = frame[:at], frame[at + _IDS.size :]
        number = etf.encode_body(SLEEP_MARK)  # INTEGER_EXT: a tag and four bytes
        split = rest.find(number)
        self._numbered = split >= 0
        if self._numbered:
            self._middle, self._tail = rest[: split + 1], rest[split + len(number) :]
        else:
            self._middle, self._tail = rest, b""

    def frame(self, ids: tuple[int, ...], number: int = 0) -> bytes:
        if not self._numbered:
            return b"".join((self._head, _IDS.pack(*ids), self._middle))
        return b"".join(
            (self._head, _IDS.pack(*ids), self._middle, _INT32.pack(number), self._tail)
        )


def encode_frame(control: bytes, payload: bytes = b"") -> bytes:
    """A distribution message: length, pass-through, the encoded control and payload terms."""
    return b"".join((_U32.pack(1 + len(control) + len(payload)), _PASS, control, payload))


_U32 = struct.Struct(">I")
_IDS = struct.Struct(">III")
_INT32 = struct.Struct(">i")
_PASS = bytes([PASS_THROUGH])
