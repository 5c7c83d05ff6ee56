"""The observer and the tracer (issue 17) on a real rebar3 replica under a real `deployex run`,
through the client facade and the CLI, and what a trace leaves on the node."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deployex_actors.beam import Atom, connect
from deployex_actors.beam.observer import describe_call
from deployex_actors.core.tracing import MAX_CAP, parse_target, trace_spec
from deployex_actors.errors import DeployexError
from deployex_actors.secrets.model import DEV_COOKIE, ERLANG_COOKIE
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.deployex_service import DEPLOYEX, app_entry, publish, running_service, write_config

APP = "myerlangapp"
SERVER = "myerlangapp_server"

# -- what may be traced (pure) ------------------------------------------------------------------


def test_a_trace_target_is_module_function_arity() -> None:
    assert parse_target("myapp_server:handle_call/3") == ("myapp_server", "handle_call", 3)
    assert parse_target("'Elixir.MyApp.Server':init/_") == ("Elixir.MyApp.Server", "init", "_")
    assert parse_target("MyApp.Server:init/1") == ("Elixir.MyApp.Server", "init", 1)
    for bad in ("myapp_server", "m:f", "m:f/x", "m:f/1; os:cmd(x)", ""):
        with pytest.raises(DeployexError, match="not a function to trace"):
            parse_target(bad)


def test_trace_limits_have_defaults_and_hard_caps() -> None:
    spec = trace_spec("m:f/1")
    assert (spec.max, spec.seconds, spec.rate, spec.returns, spec.match) == (
        100,
        30,
        1000,
        False,
        None,
    )
    with pytest.raises(DeployexError, match=r"max must be 1\.\.10000"):
        trace_spec("m:f/1", max_messages=MAX_CAP + 1)
    with pytest.raises(DeployexError, match="argument list pattern"):
        trace_spec("m:f/1", match="42")
    assert trace_spec("m:f/_", match="[_, 42]").match == "[_, 42]"


def test_the_calls_that_act_on_the_node_are_journaled_and_plain_reads_are_not() -> None:
    assert describe_call("system", ()) is None and describe_call("top", ("memory", 20)) is None
    assert "sys:get_state" in describe_call("process", ("<0.1.0>",))
    started = describe_call("trace_start", (trace_spec("m:f/1", returns=True),))
    assert started == "trace of m:f/1 started (max 100 messages, 30 s, 1000/s, returns)"


# -- on a real node -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(release_dist: ReleaseDist, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("observer")
    config = write_config(tmp, [app_entry(APP, replicas=1)])
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp) as service:
        running(service)
        yield service


def running(service: Any) -> Any:
    linked = lambda a: [(r.status, r.otp) for r in a.replicas] == [("running", "connected")]  # noqa: E731
    return service.wait_app(APP, linked, "the replica running and linked").replicas[0]


def node_link(replica: Any) -> Any:
    return connect(replica.node, os.environ.get(ERLANG_COOKIE) or DEV_COOKIE)


def knock(port: int, times: int) -> None:
    """Connections to the fixture's server: each one is a handle_info call in it."""
    for _ in range(times):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.recv(100)


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@pytest.mark.slow
def test_the_observer_shows_the_system_the_tree_the_processes_and_a_state(service) -> None:
    replica = running(service)
    dx = service.client()

    def observe(call: str, *args: Any) -> Any:
        return dx.observe(APP, replica.sname, call, *args, actor="test")

    system = observe("system")
    assert text(system["otp_release"]).isdigit() and system["process_count"] > 10
    assert system["memory"]["total"] > 0 and system["process_limit"] >= system["process_count"]
    (mine,) = [a for a in observe("apps", 3, 20) if a["name"] == APP]
    tree = mine["tree"]
    assert tree["name"] == "myerlangapp_sup" and tree["type"] == "supervisor"
    assert [(c["name"], c["type"]) for c in tree["children"]] == [(SERVER, "worker")]
    top = observe("top", "memory", 500)
    assert top["scanned"] == len(top["processes"]) and top["scanned"] > 10
    (server,) = [p for p in top["processes"] if p["name"] == SERVER]
    details = observe("process", text(server["pid"]))
    assert details["name"] == SERVER and details["message_queue_len"] == 0
    assert "upgraded_from" in text(details["state"]["value"])  # the gen_server's state map
    assert any(text(t["name"]) == "code" for t in observe("ets", 50))
    assert observe("ports", 5)
    journaled = [e.message for e in dx.events(app=APP, kind="observer")]
    assert any(f"process {text(server['pid'])} inspected" in m for m in journaled)


@pytest.mark.slow
def test_reductions_since_the_last_refresh_put_the_busy_process_on_top(service) -> None:
    replica = running(service)
    dx = service.client()
    first = dx.observe(APP, replica.sname, "top", "reductions_delta", 10, actor="test")
    assert first["first"] is True
    knock(replica.ports["PORT"], 200)  # work for the server between two refreshes
    second = dx.observe(APP, replica.sname, "top", "reductions_delta", 10, actor="test")
    assert second["first"] is False
    busy = {p["name"]: p["value"] for p in second["processes"]}
    assert busy.get(SERVER, 0) > 1000, busy
    values = [p["value"] for p in second["processes"]]
    assert values == sorted(values, reverse=True)
    # nothing for the server to do until the next refresh: little or nothing since the last one
    third = dx.observe(APP, replica.sname, "top", "reductions_delta", 10, actor="test")
    quiet = {p["name"]: p["value"] for p in third["processes"]}
    assert quiet.get(SERVER, 0) < busy[SERVER] / 10, (quiet, busy)


