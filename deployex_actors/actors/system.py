"""Starting the actor system, and attaching to a running one, without surprises.

- Thespian binds every socket to 0.0.0.0 and unpickles what arrives; unless the configuration
  enables multi-host mode, `bind_loopback_only()` makes every address bind to 127.0.0.1 (the
  patch is inherited by every forked actor). Loopback still lets the host's other users in, so
  every frame is signed and checked before it is unpickled (`actors.wire`), in the system and in
  every front end that attaches.
- `ActorSystem(...)` *starts* a system when none listens; `attach()` probes the admin port first,
  so a front end never starts a second system by accident.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from deployex_actors.actors import wire
from deployex_actors.actors.messages import Reply
from deployex_actors.errors import NoAnswer

BASE = "multiprocTCPBase"
LOOPBACK = "127.0.0.1"


class NotRunning(NoAnswer):
    """No DeployEx actor system listens on the admin port."""


def bind_loopback_only() -> None:
    from thespian.system.transport import IPBase

    original = IPBase.IPActorAddress.__init__
    if getattr(original, "_deployex_loopback", False):
        return

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if self.bindname and self.bindname[0] in ("", "0.0.0.0"):  # noqa: S104 - what we replace
            self.bindname = (LOOPBACK, self.bindname[1])

    __init__._deployex_loopback = True  # type: ignore[attr-defined]
    IPBase.IPActorAddress.__init__ = __init__


def pairs_without_churn() -> None:
    """On every pass of its loop, thespian's TCP transport maps over a pair with `fmap`, which
    builds it with `tuple(map(...))`: CPython sizes such a tuple for ten items and shrinks it, and
    the shrunk pair, once freed, joins the free list of pairs, one more per pass up to CPython's
    2000 (~110 kB in every actor process, over its first 2000 messages or timers). The same
    mapping, with the pair built at its size, so freed pairs are the ones reused."""
    from thespian.system import utilis
    from thespian.system.transport import TCPTransport

    if getattr(TCPTransport.fmap, "_deployex_pairs", False):
        return
    original = utilis.fmap

    def fmap(func: Any, obj: Any) -> Any:
        if isinstance(obj, tuple):
            return tuple([fmap(func, item) for item in obj])
        return original(func, obj)

    fmap._deployex_pairs = True  # type: ignore[attr-defined]
    TCPTransport.fmap = fmap


def freeze() -> None:
    """Move every object this process has now out of the cyclic collector's reach. A full
    collection writes into the header of every object it visits, so in a forked process it
    copies every page of its inheritance it touches: one gc.collect() in a Monitor made it
    ~5.7 MB more private (7.5 -> 13.1 MB USS), and every actor runs one each 2000 messages
    (CycleCollector). Objects made later are collected as before."""
    gc.freeze()


class CycleCollector:
    """A full garbage collection every `every` messages, for every process that receives frames.

    thespian ties each ActorAddress it unpickles to itself (addressManager.importAddr stores bound
    methods on it): one reference cycle per received message, freed only by the cyclic collector,
    whose oldest generation runs once pending objects reach 25 % of the long-lived ones: hours at
    a few messages a second, while RSS creeps by ~8 bytes a message (Root, Storage and Watchdog
    at ~0.9 MB/h in a 30-minute soak). A collection of ~30k objects takes a few milliseconds.
    """

    def __init__(self, every: int = 2000) -> None:
        self.every = every
        self.count = 0

    def tick(self) -> None:
        self.count += 1
        if self.count % self.every == 0:
            gc.collect()


def is_listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((LOOPBACK, port)) == 0


def log_definitions(log_file: Path) -> dict[str, Any]:
    """Actors log through thespian's logger process into DeployEx's log file."""
    return {
        "version": 1,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "filename": str(log_file),
                "formatter": "plain",
            }
        },
        "root": {"handlers": ["file"], "level": "INFO"},
    }


def start(
    port: int,
    log_file: Path,
    thespian_log: Path,
    key: bytes,
    report_to: Path | None = None,
    multi_host: bool = False,
) -> Any:
    from thespian.actors import ActorSystem

    wire.authenticate_frames(key, report_to)
    pairs_without_churn()
    if not multi_host:
        bind_loopback_only()
        os.environ["THESPIAN_BASE_IPADDR"] = LOOPBACK
    os.environ["THESPLOG_FILE"] = str(thespian_log)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    return ActorSystem(
        BASE, {"Admin Port": port}, logDefs=log_definitions(log_file), transientUnique=True
    )


def attach(port: int, key_file: Path, report_to: Path | None = None) -> Any:
    """An ActorSystem handle on the running system; NotRunning if nothing listens.

    Never starts a system: thespian would start an admin here when the port stops answering
    between our probe and its own (e.g. DeployEx restarting), so its starter is disabled
    while we attach.
    """
    from thespian.actors import ActorSystem
    from thespian.system.multiprocCommon import multiprocessCommon

    if not is_listening(port):
        raise NotRunning(f"DeployEx is not running (nothing listens on {LOOPBACK}:{port})")
    wire.authenticate_frames(wire.read_key(key_file), report_to)
    pairs_without_churn()
    bind_loopback_only()
    os.environ.setdefault("THESPIAN_BASE_IPADDR", LOOPBACK)

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise NotRunning(f"DeployEx is not running (nothing answers on {LOOPBACK}:{port})")

    starter = multiprocessCommon._startAdmin
    multiprocessCommon._startAdmin = refuse
    try:
        return ActorSystem(BASE, {"Admin Port": port}, transientUnique=True)
    finally:
        multiprocessCommon._startAdmin = starter


def request(system: Any, target: Any, message: Any, timeout: float) -> Reply:
    """Send a request (with `request_id`) and wait for *its* reply, dropping stale ones."""
    deadline = time.monotonic() + timeout
    answer = system.ask(target, message, timeout)
    while not (isinstance(answer, Reply) and answer.request_id == message.request_id):
        remaining = deadline - time.monotonic()
        if answer is None or remaining <= 0:
            raise NoAnswer(f"no answer from DeployEx within {timeout:g} s")
        logging.getLogger(__name__).debug("dropping a stale reply: %r", answer)
        answer = system.listen(remaining)
    return answer


def request_id() -> str:
    return uuid.uuid4().hex


def shutdown(system: Any) -> None:
    with contextlib.suppress(Exception):
        system.shutdown()
