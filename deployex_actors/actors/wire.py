"""Authenticated frames on every socket of the actor system.

Thespian's TCP transport unpickles each frame it reads, and unpickling runs code: anyone who can
connect to the admin port or to an actor's port could run code as DeployEx. Loopback keeps the
network out, not the host's other users. So every frame carries an HMAC-SHA256 of its pickle,
keyed with a secret only DeployEx's user can read (`{var_path}/actor_system.key`, 0600, made at
the first start, like multiprocessing's authkey), and a frame whose MAC does not match is
dropped *before* anything is unpickled.

`authenticate_frames(key)` swaps the serializer of thespian's TCP transport (module level, so
the admin, the logger and every actor forked after it inherit it; a front end calls it before
it attaches). A rejected frame reads as thespian's own "bad data" answer: the transport closes
that connection, and a sender whose reply was forged sees a failed send, never an exception.
Each process counts what it dropped and tells the Watchdog (over the sample channel), which
journals and logs it at a bounded rate and exposes the count as a metric.

What it does not do: encrypt (loopback traffic is only visible to root) or stop replays on a
network (multi-host mode needs a private network or a firewall; see docs/security.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import pickle
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deployex_actors.private_paths import check_private_file
from deployex_actors.replica import samples

log = logging.getLogger(__name__)
KEY_BYTES = 32
MAC_BYTES = hashlib.sha256().digest_size


class Rejections:
    """How many frames this process dropped; `report(total)` is told after each."""

    def __init__(self) -> None:
        self.total = 0
        self.report: Callable[[int], None] | None = None

    def count(self) -> None:
        self.total += 1
        if self.report is not None:
            with contextlib.suppress(Exception):  # reporting must never break the transport
                self.report(self.total)


REJECTIONS = Rejections()


class SignedPickle:
    """`dumps`/`loads` as thespian's transport calls them, with a MAC in front of each pickle."""

    def __init__(self, key: bytes, rejected: Any) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"the actor system key must have at least {KEY_BYTES} bytes")
        self._key = key
        self._rejected = rejected  # what a bad frame reads as: thespian's bad-data answer

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def dumps(self, obj: Any) -> bytes:
        data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        return self._mac(data) + data

    def loads(self, frame: bytes) -> Any:
        mac, data = frame[:MAC_BYTES], frame[MAC_BYTES:]
        if len(mac) != MAC_BYTES or not hmac.compare_digest(mac, self._mac(data)):
            REJECTIONS.count()
            return self._rejected
        return pickle.loads(data)  # noqa: S301 - authenticated above: written by DeployEx


def authenticate_frames(key: bytes, report_to: Path | None = None) -> None:
    """Make this process's thespian transport sign what it sends and drop what is unsigned;
    drops are reported to the Watchdog's sample channel at `report_to`."""
    from thespian.system.transport import TCPTransport
    from thespian.system.transport.streamBuffer import ackDataErrPacket, ackPacket, toSendBuffer

    signed = SignedPickle(key, ackDataErrPacket)
    TCPTransport.serializer = signed
    # The transport's ready-made acknowledgements were pickled at import, unsigned.
    TCPTransport.ackMsg = toSendBuffer(ackPacket, signed.dumps)
    TCPTransport.ackDataErrMsg = toSendBuffer(ackDataErrPacket, signed.dumps)
    if report_to is not None:
        sender = samples.Sender(report_to, timeout=0)  # a flood must not slow the transport

        def report(total: int) -> None:
            sender.send(samples.RejectedFrames(os.getpid(), total, time.time()))

        REJECTIONS.report = report


def make_key(path: Path) -> bytes:
    """The key at `path`, made first (0600, never overwritten) if there is none."""
    with contextlib.suppress(FileExistsError):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, secrets.token_hex(KEY_BYTES).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        log.info("made a new actor system key in %s", path)
    return read_key(path)


def read_key(path: Path) -> bytes:
    """The key at `path`; a clear error when it is missing, unreadable or not private."""
    from deployex_actors.errors import DeployexError

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise DeployexError(
            f"cannot read the actor system key {path}: {exc.strerror} (only DeployEx's user "
            "can attach to DeployEx)"
        ) from None
    try:
        check_private_file(path, fd)
        text = os.read(fd, 4096).decode(errors="replace").strip()
    finally:
        os.close(fd)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise DeployexError(
            f"the actor system key {path} is not {KEY_BYTES * 2} hex digits; remove it while "
            "DeployEx is stopped and start DeployEx to make a new one"
        )
    return key
