"""A persistent hidden-node connection to one BEAM node: rpc, ping, stats, tick, node-down.

One I/O thread owns the socket (plain TCP or TLS): it reads frames, answers and sends ticks,
delivers rpc replies to waiting callers, and writes what callers queued. Callers on any thread
use `rpc()`; several calls share the connection concurrently, each matched by its reference.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import secrets
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from deployex_actors.beam import epmd, etf
from deployex_actors.beam.handshake import handshake
from deployex_actors.beam.terms import Atom, ExportFun, Pid, Reference
from deployex_actors.beam.tls import TlsOptions
from deployex_actors.errors import BadRpc, BeamError, HandshakeFailed, NodeDown, RpcTimeout

log = logging.getLogger(__name__)

PASS_THROUGH = 112  # 'p': a message without atom cache header
SEND, REG_SEND, SEND_TT, SEND_SENDER = 2, 6, 12, 22
DEFAULT_TICK_S = 15.0  # net_ticktime 60 s / 4, as the node expects
_names_in_use: set[str] = set()
_names_lock = threading.Lock()
_counter = itertools.count(1)


@dataclass(frozen=True)
class NodeStats:
    """A node's resource usage, as the watchdog compares it with thresholds."""

    process_count: int
    process_limit: int
    port_count: int
    port_limit: int
    atom_count: int
    atom_limit: int
    memory_total: int

    def as_dict(self) -> dict[str, int]:
        # Not dataclasses.asdict: its fields() is a tuple(<generator>), which leaves one tuple
        # on CPython's free list per call (up to 2000): a Monitor calls this every sample.
        return dict(vars(self))


STAT_KEYS = ("process_count", "process_limit", "port_count", "port_limit")
STAT_KEYS += ("atom_count", "atom_limit")


def split_node(node: str) -> tuple[str, str]:
    name, sep, host = node.partition("@")
    if not sep or not name or not host:
        raise BeamError(f"{node!r} is not a node name (expected name@host)")
    return name, host


def _local_name(peer: str, host: str) -> str:
    """A name for us: stable per process (few new atoms on the node), unique per live link."""
    base = f"deployex_py{os.getpid()}"
    with _names_lock:
        candidate = f"{base}@{host}"
        while (candidate, peer) in _names_in_use:
            candidate = f"{base}_{next(_counter)}@{host}"
        _names_in_use.add((candidate, peer))
    return candidate


def connect(
    node: str,
    cookie: str,
    tls: TlsOptions | None = None,
    *,
    timeout: float = 5.0,
    tick_s: float = DEFAULT_TICK_S,
    on_down: Callable[[NodeDown], None] | None = None,
) -> NodeLink:
    """Connect to `node` (`name@host`) as a hidden node; NodeNotFound / HandshakeFailed."""
    name, host = split_node(node)
    address = epmd.lookup(name, host, timeout)
    if address.highest_version < 6:
        raise HandshakeFailed(f"node {node} speaks distribution {address.highest_version}; need 6")
    try:
        sock = socket.create_connection((host, address.port), timeout=timeout)
    except OSError as exc:
        raise NodeDown(
            f"node {node} is registered but its port {address.port} refused: {exc}"
        ) from None
    local = _local_name(node, host)
    try:
        if tls is not None:
            sock = _wrap_tls(sock, tls, host, node)
        creation = secrets.randbits(31) | 1
        handshake(sock, local, cookie, node, creation, tls=tls is not None)
    except BaseException:
        sock.close()
        _release_name(local, node)
        raise
    return NodeLink(sock, node, local, tick_s=tick_s, on_down=on_down, tls=tls is not None)


def _wrap_tls(sock: socket.socket, tls: TlsOptions, host: str, node: str) -> ssl.SSLSocket:
    try:
        return tls.client_context().wrap_socket(sock, server_hostname=host)
    except ssl.SSLError as exc:
        raise HandshakeFailed(f"TLS with node {node} refused: {exc.reason or exc}") from None
    except OSError as exc:
        raise HandshakeFailed(f"TLS with node {node} failed: {exc}") from None


def _release_name(local: str, node: str) -> None:
    with _names_lock:
        _names_in_use.discard((local, node))


