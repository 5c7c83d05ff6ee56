"""ops/systemd/deployex.service as the tests read it, and a socket that listens like systemd.

systemd cannot run as PID 1 here, so the tests run what the unit declares (ExecStart, ExecStop,
Environment, KillMode=process: signals to the main pid only) against a real `deployex run`, and
receive its sd_notify datagrams on a socket they bind themselves.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.beam_fixtures import wait_until

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "ops" / "systemd" / "deployex.service"
STOP_HELPER = REPO / "ops" / "systemd" / "deployex-stop"
INSTALLER = REPO / "ops" / "installer" / "deployex.sh"


def unit_entries(path: Path = UNIT) -> dict[str, list[tuple[str, str]]]:
    """Section -> [(key, value)] in order (systemd allows a key more than once)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            key, _, value = line.partition("=")
            assert current is not None, f"{path}: {line!r} before any section"
            current.append((key.strip(), value.strip()))
    return sections


def service_value(key: str) -> str:
    values = [v for k, v in unit_entries()["Service"] if k == key]
    assert len(values) == 1, f"{key}= appears {len(values)} times in {UNIT.name}"
    return values[0]


def unit_environment() -> dict[str, str]:
    pairs = [v.split("=", 1) for k, v in unit_entries()["Service"] if k == "Environment"]
    return dict(pairs)


def exec_start() -> list[str]:
    return shlex.split(service_value("ExecStart"))


def seconds(value: str) -> float:
    """A systemd time span as the unit writes them: `90`, `90s`, `2min`."""
    for suffix, factor in (("min", 60), ("s", 1)):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * factor
    return float(value)


@dataclass
class NotifyListener:
    """A datagram socket bound like systemd's notify socket; records (time, state) pairs."""

    address: str  # as NOTIFY_SOCKET spells it ('@' for the abstract namespace)
    received: list[tuple[float, str]] = field(default_factory=list)

    def states(self) -> list[str]:
        return [state for _, state in list(self.received)]

    def count(self, state: str) -> int:
        return sum(state in message.split("\n") for message in self.states())

    def wait_for(self, state: str, times: int = 1, deadline_s: float = 60) -> None:
        wait_until(lambda: self.count(state) >= times, deadline_s, f"{times} x {state}")

    def since(self, moment: float, state: str) -> int:
        return sum(at >= moment and state in m.split("\n") for at, m in list(self.received))


@contextlib.contextmanager
def notify_listener(folder: Path | None = None) -> Iterator[NotifyListener]:
    """A path socket in `folder`, or an abstract one when `folder` is None."""
    if folder is None:
        address = f"@deployex-test-{secrets.token_hex(6)}"
        bind_to = "\0" + address[1:]
    else:
        address = bind_to = str(folder / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(bind_to)
    sock.settimeout(0.2)
    listener = NotifyListener(address)
    done = threading.Event()

    def receive() -> None:
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                listener.received.append((time.monotonic(), sock.recv(4096).decode()))

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    try:
        yield listener
    finally:
        done.set()
        thread.join(5)
        sock.close()
        if folder is not None:
            Path(bind_to).unlink(missing_ok=True)


def fake_systemctl(folder: Path, jobs_line: str | None) -> dict[str, str]:
    """A PATH whose `systemctl list-jobs` prints `jobs_line` (None: fails like a host without
    systemd): the one answer of systemd's that deployex-stop needs and that cannot be had here.
    It records its arguments in `folder/systemctl.args`."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "systemctl"
    answer = f"echo {shlex.quote(jobs_line)}" if jobs_line is not None else "exit 1"
    script.write_text(f'#!/bin/sh\necho "$@" >> {folder}/systemctl.args\n{answer}\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


def run_stop_helper(
    main_pid: int | None, env: dict[str, str], deadline_s: float = 90
) -> subprocess.CompletedProcess:
    """The unit's ExecStop as systemd runs it: $MAINPID set while there is a main process."""
    env = {k: v for k, v in env.items() if k != "MAINPID"}
    if main_pid is not None:
        env["MAINPID"] = str(main_pid)
    return subprocess.run(
        [str(STOP_HELPER)], env=env, capture_output=True, text=True, timeout=deadline_s
    )
