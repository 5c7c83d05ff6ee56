"""Hot upgrades performed by a real `deployex run` on real rebar3 and mix replicas.

0.2.0 of both fixture apps carries a relup from 0.1.0 whose appup updates the server with
`code_change`, which records where it came from (`info/0` answers `upgraded_from`) and, in the
Erlang app, prints "code_change from" to the replica's stdout log.
"""

from __future__ import annotations

import io
import os
import re
import signal
import tarfile
import time
from pathlib import Path

import psutil
import pytest

from deployex_actors.beam import Atom, connect
from deployex_actors.beam.terms import text
from deployex_actors.config import load_config
from deployex_actors.core.status import AppSnapshot
from deployex_actors.releases import release_store
from deployex_actors.replica import pidfile
from deployex_actors.secrets.model import DEV_COOKIE, ERLANG_COOKIE
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.deployex_service import (
    Service,
    app_entry,
    banner,
    publish,
    running_service,
    wait_banner,
    write_config,
)
from tests.probes import Prober

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
        # 20 Hz on each replica's port, all along: a hot upgrade refuses nobody
        with Prober([r.ports["PORT"] for r in before.replicas]).running() as prober:
            wait_until(lambda: len(prober.counts) > 5, 10, "the prober started")
            started = time.monotonic()
            publish(config, release_dist, app, TO)
            after = service.wait_app(app, serving(TO, 2), f"two {TO} replicas, upgraded", 90)
            elapsed = time.monotonic() - started
            wait_until(lambda: f"{app} {TO}" in prober.versions, 10, "the prober saw 0.2.0")
        print(f"{app}: both replicas hot-upgraded {elapsed:.2f} s after publish")
        assert min(prober.counts) == 2, prober.counts
        assert prober.versions == {f"{app} {FROM}", f"{app} {TO}"}

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

        # a restarted DeployEx adopts the same processes and reports the new version
        service.kill_deployex()
        service.start()
        adopted = service.wait_app(app, serving(TO, 2), "adopted after a DeployEx restart", 60)
        assert {(r.sname, r.pid, r.adopted) for r in adopted.replicas} == {
            (r.sname, r.pid, True) for r in after.replicas
        }

        # a crash later restarts it on the new release, the one made permanent
        victim = after.replicas[0]
        os.kill(victim.pid, signal.SIGKILL)
        again = service.wait_app(
            app,
            lambda a: any(r.sname == victim.sname and r.pid not in (None, victim.pid)
                          and r.status == "running" for r in a.replicas),
            "the crashed replica running again",
        )  # fmt: skip
        restarted = next(r for r in again.replicas if r.sname == victim.sname)
        assert restarted.version == TO and restarted.crash_restarts == 1
        wait_banner(restarted.ports["PORT"], f"{app} {TO}\n")
        assert releases_on_node(restarted.node)[TO] == "permanent"


BROKEN = "0.2.1"


MISSING_MODULE = (r"(\{load_object_code,\{\w+,\"[^\"]+\",\[)", r"\1hot_upgrade_missing_module,")
# After the point of no return: check_install_release does not run it, install_release does.
HALTS_DURING_INSTALL = (r"point_of_no_return,", r"point_of_no_return,{apply,{erlang,halt,[3]}},")


def broken_release(
    source: Path, dest: Path, app: str, damage: tuple[str, str] = MISSING_MODULE
) -> Path:
    """The real 0.2.0 tarball as release 0.2.1 (its applications unchanged) with its relup's
    upgrade damaged: hot-upgradable on paper. By default it loads a module that is not there,
    which check_install_release refuses."""

    def rename(name: str) -> str:
        name = name.replace(f"releases/{TO}/", f"releases/{BROKEN}/")
        return name.replace(f"releases/{app}-{TO}.rel", f"releases/{app}-{BROKEN}.rel")

    def rewrite(name: str, data: bytes) -> bytes:
        if name.endswith(".rel"):
            return data.replace(f'{{"{app}","{TO}"}}'.encode(), f'{{"{app}","{BROKEN}"}}'.encode())
        if name.endswith("/relup"):
            text = data.decode().replace(f'"{TO}"', f'"{BROKEN}"', 1)
            return re.sub(damage[0], damage[1], text, count=1).encode()
        return data

    with tarfile.open(source) as old, tarfile.open(dest, "w:gz", compresslevel=1) as new:
        for member in old:
            name = member.name
            member.name = rename(name)
            if member.isfile():
                data = rewrite(member.name, old.extractfile(member).read())
                member.size = len(data)
                new.addfile(member, io.BytesIO(data))
            else:
                new.addfile(member)
    return dest


