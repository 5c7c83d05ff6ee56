"""Benchmark: DeployEx's own overhead per replica in a rolling deployment.

    .venv/bin/python -m tests.benchmarks.bench_rollout [--replicas 3,10] [--ready-ms 1000]

Rolls N replicas of the mygleamapp fixture from 0.1.0 to 0.2.0 under a real `deployex run` and
reads the journal: the app's own time is, per replica, boot + ready (`started` -> `ready` of the
new one) plus shutdown (`retire` -> `stopped` of the old one); what is left of the rollout's
wall time is DeployEx's (download, unpack, decisions, messages). The delay until the new
current.json is noticed (at most deploy_schedule_interval_ms) is shown apart.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tests.beam_fixtures import build_releases
from tests.deployex_service import app_entry, publish, running_service, write_config

APP = "mygleamapp"


def serving(version: str, count: int):
    def check(app) -> bool:
        ready = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(ready) == count and len(app.replicas) == count

    return check


def roll(replicas: int, ready_ms: int, interval_ms: int) -> dict[str, float]:
    dist = build_releases()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        entry = app_entry(APP, replicas=replicas, ready_after_ms=ready_ms,
                          deploy_schedule_interval_ms=interval_ms)  # fmt: skip
        config = write_config(tmp, [entry])
        publish(config, dist, APP, "0.1.0")
        with running_service(config, tmp) as service:
            service.wait_app(APP, serving("0.1.0", replicas), "0.1.0 up", 300)
            began = time.time()
            publish(config, dist, APP, "0.2.0")
            service.wait_app(APP, serving("0.2.0", replicas), "0.2.0 rolled", 600)
            log = [e for e in service.client().events(app=APP, limit=100_000)
                   if e.at.timestamp() >= began][::-1]  # fmt: skip
    at = {}
    for event in log:
        at.setdefault((event.kind, event.sname), event.at.timestamp())
    new = {e.sname for e in log if e.kind == "started"}
    old = {e.sname for e in log if e.kind == "retire"}
    boot_ready = [at[("ready", s)] - at[("started", s)] for s in new]
    shutdown = [at[("stopped", s)] - at[("retire", s)] for s in old]
    first_deploy = min(e.at.timestamp() for e in log if e.kind == "deploy")
    finished = max(at[("stopped", s)] for s in old)
    wall = finished - first_deploy
    overhead = wall - sum(boot_ready) - sum(shutdown)
    return {
        "replicas": replicas,
        "noticed_s": first_deploy - began,
        "wall_s": wall,
        "boot_ready_s": statistics.mean(boot_ready),
        "shutdown_s": statistics.mean(shutdown),
        "overhead_per_replica_s": overhead / replicas,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--replicas", default="3,10")
    parser.add_argument("--ready-ms", type=int, default=1000)
    parser.add_argument("--interval-ms", type=int, default=500)
    args = parser.parse_args()
    rows = [roll(int(n), args.ready_ms, args.interval_ms) for n in args.replicas.split(",")]
    print(f"rolling {APP} 0.1.0 -> 0.2.0, ready_after_ms={args.ready_ms}")
    print(f"{'replicas':>8} {'noticed s':>10} {'rollout s':>10} {'app boot+ready':>15} "
          f"{'app shutdown':>13} {'DeployEx overhead / replica':>28}")  # fmt: skip
    for r in rows:
        print(f"{r['replicas']:>8} {r['noticed_s']:>10.3f} {r['wall_s']:>10.2f} "
              f"{r['boot_ready_s']:>15.3f} {r['shutdown_s']:>13.3f} "
              f"{r['overhead_per_replica_s']:>28.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
