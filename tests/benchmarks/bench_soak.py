"""Benchmark: does any DeployEx process grow over a long run? A soak with the dashboard open.

    .venv/bin/python -m tests.benchmarks.bench_soak [--minutes 30] [--replicas 3] \
        [--retention-s 120] [--margin-s 60] [--every-s 10] [--watchdog-interval-ms 1000] \
        [--pages /applications,/plots] [--csv samples.csv] [--from-csv samples.csv]

Runs a real `deployex run` (local bucket, N replicas of mygleamapp 0.1.0, its Web actor serving
the dashboard) with a short `metrics_retention_time_ms`, so that every series the Watchdog and
the dashboard keep is full early; keeps one headless Chromium tab per `--pages` entry open on the
dashboard; and every `--every-s` seconds reads, for every DeployEx process, its RSS, USS, PSS
and open descriptors. Processes are named by role: launcher, admin, logger, Root, Storage, Watchdog,
Web, Deployer, one Monitor per replica (by sname), and the dashboard.

After the warm-up (the retention window plus `--margin-s`), it fits a least-squares line through
each process's readings and prints the slopes per hour: RSS, USS and PSS in MB/h, fds per hour.
The target is under 0.2 MB/h of RSS for every process, and fds that do not keep rising. USS and
PSS are shown too, but are no verdict: the actors are forks of one another, so a page a sibling
copies on write becomes private (USS up) and a process that exits or starts moves PSS.
`--watchdog-interval-ms 100` samples the replicas ten times as often: a per-sample leak then shows
ten times sooner.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.beam_fixtures import build_releases
from tests.benchmarks.bench_dashboard import open_sessions
from tests.browser import chromium, dashboard_secrets, listening_pid, running_dashboard
from tests.deployex_service import Service, app_entry, publish, running_service, write_config

APP = "mygleamapp"
MB = 1024 * 1024
TARGET_MB_PER_H = 0.2
ROLES_EVERY = 30  # readings between two looks at the process tree


@dataclass(frozen=True)
class Reading:
    at: float  # seconds since the service answered
    rss: int
    uss: int  # pages only this process holds; also rises when a fork sibling copies a shared page
    pss: int  # shared pages split among their holders: moves when other processes come and go
    fds: int


@dataclass
class Series:
    role: str
    pid: int
    readings: list[Reading] = field(default_factory=list)


# -- which process is which ----------------------------------------------------------------------


def _parent(pid: int) -> int | None:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).ppid()
    return None


def roles(service: Service, dashboard_pid: int) -> dict[str, int]:
    """Role -> pid for every process of the running service. Each actor names its process
    `dx-CLASS`; the rest is read from the tree: launcher -> admin -> {logger, Root -> ...}.
    An adopting Monitor is not its replica's parent: "Monitor ?"."""
    found = {"launcher": service.proc.pid, "admin": admin_pid(service)}
    monitors = {}
    for app in service.status().apps:
        for replica in app.replicas:
            parent = _parent(replica.pid) if replica.pid else None
            if parent is not None:
                monitors[parent] = replica.sname
    for proc in service.system_processes():
        with contextlib.suppress(psutil.Error):
            name = proc.name()
            if name.startswith("dx-"):
                role = name.removeprefix("dx-")
                if role == "Monitor":
                    role = f"Monitor {monitors.get(proc.pid, '?')}"
                _add(found, role, proc.pid)
            elif proc.ppid() == found["admin"]:
                _add(found, "logger", proc.pid)
    _add(found, "dashboard", dashboard_pid)
    return found


def admin_pid(service: Service) -> int:
    """The top of the actor system's session (the admin port's socket is inherited by the
    logger, so the listener alone does not tell)."""
    system = {p.pid: p for p in service.system_processes()}
    tops = [pid for pid, p in system.items() if _parent(pid) not in system]
    if len(tops) != 1:
        raise AssertionError(f"no single admin among {sorted(system)}: {tops}")
    return tops[0]


def _add(found: dict[str, int], role: str, pid: int) -> None:
    found[role if role not in found else f"{role} {pid}"] = pid


