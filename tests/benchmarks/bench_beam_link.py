"""Benchmark: the persistent hidden-node link against one erl_call process per question.

    .venv/bin/python -m tests.benchmarks.bench_beam_link [--nodes 20] [--calls 500]

Prints the median rpc round trip over one link, then one stats sweep (process/port/atom counts
and limits + total memory: 7 questions per node) over N live nodes, done (a) through persistent
links and (b) by spawning `erl_call` once per question, as a shell script would.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from deployex_actors.beam import connect
from deployex_actors.beam.link import STAT_KEYS
from tests.erl_nodes import erl_node


def erl_call_path() -> str:
    found = shutil.which("erl_call") or next(
        iter(sorted(Path("/usr/lib/erlang/lib").glob("erl_interface-*/bin/erl_call"))), None
    )
    if not found:
        raise SystemExit("erl_call not found (package erlang-base)")
    return str(found)


def sweep_with_erl_call(erl_call: str, nodes: list) -> float:
    questions = [f"erlang system_info [{key}]" for key in STAT_KEYS] + ["erlang memory [total]"]
    start = time.perf_counter()
    for node in nodes:
        for question in questions:
            subprocess.run(
                [erl_call, "-sname", node.sname, "-c", node.cookie, "-a", question],
                check=True,
                capture_output=True,
            )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    erl_call = erl_call_path()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        nodes = [stack.enter_context(erl_node(Path(tmp))) for _ in range(args.nodes)]
        links = [stack.enter_context(connect(n.node, n.cookie)) for n in nodes]

        samples = []
        for _ in range(args.calls):
            start = time.perf_counter()
            links[0].rpc("erlang", "node", [])
            samples.append(time.perf_counter() - start)
        median_ms = statistics.median(samples) * 1000
        p90_ms = statistics.quantiles(samples, n=10)[-1] * 1000

        sweeps = []
        for _ in range(5):
            start = time.perf_counter()
            for link in links:
                link.stats()
            sweeps.append(time.perf_counter() - start)
        link_sweep = statistics.median(sweeps)
        erl_call_sweep = sweep_with_erl_call(erl_call, nodes)

    print(f"rpc round trip over one link ({args.calls} calls):")
    print(f"  median {median_ms:.3f} ms, p90 {p90_ms:.3f} ms")
    print(f"stats sweep over {args.nodes} nodes (7 values each; links: median of 5 sweeps):")
    print(f"  persistent links          {link_sweep * 1000:9.1f} ms")
    print(f"  erl_call per value        {erl_call_sweep * 1000:9.1f} ms")
    print(f"  ratio                     {erl_call_sweep / link_sweep:9.1f}x faster with links")


if __name__ == "__main__":
    main()
