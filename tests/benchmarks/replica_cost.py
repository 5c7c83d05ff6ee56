"""What one replica costs DeployEx: a sample's CPU, and where the idle CPU of a running DeployEx
goes (per process role). Used by bench_supervision; runnable alone for the sample's cost:

    .venv/bin/python -m tests.benchmarks.replica_cost [--samples 200] [--period 0.1]

`sample_cpu_ms` samples a real `erl` node over a real link into a real sample channel, one sample
every `period` s, and divides the CPU of the whole process (every thread: the link's decodes the
reply) by the samples taken. A sampler with a schedule of its own (`start`) runs as in a Monitor;
an older one without is called every period, as a Monitor's timer did (what that timer cost in
thespian is only in the in-situ figure of bench_supervision). Paced, not back to back: the same
work costs several times less in a tight loop here (warm caches, no sleeping thread to wake),
which is not what a Monitor sees once a second. `--code` measures another tree's code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

if TYPE_CHECKING:
    from tests.benchmarks.bench_supervision import Overhead


@dataclass(frozen=True)
class SampleCost:
    """CPU ms per sample: median of per-round means, (min, max)."""

    median_ms: float
    low_ms: float
    high_ms: float
    rounds: int
    per_round: int
    how: str  # what took the samples


# Counts the datagrams of the sample channel in a process of its own (its CPU is not ours);
# b"stop" makes it print the count and leave.
DRAIN = """
import socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sys.argv[1])
print("ready", flush=True)
count = 0
while (data := sock.recv(65536)) != b"stop":
    count += 1
