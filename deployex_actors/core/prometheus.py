"""Prometheus text exposition (format 0.0.4) of DeployEx's status and latest samples."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from deployex_actors.core.metrics import DEPLOYEX, HOST, Sample
from deployex_actors.core.status import DeployexSnapshot, ReplicaStatus

HOST_GAUGES = {
    "cpu_percent": "Host CPU busy, percent of all cores",
    "memory_total": "Host memory, bytes",
    "memory_available": "Host memory available, bytes",
    "memory_percent": "Host memory in use, percent",
    "swap_percent": "Host swap in use, percent",
    "load1": "Host load average over 1 minute",
}
REPLICA_GAUGES = {
    "process_count": "BEAM processes",
    "process_limit": "BEAM process limit",
    "port_count": "BEAM ports",
    "port_limit": "BEAM port limit",
    "atom_count": "BEAM atoms",
    "atom_limit": "BEAM atom limit",
    "beam_memory": "BEAM total memory, bytes",
    "rss": "Resident memory of the replica's OS process, bytes",
    "cpu_percent": "CPU of the replica's OS process, percent of one core",
}
SELF_GAUGES = {
    "rss": "Resident memory of all DeployEx processes, bytes",
    "cpu_percent": "CPU of all DeployEx processes, percent of one core",
    "actors": "Number of DeployEx actors",
    "rejected_frames": "Unauthenticated frames dropped by the actor system since DeployEx started",
}


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    escaped = (f'{key}="{_escape(value)}"' for key, value in labels.items())
    return "{" + ",".join(escaped) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _family(
    name: str, kind: str, help_text: str, points: Iterable[tuple[dict, float]]
) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in points:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue  # a gap is absent, not zero
        lines.append(f"{name}{_labels(labels)} {float(value):g}")
    return lines


def render(snapshot: DeployexSnapshot, latest: Mapping[str, Sample | None]) -> str:
    lines: list[str] = []
    host = latest.get(HOST)
    if host is not None:
        for key, help_text in HOST_GAUGES.items():
            lines += _family(
                f"deployex_host_{key}", "gauge", help_text, [({}, host.values.get(key))]
            )
    own = latest.get(DEPLOYEX)
    if own is not None:
        for key, help_text in SELF_GAUGES.items():
            lines += _family(
                f"deployex_self_{key}", "gauge", help_text, [({}, own.values.get(key))]
            )
    replicas = [(app, r) for app in snapshot.apps for r in app.replicas]

    def each(value_of) -> list[tuple[dict, float]]:
        return [
            ({"app": r.app, "sname": r.sname, "version": r.version}, value_of(r))
            for _, r in replicas
        ]

    lines += _family(
        "deployex_replica_up",
        "gauge",
        "1 when the replica is ready",
        each(lambda r: 1.0 if r.status == ReplicaStatus.RUNNING else 0.0),
    )
    lines += _family(
        "deployex_replica_crash_restarts_total",
        "counter",
        "Crash restarts of the replica",
        each(lambda r: r.crash_restarts),
    )
    lines += _family(
        "deployex_replica_forced_restarts_total",
        "counter",
        "Forced restarts of the replica",
        each(lambda r: r.forced_restarts),
    )
    for key, help_text in REPLICA_GAUGES.items():

        def value(r, key=key):
            sample = latest.get(r.sname)
            return sample.values.get(key) if sample else None

        lines += _family(f"deployex_replica_{key}", "gauge", help_text, each(value))
    lines += _family(
        "deployex_app_replicas_ready",
        "gauge",
        "Replicas of the app that are ready",
        [({"app": a.app}, _ready(a.replicas)) for a in snapshot.apps],
    )
    lines += _family(
        "deployex_app_replicas_wanted",
        "gauge",
        "Replicas the app should have",
        [({"app": a.app}, a.replicas_wanted) for a in snapshot.apps],
    )
    return "\n".join(lines) + "\n"


def _ready(replicas: tuple) -> int:
    return sum(r.status == ReplicaStatus.RUNNING for r in replicas)
