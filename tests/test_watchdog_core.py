"""Threshold decisions, bounded series and the Prometheus exposition — pure and fast."""

from __future__ import annotations

import tracemalloc

from deployex_actors.config import Monitoring
from deployex_actors.core import prometheus, thresholds
from deployex_actors.core.metrics import HOST, Sample, Series
from deployex_actors.core.status import AppSnapshot, DeployexSnapshot, ReplicaSnapshot

WATCH = Monitoring("process", True, 75, 90)


def test_percent_truncates_and_needs_both_values() -> None:
    assert thresholds.percent(899, 1000) == 89
    assert thresholds.percent(None, 1000) is None
    assert thresholds.percent(5, 0) is None


def test_levels_follow_upstream_boundaries() -> None:
    assert [thresholds.level(p, WATCH) for p in (0, 74, 75, 89, 90, 100)] == [
        "ok", "ok", "warning", "warning", "critical", "critical",
    ]  # fmt: skip


def test_only_level_changes_are_reported() -> None:
    first = thresholds.judge(80, WATCH, "ok", None, 100.0, 30.0)
    again = thresholds.judge(82, WATCH, first.level, None, 101.0, 30.0)
    back = thresholds.judge(10, WATCH, again.level, None, 102.0, 30.0)
    assert (first.level, first.changed, first.restart) == ("warning", True, False)
    assert (again.changed, again.restart) == (False, False)
    assert (back.level, back.changed) == ("ok", True)


def test_critical_restarts_at_most_once_per_ready_period() -> None:
    now = 1000.0
    first = thresholds.judge(95, WATCH, "warning", None, now, 30.0)
    storm = thresholds.judge(95, WATCH, "critical", now, now + 5, 30.0)
    later = thresholds.judge(95, WATCH, "critical", now, now + 31, 30.0)
    assert (first.restart, storm.restart, later.restart) == (True, False, True)


def test_disabled_restart_only_warns() -> None:
    quiet = Monitoring("process", False, 75, 90)
    verdict = thresholds.judge(99, quiet, "ok", None, 0.0, 30.0)
    assert (verdict.level, verdict.changed, verdict.restart) == ("critical", True, False)


def test_a_gap_changes_nothing() -> None:
    assert thresholds.judge(None, WATCH, "warning", None, 0, 30) == thresholds.Verdict(
        "warning", False, False
    )


def test_host_memory_restarts_the_biggest_replica_ignoring_gaps() -> None:
    assert thresholds.biggest_replica({"a": 10.0, "b": 30.0, "c": None}) == "b"
    assert thresholds.biggest_replica({"a": None}) is None


def test_series_keep_the_retention_window_and_a_bounded_count() -> None:
    series = Series(retention_s=60, period_s=1)
    for t in range(1000):
        series.add("x", Sample(float(t), {"v": float(t)}))
    kept = series.since("x")
    assert kept[0].at >= 999 - 60 and kept[-1].at == 999
    assert len(kept) <= series.max_samples
    assert [s.at for s in series.since("x", 997)] == [998.0, 999.0]


def test_memory_of_a_long_series_stays_bounded() -> None:
    series = Series(retention_s=3600, period_s=1)
    values = dict.fromkeys(("process_count", "port_count", "atom_count", "rss"), 1.0)
    tracemalloc.start()
    for t in range(4000):
        series.add("r", Sample(float(t), dict(values)))
    after_one_retention = tracemalloc.get_traced_memory()[0]
    for t in range(4000, 20_000):
        series.add("r", Sample(float(t), dict(values)))
    after_five = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(series.since("r")) <= 3602
    assert after_five < after_one_retention * 1.2  # flat, not growing with time


def test_prometheus_exposition_has_host_replica_and_app_families() -> None:
    replica = ReplicaSnapshot("shop", "shop-abc123", "shop-abc123@h", "1.0", "running", 0,
                              crash_restarts=2, forced_restarts=1)  # fmt: skip
    app = AppSnapshot("shop", "elixir", 3, replicas=(replica,))
    snapshot = DeployexSnapshot("0.1.0", 1, 0.0, "h", (app,))
    latest = {
        HOST: Sample(1.0, {"cpu_percent": 12.5, "memory_percent": 40.0}),
        "shop-abc123": Sample(1.0, {"process_count": 80, "process_limit": 1000, "rss": None}),
    }
    text = prometheus.render(snapshot, latest)
    assert "# TYPE deployex_host_cpu_percent gauge" in text
    assert "deployex_host_cpu_percent 12.5" in text
    labels = '{app="shop",sname="shop-abc123",version="1.0"}'
    assert f"deployex_replica_process_count{labels} 80" in text
    assert f"deployex_replica_crash_restarts_total{labels} 2" in text
    assert f"deployex_replica_up{labels} 1" in text
    assert "deployex_replica_rss{" not in text  # a gap is absent, not zero
    assert 'deployex_app_replicas_wanted{app="shop"} 3' in text
    for line in text.splitlines():
        assert line.startswith("#") or " " in line
