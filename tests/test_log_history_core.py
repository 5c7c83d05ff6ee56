"""The log history without processes: line splitting and the 16 KiB cut, read budgets and skips,
restart offsets, pruning bounds, the SQLite store, and the follower on real files."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from deployex_actors.catalog import Catalog
from deployex_actors.core.log_history import (
    CUT_MARK,
    MAX_BACKLOG,
    MAX_LINE_BYTES,
    READ_BUDGET,
    ROW_OVERHEAD,
    FileMark,
    bytes_to_drop,
    clamp_limit,
    initial_offset,
    log_file_service,
    parse_duration_s,
    plan_read,
    retention_cutoff_ms,
    split_lines,
)
from deployex_actors.logfiles.follower import Follower
from deployex_actors.state.log_store import LogStore, NewLine

# -- lines ---------------------------------------------------------------------------------------


def test_a_line_split_across_reads_comes_out_whole_once() -> None:
    first = split_lines(b"", b"one\ntw")
    assert first.lines == ("one",) and first.partial == b"tw"
    second = split_lines(first.partial, b"o\r\nthree\n")
    assert second.lines == ("two", "three") and second.partial == b""


def test_a_line_over_16_kib_is_cut_and_says_so() -> None:
    long = b"x" * (MAX_LINE_BYTES + 500)
    split = split_lines(b"", long + b"\nnext\n")
    assert split.lines[0] == "x" * MAX_LINE_BYTES + CUT_MARK
    assert split.lines[1] == "next"


def test_a_partial_line_past_16_kib_is_cut_at_once_and_its_rest_dropped() -> None:
    split = split_lines(b"", b"y" * (MAX_LINE_BYTES + 1))
    assert split.lines == ("y" * MAX_LINE_BYTES + CUT_MARK,) and split.dropping
    more = split_lines(split.partial, b"yyyy", split.dropping)
    assert more.lines == () and more.dropping
    end = split_lines(more.partial, b"yy\nafter\n", more.dropping)
    assert end.lines == ("after",) and not end.dropping


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert split_lines(b"", b"caf\xe9\n").lines == ("caf\ufffd",)


# -- reading -------------------------------------------------------------------------------------


def test_a_pass_reads_at_most_the_budget_and_says_more_is_left() -> None:
    plan = plan_read(0, READ_BUDGET * 3)
    assert (plan.start, plan.length, plan.skipped, plan.more) == (0, READ_BUDGET, 0, True)
    last = plan_read(READ_BUDGET * 2, READ_BUDGET * 3)
    assert last.length == READ_BUDGET and not last.more


def test_a_file_that_outruns_the_budget_skips_to_its_newest_bytes() -> None:
    size = 100 + MAX_BACKLOG + 1
    plan = plan_read(100, size)
    assert plan.start == size - READ_BUDGET and plan.length == READ_BUDGET
    assert plan.skipped == size - READ_BUDGET - 100 and not plan.more


def test_a_truncated_file_is_read_from_its_start() -> None:
    assert plan_read(5000, 300).start == 0


def test_a_restarted_follower_takes_a_file_up_where_it_was_left() -> None:
    saved = FileMark(1, 2, 500)
    assert initial_offset(saved, 1, 2, 800, 0, 0, 3_600_000) == 500
    assert initial_offset(saved, 1, 2, 100, 0, 0, 3_600_000) == 0  # truncated meanwhile
    assert initial_offset(saved, 1, 9, 800, 0, 0, 3_600_000) == 0  # rotated meanwhile
    now = time.time()
    assert initial_offset(None, 1, 2, 800, now - 10, now, 3_600_000) == 0  # new while away
    assert initial_offset(None, 1, 2, 800, now - 7200, now, 3_600_000) == 800  # older: end
    assert initial_offset(None, 1, 2, 800, now, now, None) == 800  # no retention


def test_log_file_names_map_to_services() -> None:
    assert log_file_service("myapp-abc123-stderr.log", "myapp") == ("myapp-abc123", "stderr")
    assert log_file_service("other-abc123-stdout.log", "myapp") is None
    assert log_file_service("deployex-stdout.log", None) == ("deployex", "stdout")
    assert log_file_service("thespian.log", None) is None
    assert log_file_service("myapp-abc123-stdout.log.1", "myapp") is None


# -- pruning and queries -------------------------------------------------------------------------


def test_pruning_bounds() -> None:
    assert retention_cutoff_ms(10_000, 3_000) == 7_000
    assert retention_cutoff_ms(10_000, None) == 10_001  # no retention: everything goes
    assert bytes_to_drop(900, 1000) == 0
    assert bytes_to_drop(1200, 1000) == 1200 - 900


def test_durations_and_limits() -> None:
    assert [parse_duration_s(t) for t in ("90s", "15m", "2h", "1d", "30")] == [
        90,
        900,
        7200,
        86400,
        30,
    ]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_s("15 minutes")
    assert clamp_limit(None) == 1000 and clamp_limit(10**9) == 10_000


# -- the store -----------------------------------------------------------------------------------


def _line(at_ms: int, sname: str = "myapp-aaaaaa", text: str = "x", stream: str = "stdout"):
    return NewLine(at_ms, "myapp", sname, stream, text)


def test_the_store_is_private_and_keeps_lines_and_offsets_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "var" / "logs.db"
    store = LogStore(path)
    store.append([_line(1000, text="hello"), _line(2000, "myapp-bbbbbb", "world", "stderr")],
                 {"/f": FileMark(1, 2, 42)})  # fmt: skip
    store.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = LogStore(path)
    assert again.offsets() == {"/f": FileMark(1, 2, 42)}
    result = again.query(0)
    assert [(x.sname, x.stream, x.text) for x in result.lines] == [
        ("myapp-aaaaaa", "stdout", "hello"),
        ("myapp-bbbbbb", "stderr", "world"),
    ]
    assert [s.sname for s in again.services()] == ["myapp-aaaaaa", "myapp-bbbbbb"]
    assert again.total_bytes == 5 + 5 + 2 * ROW_OVERHEAD


def test_queries_filter_and_return_the_newest_in_order_with_the_cap_shown(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db")
    store.append([_line(i * 10, "myapp-aaaaaa" if i % 2 else "myapp-bbbbbb", f"line {i}")
                  for i in range(100)], {})  # fmt: skip
    result = store.query(0, limit=5)
    assert result.capped and [x.text for x in result.lines] == [f"line {i}" for i in range(95, 100)]
    only = store.query(0, snames=["myapp-aaaaaa"], grep="LINE 9")
    assert [x.text for x in only.lines] == ["line 9"] + [f"line {i}" for i in range(91, 100, 2)]
    assert not only.capped
    window = store.query(200, until_ms=300)
    assert [x.at_ms for x in window.lines] == list(range(200, 310, 10))
    after = store.query(0, after_id=result.lines[-2].id)
    assert [x.text for x in after.lines] == ["line 99"]
    assert store.query(0, streams=("stderr",)).lines == ()


def test_pruning_drops_old_lines_then_the_oldest_to_the_cap(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db")
    store.append([_line(i, text="x" * 36) for i in range(1000)], {})  # 100 bytes each
    assert store.prune(cutoff_ms=100, cap_bytes=10**9) == 100
    assert store.query(0, limit=10_000).lines[0].at_ms == 100
    store.prune(cutoff_ms=0, cap_bytes=50_000)
    assert store.total_bytes <= 50_000
    kept = store.query(0, limit=10_000).lines
    assert len(kept) == 450 and kept[-1].at_ms == 999  # the newest stay
    store.prune(cutoff_ms=10**12, cap_bytes=50_000)
    assert store.query(0).lines == () and store.services() == [] and store.total_bytes == 0


# -- the follower on real files ------------------------------------------------------------------


def _catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path / "var", tmp_path / "log", tmp_path / "apps")
    for folder in catalog.private_folders:
        folder.mkdir(parents=True, exist_ok=True)
    return catalog


def _texts(follower: Follower, keep: bool = True) -> list[tuple[str, str]]:
    found = []
    while True:
        result = follower.read_pass(0, keep)
        found += [(x.sname, x.text) for x in result.lines]
        if not result.more:
            return found


def test_the_follower_finds_new_snames_and_reads_appended_lines(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    catalog.deployex_stdout_log.write_text("deployex line\n")
    follower = Follower(catalog, {})
    follower.start(3_600_000)
    assert _texts(follower) == [("deployex", "deployex line")]
    log = catalog.stdout_log("myapp", "myapp-abc123")
    log.parent.mkdir()
    log.write_text("first\nsecond\npart")
    follower.on_events(follower.inotify.read_events(), 3_600_000)
    assert _texts(follower) == [("myapp-abc123", "first"), ("myapp-abc123", "second")]
    with log.open("a") as out:
        out.write("ial\n")
    follower.on_events(follower.inotify.read_events(), 3_600_000)
    assert _texts(follower) == [("myapp-abc123", "partial")]
    marks = {key: followed.mark for key, followed in follower.files.items()}  # as stored
    follower.close()
    again = Follower(catalog, marks)  # a restart: nothing is read twice
    again.start(3_600_000)
    with log.open("a") as out:
        out.write("third\n")
    assert _texts(again) == [("myapp-abc123", "third")]
    again.close()


def test_a_rotated_file_is_read_to_its_end_then_the_new_one_from_its_start(tmp_path) -> None:
    catalog = _catalog(tmp_path)
    log = catalog.stdout_log("myapp", "myapp-abc123")
    log.parent.mkdir()
    log.write_text("")
    follower = Follower(catalog, {})
    follower.start(3_600_000)
    with log.open("a") as out:
        out.write("before\n")
    assert _texts(follower) == [("myapp-abc123", "before")]
    with log.open("a") as out:
        out.write("last of old\n")
    log.rename(log.with_name(log.name + ".1"))
    log.write_text("new file\n")
    follower.on_events(follower.inotify.read_events(), 3_600_000)
    assert _texts(follower) == [("myapp-abc123", "last of old"), ("myapp-abc123", "new file")]
    follower.close()


def test_a_flooding_file_is_skipped_ahead_with_one_marker(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path)
    quiet = catalog.stdout_log("myapp", "myapp-quiet1")
    flood = catalog.stdout_log("myapp", "myapp-flood1")
    quiet.parent.mkdir()
    quiet.write_text("")
    flood.write_text("")
    follower = Follower(catalog, {})
    follower.start(3_600_000)
    with flood.open("a") as out:
        out.write(("z" * 99 + "\n") * ((MAX_BACKLOG * 2) // 100))
    with quiet.open("a") as out:
        out.write("still heard\n")
    follower.on_events(follower.inotify.read_events(), 3_600_000)
    first = follower.read_pass(0, True)
    texts = [x.text for x in first.lines]
    assert "still heard" in texts  # in the same pass as the flood
    markers = [t for t in texts if "bytes skipped" in t]
    assert len(markers) == 1
    assert len([t for t in texts if t.startswith("z")]) <= READ_BUDGET // 100
    follower.close()


def test_grep_takes_percent_and_underscore_literally(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "logs.db")
    store.append([_line(1, text="100% done"), _line(2, text="1000 done"),
                  _line(3, text="a_b"), _line(4, text="axb")], {})  # fmt: skip
    assert [x.text for x in store.query(0, grep="0% D").lines] == ["100% done"]
    assert [x.text for x in store.query(0, grep="a_b").lines] == ["a_b"]
