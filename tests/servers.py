"""Real local servers for the tests: moto (S3, Secrets Manager) and the GCS emulator.

Each runs as its own OS process on 127.0.0.1 and a free port, is waited for with a deadline,
and is ended by pid at teardown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def wait_for_port(
    port: int, proc: subprocess.Popen | None = None, deadline_s: float = 30.0
) -> None:
    """Wait until something accepts on 127.0.0.1:port; fail early if `proc` died."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {deadline_s} s")


@dataclass(frozen=True)
class Server:
    url: str
    port: int
    pid: int


@contextlib.contextmanager
def running(
    argv: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        wait_for_port(port, proc)
        yield Server(url=f"http://{LOOPBACK}:{port}", port=port, pid=proc.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def moto_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]


def gcs_emulator_argv(port: int) -> list[str]:
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    return [str(exe), "start", "--host", LOOPBACK, "--port", str(port), "--in-memory"]
