"""Benchmark: a rollout 0.1.0 -> 0.2.0 as a hot upgrade and as a full deployment, same tarballs.

    .venv/bin/python -m tests.benchmarks.bench_hot_upgrade [--apps myerlangapp,myelixirapp] \
        [--replicas 3]

For each app, two real `deployex run`s with N replicas of the fixture's 0.1.0: one with
`hot_upgrade: true` (the default), one with `hot_upgrade: false`. In each, 0.2.0 is published and
the time until every replica runs 0.2.0 and is ready is taken (from the publish: it includes up
to one `deploy_schedule_interval_ms`, 500 ms here, before the Deployer reads current.json). For
the hot run it also prints, from the journal, each replica's time in place ("begins" to "done")
and the median time of each release_handler step. Target: < 1 s per replica hot.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from tests.beam_fixtures import build_releases
from tests.deployex_service import app_entry, publish, running_service, write_config

FROM, TO = "0.1.0", "0.2.0"


def all_on(version: str, count: int):
    def check(app) -> bool:
        ready = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(ready) == count == len(app.replicas)

    return check


def rollout(app: str, replicas: int, hot: bool) -> tuple[float, list]:
    dist = build_releases()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        entry = app_entry(app, replicas=replicas, hot_upgrade=hot)
        config = write_config(tmp, [entry])
        publish(config, dist, app, FROM)
        with running_service(config, tmp) as service:
            service.wait_app(app, all_on(FROM, replicas), f"{replicas} replicas of {FROM}", 120)
            started = time.monotonic()
            publish(config, dist, app, TO)
            service.wait_app(app, all_on(TO, replicas), f"{replicas} replicas of {TO}", 300)
            elapsed = time.monotonic() - started
            events = service.client().events(app=app, limit=2000)[::-1]  # oldest first
    return elapsed, events


def in_place(events: list) -> tuple[list[float], dict[str, list[float]]]:
    """Per replica, "begins" to "done"; per step name, its durations (to the next step or done)."""
    marks: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for e in events:
        if e.kind in ("hot_upgrade", "hot_upgrade_step", "hot_upgraded") and e.sname:
            marks[e.sname].append((e.kind, e.message, e.at.timestamp()))
    totals, steps = [], defaultdict(list)
    for sname_marks in marks.values():
        begun = next(at for kind, _m, at in sname_marks if kind == "hot_upgrade")
        done = next((at for kind, _m, at in sname_marks if kind == "hot_upgraded"), None)
        if done is None:
            continue
        totals.append(done - begun)
        stepped = [(m.split(": ", 1)[-1], at) for kind, m, at in sname_marks
                   if kind == "hot_upgrade_step"]  # fmt: skip
        ends = [*stepped[1:], ("done", done)]
        for (name, at), (_next, next_at) in zip(stepped, ends, strict=True):
            steps[name].append(next_at - at)
    return totals, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="myerlangapp,myelixirapp")
    parser.add_argument("--replicas", type=int, default=3)
    args = parser.parse_args()
    for app in args.apps.split(","):
        hot_s, events = rollout(app, args.replicas, hot=True)
        full_s, _ = rollout(app, args.replicas, hot=False)
        totals, steps = in_place(events)
        print(f"\n{app}, {args.replicas} replicas, {FROM} -> {TO}, from publish to all ready:")
        print(f"  hot upgrade      {hot_s:6.2f} s")
        print(f"  full deployment  {full_s:6.2f} s")
        if totals:
            print(f"  in place per replica: median {statistics.median(totals):.3f} s, "
                  f"max {max(totals):.3f} s (target < 1 s)")  # fmt: skip
        for name, durations in steps.items():
            print(f"    {name:<26} median {statistics.median(durations) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
