"""What one replica costs DeployEx: a sample's CPU, and where the idle CPU of a running DeployEx
goes (per process role). Used by bench_supervision; runnable alone for the sample's cost:

    .venv/bin/python -m tests.benchmarks.replica_cost [--samples 200] [--period 0.1]

`sample_cpu_ms` times `ReplicaSampler.sample` with time.process_time (the whole process: the
link's I/O thread decodes the reply while the caller waits) against a real `erl` node, one
sample every `period` s as in production (back to back, the same call costs ~4x less here: warm
caches and no sleeping threads to wake, which is not what a Monitor sees once a second).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from deployex_actors.beam import connect
from deployex_actors.replica import samples
from deployex_actors.replica.sampler import ReplicaSampler
from tests.erl_nodes import erl_node

if TYPE_CHECKING:
    from tests.benchmarks.bench_supervision import Overhead


@dataclass(frozen=True)
class SampleCost:
    """CPU ms of one `ReplicaSampler.sample` call: median of per-round means, (min, max)."""

    median_ms: float
    low_ms: float
    high_ms: float
    rounds: int
    per_round: int


def sample_cpu_ms(
    samples_per_round: int = 50, rounds: int = 5, period_s: float = 0.1
) -> SampleCost:
    """Paced samples of a real node over a real link, sent to a real sample channel."""
    with tempfile.TemporaryDirectory(prefix="bench-sample-") as tmp, erl_node(Path(tmp)) as node:
        channel = Path(tmp) / "samples.sock"
        receiver = samples.Receiver(channel)
        sampler = ReplicaSampler(channel, "app", "app-abcdef", 1.0, 30.0)
        with connect(node.node, node.cookie) as link:
            for _ in range(5):  # first readings: connect the channel, prime cpu_percent
                sampler.sample(node.pid, link)
                receiver.drain()
            means = []
            for _ in range(rounds):
                used = 0.0
                for _ in range(samples_per_round):
                    time.sleep(period_s)
                    began = time.process_time()
                    sampler.sample(node.pid, link)
                    used += time.process_time() - began
                    if not receiver.drain():
                        raise RuntimeError("the sampler sent no reading")
                means.append(used / samples_per_round * 1000)
        receiver.close()
    return SampleCost(statistics.median(means), min(means), max(means), rounds, samples_per_round)


# --- where a running DeployEx spends its idle CPU ---------------------------------------------


@dataclass(frozen=True)
class RoleCost:
    processes: int
    cpu_s_per_min: float
    pss_mib: float
    uss_mib: float

    FIELDS = ("processes", "cpu_s_per_min", "pss_mib", "uss_mib")


def roles(
    launchers: list[int], system: list[int], replicas: list[int], samples_socket: Path
) -> dict[str, list[int]]:
    """DeployEx's processes by role, from the process tree: a Monitor is a replica's parent, a
    Deployer a Monitor's, the Root a Deployer's; the Watchdog holds the sample channel."""
    parent = {}
    for pid in system:
        with contextlib.suppress(psutil.Error):
            parent[pid] = psutil.Process(pid).ppid()
    monitors = set()
    for pid in replicas:
        with contextlib.suppress(psutil.Error):
            monitors.add(psutil.Process(pid).ppid())
    monitors &= set(system)
    deployers = {parent[m] for m in monitors if m in parent}
    root = {parent[d] for d in deployers if d in parent}
    found: dict[str, list[int]] = {
        "launcher": launchers,
        "Monitors": sorted(monitors),
        "Deployer": sorted(deployers),
        "Root": sorted(root),
    }
    watchdog = _holder_of(samples_socket, [p for p in system if parent.get(p) in root])
    found["Watchdog"] = watchdog
    placed = set(launchers) | monitors | deployers | root | set(watchdog)
    root_children = [p for p in system if parent.get(p) in root and p not in placed]
    found["Storage, Web"] = root_children
    found["admin, logger"] = [p for p in system if p not in placed and p not in root_children]
    return found


def _holder_of(socket_path: Path, candidates: list[int]) -> list[int]:
    inodes = set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == str(socket_path):
                inodes.add(f"socket:[{fields[6]}]")
    holders = []
    for pid in candidates:
        with contextlib.suppress(OSError):
            if any(_readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir()):
                holders.append(pid)
    return holders


def _readlink(path: Path) -> str:
    try:
        return str(path.readlink())
    except OSError:
        return ""


# --- the report -------------------------------------------------------------------------------


def print_costs(
    sample: SampleCost | None,
    medians: dict[int, dict[str, Overhead]],
    windows: dict[int, list[dict[str, Overhead]]],
    samples_per_min: float,
    off: str,
    on: str = "deployex",
) -> None:
    """The replica's cost: per sample, idle CPU with and without sampling, memory per replica."""
    print("\nreplica cost (medians over the windows; min-max of the CPU in brackets)")
    if sample is not None:
        print(
            f"  ReplicaSampler.sample, in the bench process against a real node, one per "
            f"0.1 s: {sample.median_ms:.3f} ms CPU ({sample.low_ms:.3f}-{sample.high_ms:.3f}, "
            f"{sample.rounds} x {sample.per_round})"
        )
    ns = sorted(medians)
    for n in ns:
        row = medians[n]
        if on not in row:
            continue
        cpu = {name: _spread([w[name].cpu_s_per_min for w in windows[n]]) for name in row}
        line = f"  N={n}: CPU s/min sampling on {cpu[on]}"
        if off in row:
            line += f", off {cpu[off]}"
        for peer in ("supervisord", "circus"):
            if peer in row:
                line += f", {peer} {cpu[peer]}"
        print(line)
        if off in row and row.get("supervisord") and row["supervisord"].cpu_s_per_min > 0:
            ratio = row[off].cpu_s_per_min / row["supervisord"].cpu_s_per_min
            print(f"        sampling off / supervisord: {ratio:.1f}x")
        monitors_on = row[on].roles.get("Monitors")
        monitors_off = row[off].roles.get("Monitors") if off in row else None
        if monitors_on and monitors_off and monitors_on.processes:
            extra = monitors_on.cpu_s_per_min - monitors_off.cpu_s_per_min
            per_sample = extra / (monitors_on.processes * samples_per_min) * 1000
            print(
                f"        Monitor CPU per sample in situ (Monitors on - off): {per_sample:.2f} ms"
            )
        if monitors_on and monitors_on.processes:
            print(
                f"        memory: PSS {row[on].pss_mib:.0f} MiB, USS {row[on].uss_mib:.0f} MiB; "
                f"a Monitor PSS {monitors_on.pss_mib / monitors_on.processes:.2f} MiB, "
                f"USS {monitors_on.uss_mib / monitors_on.processes:.2f} MiB"
            )
    if len(ns) > 1 and all(on in medians[n] for n in ns):
        first, last = medians[ns[0]][on], medians[ns[-1]][on]
        span = ns[-1] - ns[0]
        print(
            f"  marginal per replica (N={ns[0]}->{ns[-1]}): PSS "
            f"{(last.pss_mib - first.pss_mib) / span:.2f} MiB, USS "
            f"{(last.uss_mib - first.uss_mib) / span:.2f} MiB"
        )
    _print_roles(medians, on, off)


