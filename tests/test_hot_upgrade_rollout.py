"""Hot upgrades performed by a real `deployex run` on real rebar3 and mix replicas.

0.2.0 of both fixture apps carries a relup from 0.1.0 whose appup updates the server with
`code_change`, which records where it came from (`info/0` answers `upgraded_from`) and, in the
Erlang app, prints "code_change from" to the replica's stdout log.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from deployex_actors.beam import Atom, connect
from deployex_actors.beam.terms import text
from deployex_actors.core.status import AppSnapshot
from deployex_actors.replica import pidfile
from deployex_actors.secrets.model import DEV_COOKIE, ERLANG_COOKIE
from tests.beam_fixtures import ReleaseDist
from tests.deployex_service import (
    Service,
    app_entry,
    banner,
    publish,
    running_service,
    write_config,
)

pytestmark = pytest.mark.slow

FROM, TO = "0.1.0", "0.2.0"


def serving(version: str, count: int):
    def check(app: AppSnapshot) -> bool:
        ready = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(ready) == count and len(app.replicas) == count

    return check


def releases_on_node(node: str) -> dict[str, str]:
    """release_handler:which_releases() of the node: version -> status."""
    cookie = os.environ.get(ERLANG_COOKIE) or DEV_COOKIE
    with connect(node, cookie) as link:
        found = link.rpc("release_handler", "which_releases", [])
        info_module = "myerlangapp_server" if node.startswith("myerlangapp") else None
        info = link.rpc(info_module or "Elixir.Myelixirapp.Server", "info", [])
    versions = {text(vsn): str(status) for _name, vsn, _libs, status in found}
    versions["upgraded_from"] = info[Atom("upgraded_from")]
    return versions


def journal(service: Service, app: str, kind: str) -> list[str]:
    return [e.message for e in service.client().events(app=app, kind=kind, limit=1000)]


@pytest.mark.parametrize("app", ["myerlangapp", "myelixirapp"])
def test_a_hot_upgradable_version_replaces_the_code_in_the_running_replicas(
    release_dist: ReleaseDist, tmp_path: Path, app: str
) -> None:
    config = write_config(tmp_path, [app_entry(app, replicas=2)])
    publish(config, release_dist, app, FROM)
    with running_service(config, tmp_path) as service:
        before = service.wait_app(app, serving(FROM, 2), f"two {FROM} replicas")
        started = time.monotonic()
        publish(config, release_dist, app, TO)
        after = service.wait_app(app, serving(TO, 2), f"two {TO} replicas, upgraded", 90)
        print(f"{app}: both replicas hot-upgraded {time.monotonic() - started:.2f} s after publish")

        # the same replicas, the same OS processes, nothing restarted
        assert {r.sname: r.pid for r in after.replicas} == {r.sname: r.pid for r in before.replicas}
        assert [(r.crash_restarts, r.forced_restarts) for r in after.replicas] == [(0, 0)] * 2
        for replica in after.replicas:
            assert banner(replica.ports["PORT"]) == f"{app} {TO}\n"
            on_node = releases_on_node(replica.node)
            assert on_node[TO] == "permanent" and on_node[FROM] == "old", on_node
            assert on_node["upgraded_from"] == FROM.encode()  # code_change ran, state kept
            record = pidfile.read(service.catalog.pidfile(app, replica.sname))
            assert record is not None and record.version == TO and record.pid == replica.pid
            # a restart would boot the new release: the start script and start_erl.data say so
            release = service.catalog.current_dir(app, replica.sname)
            assert (release / "releases" / "start_erl.data").read_text().split()[1] == TO
            if app == "myerlangapp":
                script = (release / "bin" / app).read_text()
                assert f'REL_VSN="{TO}"' in script
                log = service.catalog.stdout_log(app, replica.sname).read_text()
                assert "code_change from" in log

        history = [h for h in service.client().versions(app) if h.version == TO]
        assert sorted((h.sname, h.kind) for h in history) == sorted(
            (r.sname, "hot_upgrade") for r in before.replicas
        )
        (kind,) = journal(service, app, "deployment_kind")
        assert kind == f"hot upgrade {FROM} -> {TO}: {app} {FROM} -> {TO}"
        steps = journal(service, app, "hot_upgrade_step")
        assert steps.count("hot upgrade step 3 of 5: install_release") == 2
        assert len(journal(service, app, "hot_upgraded")) == 2
        for replica in after.replicas:
            begun, done = (
                next(e.at for e in service.client().events(app=app, kind=kind, limit=100)
                     if e.sname == replica.sname)
                for kind in ("hot_upgrade", "hot_upgraded")
            )  # fmt: skip
            print(f"{replica.sname}: in place in {(done - begun).total_seconds():.3f} s")
        assert len(journal(service, app, "started")) == 2  # the first starts, nothing since
        service.wait_app(app, lambda a: a.rollout == "converged", "the rollout converged", 10)