# -- sampling ------------------------------------------------------------------------------------


def read(pid: int, at: float) -> Reading | None:
    try:
        proc = psutil.Process(pid)
        memory = proc.memory_full_info()  # PSS: shared copy-on-write pages split among forks
        return Reading(at, memory.rss, memory.uss, memory.pss, proc.num_fds())
    except psutil.Error:
        return None


def sample(series: dict[tuple[str, int], Series], found: dict[str, int], at: float) -> None:
    for role, pid in found.items():
        reading = read(pid, at)
        if reading is not None:
            series.setdefault((role, pid), Series(role, pid)).readings.append(reading)


def slope_per_h(readings: list[Reading], value: str, scale: float = 1.0) -> float | None:
    if len(readings) < 3:
        return None
    times = [r.at for r in readings]
    values = [getattr(r, value) / scale for r in readings]
    return statistics.linear_regression(times, values).slope * 3600


# -- the run -------------------------------------------------------------------------------------


@contextlib.contextmanager
def soak_service(args: argparse.Namespace, tmp: Path) -> Iterator[tuple[Service, Any, Any]]:
    """DeployEx with N replicas and its dashboard, and a Chromium with the pages open."""
    dist = build_releases()
    secrets = dashboard_secrets()
    os.environ.update(secrets)
    entry = app_entry(APP, replicas=args.replicas, monitoring=[{"type": "process"}])
    config = write_config(
        tmp,
        [entry],
        dashboard_enabled=True,
        monitoring=[{"type": "memory"}],
        metrics_retention_time_ms=int(args.retention_s * 1000),
        watchdog_interval_ms=args.watchdog_interval_ms,
    )
    publish(config, dist, APP, "0.1.0")
    with (
        running_service(config, tmp) as service,
        running_dashboard(config, tmp, secrets) as dashboard,
        chromium() as browser,
    ):
        service.wait_app(APP, lambda a: _all_connected(a, args.replicas), "replicas up", 300)
        pages = []
        for path in args.pages.split(","):
            pages.extend(c.pages[0] for c in open_sessions(browser, dashboard, 1, path))
        yield service, dashboard, pages


def _all_connected(app: Any, replicas: int) -> bool:
    ready = [r for r in app.replicas if r.status == "running" and r.otp == "connected"]
    return len(ready) == replicas == len(app.replicas)


def soak(args: argparse.Namespace) -> dict[tuple[str, int], Series]:
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        soak_service(args, Path(tmp_name)) as (service, dashboard, pages),
    ):
        series = readings(args, service, listening_pid(int(dashboard.url.rsplit(":", 1)[1])),
                          pages[0])  # fmt: skip
        for page in pages:  # the pages were live to the end
            page.locator(".dx-nav").wait_for(timeout=10_000)
    return series


def readings(
    args: argparse.Namespace, service: Service, dashboard_pid: int, page: Any
) -> dict[tuple[str, int], Series]:
    series: dict[tuple[str, int], Series] = {}
    started = time.monotonic()
    found = roles(service, dashboard_pid)
    print(f"soaking {args.minutes:g} min; processes: {found}", flush=True)
    for tick in range(int(args.minutes * 60 / args.every_s) + 1):
        if tick and tick % ROLES_EVERY == 0:  # a Monitor may have been restarted
            found = roles(service, dashboard_pid)
        sample(series, found, time.monotonic() - started)
        wait_s = started + (tick + 1) * args.every_s - time.monotonic()
        # Wait through Playwright, so that the pages' events are taken while we wait.
        page.wait_for_timeout(max(0.0, wait_s) * 1000)
    return series


# -- the report ----------------------------------------------------------------------------------