def _print_roles(medians: dict[int, dict[str, Overhead]], on: str, off: str) -> None:
    ns = [n for n in sorted(medians) if medians[n].get(on) and medians[n][on].roles]
    if not ns:
        return
    print("\n  where it goes, CPU s/min (sampling on / off) and PSS MiB (on), per role:")
    names = list(medians[ns[0]][on].roles)
    header = "".join(f"{f'N={n} on/off':>16}{f'PSS N={n}':>10}" for n in ns)
    print(f"  {'':20}{header}")
    for role in names:
        cells = ""
        for n in ns:
            mine = medians[n][on].roles.get(role)
            other = medians[n][off].roles.get(role) if off in medians[n] else None
            pair = f"{mine.cpu_s_per_min:.2f}" if mine else "-"
            pair += f"/{other.cpu_s_per_min:.2f}" if other else "/-"
            cells += f"{pair:>16}{(f'{mine.pss_mib:.1f}' if mine else '-'):>10}"
        count = "/".join(f"{medians[n][on].roles[role].processes:.0f}" for n in ns)
        print(f"  {f'{role} ({count})':20}{cells}")


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--period", type=float, default=0.1)
    args = parser.parse_args()
    cost = sample_cpu_ms(args.samples // args.rounds, args.rounds, args.period)
    print(
        f"ReplicaSampler.sample: {cost.median_ms:.3f} ms CPU per sample (median of {cost.rounds} "
        f"rounds of {cost.per_round}, {cost.low_ms:.3f}-{cost.high_ms:.3f}), one every "
        f"{args.period:g} s"
    )


if __name__ == "__main__":
    main()
