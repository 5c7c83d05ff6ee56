"""Benchmark: what watching costs, with 10 and 50 replicas.

    .venv/bin/python -m tests.benchmarks.bench_watchdog [--replicas 10,50] [--seconds 20]

Runs a real `deployex run` with N mygleamapp replicas sampled every second and measures over
`--seconds`: CPU seconds per second of the Watchdog actor, of all Monitors together (they take
the replica samples over their links), and the duration of one full sweep (from the first to the
last replica sample of one period, read from the series).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from tests.beam_fixtures import build_releases
from tests.deployex_service import app_entry, publish, running_service, write_config

APP = "mygleamapp"


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def measure(replicas: int, seconds: float) -> dict[str, float]:
    dist = build_releases()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        entry = app_entry(APP, replicas=replicas, ready_after_ms=1000,
                          monitoring=[{"type": "process"}, {"type": "atom"}])  # fmt: skip
        config = write_config(tmp, [entry], monitoring=[{"type": "memory"}])
        publish(config, dist, APP, "0.1.0")
        with running_service(config, tmp) as service:
            app = service.wait_app(
                APP, lambda a: sum(r.otp == "connected" for r in a.replicas) == replicas,
                "replicas connected", 300,
            )  # fmt: skip
            monitors = [psutil.Process(r.pid).ppid() for r in app.replicas]
            deployer = psutil.Process(monitors[0]).ppid()
            root = psutil.Process(deployer).ppid()
            others = [c.pid for c in psutil.Process(root).children() if c.pid != deployer]
            dx = service.client()
            watchdog = next(p for p in others if _is_watchdog(p, dx))
            before = (cpu_seconds([watchdog]), cpu_seconds(monitors), time.monotonic())
            time.sleep(seconds)  # the measured interval itself
            after = (cpu_seconds([watchdog]), cpu_seconds(monitors), time.monotonic())
            elapsed = after[2] - before[2]
            sweeps = _sweep_durations(dx, [r.sname for r in app.replicas])
    return {
        "replicas": replicas,
        "watchdog_cpu_per_s": (after[0] - before[0]) / elapsed,
        "monitors_cpu_per_s": (after[1] - before[1]) / elapsed,
        "sweep_ms": statistics.median(sweeps) * 1000,
    }


def _is_watchdog(pid: int, dx) -> bool:
    # The Watchdog is the root's child that is neither Storage nor the Deployer: it is the one
    # that owns no SQLite file.
    try:
        return not any(f.path.endswith("deployex.db") for f in psutil.Process(pid).open_files())
    except psutil.Error:
        return False


def _sweep_durations(dx, snames: list[str]) -> list[float]:
    """Per sampling period (all Monitors sample at the same wall-clock instants): the time from
    the first replica's sample to the last one's."""
    by_second: dict[int, list[float]] = {}
    for sname in snames:
        for sample in dx.metrics(sname):
            by_second.setdefault(int(sample.at), []).append(sample.at)
    full = [times for times in by_second.values() if len(times) == len(snames)]
    return [max(t) - min(t) for t in full] or [0.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", default="10,50")
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    rows = [measure(int(n), args.seconds) for n in args.replicas.split(",")]
    print(f"{'replicas':>8} {'watchdog CPU s/s':>17} {'monitors CPU s/s':>17} "
          f"{'per replica ms/s':>17} {'sweep spread ms':>16}")  # fmt: skip
    for r in rows:
        per_replica = (r["watchdog_cpu_per_s"] + r["monitors_cpu_per_s"]) / r["replicas"] * 1000
        print(
            f"{r['replicas']:>8} {r['watchdog_cpu_per_s']:>17.4f} "
            f"{r['monitors_cpu_per_s']:>17.4f} {per_replica:>17.2f} {r['sweep_ms']:>16.1f}"
        )


if __name__ == "__main__":
    main()
