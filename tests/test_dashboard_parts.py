"""The dashboard's parts without a server: log tailing and colouring, /metrics and /health, the
gateway to DeployEx, the live feed, settings, replica cards."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.web import Application

from dashboards import display, loglines
from dashboards.components.app_panel import mode_words, pinnable_versions
from dashboards.components.replica_card import card_html, usage
from dashboards.feed import STATUS_PERIOD_S, Feed
from dashboards.gateway import Gateway, Unreachable
from dashboards.probes import HealthHandler, MetricsHandler, bearer_ok, exposition_from
from dashboards.settings import settings_from_env
from dashboards.tail import FileTail, LogFollower, LogLine, LogSource
from deployex_actors.actors.system import NotRunning
from deployex_actors.config import Application as AppConfig
from deployex_actors.config import Config, Monitoring
from deployex_actors.core.metrics import Sample
from deployex_actors.core.status import AppSnapshot, DeployexSnapshot, ReplicaSnapshot
from deployex_actors.errors import DeployexError, NoAnswer


def line(text: str, seq: int = 1, source: str = "a:stdout") -> LogLine:
    return LogLine(seq, source, "a", "stdout", text)


# -- log colouring and search --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("12:00:01.123 [error] GenServer terminating", "error"),
        ("=ERROR REPORT==== 1-Jan-2025::12:00:00 ===", "error"),
        ("Traceback (most recent call last):", "error"),
        ("** (RuntimeError) crash in handler", "error"),
        ("12:00:01 [warning] slow reply", "warning"),
        ("2025-01-01 WARN disk at 80%", "warning"),
        ("12:00:01 [info] Running MyAppWeb.Endpoint", "info"),
        ("[debug] QUERY OK", "debug"),
        ("a warning about an error", "error"),  # the most severe keyword wins
        ("plain output line", None),
        ("information is not a keyword; errorless neither", None),
    ],
)
def test_log_lines_are_coloured_by_their_level_keyword(text: str, level: str | None) -> None:
    assert loglines.level_of(text) == level


def test_the_search_filter_is_case_insensitive_and_combines_with_levels() -> None:
    lines = [line("[info] User LOGGED in", 1), line("[error] db down", 2), line("[info] ok", 3)]
    assert [x.seq for x in loglines.filter_lines(lines, "logged")] == [1]
    assert [x.seq for x in loglines.filter_lines(lines, "  ")] == [1, 2, 3]
    assert [x.seq for x in loglines.filter_lines(lines, "", ["error"])] == [2]
    assert loglines.filter_lines(lines, "db", ["info"]) == []


def test_log_html_escapes_what_the_application_wrote() -> None:
    rendered = loglines.line_html(line("<script>alert(1)</script> [error]"), show_source=True)
    assert "<script>" not in rendered and "&lt;script&gt;" in rendered
    assert (
        'class="log-line level-error"' in rendered and '<span class="log-src">a stdout' in rendered
    )


# -- following files by offset -------------------------------------------------------------------


def test_a_tail_starts_with_the_last_bytes_on_a_line_boundary_then_follows(tmp_path: Path) -> None:
    log = tmp_path / "app-stdout.log"
    log.write_text("".join(f"old line {n}\n" for n in range(1000)))
    tail = FileTail(log, backlog_bytes=40)
    first = tail.read_new()
    assert first == ["old line 997", "old line 998", "old line 999"]
    assert tail.read_new() == []
    with log.open("a") as out:
        out.write("new 1\nnew 2 with no end yet")
    assert tail.read_new() == ["new 1"]
    with log.open("a") as out:
        out.write(" - now ended\n")
    assert tail.read_new() == ["new 2 with no end yet - now ended"]


def test_a_tail_survives_truncation_rotation_and_a_missing_file(tmp_path: Path) -> None:
    log = tmp_path / "app-stderr.log"
    tail = FileTail(log)
    assert tail.read_new() == []  # not there yet
    log.write_text("one\ntwo\n")
    assert tail.read_new() == ["one", "two"]
    log.write_text("")  # copytruncate
    log.write_text("three\n")
    assert tail.read_new() == ["three"]
    log.rename(tmp_path / "app-stderr.log.1")  # rotation: a new file takes the name
    log.write_text("four\n")
    assert tail.read_new() == ["four"]


def test_invalid_utf8_is_shown_not_fatal(tmp_path: Path) -> None:
    log = tmp_path / "bin.log"
    log.write_bytes(b"ok \xff\xfe bytes\r\n")
    assert FileTail(log).read_new() == ["ok \ufffd\ufffd bytes"]


def test_the_follower_reads_each_file_once_for_every_viewer(tmp_path: Path) -> None:
    reads: list[Path] = []

    class CountingTail(FileTail):
        def read_new(self) -> list[str]:
            reads.append(self.path)
            return super().read_new()

    log = tmp_path / "x.log"
    log.write_text("a\n")
    source = LogSource("x:stdout", "x stdout", "x", "stdout", log)
    follower = LogFollower(tail=CountingTail)
    unwatch_1 = follower.watch(source)
    unwatch_2 = follower.watch(source)
    with log.open("a") as out:
        out.write("b\nc\n")
    assert follower.tick() == 2
    assert len(reads) == 2  # one read at the first watch, one per tick: not one per viewer
    assert [x.text for x in follower.since(["x:stdout"], 0)] == ["a", "b", "c"]
    first_seq = follower.since(["x:stdout"], 0)[0].seq
    assert [x.text for x in follower.since(["x:stdout"], first_seq)] == ["b", "c"]
    unwatch_1()
    unwatch_1()  # twice is harmless
    assert follower.watched == ["x:stdout"]
    unwatch_2()
    assert follower.watched == [] and follower.tick() == 0


# -- /health and /metrics ------------------------------------------------------------------------


def test_metrics_are_open_without_a_token_and_need_the_bearer_when_one_is_set() -> None:
    assert bearer_ok(None, None) and bearer_ok("Bearer anything", None)
    assert bearer_ok("Bearer s3cret", "s3cret") and bearer_ok("bearer  s3cret ", "s3cret")
    assert not bearer_ok(None, "s3cret") and not bearer_ok("Bearer wrong", "s3cret")
    assert not bearer_ok("Basic s3cret", "s3cret") and not bearer_ok("Bearer ", "s3cret")


class FakeGateway:
    def __init__(self, answers: dict) -> None:
        self.answers = answers
        self.calls: list[tuple] = []
        self.problem = None
        self.reachable = True

    async def call(self, action):
        return action(Recorder(self))


class Recorder:
    """A facade whose every method is recorded and answered from the fake gateway's table."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway

    def __getattr__(self, method: str):
        def answer(*args, **kwargs):
            self.gateway.calls.append((method, args, kwargs))
            found = self.gateway.answers[method]
            if isinstance(found, Exception):
                raise found
            return found(*args) if callable(found) else found

        return answer