class NodeLink:
    """An authenticated connection; use `connect()` to make one."""

    def __init__(
        self,
        sock: socket.socket,
        node: str,
        local_node: str,
        *,
        tick_s: float,
        on_down: Callable[[NodeDown], None] | None,
        tls: bool,
    ) -> None:
        self.node = node
        self.local_node = local_node
        self.tls = tls
        self.tick_s = tick_s
        self.pid = Pid(Atom(local_node), 1, 0, 1)
        self._sock = sock
        self._sock.settimeout(None)
        self._on_down = on_down
        self._pending: dict[Reference, Future[Any]] = {}
        self._lock = threading.Lock()
        self._outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._ref_ids = itertools.count(1)
        self._closing = False
        self.error: NodeDown | None = None
        self._last_rx = self._last_tx = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"beam-link {node}", daemon=True)
        self._thread.start()

    # -- public API ------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.error is None and not self._closing

    def call_async(self, module: str, function: str, args: Sequence[Any] = ()) -> Future[Any]:
        """Send `rpc:call(Node, Module, Function, Args)` via `rex`; the Future gets the reply."""
        ref = Reference(self.pid.node, 1, (next(self._ref_ids), secrets.randbits(32), 0))
        future: Future[Any] = Future()
        with self._lock:
            if self.error is not None:
                raise self.error
            if self._closing:
                raise NodeDown(f"the link to {self.node} is closed")
            self._pending[ref] = future
        request = (
            Atom("$gen_call"),
            (self.pid, ref),
            (Atom("call"), Atom(module), Atom(function), list(args), self.pid),
        )
        self._queue((REG_SEND, self.pid, Atom(""), Atom("rex")), request)
        future.add_done_callback(lambda _f: self._forget(ref))
        return future

    def rpc(
        self, module: str, function: str, args: Sequence[Any] = (), timeout: float = 10.0
    ) -> Any:
        """Call Module:Function(Args) on the node; BadRpc, RpcTimeout or NodeDown on failure."""
        return self._result(self.call_async(module, function, args), timeout, module, function)

    def rpc_many(
        self, calls: Iterable[tuple[str, str, Sequence[Any]]], timeout: float = 10.0
    ) -> list[Any]:
        """Several calls sent at once (pipelined) and awaited together."""
        futures = [(m, f, self.call_async(m, f, a)) for m, f, a in calls]
        deadline = time.monotonic() + timeout
        return [
            self._result(fut, max(0.0, deadline - time.monotonic()), m, f) for m, f, fut in futures
        ]

    def ping(self, timeout: float = 5.0) -> float:
        """Round-trip seconds of a trivial rpc; raises if the node does not answer."""
        start = time.perf_counter()
        answer = self.rpc("erlang", "node", (), timeout)
        if answer != self.node:
            raise BeamError(f"node {self.node} answered ping as {answer!r}")
        return time.perf_counter() - start

    def stats(self, timeout: float = 5.0) -> NodeStats:
        # Two calls: lists:map(fun erlang:system_info/1, Keys) (an export fun, valid on any
        # node, unlike a closure) and erlang:memory(total).
        system_info = ExportFun(Atom("erlang"), Atom("system_info"), 1)
        counts, memory = self.rpc_many(
            [
                ("lists", "map", [system_info, [Atom(key) for key in STAT_KEYS]]),
                ("erlang", "memory", [Atom("total")]),
            ],
            timeout,
        )
        return NodeStats(*counts, memory)

    def close(self) -> None:
        """Close the connection; pending calls fail with NodeDown."""
        self._closing = True
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(5)

    def __enter__(self) -> NodeLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "alive" if self.alive else f"down: {self.error}"
        return (
            f"<NodeLink {self.local_node} -> {self.node} ({'tls' if self.tls else 'tcp'}, {state})>"
        )

    # -- callers' side ---------------------------------------------------------------------------

    def _result(self, future: Future[Any], timeout: float, module: str, function: str) -> Any:
        try:
            reply = future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise RpcTimeout(
                f"{module}:{function} on {self.node} did not answer within {timeout:g} s"
            ) from None
        if isinstance(reply, tuple) and len(reply) == 2 and reply[0] == "badrpc":
            raise BadRpc(f"{module}:{function} on {self.node} failed: {reply[1]!r}", reply[1])
        return reply

    def _forget(self, ref: Reference) -> None:
        with self._lock:
            self._pending.pop(ref, None)

    def _queue(self, control: tuple[Any, ...], payload: Any = None) -> None:
        body = bytes([PASS_THROUGH]) + etf.encode(control)
        if payload is not None:
            body += etf.encode(payload)
        self._outbox.put(struct.pack(">I", len(body)) + body)
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"x")

    # -- the I/O thread --------------------------------------------------------------------------

    def _run(self) -> None:
        buffer = bytearray()
        reason = "closed by us"
        try:
            while not self._closing:
                self._flush()
                self._tick()
                if not self._readable(buffer):
                    reason = "the node closed the connection"
                    break
                self._drain_frames(buffer)
        except NodeDown as exc:
            reason = str(exc)
        except (OSError, ValueError, etf.EtfError) as exc:
            reason = f"connection error: {exc}"
        finally:
            self._shutdown(reason)

    def _readable(self, buffer: bytearray) -> bool:
        """Wait for data, a wake-up or the tick period; False when the peer closed."""
        has_buffered = isinstance(self._sock, ssl.SSLSocket) and self._sock.pending()
        if not has_buffered:
            ready, _, _ = select.select([self._sock, self._wake_r], [], [], self.tick_s)
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            if self._sock not in ready:
                return True
        try:
            chunk = self._sock.recv(65536)
        except ssl.SSLWantReadError:
            return True
        if not chunk:
            return False
        self._last_rx = time.monotonic()
        buffer += chunk
        return True

    def _tick(self) -> None:
        now = time.monotonic()
        silent = now - self._last_rx
        if silent > 4 * self.tick_s:
            raise NodeDown(f"node {self.node} sent nothing for {silent:.0f} s (tick timeout)")
        if now - self._last_tx >= self.tick_s:
            self._sock.sendall(b"\0\0\0\0")
            self._last_tx = now

    def _flush(self) -> None:
        while True:
            try:
                frame = self._outbox.get_nowait()
            except queue.Empty:
                return
            self._sock.sendall(frame)
            self._last_tx = time.monotonic()

    def _drain_frames(self, buffer: bytearray) -> None:
        while len(buffer) >= 4:
            (size,) = struct.unpack_from(">I", buffer)
            if len(buffer) < 4 + size:
                return
            frame = bytes(buffer[4 : 4 + size])
            del buffer[: 4 + size]
            if size:  # zero-length frames are ticks
                self._dispatch(frame)

    def _dispatch(self, frame: bytes) -> None:
        if frame[0] != PASS_THROUGH:
            raise NodeDown(f"node {self.node} sent a frame of unknown type {frame[0]}")
        decoder = etf.Decoder(frame, 1)
        control = decoder.term_with_version()
        payload = decoder.term_with_version() if decoder.pos < len(frame) else None
        op = control[0] if isinstance(control, tuple) and control else None
        if op in (SEND, SEND_TT, SEND_SENDER, REG_SEND):
            self._deliver(payload)

    def _deliver(self, message: Any) -> None:
        if isinstance(message, tuple) and len(message) == 2 and isinstance(message[0], Reference):
            with self._lock:
                future = self._pending.pop(message[0], None)
            if future is not None and not future.done():
                future.set_result(message[1])
        elif isinstance(message, tuple) and len(message) == 4 and message[0] == "io_request":
            # We are the group leader of our rpc calls: accept and drop their output.
            _, sender, reply_as, _request = message
            self._queue((SEND, Atom(""), sender), (Atom("io_reply"), reply_as, Atom("ok")))

    def _shutdown(self, reason: str) -> None:
        error = NodeDown(f"link to {self.node} is down: {reason}")
        with self._lock:
            if self.error is None and not self._closing:
                self.error = error
            pending, self._pending = list(self._pending.values()), {}
        for future in pending:
            if not future.done():
                future.set_exception(error)
        with contextlib.suppress(OSError):
            self._sock.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        _release_name(self.local_node, self.node)
        if self.error is error and self._on_down is not None:
            try:
                self._on_down(error)
            except Exception:
                log.exception("on_down callback of the link to %s failed", self.node)