def publish_broken(config: Path, dist: ReleaseDist, app: str, damage: tuple[str, str]) -> None:
    """Publish the damaged 0.2.1 (broken_release) as the version to deploy."""
    tarball = broken_release(dist.tarball(app, TO), config.parent / f"{app}-{BROKEN}.tar.gz", app,
                             damage)  # fmt: skip
    release_store(load_config(config)).publish(app, BROKEN, tarball, [])


@pytest.mark.parametrize("app", ["myerlangapp", "myelixirapp"])
def test_a_hot_upgrade_refused_before_install_ghosts_the_version_and_changes_nothing(
    release_dist: ReleaseDist, tmp_path: Path, app: str
) -> None:
    config = write_config(tmp_path, [app_entry(app, replicas=2)])
    publish(config, release_dist, app, FROM)
    with running_service(config, tmp_path) as service:
        before = service.wait_app(app, serving(FROM, 2), f"two {FROM} replicas")
        publish_broken(config, release_dist, app, MISSING_MODULE)
        service.wait_app(app, lambda a: BROKEN in a.ghosts, f"{BROKEN} ghosted", 60)
        after = service.wait_app(app, lambda a: a.rollout == "converged", "converged", 20)

        assert {r.sname: r.pid for r in after.replicas} == {r.sname: r.pid for r in before.replicas}
        assert [(r.version, r.crash_restarts) for r in after.replicas] == [(FROM, 0)] * 2
        (kind,) = journal(service, app, "deployment_kind")
        assert kind.startswith(f"hot upgrade {FROM} -> {BROKEN}")
        (failed,) = journal(service, app, "hot_upgrade_failed")  # one replica tried, not both
        assert (
            "step 2 of 5: check_install_release" in failed
            and "hot_upgrade_missing_module" in failed
        )
        assert failed.endswith(f"it still runs {FROM}")
        for replica in after.replicas:
            assert banner(replica.ports["PORT"]) == f"{app} {FROM}\n"
            on_node = releases_on_node(replica.node)
            assert on_node[FROM] == "permanent" and BROKEN not in on_node, on_node
            assert on_node["upgraded_from"] == Atom("undefined")
        assert [h.version for h in service.client().versions(app)] == [FROM, FROM]
        assert [g.version for g in service.client().ghosts(app)] == [BROKEN]


