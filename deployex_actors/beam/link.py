"""A persistent hidden-node connection to one BEAM node: rpc, ping, stats, tick, node-down.

One I/O thread owns the socket (plain TCP or TLS): it reads frames, answers and sends ticks, and
delivers rpc replies to waiting callers. Callers on any thread use `rpc()`; several calls share
the connection concurrently, each matched by its reference.

A Monitor's sampler asks its node for statistics every second, so those calls are kept cheap
(see `calls` and `replica.sampler`): over plain TCP a caller writes its request itself, under a
lock (handing it to the I/O thread cost a pipe write, a wake-up and a select pass); a
synchronous call waits on a bare lock, not a Future; `stats()` is one pre-encoded call; and
`stats_at()` asks for the next sample as soon as the last one came, the node waiting until it
is due, so that a sample wakes one thread once. An SSL socket must not be written while another
thread reads it: over TLS, only the I/O thread writes.
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
from typing import Any

from deployex_actors.beam import epmd, etf
from deployex_actors.beam.calls import (
    PASS_THROUGH,
    STAT_KEYS,
    STATS_AT_CALL,
    STATS_CALL,
    Callback,
    NodeStats,
    Reply,
    Request,
    encode_frame,
)
from deployex_actors.beam.handshake import handshake
from deployex_actors.beam.terms import Atom, Pid, Reference
from deployex_actors.beam.tls import TlsOptions
from deployex_actors.errors import BadRpc, BeamError, HandshakeFailed, NodeDown, RpcTimeout

log = logging.getLogger(__name__)

SEND, REG_SEND, SEND_TT, SEND_SENDER = 2, 6, 12, 22
DEFAULT_TICK_S = 15.0  # net_ticktime 60 s / 4, as the node expects
_IDS = struct.Struct(">III")
_REPLY_HEAD = bytes([etf.VERSION, etf.SMALL_TUPLE, 2])  # {Ref, Value}, as a payload
_names_in_use: set[str] = set()
_names_lock = threading.Lock()
_counter = itertools.count(1)


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
        self._pending: dict[Reference, Future[Any] | Reply] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._outbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        # References: a counter, and a random part drawn once per link (not per call: a
        # getrandom call each time) that keeps them apart from those of earlier links.
        self._ref_ids = itertools.count(1)
        self._ref_salt = secrets.randbits(32)
        self.encoded_control = etf.encode((REG_SEND, self.pid, Atom(""), Atom("rex")))
        self._stats_request = Request(self, *STATS_CALL)
        self._stats_at_request = Request(self, *STATS_AT_CALL)
        self._deadlines: dict[Reference, float] = {}  # async calls' timeouts (monotonic clock)
        # stats_at calls by the bytes of their reference, as the node echoes it (see _fast_reply)
        self._awaited: dict[bytes, Reference] = {}
        self._ref_head = etf.encode_body(Reference(self.pid.node, 1, (0, 0, 0)))[: -_IDS.size]
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
        future: Future[Any] = Future()
        ref = self._register(future)
        self._send_call(ref, self._call_frame(ref, module, function, args))
        future.add_done_callback(lambda _f: self._forget(ref))
        return future

    def rpc(
        self, module: str, function: str, args: Sequence[Any] = (), timeout: float = 10.0
    ) -> Any:
        """Call Module:Function(Args) on the node; BadRpc, RpcTimeout or NodeDown on failure."""
        reply = Reply()
        ref = self._register(reply)
        frame = self._call_frame(ref, module, function, args)
        return self._await(reply, ref, frame, timeout, module, function)

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
        """The node's counts, limits and total memory, in one pre-encoded call."""
        reply = Reply()
        ref = self._register(reply)
        frame = self._stats_request.frame(ref.ids)
        values = self._await(reply, ref, frame, timeout, *STATS_CALL[:2])
        if not isinstance(values, list) or len(values) != len(STAT_KEYS) + 1:
            raise BeamError(f"node {self.node} answered stats with {values!r}")
        return NodeStats(*values)

    def stats_at(
        self, at: float, on_stats: Callable[[NodeStats | None], None], timeout: float
    ) -> None:
        """Ask now for the node's `stats()` as of wall-clock time `at`: the node waits until
        then (timer:sleep in the same call) and answers. `on_stats(stats)` runs on the link's
        thread when they come; `on_stats(None)` if they have not come `timeout` s after `at`,
        or the link goes down. Asked right after the previous answer, a sampler's thread
        sleeps until the answer, one wake-up per sample, with no timer of its own."""

        def arrived(values: Any) -> None:
            stats = values[1] if isinstance(values, list) and len(values) == 2 else None
            ok = isinstance(stats, list) and len(stats) == len(STAT_KEYS) + 1
            on_stats(NodeStats(*stats) if ok else None)

        ref = self._register(Callback(arrived))
        wait_s = max(0.0, at - time.time())
        self._deadlines[ref] = time.monotonic() + wait_s + timeout
        self._awaited[self._ref_bytes(ref)] = ref
        self._send_call(ref, self._stats_at_request.frame(ref.ids, round(wait_s * 1000)))
        if threading.get_ident() != self._thread.ident:
            self._wake()  # the I/O thread must now also wait for that deadline

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Wait until the link is down (for whatever reason); False on timeout."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def request(self, ref: Reference, module: str, function: str, args: Sequence[Any]) -> bytes:
        """The encoded `gen_call` to `rex` for Module:Function(Args), answered to `ref`."""
        return etf.encode(
            (
                Atom("$gen_call"),
                (self.pid, ref),
                (Atom("call"), Atom(module), Atom(function), list(args), self.pid),
            )
        )

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

    def _register(self, waiter: Future[Any] | Reply) -> Reference:
        ref = Reference(self.pid.node, 1, (next(self._ref_ids), self._ref_salt, 0))
        with self._lock:
            if self.error is not None:
                raise self.error
            if self._closing:
                raise NodeDown(f"the link to {self.node} is closed")
            self._pending[ref] = waiter
        return ref

    def _ref_bytes(self, ref: Reference) -> bytes:
        return self._ref_head + _IDS.pack(*ref.ids)

    def _call_frame(self, ref: Reference, module: str, function: str, args: Sequence[Any]) -> bytes:
        return encode_frame(self.encoded_control, self.request(ref, module, function, args))

    def _send_call(self, ref: Reference, frame: bytes) -> None:
        try:
            self._send(frame)
        except OSError as exc:
            self._forget(ref)
            raise NodeDown(f"link to {self.node} is down: {exc}") from None

    def _await(
        self, reply: Reply, ref: Reference, frame: bytes, timeout: float, module: str,
        function: str,
    ) -> Any:  # fmt: skip
        self._send_call(ref, frame)
        if not reply.wait(timeout):
            self._forget(ref)
            raise RpcTimeout(
                f"{module}:{function} on {self.node} did not answer within {timeout:g} s"
            )
        if reply.error is not None:
            raise reply.error
        return self._checked(reply.value, module, function)

    def _result(self, future: Future[Any], timeout: float, module: str, function: str) -> Any:
        try:
            reply = future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise RpcTimeout(
                f"{module}:{function} on {self.node} did not answer within {timeout:g} s"
            ) from None
        return self._checked(reply, module, function)

    def _checked(self, reply: Any, module: str, function: str) -> Any:
        if isinstance(reply, tuple) and len(reply) == 2 and reply[0] == "badrpc":
            raise BadRpc(f"{module}:{function} on {self.node} failed: {reply[1]!r}", reply[1])
        return reply

    def _forget(self, ref: Reference) -> None:
        with self._lock:
            self._pending.pop(ref, None)

    def _queue(self, control: tuple[Any, ...], payload: Any = None) -> None:
        self._send(
            encode_frame(etf.encode(control), b"" if payload is None else etf.encode(payload))
        )

    def _send(self, frame: bytes) -> None:
        """Write a frame from this thread; over TLS, hand it to the I/O thread (unless this is
        the I/O thread)."""
        if self.tls and threading.get_ident() != self._thread.ident:
            self._outbox.put(frame)
            self._wake()
            return
        with self._send_lock:
            self._sock.sendall(frame)
            self._last_tx = time.monotonic()

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
                self._run_due()
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
            ready, _, _ = select.select([self._sock, self._wake_r], [], [], self._wait_s())
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
            with self._send_lock:
                self._sock.sendall(b"\0\0\0\0")
                self._last_tx = now

    def _wait_s(self) -> float:
        """Until the next tick check or async call timeout."""
        # list(): another thread may add one meanwhile (stats_at)
        due = min(list(self._deadlines.values()), default=time.monotonic() + self.tick_s)
        return max(0.0, min(self.tick_s, due - time.monotonic()))

    def _run_due(self) -> None:
        if not self._deadlines:
            return
        now = time.monotonic() + 0.001  # not worth another wake-up
        for ref, due in list(self._deadlines.items()):
            if due > now:
                continue
            del self._deadlines[ref]
            self._awaited.pop(self._ref_bytes(ref), None)
            with self._lock:
                waiter = self._pending.pop(ref, None)
            if waiter is not None and not waiter.done():
                waiter.set_exception(RpcTimeout(f"no answer from {self.node} in time"))

    def _flush(self) -> None:
        while not self._outbox.empty():
            self._sock.sendall(self._outbox.get_nowait())
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
        if self._awaited and self._fast_reply(frame):
            return
        decoder = etf.Decoder(frame, 1)
        control = decoder.term_with_version()
        payload = decoder.term_with_version() if decoder.pos < len(frame) else None
        op = control[0] if isinstance(control, tuple) and control else None
        if op in (SEND, SEND_TT, SEND_SENDER, REG_SEND):
            self._deliver(payload)

    def _fast_reply(self, frame: bytes) -> bool:
        """The answer to a stats_at call, found by the bytes of its reference right at the start
        of the payload ({Ref, Value}): only the value is decoded. Decoding the control message
        and the reference was most of the Python work of a sample."""
        for raw, ref in list(self._awaited.items()):
            at = frame.find(raw, 4)
            if at < 4 or frame[at - 3 : at] != _REPLY_HEAD:
                continue
            decoder = etf.Decoder(frame, at + len(raw))
            value = decoder.term()
            if decoder.pos != len(frame):
                return False
            del self._awaited[raw]
            self._deadlines.pop(ref, None)
            with self._lock:
                waiter = self._pending.pop(ref, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(value)
            return True
        return False

    def _deliver(self, message: Any) -> None:
        if isinstance(message, tuple) and len(message) == 2 and isinstance(message[0], Reference):
            if self._deadlines.pop(message[0], None) is not None:  # answered: no wake-up for it
                self._awaited.pop(self._ref_bytes(message[0]), None)
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
        self._awaited.clear()
        self._deadlines.clear()
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
