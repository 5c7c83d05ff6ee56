"""Benchmark: one observer refresh on a node with many processes.

    .venv/bin/python -m tests.benchmarks.bench_observer [--processes 100000] [--runs 10]

A real myerlangapp 0.1.0 node holding --processes extra idle processes (its spawn_idle/1), the
dx_observer module loaded over our own distribution client. One refresh is what the observer
asks every 2 s: system, the top 20 processes by the page's sort (--sort, memory), the top 10
ports and ETS tables. Printed per refresh (median and max over --runs): the time on our side,
the bytes that crossed the wire (the answers' external term format), and the CPU the node's beam
process spent (utime + stime from /proc). Target: < 200 ms per refresh.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from deployex_actors.beam import connect, etf
from deployex_actors.beam.observer import Observer
from tests.beam_fixtures import NodeLauncher, build_releases, wait_until


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--sort", default="memory", help="the process table's sort (memory)")
    args = parser.parse_args()
    dist = build_releases()
    with tempfile.TemporaryDirectory() as tmp:
        launcher = NodeLauncher(dist, Path(tmp))
        node = launcher.start("myerlangapp", "0.1.0")
        try:

            def up() -> bool:
                try:
                    with connect(node.spec.node, node.spec.cookie):
                        return True
                except Exception:
                    return False

            wait_until(up, 30, "the node")
            with connect(node.spec.node, node.spec.cookie) as link:
                link.rpc("myerlangapp_server", "spawn_idle", [args.processes], 120)
                observer = Observer(link, Path(tmp) / "cache")
                observer.system()  # compile and load once
                times, sizes, cpus = [], [], []
                parts: dict[str, list[float]] = {}
                calls = {
                    "system": observer.system,
                    "top": lambda: observer.top(args.sort, 20),
                    "ports": lambda: observer.ports(10),
                    "ets": lambda: observer.ets(10),
                }
                for _ in range(args.runs):
                    before, start = cpu_s(node.proc.pid), time.perf_counter()
                    answers = []
                    for name, call in calls.items():
                        began = time.perf_counter()
                        answers.append(call())
                        parts.setdefault(name, []).append(time.perf_counter() - began)
                    times.append(time.perf_counter() - start)
                    cpus.append(cpu_s(node.proc.pid) - before)
                    sizes.append(sum(len(etf.encode(a)) for a in answers))
                count = answers[0]["process_count"]
            print(
                f"observer refresh on a node with {count} processes ({args.runs} runs): "
                f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
                f"on our side (target < 200 ms); {statistics.median(sizes) / 1024:.1f} KiB "
                f"over the wire; node CPU median {statistics.median(cpus) * 1000:.0f} ms"
            )
            each = ", ".join(f"{k} {statistics.median(v) * 1000:.1f}" for k, v in parts.items())
            print(f"  per call, median ms: {each}")
        finally:
            launcher.stop_all()


if __name__ == "__main__":
    main()
