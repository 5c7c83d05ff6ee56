"""A writer process for the kill -9 test: writes to a StateStore in a loop until it is killed.

Run as `python -m tests.state_writer DB START [HOLD]`. Iteration i writes one journal event and
one version record in a single transaction, then prints `i` on stdout, so every number printed is
committed. The expected content of row i is a pure function of i, shared with the test, so a
reader can tell a complete row from a partial one.

Iteration HOLD instead writes an oversized journal row, prints `open HOLD` and waits inside its
transaction for the kill. The row is larger than SQLite's page cache, so SQLite has already spilled
part of it into the WAL file as frames of a transaction that never commits: the kill lands
mid-write for certain, rather than by luck of timing.
"""

from __future__ import annotations

import hashlib
import sys
from itertools import count
from pathlib import Path

from deployex_actors.state import StateStore

APP = "writer"
SNAME = "writer-abc123"
ACTOR = "state_writer"


def message_for(i: int) -> str:
    digest = hashlib.sha256(str(i).encode()).hexdigest()
    return f"{i} " + digest * 250  # ~16 KB: four pages at the default page size


def oversized_message_for(i: int) -> str:
    return f"{i} " + "uncommitted " * 400_000  # ~4.8 MB, well past the default 2 MB page cache


def version_for(i: int) -> str:
    return f"1.0.{i}"


def hash_for(i: int) -> str:
    return hashlib.md5(str(i).encode()).hexdigest()  # noqa: S324 (a fingerprint, not security)


def pre_commands_for(i: int) -> tuple[str, ...]:
    return tuple(f"eval Migrator.step({i}, {n}) # {'x' * 200}" for n in range(20))


def sequence_of(message: str) -> int:
    return int(message.split(" ", 1)[0])


def hold_open_transaction(store: StateStore, i: int) -> None:
    with store.transaction():
        store.journal("tick", oversized_message_for(i), actor=ACTOR, app=APP, sname=SNAME)
        print(f"open {i}", flush=True)
        sys.stdin.readline()  # the test kills us here
        raise SystemExit("not killed while holding a transaction open")


def main(db: Path, start: int, hold: int | None) -> None:
    with StateStore(db) as store:
        for i in count(start):
            if i == hold:
                hold_open_transaction(store, i)
            with store.transaction():
                store.journal("tick", message_for(i), actor=ACTOR, app=APP, sname=SNAME)
                store.add_version(
                    APP, SNAME, version_for(i), hash=hash_for(i), pre_commands=pre_commands_for(i)
                )
            print(i, flush=True)


if __name__ == "__main__":
    hold = int(sys.argv[3]) if len(sys.argv) > 3 else None
    main(Path(sys.argv[1]), int(sys.argv[2]), hold)
