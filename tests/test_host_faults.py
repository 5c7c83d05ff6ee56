"""Host faults: a full disk under var_path loses no replica and no journal entry.

`var_path` is put on a tiny tmpfs that the test mounts (as root) and fills; the logs stay on the
ordinary disk, so what is tried is DeployEx's own state: pidfiles, the state database.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployex_actors.core.status import AppSnapshot
from deployex_actors.replica import pidfile
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.deployex_service import app_entry, publish, running_service, wait_banner, write_config

pytestmark = pytest.mark.slow
APP = "mygleamapp"  # its releases weigh kilobytes: the tiny disk holds the state, not the code
DISK_MB = 16


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(mount)],
                   check=True, timeout=30)  # fmt: skip
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True, timeout=30)


def fill(disk: Path) -> Path:
    """Write zeros until the disk says it is full; the file that filled it."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(chunk)
    with open(filler, "ab", buffering=0) as out, contextlib.suppress(OSError):
        while True:  # the last few kilobytes
            out.write(b"\0" * 4096)
    return filler


def serving(version: str, count: int = 3):
    def check(app: AppSnapshot) -> bool:
        ready = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(ready) == count == len(app.replicas)

    return check


def restarted(sname: str, old_pid: int):
    def check(app: AppSnapshot) -> bool:
        return any(r.sname == sname and r.pid not in (None, old_pid) and r.status == "running"
                   for r in app.replicas)  # fmt: skip

    return check


def replica(app: AppSnapshot, sname: str):
    return next(r for r in app.replicas if r.sname == sname)


def configured(tmp_path: Path, disk: Path, release_dist: ReleaseDist) -> Path:
    entry = app_entry(APP, ready_after_ms=1000)
    config = write_config(tmp_path, [entry], var_path=str(disk / "var"))
    publish(config, release_dist, APP, "0.1.0")
    return config


def test_a_full_disk_loses_no_replica_and_no_journal_entry(
    release_dist: ReleaseDist, tmp_path: Path, tiny_disk: Path
) -> None:
    config = configured(tmp_path, tiny_disk, release_dist)
    with running_service(config, tmp_path) as service:
        before = service.wait_app(APP, serving("0.1.0"), "three replicas")
        crashed, forced, _ = before.replicas
        filler = fill(tiny_disk)

        os.kill(crashed.pid, signal.SIGKILL)
        full = service.wait_app(APP, restarted(crashed.sname, crashed.pid), "crash-restarted")
        assert "pidfile not written" in (replica(full, crashed.sname).last_error or "")
        service.client().restart(APP, forced.sname, actor="test")
        service.wait_app(APP, restarted(forced.sname, forced.pid), "force-restarted while full")
        wait_until(lambda: service.status().state_error == "state database: disk full", 20,
                   "the full state database in status")  # fmt: skip

        filler.unlink()  # space is back
        wait_until(lambda: service.status().state_error is None, 20, "the state writable again")
        back = service.wait_app(
            APP, lambda a: serving("0.1.0")(a) and not any(r.last_error for r in a.replicas),
            "pidfiles written",
        )  # fmt: skip
        for r in back.replicas:
            record = pidfile.read(service.catalog.pidfile(APP, r.sname))
            assert record is not None and record.pid == r.pid
        # what happened while the disk was full is in the journal, in order
        kinds = [(e.kind, e.sname) for e in service.client().events(app=APP, limit=1000)][::-1]
        crash_at = kinds.index(("crash", crashed.sname))
        assert kinds.index(("forced_restart", forced.sname)) > crash_at
        assert ("pidfile_failed", crashed.sname) in kinds

        # a DeployEx restart adopts them all, and a rollout goes through
        service.kill_deployex()
        service.start()
        adopted = service.wait_app(APP, serving("0.1.0"), "adopted again")
        assert {r.sname: r.pid for r in adopted.replicas} == {r.sname: r.pid for r in back.replicas}
        publish(config, release_dist, APP, "0.2.0")
        after = service.wait_app(APP, serving("0.2.0"), "rolled to 0.2.0", deadline_s=90)
        wait_banner(after.replicas[0].ports["PORT"], f"{APP} 0.2.0\n")


def test_sigterm_with_a_full_disk_stops_everything_in_time(
    release_dist: ReleaseDist, tmp_path: Path, tiny_disk: Path
) -> None:
    config = configured(tmp_path, tiny_disk, release_dist)
    with running_service(config, tmp_path) as service:
        before = service.wait_app(APP, serving("0.1.0"), "three replicas")
        fill(tiny_disk)
        victim = before.replicas[0]
        os.kill(victim.pid, signal.SIGKILL)
        now = service.wait_app(APP, restarted(victim.sname, victim.pid), "crash-restarted")
        service.proc.send_signal(signal.SIGTERM)
        service.proc.wait(30)  # each replica gets SIGTERM, SIGKILL after 10 s: well within
        assert service.proc.returncode == 0
        for r in now.replicas:
            wait_until(lambda pid=r.pid: pidfile.process_start_ticks(pid) is None, 5,
                       f"replica {r.sname} stopped")  # fmt: skip
