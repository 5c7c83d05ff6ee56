"""Rollouts with real replicas: overlap, rollback and ghosting, manual mode, errors, resumption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from deployex_actors.catalog import current_json_key, tarball_key
from deployex_actors.core.status import AppSnapshot
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.deployex_service import (
    DEPLOYEX,
    Service,
    app_entry,
    publish,
    running_service,
    write_config,
)
from tests.probes import Prober, slot_ports
from tests.tarballs import build_tarball, file, symlink

pytestmark = pytest.mark.slow
APP = "mygleamapp"


def serving(version: str, count: int = 3):
    def check(app: AppSnapshot) -> bool:
        ready = [r for r in app.replicas if r.status == "running" and r.version == version]
        return len(ready) == count and len(app.replicas) == count

    return check


def events(service: Service, kind: str | None = None) -> list:
    return service.client().events(app=APP, kind=kind, limit=1000)[::-1]  # oldest first


def test_rolling_to_a_new_version_never_drops_below_three_serving_replicas(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    entry = app_entry(APP)
    config = write_config(tmp_path, [entry])
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        before = service.wait_app(APP, serving("0.1.0"), "three 0.1.0 replicas")
        with Prober(slot_ports(entry)).running() as prober:
            wait_until(lambda: len(prober.counts) > 5, 10, "the prober started")
            publish(config, release_dist, APP, "0.2.0")
            service.wait_app(APP, serving("0.2.0"), "three 0.2.0 replicas", deadline_s=90)
        assert min(prober.counts) >= 3, prober.counts
        assert prober.versions == {f"{APP} 0.1.0", f"{APP} 0.2.0"}
        history = [h for h in service.client().versions(APP) if h.version == "0.2.0"]
        assert len(history) == 3
        assert not {h.sname for h in history} & {r.sname for r in before.replicas}
        # each old replica was stopped only after the replica started for it was ready
        log = events(service)
        retired = [e for e in log if e.kind == "retire"]
        assert len(retired) == 3
        for event in retired:
            started = next(e for e in log if e.kind == "deploy" and event.sname in e.message)
            assert log.index(started) < log.index(event)


def test_a_crashing_version_is_rolled_back_ghosted_and_never_tried_again(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    # 0.3.0 halts 2 s after boot: with ready_after 3 s it can never be ready.
    entry = app_entry(APP, ready_after_ms=3000, deploy_rollback_timeout_ms=6000)
    config = write_config(tmp_path, [entry])
    publish(config, release_dist, APP, "0.2.0")
    with running_service(config, tmp_path) as service:
        before = service.wait_app(APP, serving("0.2.0"), "three 0.2.0 replicas", deadline_s=90)
        publish(config, release_dist, APP, "0.3.0")
        service.wait_app(APP, lambda a: "0.3.0" in a.ghosts, "0.3.0 ghosted", 60)
        after = service.wait_app(APP, serving("0.2.0"), "the 0.3.0 replica gone")
        assert {r.sname: r.pid for r in after.replicas} == {r.sname: r.pid for r in before.replicas}
        assert [g.version for g in service.client().ghosts(APP)] == ["0.3.0"]

        def tries_of_030() -> int:
            return len([e for e in events(service, "deploy") if "0.3.0" in e.message])

        tries = tries_of_030()
        # later ticks, then a stop of DeployEx and its replicas and a new start, try no 0.3.0:
        # the last good version comes back
        service.proc.send_signal(signal.SIGTERM)
        service.proc.wait(60)
        service.start()
        service.wait_app(APP, serving("0.2.0"), "0.2.0 serving after the restart", 90)
        assert tries_of_030() == tries
        assert service.app(APP).desired_version == "0.3.0"


def test_manual_pin_back_to_an_old_version_then_automatic_again(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry(APP, replicas=2)])
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        service.wait_app(APP, serving("0.1.0", 2), "two 0.1.0 replicas")
        publish(config, release_dist, APP, "0.2.0")
        service.wait_app(APP, serving("0.2.0", 2), "two 0.2.0 replicas", deadline_s=90)
        dx = service.client()
        dx.set_mode(APP, "0.1.0")
        pinned = service.wait_app(APP, serving("0.1.0", 2), "pinned back to 0.1.0", 90)
        assert (pinned.mode, pinned.pinned_version) == ("manual", "0.1.0")
        with pytest.raises(Exception, match="neither in the history nor in the bucket"):
            dx.set_mode(APP, "9.9.9")
        dx.set_mode(APP, None)
        auto = service.wait_app(APP, serving("0.2.0", 2), "following current.json", 90)
        assert auto.mode == "automatic"
        kinds = [e.kind for e in events(service)]
        assert kinds.count("mode") == 2


def _write_raw(config: Path, key: str, data: bytes) -> None:
    bucket = Path(json.loads(json.dumps(str(config.parent / "bucket"))))
    target = bucket / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def _bad_release(tmp: Path, kind: str) -> bytes:
    path = tmp / f"bad-{kind}.tar.gz"
    if kind == "corrupt":
        return b"\x1f\x8b this is not gzip"
    if kind == "escape":
        build_tarball(path, [file("erlang-shipment/ok", b"x"), file("../../escaped", b"x")])
    elif kind == "no_executable":
        build_tarball(path, [file("README", b"a release without its program\n")])
    elif kind == "link_out":
        build_tarball(path, [symlink("erlang-shipment", "/etc")])
    return path.read_bytes()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_current", "no current.json"),
        ("invalid_json", "not valid JSON"),
        ("missing_tarball", "no tarball"),
        ("corrupt", "not a readable gzip tar archive"),
        ("escape", "escape"),
        ("link_out", "symlink to an absolute path"),
        ("no_executable", "missing"),
    ],
)
def test_each_error_is_visible_harmless_and_leaves_no_stray_folders(
    case: str, expected: str, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    entry = app_entry(APP, replicas=2, ready_after_ms=1000, deploy_rollback_timeout_ms=5000)
    config = write_config(tmp_path, [entry])
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        before = service.wait_app(APP, serving("0.1.0", 2), "two 0.1.0 replicas")
        current = current_json_key(APP, "test")
        if case == "missing_current":
            (tmp_path / "bucket" / current).unlink()
        elif case == "invalid_json":
            _write_raw(config, current, b'{"version": "0.4.0",')
        else:
            _write_raw(config, current, b'{"version": "0.4.0"}')
            if case != "missing_tarball":
                _write_raw(config, tarball_key(APP, "0.4.0"), _bad_release(tmp_path, case))

        # as documented (docs/rollouts.md, Errors): a release without its program is a replica
        # that cannot start, ghosted by the rollback timeout; every other error is the app's,
        # retried and never ghosted
        ghosts = case == "no_executable"

        def shows_error(app: AppSnapshot) -> bool:
            if ghosts:
                return any(expected in (r.last_error or "") for r in app.replicas)
            return expected.lower() in (app.error or "").lower()

        service.wait_app(APP, shows_error, f"the {case} error in status", deadline_s=40)
        if ghosts:
            service.wait_app(APP, lambda a: "0.4.0" in a.ghosts, "0.4.0 ghosted", deadline_s=40)
        else:
            wait_until(lambda: events(service, "deploy_error"), 20, "journaled")
        # the running version keeps serving, untouched
        now = service.app(APP)
        running = {r.sname: r.pid for r in now.replicas if r.version == "0.1.0"}
        assert running == {r.sname: r.pid for r in before.replicas}
        assert [g.version for g in service.client().ghosts(APP)] == (["0.4.0"] if ghosts else [])
        # one journal entry per distinct error, however many ticks retried it
        errors = [e.message for e in events(service, "deploy_error")]
        assert len(errors) == len(set(errors))
        # no stray service folders: only the replicas that run
        service_dir = service.catalog.app_service_dir(APP)
        wait_until(
            lambda: {p.name for p in service_dir.iterdir() if p.is_dir()} <= set(running),
            30,
            f"stray folders: {sorted(p.name for p in service_dir.iterdir())}",
        )
        assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


def test_a_deployment_failing_the_same_way_is_journaled_once_until_its_outcome_changes(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    config = write_config(tmp_path, [app_entry(APP, replicas=1)])
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        service.wait_app(APP, serving("0.1.0", 1), "one 0.1.0 replica")
        _write_raw(config, current_json_key(APP, "test"), b'{"version": "0.4.0"}')  # no tarball
        wait_until(lambda: events(service, "deploy_error"), 20, "the first failure")
        started = time.monotonic()
        # retries after 1, 2 and 4 s: at least three more attempts in 8 s
        wait_until(lambda: time.monotonic() - started > 8, 10, "three retries")
        attempts = [e for e in events(service, "deploy") if "0.4.0" in e.message]
        assert len(attempts) == 1, attempts
        assert len(events(service, "deploy_error")) == 1
        # the tarball appears: the next attempt goes through, journaled with what came before
        _write_raw(
            config, tarball_key(APP, "0.4.0"), release_dist.tarball(APP, "0.2.0").read_bytes()
        )
        service.wait_app(APP, serving("0.4.0", 1), "0.4.0 deployed", deadline_s=90)
        attempts = [e.message for e in events(service, "deploy") if "0.4.0" in e.message]
        assert len(attempts) == 2 and "failed attempt(s)" in attempts[1], attempts


def test_a_deployer_killed_mid_rollout_resumes_and_never_ghosts_a_healthy_version(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    entry = app_entry(APP, ready_after_ms=1500)
    config = write_config(tmp_path, [entry])
    publish(config, release_dist, APP, "0.1.0")
    with running_service(config, tmp_path) as service:
        service.wait_app(APP, serving("0.1.0"), "three 0.1.0 replicas")
        counts: list[int] = []
        with Prober(slot_ports(entry)).running() as prober:
            publish(config, release_dist, APP, "0.2.0")
            wait_until(lambda: len(events(service, "retire")) >= 1, 60, "first replica rolled")
            deployer = _deployer_pid(service)
            os.kill(deployer, signal.SIGKILL)
            final = service.wait_app(APP, serving("0.2.0"), "rollout completed", deadline_s=120)
            counts = prober.counts
        assert min(counts) >= 3
        assert max(counts) <= 4
        assert final.ghosts == ()
        assert [g.version for g in service.client().ghosts(APP)] == []


def _deployer_pid(service: Service) -> int:
    pid = next(r.pid for r in service.app(APP).replicas if r.pid)
    return psutil.Process(psutil.Process(pid).ppid()).ppid()


def test_full_restart_and_ghost_commands_from_the_cli(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    entry = app_entry(APP, replicas=2)
    config = write_config(tmp_path, [entry])
    publish(config, release_dist, APP, "0.1.0")

    def cli(*args: str) -> str:
        result = subprocess.run([DEPLOYEX, *args, "--config", str(config)],
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout

    with running_service(config, tmp_path) as service:
        before = service.wait_app(APP, serving("0.1.0", 2), "two replicas")
        with Prober(slot_ports(entry)).running() as prober:
            assert "replacing 2 replica(s)" in cli("full-restart", APP)
            after = service.wait_app(
                APP,
                lambda a: (
                    serving("0.1.0", 2)(a)
                    and not {r.sname for r in a.replicas} & {r.sname for r in before.replicas}
                ),
                "every replica replaced by a fresh sname",
                deadline_s=60,
            )
        assert min(prober.counts) >= 2
        assert len(after.replicas) == 2

        assert cli("ghosts", APP).strip() == ""
        assert "pinned to 0.1.0" in cli("set-version", APP, "0.1.0")
        assert "following current.json" in cli("set-version", APP, "auto")
        assert "0 ghost(s) removed" in cli("unghost", APP)


@pytest.mark.parametrize(
    ("app", "extra", "words"),
    [
        ("mygleamapp", {}, "gleam shipment"),
        ("myerlangapp", {"hot_upgrade": False}, "hot_upgrade: false in the configuration"),
    ],
)
def test_the_journal_says_once_why_a_rollout_is_a_full_deployment(
    release_dist: ReleaseDist, tmp_path: Path, app: str, extra: dict, words: str
) -> None:
    """Gleam shipments and apps with `hot_upgrade: false` get full deployments even when the
    release could be hot-upgraded (test_hot_upgrade_rollout.py), and the journal says why, once
    per rollout (docs/hot-upgrades.md)."""
    config = write_config(tmp_path, [app_entry(app, replicas=2, **extra)])
    publish(config, release_dist, app, "0.1.0")
    with running_service(config, tmp_path) as service:
        service.wait_app(app, serving("0.1.0", 2), "two 0.1.0 replicas")
        publish(config, release_dist, app, "0.2.0")
        service.wait_app(app, serving("0.2.0", 2), "two 0.2.0 replicas", deadline_s=90)
        (kind,) = service.client().events(app=app, kind="deployment_kind")
        assert words in kind.message and kind.message.endswith(": full deployment")
        history = [h for h in service.client().versions(app) if h.version == "0.2.0"]
        assert [h.kind for h in history] == ["full_deployment"] * 2