@pytest.mark.slow
def test_the_cli_prints_the_observer_once(service) -> None:
    replica = running(service)
    result = subprocess.run(
        [DEPLOYEX, "observer", APP, replica.sname, "--config", str(service.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for expected in ("OTP ", "processes ", "myerlangapp_sup", SERVER, "ETS tables", "ports"):
        assert expected in result.stdout, (expected, result.stdout)


@pytest.mark.slow
def test_a_trace_captures_calls_and_stops_at_its_count_and_at_its_time(service) -> None:
    replica = running(service)
    dx = service.client()
    port = replica.ports["PORT"]

    def observe(call: str, *args: Any) -> Any:
        return dx.observe(APP, replica.sname, call, *args, actor="test")

    tracer = observe("trace_start", trace_spec(f"{SERVER}:handle_info/2", max_messages=5))
    last: dict = {}
    seen: list = []

    def stopped(tracer: str, knocks: int = 0) -> bool:
        knock(port, knocks)  # the server may accept several connections in one handle_info
        last.update(observe("trace_fetch", tracer))
        seen.extend(last["events"])
        return last["status"] != "running"

    wait_until(lambda: stopped(tracer, 1), 20, "stopped at 5 messages")
    assert len(seen) == 5 and all(f"{SERVER},handle_info" in text(e["text"]) for e in seen)
    assert last["reason"] == "max_messages" and last["count"] == 5

    timed = observe("trace_start", trace_spec(f"{SERVER}:handle_info/2", seconds=1))
    wait_until(lambda: stopped(timed), 10, "stopped at 1 s")
    assert last["reason"] == "time_limit"

    def journaled() -> bool:
        ended = [e.message for e in dx.events(app=APP, kind="trace_ended")]
        return any("max_messages, 5 message(s)" in m for m in ended) and any(
            "time_limit" in m for m in ended
        )

    wait_until(journaled, 10, "both ends journaled with their reasons")
    with node_link(replica) as link:
        assert link.rpc("erlang", "whereis", [Atom("dx_observer_tracer")]) == "undefined"


@pytest.mark.slow
def test_a_trace_with_an_argument_match_sees_only_matching_calls(service) -> None:
    replica = running(service)
    dx = service.client()

    def trace(match: str) -> dict:
        spec = trace_spec(f"{SERVER}:handle_info/2", match=match)
        tracer = dx.observe(APP, replica.sname, "trace_start", spec, actor="test")
        knock(replica.ports["PORT"], 3)
        report: dict = {}

        def settled() -> bool:  # the calls have happened once the connections were answered
            report.update(dx.observe(APP, replica.sname, "trace_stop", tracer, actor="test"))
            return report["status"] != "running"

        wait_until(settled, 10, "the trace stopped")
        return report

    assert trace("[nothing_like_this, _]")["count"] == 0
    assert trace("[{'$socket', _, select, _}, _]")["count"] >= 1
    with pytest.raises(DeployexError, match="does not parse"):
        dx.observe(APP, replica.sname, "trace_start", trace_spec("m:f/1", match="[_,"))


@pytest.mark.slow
def test_a_trace_over_its_rate_stops_itself_and_the_node_stays_responsive(service) -> None:
    replica = running(service)
    dx = service.client()
    spec = trace_spec("timer:sleep/1", rate=100, max_messages=MAX_CAP, seconds=60)
    tracer = dx.observe(APP, replica.sname, "trace_start", spec, actor="test")
    with node_link(replica) as link:
        link.rpc(SERVER, "spawn_idle", [20_000], 30)  # 20 000 calls of timer:sleep at once
        assert link.ping(5) < 0.1
        report: dict = {}

        def stopped() -> bool:
            report.update(dx.observe(APP, replica.sname, "trace_fetch", tracer, actor="test"))
            return report["status"] != "running"

        wait_until(stopped, 10, "the trace stopped itself")
        assert report["reason"] == "rate_limit" and report["count"] <= 1000
        flags = link.rpc("erlang", "trace_info", [Atom("new"), Atom("flags")])
        assert flags == (Atom("flags"), [])
        assert link.ping(5) < 0.1


@pytest.mark.slow
def test_the_top_of_a_node_with_100000_more_processes_stays_bounded(service) -> None:
    replica = running(service)
    with node_link(replica) as link:
        link.rpc(SERVER, "spawn_idle", [100_000], 60)
    top = service.client().observe(APP, replica.sname, "top", "reductions", 20, actor="test")
    assert top["process_count"] > 100_000 and top["scanned"] >= 100_000
    assert len(top["processes"]) == 20  # what crosses the wire does not grow with the node


@pytest.mark.slow
def test_deployex_killed_during_a_trace_leaves_no_trace_on_the_node(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry(APP, replicas=1)])
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        replica = running(service)
        spec = trace_spec(f"{SERVER}:handle_info/2", seconds=600, max_messages=MAX_CAP)
        service.client().observe(APP, replica.sname, "trace_start", spec, actor="test")
        mfa = (Atom(SERVER), Atom("handle_info"), 2)
        with node_link(replica) as link:
            assert link.rpc("erlang", "trace_info", [mfa, Atom("traced")]) == (
                Atom("traced"),
                Atom("local"),
            )
        service.kill_deployex()
        service.start()
        again = running(service)
        assert again.pid == replica.pid  # adopted, the same node
        with node_link(again) as link:

            def cleared() -> bool:
                traced = link.rpc("erlang", "trace_info", [mfa, Atom("traced")])
                tracer = link.rpc("erlang", "whereis", [Atom("dx_observer_tracer")])
                return traced == (Atom("traced"), False) and tracer == "undefined"

            wait_until(cleared, 20, "the node's trace flags cleared")
            server = link.rpc("erlang", "whereis", [Atom(SERVER)])
            assert link.rpc("erlang", "trace_info", [server, Atom("flags")]) == (
                Atom("flags"),
                [],
            )