def serve_probes(gateway, token: str | None, requests: list[tuple[str, dict]]) -> list:
    async def run() -> list:
        app = Application(
            [
                ("/health", HealthHandler),
                (
                    "/metrics",
                    MetricsHandler,
                    {"exposition": exposition_from(gateway), "token": token},
                ),
            ]
        )
        http = app.listen(0, "127.0.0.1")
        port = next(iter(http._sockets.values())).getsockname()[1]
        try:
            return [
                await AsyncHTTPClient().fetch(
                    f"http://127.0.0.1:{port}{path}", headers=headers, raise_error=False
                )
                for path, headers in requests
            ]
        finally:
            http.stop()

    return asyncio.run(run())


def test_health_answers_ok_with_a_timestamp() -> None:
    (response,) = serve_probes(FakeGateway({}), None, [("/health", {})])
    body = json.loads(response.body)
    assert response.code == 200 and body["status"] == "ok"
    assert abs(time.time() - _iso_seconds(body["timestamp"])) < 60


def _iso_seconds(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def test_metrics_render_the_core_exposition_after_deployex_up() -> None:
    core_text = "# HELP deployex_host_cpu_percent x\n# TYPE deployex_host_cpu_percent gauge\n"
    core_text += "deployex_host_cpu_percent 12.5\n"
    gateway = FakeGateway({"prometheus": core_text})
    (response,) = serve_probes(gateway, None, [("/metrics", {})])
    text = response.body.decode()
    assert response.code == 200 and response.headers["Content-Type"].startswith("text/plain")
    assert "version=0.0.4" in response.headers["Content-Type"]
    assert text.startswith("# HELP deployex_up") and "\ndeployex_up 1\n" in text
    assert text.endswith(core_text)


def test_metrics_say_deployex_is_down_when_it_does_not_answer() -> None:
    gateway = FakeGateway({"prometheus": Unreachable("no answer from DeployEx within 5 s")})
    (response,) = serve_probes(gateway, None, [("/metrics", {})])
    assert response.code == 200 and "\ndeployex_up 0\n" in response.body.decode()


def test_metrics_with_a_token_refuse_other_callers() -> None:
    gateway = FakeGateway({"prometheus": ""})
    refused, wrong, allowed = serve_probes(
        gateway,
        "tok",
        [
            ("/metrics", {}),
            ("/metrics", {"Authorization": "Bearer nope"}),
            ("/metrics", {"Authorization": "Bearer tok"}),
        ],
    )
    assert refused.code == 401 and "Bearer" in refused.headers["WWW-Authenticate"]
    assert wrong.code == 401 and allowed.code == 200
    assert len(gateway.calls) == 1  # nothing was asked of DeployEx for the refused ones


# -- the gateway ---------------------------------------------------------------------------------


class FakeFacade:
    def __init__(self) -> None:
        self.fail_with: Exception | None = None

    def status(self) -> str:
        if self.fail_with:
            raise self.fail_with
        return "snapshot"

    def restart(self, app: str, sname: str | None = None, actor: str = "") -> list:
        raise DeployexError(f"no application {app!r}")


def test_the_gateway_attaches_lazily_and_again_after_deployex_was_unreachable() -> None:
    attached: list[int] = []
    facade = FakeFacade()

    def attach(_config):
        attached.append(1)
        if len(attached) == 1:
            raise NotRunning("DeployEx is not running (nothing listens on 127.0.0.1:1901)")
        return facade

    gateway = Gateway(Config("local", "env"), attach=attach)

    async def run() -> None:
        with pytest.raises(Unreachable, match="not running"):
            await gateway.call(lambda dx: dx.status())
        assert not gateway.reachable and "not running" in gateway.problem
        assert await gateway.call(lambda dx: dx.status()) == "snapshot"
        assert gateway.reachable and gateway.problem is None
        facade.fail_with = NoAnswer("no answer from DeployEx within 5 s")
        with pytest.raises(Unreachable):
            await gateway.call(lambda dx: dx.status())
        facade.fail_with = None
        assert await gateway.call(lambda dx: dx.status()) == "snapshot"
        assert len(attached) == 3  # dropped after the timeout, attached again
        with pytest.raises(DeployexError, match="no application"):  # an answer, not an outage
            await gateway.call(lambda dx: dx.restart("nope", actor="admin@h"))
        assert gateway.reachable

    try:
        asyncio.run(run())
    finally:
        gateway.close()


def test_the_gateway_never_runs_the_facade_on_the_event_loop_thread() -> None:
    import threading

    seen: list[str] = []

    class Facade:
        def ping(self) -> bool:
            seen.append(threading.current_thread().name)
            return True

    gateway = Gateway(Config("local", "env"), attach=lambda _c: Facade())
    try:
        asyncio.run(gateway.call(lambda dx: dx.ping()))
    finally:
        gateway.close()
    assert seen and seen[0].startswith("deployex-facade")


# -- the feed ------------------------------------------------------------------------------------


def snapshot(pids: tuple[int, ...] = (11, 12)) -> DeployexSnapshot:
    replicas = tuple(
        ReplicaSnapshot("app", f"app-00000{n}", f"app-00000{n}@h", "0.1.0", "running", n, pid=pid)
        for n, pid in enumerate(pids)
    )
    return DeployexSnapshot(
        "0.1.0", 1, 0.0, "h", (AppSnapshot("app", "gleam", 2, replicas=replicas),)
    )


def test_the_feed_counts_a_revision_only_when_the_status_changed() -> None:
    answers = {"status": snapshot()}
    feed = Feed(FakeGateway(answers), retention_s=60)

    async def run() -> None:
        await feed.refresh_status()
        await feed.refresh_status()
        assert feed.revision == 1
        answers["status"] = snapshot((11, 99))
        await feed.refresh_status()
        assert feed.revision == 2

    asyncio.run(run())


def test_the_feed_asks_each_target_only_for_samples_it_does_not_have() -> None:
    now = time.time()
    series = {
        "host": [Sample(now - 2, {"cpu_percent": 5.0}), Sample(now - 1, {"cpu_percent": 7.0})]
    }

    def metrics_since(since: dict[str, float]) -> dict[str, list[Sample]]:
        return {t: [s for s in series.get(t, []) if s.at > at] for t, at in since.items()}

    gateway = FakeGateway({"status": snapshot(), "metrics_since": metrics_since})
    feed = Feed(gateway, retention_s=60)

    def asked() -> list[dict[str, float]]:
        return [args[0] for method, args, _k in gateway.calls if method == "metrics_since"]

    async def run() -> None:
        await feed.refresh_status()
        await feed.refresh_metrics()
        everything = dict.fromkeys(["host", "deployex", "app-000000", "app-000001"], 0.0)
        assert asked() == [everything]  # one request for every target
        assert [s.values["cpu_percent"] for s in feed.samples_since("host", 0)] == [5.0, 7.0]
        gateway.calls.clear()
        await feed.refresh_metrics()
        assert asked() == [{**everything, "host": now - 1}]
        assert feed.latest("host").values["cpu_percent"] == 7.0

    asyncio.run(run())


def test_the_feed_shows_a_missing_watchdog_as_a_metrics_problem() -> None:
    gateway = FakeGateway(
        {"status": snapshot(), "metrics_since": DeployexError("watchdog is restarting")}
    )
    feed = Feed(gateway, retention_s=60)

    async def run() -> None:
        await feed.refresh_status()
        await feed.refresh_metrics()

    asyncio.run(run())
    assert feed.metrics_problem == "watchdog is restarting"
    assert feed.latest("host") is None


def test_the_feed_polls_only_while_someone_watches() -> None:
    gateway = FakeGateway({"status": snapshot(), "metrics_since": {}})
    feed = Feed(gateway, retention_s=60)

    async def run() -> None:
        feed.start()
        await asyncio.sleep(0.3)
        assert gateway.calls == []
        leave = feed.join()
        for _ in range(100):
            if feed.snapshot is not None:
                break
            await asyncio.sleep(0.02)
        assert feed.snapshot is not None and feed.viewers == 1
        leave()
        leave()
        assert feed.viewers == 0
        await asyncio.sleep(STATUS_PERIOD_S + 0.1)  # a poll under way may finish
        polled = len(gateway.calls)
        await asyncio.sleep(3 * STATUS_PERIOD_S)
        assert len(gateway.calls) == polled, "the feed kept polling with nobody watching"
        await feed.stop()

    asyncio.run(run())


# -- settings ------------------------------------------------------------------------------------

SECRETS = {
    "DEPLOYEX_ADMIN_HASHED_PASSWORD": "$2b$04$" + "a" * 53,
    "DEPLOYEX_SECRET_KEY_BASE": "the-key-base",
}


def test_settings_come_from_the_environment_with_safe_defaults() -> None:
    config = Config("local", "env", port=5001, hostname="deployex.example.com")
    settings = settings_from_env(config, SECRETS)
    assert (settings.host, settings.port, settings.secure_cookies) == ("127.0.0.1", 5001, False)
    assert settings.metrics_token is None and settings.cookie_secret != "the-key-base"
    assert "deployex.example.com:443" in settings.websocket_origins
    assert "the-key-base" not in repr(settings) and "$2b$" not in repr(settings)
    custom = settings_from_env(
        config,
        {
            **SECRETS,
            "DEPLOYEX_DASHBOARD_HOST": "0.0.0.0",
            "DEPLOYEX_DASHBOARD_SECURE_COOKIES": "1",
            "DEPLOYEX_METRICS_TOKEN": "tok",
        },
    )
    assert (custom.host, custom.secure_cookies, custom.metrics_token) == ("0.0.0.0", True, "tok")


def test_without_secrets_only_local_mode_gets_the_development_password() -> None:
    local = settings_from_env(Config("local", "env"), {})
    assert local.development_defaults
    with pytest.raises(DeployexError, match="DEPLOYEX_ADMIN_HASHED_PASSWORD"):
        settings_from_env(Config("s3", "aws"), {})
    with pytest.raises(DeployexError, match="DEPLOYEX_SECRET_KEY_BASE"):
        settings_from_env(Config("local", "env"), {"DEPLOYEX_ADMIN_HASHED_PASSWORD": "x"})


def test_settings_refuse_a_session_lifetime_that_is_not_a_positive_number() -> None:
    with pytest.raises(DeployexError, match="number of seconds"):
        settings_from_env(
            Config("local", "env"), {**SECRETS, "DEPLOYEX_DASHBOARD_SESSION_TTL_S": "x"}
        )
    assert (
        settings_from_env(
            Config("local", "env"), {**SECRETS, "DEPLOYEX_DASHBOARD_SESSION_TTL_S": "60"}
        ).session_ttl_s
        == 60
    )


# -- cards and words -----------------------------------------------------------------------------


APP = AppConfig(
    "app",
    "gleam",
    monitoring=(Monitoring("process", warning_threshold_percent=50, restart_threshold_percent=80),),
)


def test_beam_usage_is_judged_against_the_thresholds_of_the_watched_types() -> None:
    sample = Sample(
        0,
        {
            "process_count": 60,
            "process_limit": 100,
            "port_count": 1,
            "port_limit": 100,
            "atom_count": None,
            "atom_limit": 1000,
        },
    )
    by_kind = {u.kind: u for u in usage(sample, APP)}
    assert (by_kind["process"].percent, by_kind["process"].level) == (60, "warning")
    assert (by_kind["process"].warning, by_kind["process"].restart) == (50, 80)
    assert by_kind["port"].percent == 1 and by_kind["port"].warning is None  # not watched
    assert by_kind["atom"].percent is None and by_kind["atom"].level is None  # a gap
    assert all(u.percent is None for u in usage(None, APP))


def test_a_replica_card_shows_its_counters_and_escapes_errors() -> None:
    replica = ReplicaSnapshot(
        "app",
        "app-abc123",
        "app-abc123@h",
        "0.2.0",
        "running",
        0,
        ports={"PORT": 4000},
        pid=42,
        started_at=100.0,
        crash_restarts=2,
        forced_restarts=1,
        otp="connected",
        last_error="<b>boom</b>",
    )
    rendered = card_html(replica, None, APP, now=190.0)
    for expected in (
        'data-field="forced_restarts">1<',
        'data-field="crash_restarts">2<',
        'data-field="pid">42<',
        'data-field="uptime">1m<',
        "PORT=4000",
        'data-field="version">0.2.0<',
        "&lt;b&gt;boom&lt;/b&gt;",
    ):
        assert expected in rendered
    assert "/logs?app=app&sname=app-abc123&stream=stdout" in rendered


def test_the_mode_picker_offers_each_version_once_newest_first() -> None:
    class Record:
        def __init__(self, version: str) -> None:
            self.version = version

    history = [Record(v) for v in ("0.3.0", "0.2.0", "0.2.0", "0.1.0")]
    assert pinnable_versions(history) == ["0.3.0", "0.2.0", "0.1.0"]
    assert pinnable_versions(history, limit=2) == ["0.3.0", "0.2.0"]
    app = AppSnapshot("app", "gleam", 3, mode="manual", pinned_version="0.1.0")
    assert mode_words(app) == "Manually locked to version 0.1.0"


def test_durations_and_sizes_read_like_upstream() -> None:
    assert [display.ago(s) for s in (None, 0.2, 42, 61, 7200, 200000)] == [
        "-",
        "now",
        "42s",
        "1m",
        "2h",
        "2d",
    ]
    assert display.duration_ms(600_000) == "10 min (600000 ms)"
    assert display.duration_ms(500) == "0.5 s (500 ms)"
    assert display.size(512) == "512 B" and display.size(3 * 1024 * 1024) == "3.0 MiB"


def test_no_dashboard_module_is_imported_by_the_actor_system() -> None:
    roots = Path(__file__).resolve().parents[1] / "deployex_actors"
    offenders = [
        str(path.relative_to(roots))
        for path in roots.rglob("*.py")
        if "import dashboards" in path.read_text()
        or "from dashboards" in path.read_text()
        or "import panel" in path.read_text()
    ]
    assert offenders == []


def test_a_replica_card_shows_the_step_of_a_hot_upgrade_while_it_runs() -> None:
    replica = ReplicaSnapshot("app", "app-abc123", "app-abc123@h", "0.1.0", "running", 0, pid=42,
                              upgrade="hot upgrade step 3 of 5: install_release")  # fmt: skip
    rendered = card_html(replica, None, APP, now=190.0)
    assert 'data-field="upgrade">step 3 of 5: install_release<' in rendered
    assert 'data-field="upgrade"' not in card_html(replace(replica, upgrade=None), None, APP, 190)


def test_the_deployex_card_shows_a_state_database_problem_while_it_lasts() -> None:
    from dataclasses import replace

    from dashboards.pages.applications import deployex_card_html

    healthy = deployex_card_html(snapshot(), None, None, 10.0)
    assert "Problem" not in healthy
    full = replace(snapshot(), state_error="state database: disk full")
    assert 'data-field="state_error">state database: disk full<' in deployex_card_html(
        full, None, None, 10.0
    )
