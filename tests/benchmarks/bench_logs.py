"""Benchmark: the log history with 10 replicas.

    .venv/bin/python -m tests.benchmarks.bench_logs [--replicas 10] [--seconds 10]

Runs a real `deployex run` with N mygleamapp replicas, then one writer process per replica
appending ~100-byte lines to the replica's stdout log, at a steady rate and then as fast as it
can. Prints, per phase: what the writers wrote, what the history stored (lines, MB/s), the CPU
the Logs actor's process spent (s per stored MB), and the skip markers (a file that outran its
budget). Then the idle cost of the Logs actor (writers stopped), and a 1-hour query over the N
replicas through the client (the whole round trip; the target is < 200 ms).
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.beam_fixtures import build_releases
from tests.deployex_service import Service, app_entry, publish, running_service, write_config

APP = "mygleamapp"
WRITER = """
import sys, time
path, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
line = b"x" * 90 + b" %08d\\n"
end, n, start = time.monotonic() + seconds, 0, time.monotonic()
with open(path, "ab", buffering=0) as out:
    while time.monotonic() < end:
        if rate:  # bytes per second: 100 writes a second
            want = int((time.monotonic() - start) * rate / 100)
            chunk = b"".join(line % (n + i) for i in range(max(want - n, 0)))
            n += max(want - n, 0)
            out.write(chunk)
            time.sleep(0.01)
        else:
            out.write(b"".join(line % (n + i) for i in range(640)))
            n += 640
print(n)
"""


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def stored(service: Service, snames: list[str]) -> tuple[int, int, int]:
    """Lines, bytes of text and skip markers kept for these snames."""
    uri = f"{service.catalog.logs_db.as_uri()}?mode=ro"
    marks = ", ".join("?" * len(snames))
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
        lines, size = db.execute(
            f"SELECT count(*), coalesce(sum(length(text)), 0) FROM lines WHERE sname IN ({marks})",  # noqa: S608
            snames,
        ).fetchone()
        (skips,) = db.execute(
            f"SELECT count(*) FROM lines WHERE sname IN ({marks}) AND text LIKE '%bytes skipped%'",  # noqa: S608
            snames,
        ).fetchone()
    return lines, size, skips


def phase(service: Service, logs_pid: int, snames: list[str], rate: float, seconds: float) -> None:
    before_lines, before_bytes, before_skips = stored(service, snames)
    cpu0, t0 = cpu_seconds(logs_pid), time.monotonic()
    argv = [sys.executable, "-c", WRITER]
    writers = [
        subprocess.Popen(
            [*argv, str(service.catalog.stdout_log(APP, s)), str(rate), str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for s in snames
    ]
    written = sum(int(w.communicate(timeout=seconds + 60)[0]) for w in writers)
    settle_end = time.monotonic() + 30
    last = -1
    while time.monotonic() < settle_end:  # until the history has caught up (or gave up)
        lines = stored(service, snames)[0]
        if lines == last:
            break
        last = lines
        time.sleep(0.5)  # poll the store while the actor drains the rest
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(logs_pid) - cpu0
    lines, size, skips = stored(service, snames)
    lines, size, skips = lines - before_lines, size - before_bytes, skips - before_skips
    label = f"{rate / 1e6:.2f} MB/s per writer" if rate else "as fast as possible"
    print(f"\n{len(snames)} writers, {label}, {seconds:g} s:")
    print(f"  written   {written:>10,} lines  {written * 100 / 1e6:8.1f} MB "
          f"({written * 100 / 1e6 / seconds:.1f} MB/s)")  # fmt: skip
    print(f"  stored    {lines:>10,} lines  {size / 1e6:8.1f} MB "
          f"({lines / elapsed:,.0f} lines/s, {size / 1e6 / elapsed:.1f} MB/s over {elapsed:.1f} s"
          f" incl. catch-up)")  # fmt: skip
    print(f"  skipped   {skips} marker lines (a file further behind than 8 MiB skips ahead)")
    print(f"  Logs CPU  {cpu:.2f} s = {cpu / max(size / 1e6, 1e-9):.3f} CPU-s per stored MB")


def idle(logs_pid: int, seconds: float) -> None:
    cpu0, t0 = cpu_seconds(logs_pid), time.monotonic()
    time.sleep(seconds)  # the measured interval itself
    cpu, elapsed = cpu_seconds(logs_pid) - cpu0, time.monotonic() - t0
    rss = psutil.Process(logs_pid).memory_full_info().uss / 2**20
    print(f"\nidle: the Logs actor spent {cpu:.3f} CPU-s in {elapsed:.0f} s "
          f"= {cpu * 60 / elapsed:.3f} CPU-s/min; its own memory (USS) {rss:.1f} MiB")  # fmt: skip


def queries(service: Service, snames: list[str]) -> None:
    dx = service.client()
    for title, kwargs in (
        ("1-hour query, newest 1000 (the CLI default)", {"limit": 1000}),
        ("1-hour query, newest 10000 (the page)", {"limit": 10000}),
        ("1-hour query, grep of a rare text", {"limit": 1000, "grep": "no such text"}),
    ):
        took, result = [], None
        for _ in range(5):
            start = time.perf_counter()
            result = dx.logs(APP, None, 3600, **kwargs)
            took.append((time.perf_counter() - start) * 1000)
        kept = len({x.sname for x in result.lines})
        print(f"\n{title} over {len(snames)} replicas: median {statistics.median(took):.0f} ms "
              f"(min {min(took):.0f}, max {max(took):.0f}); {len(result.lines)} lines from "
              f"{kept} replicas, capped={result.capped}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=100_000, help="bytes/s per steady writer")
    args = parser.parse_args()
    dist = build_releases()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        entry = app_entry(APP, replicas=args.replicas, ready_after_ms=1000)
        config = write_config(tmp, [entry], logs_max_bytes=1024**3)
        publish(config, dist, APP, "0.1.0")
        with running_service(config, tmp) as service:
            app = service.wait_app(APP, lambda a: sum(r.status == "running" for r in a.replicas)
                                   == args.replicas, "replicas running", 300)  # fmt: skip
            snames = [r.sname for r in app.replicas]
            (logs_pid,) = [p.pid for p in service.system_processes() if p.name() == "dx-Logs"]
            idle(logs_pid, 30)
            phase(service, logs_pid, snames, args.rate, args.seconds)
            phase(service, logs_pid, snames, 0, args.seconds)
            queries(service, snames)


if __name__ == "__main__":
    main()
