"""Web: runs the dashboard server (`python -m dashboards.serve`) as a supervised child process.

The dashboard is a separate process (Panel is never imported into the actor system); it attaches
to the actor system through the client facade. If it dies it is started again after a backoff
that grows with consecutive failures; it dies with this actor (PR_SET_PDEATHSIG), so a restarted
Web never meets an old dashboard holding the port.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

from deployex_actors.actors.base import DeployexActor
from deployex_actors.actors.messages import StartWeb, Timer
from deployex_actors.catalog import Catalog
from deployex_actors.core.backoff import (
    SupervisorPolicy,
    actor_restart_delay_s,
    next_failure_streak,
)
from deployex_actors.replica.process import open_pidfd

log = logging.getLogger(__name__)
POLICY = SupervisorPolicy(base_s=0.5, cap_s=30.0, healthy_after_s=30.0)
PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 5.0


def _die_with_parent() -> None:
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Web(DeployexActor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start: StartWeb | None = None
        self.proc: subprocess.Popen | None = None
        self.pidfd: int | None = None
        self.started_at = 0.0
        self.streak = 0

    def receiveMsg_StartWeb(self, message: StartWeb, sender: Any) -> None:
        self.start = message
        self._spawn()

    def _spawn(self) -> None:
        config = self.start.config
        catalog = Catalog.from_config(config)
        env = dict(os.environ)
        env.update(
            DEPLOYEX_ADMIN_HASHED_PASSWORD=self.start.admin_hashed_password,
            DEPLOYEX_SECRET_KEY_BASE=self.start.secret_key_base,
        )
        # -P: not the working directory first on the path (a checkout there, or a planted
        # `dashboards/`, would be imported instead of this installation's)
        argv = [sys.executable, "-P", "-m", "dashboards.serve", "--config", str(config.source)]
        log_file = catalog.log_path / "dashboard.log"
        with open(log_file, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,  # only a prctl before exec: safe in a fork
                close_fds=True,
            )
        self.started_at = time.monotonic()
        self.pidfd = open_pidfd(self.proc.pid)
        if self.pidfd is not None:
            self.watch(self.pidfd, self._exited)
        log.info("dashboard started (pid %d) on port %d", self.proc.pid, config.port)

    def _exited(self) -> None:
        self.unwatch(self.pidfd)
        self.pidfd = None
        code = self.proc.wait() if self.proc else None
        self.proc = None
        self.streak = next_failure_streak(self.streak, time.monotonic() - self.started_at, POLICY)
        delay = actor_restart_delay_s(self.streak, POLICY)
        log.warning("dashboard exited with %s; starting it again in %.1f s", code, delay)
        self.after(delay, "start")

    def on_timer(self, timer: Timer) -> None:
        if timer.kind == "start" and self.proc is None:
            self._spawn()

    def receiveMsg_ActorExitRequest(self, message: Any, sender: Any) -> None:
        if self.proc is None:
            return
        self.unwatch(self.pidfd)
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        try:
            self.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