def report(series: dict[tuple[str, int], Series], warmup_s: float) -> None:
    print(f"\nslopes after the warm-up ({warmup_s:g} s), least squares; target < "
          f"{TARGET_MB_PER_H} MB/h of RSS, fds not rising")  # fmt: skip
    header = (
        f"{'process':<27} {'pid':>7} {'n':>4} {'RSS MB':>7} {'RSS MB/h':>9} {'2nd half':>9} "
        f"{'USS MB/h':>9} {'PSS MB/h':>9} {'fds':>7} {'fds/h':>6}  verdict"
    )
    print(header)
    print("-" * len(header))
    for s in sorted(series.values(), key=lambda s: (_order(s.role), s.role)):
        after = [r for r in s.readings if r.at >= warmup_s]
        rss_h, uss_h = slope_per_h(after, "rss", MB), slope_per_h(after, "uss", MB)
        late_h = slope_per_h(after[len(after) // 2 :], "rss", MB)
        pss_h, fds_h = slope_per_h(after, "pss", MB), slope_per_h(after, "fds")
        fds = f"{min(r.fds for r in s.readings)}-{max(r.fds for r in s.readings)}"
        print(
            f"{s.role:<27} {s.pid:>7} {len(after):>4} {s.readings[-1].rss / MB:>7.1f} "
            f"{_fmt(rss_h):>9} {_fmt(late_h):>9} {_fmt(uss_h):>9} {_fmt(pss_h):>9} {fds:>7} "
            f"{_fmt(fds_h, 1):>6}  {_verdict(after, rss_h, late_h)}"
        )


def _order(role: str) -> int:
    names = ["launcher", "admin", "logger", "Root", "Storage", "Watchdog", "Web", "Deployer"]
    names += ["Monitor", "dashboard"]
    return next((i for i, name in enumerate(names) if role.startswith(name)), len(names))


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:+.{digits}f}"


def _verdict(after: list[Reading], rss_h: float | None, late_h: float | None) -> str:
    """GROWS only when the second half still rises: the allocator and SQLite's page cache grow
    in steps early on (a step of 0.3-0.6 MB in the first 20 minutes, then flat) and a line
    through a step is steep while nothing grows any more."""
    if rss_h is None or late_h is None:
        return "too few readings"
    third = len(after) // 3
    # A descriptor count moves by one or two as connections come and go; a leak keeps rising:
    # the last third of the readings never comes back down to the first third's highest.
    fds_rise = min(r.fds for r in after[-third:]) > max(r.fds for r in after[:third])
    grows = min(rss_h, late_h) >= TARGET_MB_PER_H
    stepped = rss_h >= TARGET_MB_PER_H and not grows
    words = [*(["GROWS"] if grows else []), *(["stepped, then flat"] if stepped else [])]
    return ", ".join([*words, *(["fds rise"] if fds_rise else [])]) or "flat"


def write_csv(series: dict[tuple[str, int], Series], path: Path) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["role", "pid", "at_s", "rss", "uss", "pss", "fds"])
        for s in series.values():
            for r in s.readings:
                writer.writerow([s.role, s.pid, f"{r.at:.1f}", r.rss, r.uss, r.pss, r.fds])


def read_csv(path: Path) -> dict[tuple[str, int], Series]:
    """A run saved with --csv, to read it again (e.g. with this version's verdicts)."""
    series: dict[tuple[str, int], Series] = {}
    with path.open(newline="") as source:
        for row in csv.DictReader(source):
            key = (row["role"], int(row["pid"]))
            values = (float(row["at_s"]), *(int(row[k]) for k in ("rss", "uss", "pss", "fds")))
            series.setdefault(key, Series(*key)).readings.append(Reading(*values))
    return series


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--retention-s", type=float, default=120)
    parser.add_argument("--margin-s", type=float, default=60, help="warm-up after the retention")
    parser.add_argument("--every-s", type=float, default=10, help="seconds between readings")
    parser.add_argument("--watchdog-interval-ms", type=int, default=1000)
    parser.add_argument("--pages", default="/applications,/plots")
    parser.add_argument("--csv", type=Path, help="also write every reading to this file")
    parser.add_argument("--from-csv", type=Path, help="no run: report on a saved --csv file")
    args = parser.parse_args()
    if args.from_csv:
        report(read_csv(args.from_csv), args.retention_s + args.margin_s)
        return
    series = soak(args)
    if args.csv:
        write_csv(series, args.csv)
    report(series, args.retention_s + args.margin_s)


if __name__ == "__main__":
    main()