print(count, flush=True)
"""


def sample_cpu_ms(
    samples_per_round: int = 50, rounds: int = 5, period_s: float = 0.1
) -> SampleCost:
    """A real node sampled over a real link into a sample channel, on the sampler's own
    schedule (`start`) when it has one, else by calling `sample` every period as a Monitor's
    timer did: the CPU of this whole process (every thread) per sample."""
    # imported here: `--code` chooses which tree's deployex_actors is measured
    from deployex_actors.beam import connect
    from deployex_actors.replica.sampler import ReplicaSampler
    from tests.erl_nodes import erl_node

    with tempfile.TemporaryDirectory(prefix="bench-sample-") as tmp, erl_node(Path(tmp)) as node:
        channel = Path(tmp) / "samples.sock"
        drain = subprocess.Popen(
            [sys.executable, "-c", DRAIN, str(channel)], stdout=subprocess.PIPE, text=True
        )
        try:
            drain.stdout.readline()
            sampler = ReplicaSampler(channel, "app", "app-abcdef", period_s, 30.0)
            with connect(node.node, node.cookie) as link:
                means, how = _rounds(sampler, node.pid, link, samples_per_round, rounds, period_s)
            _send_stop(channel)
            received = int(drain.stdout.readline())
        finally:
            drain.kill()
            drain.wait()
    if received < samples_per_round * rounds:
        raise RuntimeError(f"only {received} readings for {samples_per_round * rounds} samples")
    cost = (statistics.median(means), min(means), max(means), rounds, samples_per_round, how)
    return SampleCost(*cost)


def _send_stop(channel: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"stop", str(channel))


def _rounds(
    sampler: Any, pid: int, link: Any, per_round: int, rounds: int, period_s: float
) -> tuple[list[float], str]:
    scheduled = hasattr(sampler, "start")
    if scheduled:
        sampler.start(lambda: (pid, link))
    means = []
    time.sleep(3 * period_s)  # past the first samples: the link's thread takes over
    for _ in range(rounds):
        began = time.process_time()
        if scheduled:  # nothing else wakes this process meanwhile
            time.sleep(per_round * period_s)
        else:
            for _ in range(per_round):
                time.sleep(period_s)
                sampler.sample(pid, link)
        means.append((time.process_time() - began) / per_round * 1000)
    if scheduled:
        sampler.stop()
    return means, "its own schedule" if scheduled else "sample() every period"


def sample_cpu_ms_of(code: Path | None) -> SampleCost:
    """`sample_cpu_ms` in a fresh process, importing deployex_actors from `code` if given."""
    command = [sys.executable, "-m", "tests.benchmarks.replica_cost", "--json"]
    if code is not None:
        command += ["--code", str(code)]
    found = subprocess.run(command, check=True, capture_output=True, text=True)
    return SampleCost(**json.loads(found.stdout))


def compare_sample_cpu(code: Path, turns: int = 3) -> tuple[SampleCost, SampleCost]:
    """This tree's sample against `code`'s, alternating (the host's load drifts): the median
    turn of each."""
    ours, theirs = [], []
    for _ in range(turns):
        ours.append(sample_cpu_ms_of(None))
        theirs.append(sample_cpu_ms_of(code))
    mid = turns // 2
    return (
        sorted(ours, key=lambda c: c.median_ms)[mid],
        sorted(theirs, key=lambda c: c.median_ms)[mid],
    )


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
    baseline_sample: SampleCost | None,
    medians: dict[int, dict[str, Overhead]],
    windows: dict[int, list[dict[str, Overhead]]],
    samples_per_min: float,
    off: str,
    sampled: tuple[str, ...] = ("deployex",),
) -> None:
    """The replica's cost: per sample, idle CPU with and without sampling, memory per replica."""
    print("\nreplica cost (medians over the windows; min-max of the CPU in brackets)")
    for code, cost in (("", sample), (" (baseline code)", baseline_sample)):
        if cost is not None:
            print(
                f"  a sample{code} ({cost.how}), in a bench process against a real node, one "
                f"per 0.1 s: {cost.median_ms:.3f} ms CPU ({cost.low_ms:.3f}-{cost.high_ms:.3f}, "
                f"{cost.rounds} x {cost.per_round})"
            )
    ns = sorted(medians)
    for n in ns:
        row = medians[n]
        cpu = {name: _spread([w[name].cpu_s_per_min for w in windows[n]]) for name in row}
        print(f"  N={n}: CPU s/min " + ", ".join(f"{name} {cpu[name]}" for name in row))
        peer = row.get("supervisord")
        if off in row and peer is not None and peer.cpu_s_per_min > 0:
            ratio = row[off].cpu_s_per_min / peer.cpu_s_per_min
            print(f"        sampling off / supervisord: {ratio:.1f}x")
        monitors_off = row[off].roles.get("Monitors") if off in row else None
        for on in sampled:
            monitors = row[on].roles.get("Monitors") if on in row else None
            if not monitors or not monitors.processes:
                continue
            if monitors_off is not None:
                extra = monitors.cpu_s_per_min - monitors_off.cpu_s_per_min
                per_sample = extra / (monitors.processes * samples_per_min) * 1000
                print(f"        {on}: Monitor CPU per sample (on - off) {per_sample:.2f} ms")
            print(
                f"        {on}: PSS {row[on].pss_mib:.0f} MiB, USS {row[on].uss_mib:.0f} MiB; "
                f"a Monitor PSS {monitors.pss_mib / monitors.processes:.2f} MiB, "
                f"USS {monitors.uss_mib / monitors.processes:.2f} MiB"
            )
    for on in sampled:
        if len(ns) > 1 and all(on in medians[n] for n in ns):
            first, last = medians[ns[0]][on], medians[ns[-1]][on]
            span = ns[-1] - ns[0]
            print(
                f"  {on}: marginal per replica (N={ns[0]}->{ns[-1]}): PSS "
                f"{(last.pss_mib - first.pss_mib) / span:.2f} MiB, USS "
                f"{(last.uss_mib - first.uss_mib) / span:.2f} MiB"
            )
    for on in sampled:
        _print_roles(medians, on, off)


def _print_roles(medians: dict[int, dict[str, Overhead]], on: str, off: str) -> None:
    ns = [n for n in sorted(medians) if medians[n].get(on) and medians[n][on].roles]
    if not ns:
        return
    print(f"\n  where it goes, CPU s/min ({on} / sampling off) and PSS MiB ({on}), per role:")
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
    parser.add_argument("--code", type=Path, help="import deployex_actors from this tree")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.code is not None:
        sys.path.insert(0, str(args.code))
    cost = sample_cpu_ms(args.samples // args.rounds, args.rounds, args.period)
    if args.json:
        print(json.dumps(asdict(cost)))
        return
    print(
        f"a sample ({cost.how}): {cost.median_ms:.3f} ms CPU (median of {cost.rounds} "
        f"rounds of {cost.per_round}, {cost.low_ms:.3f}-{cost.high_ms:.3f}), one every "
        f"{args.period:g} s"
    )


if __name__ == "__main__":
    main()
