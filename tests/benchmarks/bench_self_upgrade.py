"""Benchmark: DeployEx upgrading itself, as its users and its replicas' users see it.

    .venv/bin/python -m tests.benchmarks.bench_self_upgrade [--replicas 3] [--rounds 2]

An installation under a temporary `install_path` (the running version, as the installer lays it
out), a real `deployex run` started through `current/bin/deployex`, N Gleam replicas, and two
probers at 20 Hz: one connects to every replica's port (a refused or silent port counts), one
asks DeployEx for its status over the actor system. Each round runs `deployex upgrade WHEEL`
to a bumped version, then `deployex upgrade --rollback`. Printed: the time of each command, the
longest time DeployEx did not answer, replica restarts (pid changes, crash and forced restarts)
and refused connections. Target: 0 restarts, 0 refused connections.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from deployex_actors import __version__
from deployex_actors.client import DeployEx
from deployex_actors.upgrade.install import Layout, install, switch
from deployex_actors.upgrade.wheel import inspect_wheel
from tests.beam_fixtures import build_releases, wait_until
from tests.deployex_service import (
    app_entry,
    publish,
    running_service,
    wait_banner,
    write_config,
)
from tests.probes import Prober
from tests.wheels import build_wheel

APP = "mygleamapp"


class StatusProber:
    """Asks DeployEx for its status every 50 ms; keeps the longest stretch without an answer."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.longest_gap = 0.0
        self.answers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last_ok, dx = time.monotonic(), None
        while not self._stop.wait(0.05):
            try:
                dx = dx or DeployEx.attach(str(self.config), timeout=2)
                dx.status()
                now = time.monotonic()
                self.longest_gap = max(self.longest_gap, now - last_ok)
                last_ok, self.answers = now, self.answers + 1
            except Exception:  # restarting: attach again
                if dx is not None:
                    dx.close()
                dx = None

    def __enter__(self) -> StatusProber:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    dist = build_releases()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        new = f"{__version__}.post1"
        running_wheel, new_wheel = build_wheel(tmp / "w"), build_wheel(tmp / "w", new)
        layout = Layout(tmp / "opt" / "deployex")
        install(inspect_wheel(running_wheel), layout, say=lambda _: None)
        switch(layout, __version__)
        entry = app_entry(APP, replicas=args.replicas, ready_after_ms=300)
        config = write_config(tmp, [entry], install_path=str(layout.root))
        publish(config, dist, APP, "0.1.0")
        deployex = str(layout.command())
        with running_service(config, tmp, env=env, deployex=deployex) as service:
            app = service.wait_app(APP, lambda a: len(a.replicas) == args.replicas and all(
                r.status == "running" for r in a.replicas), "replicas running", 120)  # fmt: skip
            pids = {r.sname: r.pid for r in app.replicas}
            for replica in app.replicas:  # "running" may come before the listener is up
                wait_banner(replica.ports["PORT"], f"{APP} 0.1.0\n")
            timings: list[tuple[str, float]] = []
            with Prober([r.ports["PORT"] for r in app.replicas]).running() as prober, \
                    StatusProber(config) as status:  # fmt: skip
                wait_until(lambda: len(prober.counts) > 5 and status.answers > 5, 20, "probers")
                for _ in range(args.rounds):
                    for argv in ([str(new_wheel)], ["--rollback"]):
                        started = time.monotonic()
                        subprocess.run([deployex, "upgrade", *argv, "--yes", "--config",
                                        str(config)], check=True, env=env,
                                       capture_output=True, timeout=600)  # fmt: skip
                        timings.append((argv[0].rsplit("/", 1)[-1], time.monotonic() - started))
            after = service.app(APP)
    restarts = sum(r.crash_restarts + r.forced_restarts for r in after.replicas)
    moved = sum(1 for r in after.replicas if pids.get(r.sname) != r.pid)
    refused = sum(args.replicas - c for c in prober.counts)
    print(f"self-upgrade, {args.replicas} Gleam replicas, {args.rounds} rounds of upgrade + "
          f"rollback")  # fmt: skip
    for what, seconds in timings:
        print(f"  deployex upgrade {what:<40} {seconds:6.2f} s")
    print(f"  DeployEx not answering (longest gap)      {status.longest_gap:6.2f} s")
    print(f"  replica restarts / pids changed           {restarts} / {moved}   (target 0 / 0)")
    print(f"  refused or silent replica probes          {refused} of "
          f"{len(prober.counts) * args.replicas}   (target 0)")  # fmt: skip


if __name__ == "__main__":
    main()
