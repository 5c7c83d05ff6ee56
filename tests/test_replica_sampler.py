"""A replica's sampler: /proc figures as psutil gives them, and a schedule kept on its own
thread, then on its link's while the link is up, then on its own again."""

from __future__ import annotations

import itertools
import math
import os
import time
from pathlib import Path

import psutil
import pytest

from deployex_actors.beam import connect
from deployex_actors.replica import samples
from deployex_actors.replica.sampler import ProcessUsage, ReplicaSampler
from tests.beam_fixtures import wait_until
from tests.erl_nodes import erl_node

PERIOD_S = 0.2


def test_process_usage_reads_what_psutil_reads() -> None:
    usage = ProcessUsage(os.getpid())
    process = psutil.Process()
    rss, cpu = usage.read()
    assert cpu == 0.0  # as psutil's first cpu_percent(None)
    assert abs(rss - process.memory_info().rss) < 2 * 1024 * 1024
    process.cpu_percent(None)
    wall, cpu_before = time.monotonic(), time.process_time()
    deadline = cpu_before + 0.3
    while time.process_time() < deadline:  # burn CPU: the next reading must show it
        math.factorial(2000)
    _rss, busy = usage.read()
    # what we really got, which a loaded machine makes less than 100 %
    share = 100 * (time.process_time() - cpu_before) / (time.monotonic() - wall)
    assert abs(busy - share) < 0.25 * share, (busy, share)  # a halved reading fails
    assert abs(busy - process.cpu_percent(None)) < 30
    usage.close()


def test_process_usage_fails_once_its_process_is_gone(tmp_path: Path) -> None:
    child = psutil.Popen(["sleep", "30"])
    usage = ProcessUsage(child.pid)
    wait_until(lambda: usage.read()[0] > 0, 5, "sleep's memory")  # once it has exec'd
    child.kill()
    child.wait()
    with pytest.raises(OSError):
        usage.read()
    usage.close()


def readings_of(receiver: samples.Receiver, count: int, deadline_s: float) -> list:
    found: list = []
    wait_until(lambda: len(found.extend(receiver.drain()) or found) >= count, deadline_s,
               f"{count} readings", interval_s=0.02)  # fmt: skip
    return found


def test_without_a_link_the_sampler_reads_the_process_on_schedule(tmp_path: Path) -> None:
    channel = tmp_path / "samples.sock"
    receiver = samples.Receiver(channel)
    sampler = ReplicaSampler(channel, "myapp", "myapp-abc123", PERIOD_S, 30.0)
    sampler.start(lambda: (os.getpid(), None))
    try:
        found = readings_of(receiver, 4, 10)
    finally:
        sampler.stop()
    assert all(r.values["process_count"] is None and r.values["rss"] > 0 for r in found)
    for earlier, later in itertools.pairwise(found):  # the shared schedule
        assert later.at - earlier.at == pytest.approx(PERIOD_S, abs=0.1)


@pytest.mark.slow
def test_the_link_takes_the_samples_while_it_is_up_then_the_sampler_again(
    tmp_path: Path,
) -> None:
    channel = tmp_path / "samples.sock"
    receiver = samples.Receiver(channel)
    with erl_node(tmp_path) as node:
        link = connect(node.node, node.cookie)
        current = {"link": link}
        sampler = ReplicaSampler(channel, "myapp", "myapp-abc123", PERIOD_S, 30.0)
        sampler.start(lambda: (node.pid, current["link"]))
        try:
            linked = readings_of(receiver, 6, 15)
            assert all(0 < r.values["process_count"] < r.values["process_limit"] for r in linked)
            assert all(r.values["beam_memory"] > 1_000_000 for r in linked)
            assert all(r.values["rss"] > 1_000_000 for r in linked)
            for earlier, later in itertools.pairwise(linked):
                assert later.at - earlier.at == pytest.approx(PERIOD_S, abs=0.1)
            current["link"] = None  # as a Monitor lets its link go
            link.close()
            receiver.drain()
            unlinked = readings_of(receiver, 3, 10)
            assert all(r.values["process_count"] is None for r in unlinked)
            assert all(r.values["rss"] > 1_000_000 for r in unlinked)
        finally:
            sampler.stop()
            link.close()
