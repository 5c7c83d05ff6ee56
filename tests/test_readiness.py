"""Readiness checks end to end: a new replica is ready only when its check passes.

Each app has a second port key, PROBE, that the fixture app does not listen on: the test answers
there for chosen slots (a TCP listener, or an HTTP server with a chosen status), so it decides
which replica's check passes, and when. The first replicas (slots 0 and 1) always pass; the new
replica of a rollout comes up on the spare slot 2.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from deployex_actors.core.status import AppSnapshot
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.deployex_service import (
    Service,
    app_entry,
    free_port_range,
    publish,
    running_service,
    wait_banner,
    write_config,
)

pytestmark = pytest.mark.slow
APP = "mygleamapp"
REPLICAS = 2
SPARE = REPLICAS  # the slot a rollout's new replica takes


@contextlib.contextmanager
def tcp_listener(port: int) -> Iterator[None]:
    with socket.create_server(("127.0.0.1", port)):  # connections wait in its backlog
        yield


@contextlib.contextmanager
def http_answer(port: int, status: int) -> Iterator[None]:
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


def serving(version: str):
    def check(app: AppSnapshot) -> bool:
        ready = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(ready) == REPLICAS == len(app.replicas)

    return check


def held_by_its_check(app: AppSnapshot) -> bool:
    """The rollout's new replica (0.2.0) runs but is not ready: its readiness check fails."""
    return any(r.version == "0.2.0" and "readiness" in (r.last_error or "") for r in app.replicas)


def configured(tmp_path: Path, release_dist: ReleaseDist, readiness: dict) -> tuple[Path, int]:
    probe = free_port_range(REPLICAS + 1)
    entry = app_entry(APP, replicas=REPLICAS, deploy_rollback_timeout_ms=8000, readiness=readiness)
    entry["replica_ports"].append({"key": "PROBE", "base": probe})
    config = write_config(tmp_path, [entry])
    publish(config, release_dist, APP, "0.1.0")
    return config, probe


def old_replicas_untouched(service: Service, before: AppSnapshot) -> None:
    now = {r.sname: r.pid for r in service.app(APP).replicas if r.version == "0.1.0"}
    assert now == {r.sname: r.pid for r in before.replicas}
    for replica in before.replicas:
        wait_banner(replica.ports["PORT"], f"{APP} 0.1.0\n")


@pytest.mark.parametrize("kind", ["tcp", "http"])
def test_a_check_that_never_passes_holds_the_rollout_then_rolls_back_and_ghosts(
    kind: str, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    readiness = {"type": kind, "port": "PROBE", "path": "/ready", "interval_ms": 200}
    config, probe = configured(tmp_path, release_dist, readiness)
    with contextlib.ExitStack() as answers:
        for slot in range(REPLICAS):  # the first replicas' checks pass
            answers.enter_context(
                tcp_listener(probe + slot) if kind == "tcp" else http_answer(probe + slot, 200)
            )
        if kind == "http":  # the new replica's check is answered, with a failure
            answers.enter_context(http_answer(probe + SPARE, 503))
        with running_service(config, tmp_path) as service:
            before = service.wait_app(APP, serving("0.1.0"), "two 0.1.0 replicas")
            publish(config, release_dist, APP, "0.2.0")

            held = service.wait_app(APP, held_by_its_check, "the new replica held", 30)
            new = next(r for r in held.replicas if r.version == "0.2.0")
            assert new.status == "starting" and new.pid is not None
            expected = "answered 503" if kind == "http" else "tcp check"
            assert expected in new.last_error
            old_replicas_untouched(service, before)  # nothing retired while it waits
            service.wait_app(APP, lambda a: "0.2.0" in a.ghosts, "0.2.0 ghosted", 40)
            service.wait_app(APP, serving("0.1.0"), "back to the two 0.1.0 replicas")
            old_replicas_untouched(service, before)


def test_a_check_that_passes_late_delays_the_retire_until_it_passes(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    readiness = {"type": "tcp", "port": "PROBE", "interval_ms": 200}
    config, probe = configured(tmp_path, release_dist, readiness)
    with contextlib.ExitStack() as answers:
        for slot in range(REPLICAS):
            answers.enter_context(tcp_listener(probe + slot))
        with running_service(config, tmp_path) as service:
            before = service.wait_app(APP, serving("0.1.0"), "two 0.1.0 replicas")
            publish(config, release_dist, APP, "0.2.0")
            service.wait_app(APP, held_by_its_check, "the new replica held", 30)
            old_replicas_untouched(service, before)
            assert service.client().events(app=APP, kind="retire") == []
            opened = time.time()
            answers.enter_context(tcp_listener(probe + SPARE))  # now it passes
            wait_until(lambda: service.client().events(app=APP, kind="retire"), 30, "a retire")
            retire = service.client().events(app=APP, kind="retire")[-1]
            assert retire.at.timestamp() >= opened
            assert service.app(APP).ghosts == ()


def test_an_otp_check_holds_a_node_that_does_not_answer_then_rolls_back_and_ghosts(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    """otp: ready when the node answers DeployEx over distribution. The first replicas do; then
    DeployEx is restarted with a YAML that gives new replicas another cookie (ERL_ZFLAGS comes
    last on the VM's command line, so its -setcookie wins): the new one never answers."""
    readiness = {"type": "otp", "interval_ms": 200}
    config, _probe = configured(tmp_path, release_dist, readiness)
    with running_service(config, tmp_path) as service:
        before = service.wait_app(APP, serving("0.1.0"), "two 0.1.0 replicas")
        assert all(r.otp == "connected" for r in before.replicas)
        service.kill_deployex()  # the replicas keep running, and are adopted with the new YAML
        document = yaml.safe_load(config.read_text())
        document["applications"][0]["env"] = [{"key": "ERL_ZFLAGS", "value": "-setcookie other"}]
        config.write_text(yaml.safe_dump(document))
        service.start()
        service.wait_app(APP, serving("0.1.0"), "adopted, and answering")
        publish(config, release_dist, APP, "0.2.0")
        service.wait_app(APP, held_by_its_check, "the new replica held", 30)
        old_replicas_untouched(service, before)
        service.wait_app(APP, lambda a: "0.2.0" in a.ghosts, "0.2.0 ghosted", 40)
        old_replicas_untouched(service, before)
