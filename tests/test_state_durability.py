"""The state survives `kill -9` in the middle of a write, and readers in other processes see it.

A real writer process (tests/state_writer.py) writes rows in a loop, one transaction per
iteration, and reports each commit on stdout. The test waits for progress, SIGKILLs it, reopens
the file, and checks that every committed iteration is there, whole, and nothing else is. One
round kills the writer while it holds a transaction whose pages are already in the WAL file, so
the "torn write" case is exercised every run, not only when the timing happens to fall right.
"""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from deployex_actors.state import StateStore
from tests import state_writer

ROOT = Path(__file__).resolve().parents[1]
COMMITS_PER_ROUND = 40
WAL_HEADER = 32
WAL_FRAME_HEADER = 24
DEADLINE_S = 60.0


def start_writer(
    db: Path, start: int, stderr: Path, hold: int | None = None
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "tests.state_writer", str(db), str(start)]
    with stderr.open("ab") as err:
        return subprocess.Popen(
            [*argv, *([] if hold is None else [str(hold)])],
            cwd=ROOT,
            # A pipe we never write to: a holding writer blocks on it until it is killed.
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
        )


class Reports:
    """The writer's stdout: `i` once iteration i committed, `open i` while it holds i open."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc, self.fd = proc, proc.stdout.fileno()
        self.pending, self.last, self.holding = b"", -1, -1

    def take(self, chunk: bytes) -> None:
        # A trailing fragment without its newline stays pending until the rest arrives.
        *lines, self.pending = (self.pending + chunk).split(b"\n")
        for line in filter(None, lines):
            if line.startswith(b"open "):
                self.holding = int(line.removeprefix(b"open "))
            else:
                self.last = max(self.last, int(line))

    def wait_for_commit(self, i: int, stderr: Path) -> None:
        self._read_until(lambda: self.last >= i, stderr)

    def wait_for_hold(self, i: int, stderr: Path) -> None:
        self._read_until(lambda: self.holding == i, stderr)

    def _read_until(self, done: Callable[[], bool], stderr: Path) -> None:
        """Read reports until `done()` holds, with a deadline."""
        end = time.monotonic() + DEADLINE_S
        while not done():
            remaining = end - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"writer reached only {self.last} in {DEADLINE_S} s")
            readable, _, _ = select.select([self.fd], [], [], remaining)
            chunk = os.read(self.fd, 65536) if readable else b""
            if readable and not chunk:
                pytest.fail(f"writer exited with {self.proc.wait()}: {stderr.read_text()}")
            self.take(chunk)

    def kill_9(self) -> None:
        """SIGKILL the writer, then read what it reported before it died."""
        if self.proc.poll() is None:  # it may already have died, failing the test
            os.kill(self.proc.pid, signal.SIGKILL)
            assert self.proc.wait() == -signal.SIGKILL
        assert self.proc.stdout is not None
        self.take(self.proc.stdout.read())
        for pipe in (self.proc.stdin, self.proc.stdout):
            assert pipe is not None
            pipe.close()


def uncommitted_wal_frames(db: Path) -> int:
    """Frames at the end of the WAL file that belong to no committed transaction.

    WAL format (sqlite.org/fileformat2.html#walformat): a 32-byte header with the page size at
    offset 8 and the salts at 16; then frames of a 24-byte header plus one page, where a non-zero
    "database size" field marks a commit frame and frames of the current generation repeat the
    header's salts.
    """
    wal = db.with_name(db.name + "-wal").read_bytes()
    (page_size,) = struct.unpack(">I", wal[8:12])
    salts, frame_size = wal[16:24], WAL_FRAME_HEADER + page_size
    since_commit = 0
    for offset in range(WAL_HEADER, len(wal) - frame_size + 1, frame_size):
        if wal[offset + 8 : offset + 16] != salts:
            break
        (db_size,) = struct.unpack(">I", wal[offset + 4 : offset + 8])
        since_commit = 0 if db_size else since_commit + 1
    return since_commit


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def committed_iterations(store: StateStore) -> int:
    """Check that iterations 0..n-1 are all present and whole, and nothing else; return n."""
    events = store.events(app=state_writer.APP, limit=1_000_000)
    versions = store.versions(state_writer.APP)
    sequence = sorted(state_writer.sequence_of(event.message) for event in events)
    assert sequence == list(range(len(events))), "journal has a gap or a duplicate"
    assert len(versions) == len(events), "a transaction was committed only in part"
    for event in events:
        i = state_writer.sequence_of(event.message)
        assert event.message == state_writer.message_for(i)
        assert (event.kind, event.actor, event.sname) == ("tick", "state_writer", "writer-abc123")
    by_version = {record.version: record for record in versions}
    for i in range(len(events)):
        record = by_version[state_writer.version_for(i)]
        assert record.hash == state_writer.hash_for(i)
        assert record.pre_commands == state_writer.pre_commands_for(i)
    return len(events)


def kill_and_check(db: Path, reports: Reports) -> int:
    """After the kill: the file is sound and holds exactly the committed iterations; return n."""
    assert integrity(db) == "ok"
    with StateStore(db) as store:
        found = committed_iterations(store)
    # Everything reported is there; at most the iteration in flight committed unreported.
    assert reports.last + 1 <= found <= reports.last + 2
    return found


@pytest.mark.slow
def test_a_kill_9_at_any_moment_keeps_every_committed_row_whole(tmp_path: Path) -> None:
    db, stderr = tmp_path / "deployex.db", tmp_path / "writer.err"
    StateStore(db).close()
    committed = 0
    for _ in range(3):
        reports = Reports(start_writer(db, committed, stderr))
        try:
            reports.wait_for_commit(committed + COMMITS_PER_ROUND, stderr)
        finally:
            reports.kill_9()
        committed = kill_and_check(db, reports)

    with StateStore(db) as store:
        store.journal("restart", "after the kills", actor="test", app=state_writer.APP)
        store.add_version(state_writer.APP, state_writer.SNAME, "2.0.0")
        latest = store.latest_version(state_writer.APP)
        assert latest is not None
        assert latest.version == "2.0.0"
        assert store.events(app=state_writer.APP, limit=1)[0].message == "after the kills"


@pytest.mark.slow
def test_a_kill_9_inside_a_transaction_already_in_the_wal_leaves_no_trace(
    tmp_path: Path,
) -> None:
    db, stderr = tmp_path / "deployex.db", tmp_path / "writer.err"
    StateStore(db).close()
    hold = COMMITS_PER_ROUND
    reports = Reports(start_writer(db, 0, stderr, hold=hold))
    try:
        reports.wait_for_hold(hold, stderr)
        # A reader sees every iteration the writer process committed, none of the open one.
        with StateStore(db, readonly=True) as reader:
            assert committed_iterations(reader) == hold
    finally:
        reports.kill_9()

    assert uncommitted_wal_frames(db) > 0, "the open transaction never reached the WAL file"
    assert kill_and_check(db, reports) == hold
    with StateStore(db) as store:
        [newest] = store.events(app=state_writer.APP, limit=1)
    assert newest.message == state_writer.message_for(hold - 1)