def test_a_replica_that_dies_during_install_comes_back_on_its_permanent_release(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    app = "myerlangapp"
    config = write_config(tmp_path, [app_entry(app, replicas=2)])
    publish(config, release_dist, app, FROM)
    with running_service(config, tmp_path) as service:
        before = service.wait_app(app, serving(FROM, 2), f"two {FROM} replicas")
        publish_broken(config, release_dist, app, HALTS_DURING_INSTALL)
        service.wait_app(app, lambda a: BROKEN in a.ghosts, f"{BROKEN} ghosted", 60)
        after = service.wait_app(
            app, lambda a: serving(FROM, 2)(a) and a.rollout == "converged", "back on 0.1.0", 30
        )
        pids = {r.sname: r.pid for r in before.replicas}
        (victim,) = [r for r in after.replicas if r.pid != pids[r.sname]]  # the one it ran on
        assert victim.sname in pids and victim.crash_restarts == 1 and victim.version == FROM
        wait_banner(victim.ports["PORT"], f"{app} {FROM}\n")
        assert releases_on_node(victim.node)[FROM] == "permanent"
        (failed,) = journal(service, app, "hot_upgrade_failed")
        assert "step 3 of 5" in failed, failed
        assert [h.version for h in service.client().versions(app)] == [FROM, FROM]


# Each replica's run appends the app's version as B's own unpacked copy loads it.
WRITES_ITS_VERSION = {
    "myerlangapp": "eval application:load(myerlangapp), {{ok, V}} = "
    'application:get_key(myerlangapp, vsn), ok = file:write_file("{path}", [V, "\\n"], [append])',
    "myelixirapp": 'eval \'Application.load(:myelixirapp); File.write!("{path}", '
    '[Application.spec(:myelixirapp, :vsn), "\\n"], [:append])\'',
}


@pytest.mark.parametrize("app", ["myerlangapp", "myelixirapp"])
def test_pre_commands_run_first_against_the_new_release_then_the_upgrade_is_hot(
    release_dist: ReleaseDist, tmp_path: Path, app: str
) -> None:
    config = write_config(tmp_path, [app_entry(app, replicas=2)])
    written = tmp_path / "pre-command.out"
    publish(config, release_dist, app, FROM)
    with running_service(config, tmp_path) as service:
        before = service.wait_app(app, serving(FROM, 2), f"two {FROM} replicas")
        publish(config, release_dist, app, TO, (WRITES_ITS_VERSION[app].format(path=written),))
        after = service.wait_app(app, serving(TO, 2), f"two {TO} replicas, upgraded", 90)
        assert {r.sname: r.pid for r in after.replicas} == {r.sname: r.pid for r in before.replicas}
        assert written.read_text().split() == [TO, TO]  # once per replica, from B's code
        steps = journal(service, app, "hot_upgrade_step")
        assert steps.count("hot upgrade step 1 of 6: pre_commands") == 2
        assert steps.count("hot upgrade step 4 of 6: install_release") == 2
        assert not any(
            service.catalog.new_dir(app, r.sname).exists() for r in after.replicas
        )  # B's copy for the pre-commands is gone once they ran


def test_a_failing_pre_command_ghosts_the_version_and_the_replicas_keep_running(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    app = "myerlangapp"
    config = write_config(tmp_path, [app_entry(app, replicas=2)])
    publish(config, release_dist, app, FROM)
    with running_service(config, tmp_path) as service:
        before = service.wait_app(app, serving(FROM, 2), f"two {FROM} replicas")
        publish(config, release_dist, app, TO, ("eval halt(3)",))
        service.wait_app(app, lambda a: TO in a.ghosts, f"{TO} ghosted", 60)
        after = service.wait_app(app, lambda a: a.rollout == "converged", "converged", 20)
        assert {r.sname: r.pid for r in after.replicas} == {r.sname: r.pid for r in before.replicas}
        (failed,) = journal(service, app, "hot_upgrade_failed")
        assert "step 1 of 6: pre-command 'eval halt(3)' exited with status 3" in failed, failed
        for replica in after.replicas:
            assert banner(replica.ports["PORT"]) == f"{app} {FROM}\n"
            assert TO not in releases_on_node(replica.node)  # never unpacked on the node


# install_release sleeps after the point of no return: a window to kill DeployEx in.
SLOW_INSTALL = (r"point_of_no_return,", r"point_of_no_return,{apply,{timer,sleep,[4000]}},")


@pytest.mark.parametrize("victim", ["Deployer", "DeployEx"])
def test_deployex_killed_during_an_install_finishes_the_upgrade_after_adoption(
    release_dist: ReleaseDist, tmp_path: Path, victim: str
) -> None:
    app = "myerlangapp"
    config = write_config(tmp_path, [app_entry(app, replicas=2)])
    publish(config, release_dist, app, FROM)
    with running_service(config, tmp_path) as service:
        before = service.wait_app(app, serving(FROM, 2), f"two {FROM} replicas")
        publish_broken(config, release_dist, app, SLOW_INSTALL)
        installing = "hot upgrade step 3 of 5: install_release"
        wait_until(lambda: installing in journal(service, app, "hot_upgrade_step"), 60, "install")
        if victim == "Deployer":
            monitor = psutil.Process(before.replicas[0].pid).ppid()
            os.kill(psutil.Process(monitor).ppid(), signal.SIGKILL)
        else:
            service.kill_deployex()
            service.start()
        after = service.wait_app(app, serving(BROKEN, 2), f"two {BROKEN} replicas", 120)

        assert {r.sname: r.pid for r in after.replicas} == {r.sname: r.pid for r in before.replicas}
        assert after.ghosts == () and service.client().ghosts(app) == []
        history = [(h.sname, h.version, h.kind) for h in service.client().versions(app)]
        assert sorted(h for h in history if h[1] == BROKEN) == sorted(
            (r.sname, BROKEN, "hot_upgrade") for r in before.replicas
        )  # one record per sname, whichever Monitor finished it
        for replica in after.replicas:
            assert releases_on_node(replica.node)[BROKEN] == "permanent"
            record = pidfile.read(service.catalog.pidfile(app, replica.sname))
            assert record is not None and record.version == BROKEN
            assert banner(replica.ports["PORT"]) == f"{app} {TO}\n"  # 0.2.1 ships app 0.2.0
