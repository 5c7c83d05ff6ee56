"""Benchmark: what signing and checking a frame costs, beside pickling it alone.

    .venv/bin/python -m tests.benchmarks.bench_wire [--rounds 20000]

The frames are the ones the restart path and the status path send: a Monitor's ReplicaChanged
(after every restart) and the root's StatusQuery reply with 10 replicas. Each is timed as thespian
times it: dumps on the sender, loads on the receiver, with and without the MAC.
"""

from __future__ import annotations

import argparse
import pickle
import secrets
import statistics
import time
from collections.abc import Callable

from deployex_actors.actors.messages import ReplicaChanged, Reply
from deployex_actors.actors.wire import SignedPickle
from deployex_actors.core.status import AppSnapshot, DeployexSnapshot, ReplicaSnapshot


def replica(i: int) -> ReplicaSnapshot:
    return ReplicaSnapshot("myapp", f"myapp-{i:06d}", f"myapp-{i:06d}@host", "1.2.3", "running",
                           i, {"PORT": 4000 + i}, 1000 + i, time.time())  # fmt: skip


def frames() -> dict[str, object]:
    replicas = tuple(replica(i) for i in range(10))
    app = AppSnapshot("myapp", "elixir", 10, "1.2.3", replicas=replicas)
    status = DeployexSnapshot("0.1.0", 1, time.time(), "host", (app,))
    return {"ReplicaChanged": ReplicaChanged(replica(0)), "status reply": Reply("id", status)}


def per_call_us(action: Callable[[], object], rounds: int) -> float:
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            action()
        runs.append((time.perf_counter() - start) / rounds * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    signed = SignedPickle(secrets.token_bytes(32), "ACK+DATAERR")
    print(f"{'frame':<16}{'bytes':>7}{'pickle us':>12}{'signed us':>12}{'added us':>10}")
    for name, message in frames().items():
        frame = signed.dumps(message)
        base = per_call_us(lambda m=message: pickle.loads(pickle.dumps(m)), args.rounds)  # noqa: S301
        ours = per_call_us(lambda m=message: signed.loads(signed.dumps(m)), args.rounds)
        print(f"{name:<16}{len(frame):>7}{base:>12.1f}{ours:>12.1f}{ours - base:>10.1f}")
    forged = b"\0" * 32 + pickle.dumps("x")
    print(
        f"rejecting a forged frame: {per_call_us(lambda: signed.loads(forged), args.rounds):.1f} us"
    )


if __name__ == "__main__":
    main()
