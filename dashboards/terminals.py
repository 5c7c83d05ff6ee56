"""Browser terminals: a program on a pseudo-terminal, bridged to Panel's Terminal (xterm.js).

What runs (`command_for`):
    replica   the remote shell its Monitor builds (beam.launch.remote_shell_command: Elixir
              `bin/APP remote`, Erlang's release `erl -remsh`, Gleam `erl -remsh`, cookie and
              TLS flags included); asked of DeployEx, so the dashboard never holds the cookie
    deployex  `deployex shell` (the Python REPL with `dx`)
    host      tmux on a server of its own (`-S` socket in a private folder) with our tmux.conf

Each program runs in a session of its own with the terminal as its controlling tty, so Ctrl-C
and Ctrl-D reach it as on a console. The output is read when the descriptor is readable (no
polling). Closing hangs the whole process group up, then kills what is left; a host terminal's
tmux server (a daemon outside that group) is killed through its socket.

The registry (`Terminals`) holds every open terminal of the dashboard process: at most
`terminals_max`; closed after `terminal_idle_timeout_ms` without input or output, when the
login session ends (logout, expiry), when the page goes away, when the program exits, and
when the replica it is attached to stops running. Opening is a POST with a CSRF token
(dashboards.app.TerminalOpenHandler) that leaves a one-time ticket for the page.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import pty
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from deployex_actors.beam.launch import allowed_environment

log = logging.getLogger(__name__)
READ_BYTES = 64 * 1024
CLOSE_GRACE_S = 1.0
WRITE_WAIT_S = 0.05
TICKET_TTL_S = 60.0
TMUX_CONF = """\
# DeployEx's host terminal: a long history; the mouse stays with the browser (xterm.js
# selection and copy work); colours as xterm.js has them.
set -g history-limit 100000
set -g mouse off
set -g default-terminal "xterm-256color"
set -g status-right "DeployEx host terminal"
set -g escape-time 10
"""
SHORTCUTS = {
    "replica": (
        ("IEx (Elixir)", "h/0 help · i(term) · recompile · Ctrl-C twice or Ctrl-G q quits"),
        ("erl (Erlang, Gleam)", "help(). · q(). stops THE NODE; leave with Ctrl-G q"),
        ("both", "Tab completes · arrows browse history · the replica keeps running"),
    ),
    "deployex": (
        ("dx", "dx.status() · dx.versions(APP) · dx.events(app=APP) · dx.restart(APP)"),
        ("Python", "Ctrl-D or exit() leaves · Tab completes · arrows browse history"),
    ),
    "host": (
        ("tmux", "Ctrl-B c new window · Ctrl-B n / p next / previous · Ctrl-B [ scroll"),
        ("tmux", "Ctrl-B d detaches (closes this terminal) · exit ends the shell"),
    ),
}


@dataclass(frozen=True)
class Target:
    """What a terminal is attached to."""

    kind: str  # "replica" | "deployex" | "host"
    app: str = ""
    sname: str = ""

    @property
    def label(self) -> str:
        if self.kind == "replica":
            return f"{self.app}/{self.sname}"
        return "DeployEx" if self.kind == "deployex" else "host"

    @classmethod
    def parse(cls, kind: str | None, app: str | None = None, sname: str | None = None) -> Target:
        if kind == "replica" and app and sname:
            return cls("replica", app, sname)
        if kind in ("deployex", "host"):
            return cls(kind)
        raise ValueError(f"no terminal target {kind!r}")


# -- the process -----------------------------------------------------------------------------


def _controlling_tty() -> None:
    """In the child, after setsid: the terminal on stdin becomes its controlling tty."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class PtyProcess:
    """`argv` on a new pseudo-terminal, in a session of its own."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, rows: int, cols: int):
        main, secondary = pty.openpty()
        try:
            _set_size(secondary, rows, cols)
            self.proc = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=secondary,
                stdout=secondary,
                stderr=secondary,
                start_new_session=True,
                preexec_fn=_controlling_tty,
                close_fds=True,
            )
        except BaseException:
            os.close(main)
            raise
        finally:
            os.close(secondary)
        os.set_blocking(main, False)
        self.fd = main
        self.pid = self.proc.pid
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def read(self) -> str | None:
        """What the program wrote since the last read ("" if nothing); None once it is gone."""
        try:
            data = os.read(self.fd, READ_BYTES)
        except BlockingIOError:
            return ""
        except OSError:  # EIO: every holder of the terminal closed it
            return None
        return self._decoder.decode(data) if data else None

    def write(self, text: str) -> int:
        """Send typed or pasted text; returns the bytes dropped. This runs on the dashboard's
        event loop: a program that stops reading (a hung remote shell) gets WRITE_WAIT_S of
        patience per write, not the whole dashboard."""
        data = text.encode()
        deadline = time.monotonic() + WRITE_WAIT_S
        while data:
            try:
                data = data[os.write(self.fd, data) :]
            except BlockingIOError:
                if time.monotonic() > deadline:
                    log.warning("terminal %s: %d typed bytes dropped", self.pid, len(data))
                    return len(data)
                time.sleep(0.001)  # the terminal's input buffer is full: the program reads
            except OSError:
                return len(data)
        return 0

    def resize(self, rows: int, cols: int) -> None:
        with contextlib.suppress(OSError):
            _set_size(self.fd, rows, cols)

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def close(self) -> None:
        """SIGHUP to the whole group (as a closed terminal does), SIGKILL what is left."""
        for sig in (signal.SIGHUP, signal.SIGCONT):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(CLOSE_GRACE_S)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(CLOSE_GRACE_S)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", max(rows, 1), max(cols, 1), 0, 0))


# -- what runs -------------------------------------------------------------------------------


def base_environment() -> dict[str, str]:
    """The allow-list of beam.launch (never the dashboard's secrets) and a terminal type."""
    env = allowed_environment(os.environ)
    env.update(TERM="xterm-256color", COLORTERM="truecolor")
    env.setdefault("LANG", "C.UTF-8")
    return env


def deployex_shell_argv(config_path: Path | None) -> list[str]:
    argv = [sys.executable, "-P", "-m", "deployex_actors", "shell"]  # -P: see actors/web.py
    return [*argv, "--config", str(config_path)] if config_path else argv


class HostTmux:
    """tmux servers of host terminals, one per terminal, with sockets in `folder` (0700)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def prepare(self) -> Path:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        conf = self.folder / "tmux.conf"
        if not conf.exists() or conf.read_text() != TMUX_CONF:
            conf.write_text(TMUX_CONF)
        return conf

    def argv(self, name: str) -> list[str]:
        tmux = shutil.which("tmux")
        if tmux is None:
            raise FileNotFoundError("tmux is not installed on this host (apt-get install tmux)")
        conf = self.prepare()
        return [tmux, "-S", str(self.socket(name)), "-f", str(conf), "new-session", "-s", name]

    def socket(self, name: str) -> Path:
        return self.folder / f"{name}.sock"

    def kill(self, name: str) -> None:
        sock = self.socket(name)
        tmux = shutil.which("tmux")
        if tmux and sock.exists():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    [tmux, "-S", str(sock), "kill-server"],
                    capture_output=True,
                    timeout=5,
                    check=False,
                )
        with contextlib.suppress(OSError):
            sock.unlink()

    def kill_leftovers(self) -> int:
        """Servers of a dashboard that died without closing its terminals."""
        found = sorted(self.folder.glob("deployex-*.sock")) if self.folder.is_dir() else []
        for sock in found:
            self.kill(sock.name.removesuffix(".sock"))
        return len(found)


# -- the registry ----------------------------------------------------------------------------


@dataclass
class OpenTerminal:
    id: str
    target: Target
    sid: str  # the login session it belongs to
    actor: str
    process: PtyProcess
    opened_at: float
    last_active: float
    tmux_name: str | None = None
    on_close: list[Callable[[str], None]] = field(default_factory=list)


@dataclass(frozen=True)
class Ticket:
    sid: str
    target: Target
    actor: str
    expires_at: float


class Refused(Exception):
    """A terminal that may not be opened (limit, turned off, unknown target), said plainly."""


class Terminals:
    def __init__(self, limit: int, idle_s: float, tmux: HostTmux, enabled: bool = True) -> None:
        self.limit = limit
        self.idle_s = idle_s
        self.tmux = tmux
        self.enabled = enabled
        self.open: dict[str, OpenTerminal] = {}
        self.tickets: dict[str, Ticket] = {}

    # tickets: the POST leaves one, the page takes it
    def issue(self, sid: str, target: Target, actor: str, now: float) -> str:
        if not self.enabled:
            raise Refused("terminals are turned off in the configuration (terminals: false)")
        self.tickets = {k: t for k, t in self.tickets.items() if t.expires_at > now}
        ticket = secrets.token_urlsafe(24)
        self.tickets[ticket] = Ticket(sid, target, actor, now + TICKET_TTL_S)
        return ticket

    def redeem(self, ticket: str | None, sid: str, now: float) -> Ticket | None:
        found = self.tickets.pop(ticket or "", None)
        if found is None or found.sid != sid or found.expires_at <= now:
            return None
        return found

    def start(
        self, ticket: Ticket, argv: list[str], env: dict[str, str], cwd: str, size: tuple[int, int]
    ) -> OpenTerminal:
        if len(self.open) >= self.limit:
            raise Refused(
                f"{len(self.open)} terminals are open, the most this dashboard allows "
                f"(terminals_max: {self.limit}); close one first"
            )
        name = None
        if ticket.target.kind == "host":
            name = f"deployex-{secrets.randbelow(9000) + 1000}"
            while self.tmux.socket(name).exists():
                name = f"deployex-{secrets.randbelow(9000) + 1000}"
            argv = self.tmux.argv(name)
        process = PtyProcess(argv, env, cwd, *size)
        now = time.time()
        terminal = OpenTerminal(
            secrets.token_hex(8), ticket.target, ticket.sid, ticket.actor, process, now, now, name
        )
        self.open[terminal.id] = terminal
        return terminal

    def close(self, terminal_id: str, reason: str) -> OpenTerminal | None:
        terminal = self.open.pop(terminal_id, None)
        if terminal is None:
            return None
        terminal.process.close()
        if terminal.tmux_name:
            self.tmux.kill(terminal.tmux_name)
        for callback in terminal.on_close:
            with contextlib.suppress(Exception):
                callback(reason)
        return terminal

    def due(
        self, now: float, session_alive: Callable[[str], bool], running: Callable[[Target], bool]
    ) -> list[tuple[str, str]]:
        """(terminal id, reason) of every terminal that must close now."""
        found = []
        for terminal in self.open.values():
            if not session_alive(terminal.sid):
                found.append((terminal.id, "the login session ended"))
            elif terminal.process.exited():
                found.append((terminal.id, "the program exited"))
            elif now - terminal.last_active >= self.idle_s:
                found.append((terminal.id, f"idle for {self.idle_s:g} s"))
            elif terminal.target.kind == "replica" and not running(terminal.target):
                found.append((terminal.id, f"{terminal.target.sname} is no longer running"))
        return found

    def close_all(self, reason: str) -> None:
        for terminal_id in list(self.open):
            self.close(terminal_id, reason)


def csrf_token(cookie_secret: str, sid: str) -> str:
    """The token a terminal's open form carries: bound to the login session, unguessable."""
    key = hashlib.sha256(f"terminal-open:{cookie_secret}".encode()).digest()
    return hmac.new(key, sid.encode(), hashlib.sha256).hexdigest()


def csrf_ok(cookie_secret: str, sid: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(cookie_secret, sid), token or "")
