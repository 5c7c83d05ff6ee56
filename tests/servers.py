"""Real local servers for the tests: moto (S3, Secrets Manager), the GCS emulator, and HTTP
endpoints of ours (a proxy that hangs, a recorder of notifications).

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

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


class _ThreadedServer:
    """An HTTP server of ours on a thread of the test, whose held requests `release()` lets go."""

    def _listen(self, handler: type) -> None:
        import http.server
        import threading

        self._released = threading.Event()
        self._server = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def release(self) -> None:
        self._released.set()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


class HangingProxy(_ThreadedServer):
    """An HTTP proxy of ours in front of `upstream` (moto): it holds every GET whose path
    contains `hang` until `release()` or `hold_s`, and passes everything else straight on.
    A bucket that hangs on one object, as a slow S3 or GCS does, on a server we control."""

    def __init__(self, upstream: str, hang: str, hold_s: float = 30.0) -> None:
        import http.client
        import http.server
        import threading
        import urllib.parse

        target = urllib.parse.urlsplit(upstream)
        self.held = threading.Event()  # a GET is being held now
        self.let_through = 0  # held GETs passed on since (by release() or after hold_s)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                with contextlib.suppress(ConnectionError):  # the client gave up meanwhile
                    self._pass_on()

            def _pass_on(self) -> None:
                if self.command == "GET" and hang in self.path:
                    proxy.held.set()
                    proxy._released.wait(hold_s)
                    proxy.let_through += 1  # a lost race never turns a count of 1+ into 0
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body, dict(self.headers))
                    answer = upstream.getresponse()
                    data = answer.read()
                finally:
                    upstream.close()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        self._listen(Handler)


@dataclass(frozen=True)
class Received:
    """One request a RecordingServer got: its path, JSON body, the status it was answered with,
    and when it arrived (epoch s)."""

    path: str
    body: dict
    status: int
    at: float


class RecordingServer(_ThreadedServer):
    """An HTTP endpoint of ours on 127.0.0.1 that records every POST (a webhook, Slack's or
    PagerDuty's API as far as their callers can tell). It answers `statuses` in turn, then
    `status`; with `hang_s` it holds every request that long before answering (until `release`),
    as a dead endpoint that accepts and never answers does."""

    def __init__(self, status: int = 200, statuses: tuple[int, ...] = (),
                 hang_s: float = 0.0) -> None:  # fmt: skip
        import http.server
        import json
        import threading

        self.received: list[Received] = []
        self.holding = 0  # requests held right now
        self._lock = threading.Lock()
        script = list(statuses)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                arrived = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with server._lock:
                    answer = script.pop(0) if script else status
                    server.received.append(Received(self.path, json.loads(raw or b"{}"), answer,
                                                    arrived))  # fmt: skip
                    server.holding += 1 if hang_s else 0
                if hang_s:
                    server._released.wait(hang_s)
                    with server._lock:
                        server.holding -= 1
                with contextlib.suppress(ConnectionError):  # the caller gave up meanwhile
                    self.send_response(answer)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self._listen(Handler)

    def bodies(self, where: Callable[[dict], bool] = lambda _: True) -> list[dict]:
        with self._lock:
            return [r.body for r in self.received if where(r.body)]

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)
