"""DeployEx upgrades itself from a wheel and keeps its replicas: a real installation under
`install_path` (versions side by side, `current`), a real `deployex run` started through
`current/bin/deployex`, Gleam replicas answering a 20 Hz prober the whole time, then
`deployex upgrade WHEEL`, `deployex upgrade --rollback`, and wheels that must be refused."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from deployex_actors import __version__
from deployex_actors.core.status import AppSnapshot
from deployex_actors.upgrade.install import Layout, install, switch
from deployex_actors.upgrade.wheel import UpgradeRefused, inspect_wheel, python_problem
from tests.beam_fixtures import ReleaseDist, wait_until
from tests.browser import dashboard_secrets, health_answers, log_in, running_dashboard
from tests.deployex_service import (
    Service,
    app_entry,
    publish,
    running_service,
    wait_banner,
    write_config,
)
from tests.probes import Prober
from tests.wheels import build_wheel

APP = "mygleamapp"
NEW = f"{__version__}.post1"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dest = tmp_path_factory.mktemp("wheels")

    def refuse_two_replicas(source: Path) -> None:  # a new version that cannot load our YAML
        model = source / "deployex_actors" / "config" / "model.py"
        text = model.read_text()
        old = "replicas: int = checked(3, minimum=1, maximum=100)"
        assert old in text
        model.write_text(text.replace(old, "replicas: int = checked(1, minimum=1, maximum=1)"))

    return {
        "running": build_wheel(dest),
        "new": build_wheel(dest, NEW),
        "strict": build_wheel(dest, f"{__version__}.post2", refuse_two_replicas),
    }


@contextlib.contextmanager
def installed_service(
    wheels: dict[str, Path], dist: ReleaseDist, tmp_path: Path, env: dict | None = None, **top: Any
) -> Iterator[tuple[Layout, Path, Service]]:
    """The running version installed as the installer lays it out, and a `deployex run` started
    through `current/bin/deployex` with two Gleam replicas."""
    layout = Layout(tmp_path / "opt" / "deployex")
    install(inspect_wheel(wheels["running"]), layout, say=print)
    switch(layout, __version__)
    entry = app_entry(APP, replicas=2, ready_after_ms=300)
    config = write_config(tmp_path, [entry], install_path=str(layout.root), **top)
    publish(config, dist, APP, "0.1.0")
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, **(env or {})}
    with running_service(config, tmp_path, env=env, deployex=str(layout.command())) as service:
        yield layout, config, service


def deployex(layout: Layout, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([str(layout.command()), *args], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip


def serving(app: AppSnapshot) -> bool:
    return len(app.replicas) == 2 and all(r.status == "running" for r in app.replicas)


def replicas_of(app: AppSnapshot) -> dict[str, int]:
    return {r.sname: r.pid for r in app.replicas}


@pytest.mark.slow
def test_upgrade_keeps_every_replica_then_rollback_returns(
    wheels: dict[str, Path], release_dist: ReleaseDist, tmp_path: Path
) -> None:
    with installed_service(wheels, release_dist, tmp_path) as (layout, config, service):
        before = service.wait_app(APP, serving, "two replicas running")
        ports = [r.ports["PORT"] for r in before.replicas]
        for port in ports:
            wait_banner(port, f"{APP} 0.1.0\n")
        launcher = service.proc.pid
        with Prober(ports).running() as prober:
            wait_until(lambda: len(prober.counts) > 5, 10, "the prober started")
            upgraded = deployex(layout, "upgrade", str(wheels["new"]), "--yes",
                                "--config", str(config))  # fmt: skip
            assert upgraded.returncode == 0, upgraded.stderr + upgraded.stdout
            assert service.status().version == NEW
            after = service.wait_app(APP, serving, f"both replicas adopted by {NEW}")
            rolled = deployex(layout, "upgrade", "--rollback", "--yes", "--config", str(config))
            assert rolled.returncode == 0, rolled.stderr + rolled.stdout
            assert service.status().version == __version__
            back = service.wait_app(APP, serving, "two replicas after the rollback")
        assert f"current -> {NEW} (previous -> {__version__})" in upgraded.stderr
        assert f"DeployEx {NEW} is running" in upgraded.stdout
        # the same replicas all along: no restart, no crash, never refused
        assert replicas_of(after) == replicas_of(back) == replicas_of(before)
        assert all(r.crash_restarts == 0 and r.forced_restarts == 0 for r in back.replicas)
        assert prober.counts and min(prober.counts) == 2, prober.counts
        assert service.proc.pid == launcher and service.proc.poll() is None  # re-executed
        assert layout.version_of(layout.current) == __version__
        assert layout.version_of(layout.previous) == NEW
        with service.client() as dx:
            history = [(v.version, v.kind) for v in dx.versions("deployex")]
            events = {e.kind: e for e in dx.events(limit=200)}
        assert history[:3] == [(__version__, "hot_upgrade"), (NEW, "hot_upgrade"),
                               (__version__, "full_deployment")]  # fmt: skip
        assert f"from {__version__} to {NEW}" in events["deployex_upgrade"].message
        assert events["deployex_upgrade"].actor.startswith("cli:")
        assert f"from {NEW} to {__version__}" in events["deployex_rollback"].message


@pytest.mark.slow
def test_a_version_that_fails_its_own_checks_is_refused_and_the_old_one_keeps_running(
    wheels: dict[str, Path], release_dist: ReleaseDist, tmp_path: Path
) -> None:
    with installed_service(wheels, release_dist, tmp_path) as (layout, config, service):
        before = service.wait_app(APP, serving, "two replicas running")
        refused = deployex(layout, "upgrade", str(wheels["strict"]), "--yes",
                           "--config", str(config))  # fmt: skip
        assert refused.returncode != 0
        assert "refused by its own checks" in refused.stderr, refused.stderr
        assert "replicas" in refused.stderr and "untouched" in refused.stderr, refused.stderr
        assert layout.version_of(layout.current) == __version__
        assert service.status().version == __version__
        assert replicas_of(service.app(APP)) == replicas_of(before)


@pytest.mark.slow
def test_deployex_not_started_through_current_is_refused_before_anything_is_installed(
    wheels: dict[str, Path], release_dist: ReleaseDist, tmp_path: Path
) -> None:
    """A development `deployex run` (not through `current`) would re-execute the old code."""
    layout = Layout(tmp_path / "opt" / "deployex")
    config = write_config(tmp_path, [], install_path=str(layout.root))
    with running_service(config, tmp_path):  # the test venv's deployex
        done = subprocess.run(
            [str(Path(sys.executable).with_name("deployex")), "upgrade",
             str(wheels["new"]), "--yes", "--config", str(config)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode != 0
    assert f"not through {layout.command()}" in done.stderr, done.stderr
    assert not layout.root.exists()  # nothing installed


@pytest.mark.slow
def test_the_upgrade_page_shows_the_wheel_and_upgrades_after_the_confirmation(
    wheels: dict[str, Path], release_dist: ReleaseDist, tmp_path: Path, page: Any
) -> None:
    secrets = dashboard_secrets()
    with (
        installed_service(wheels, release_dist, tmp_path, env=secrets, dashboard_enabled=True)
        as (_layout, config, service),
        running_dashboard(config, tmp_path, secrets) as dashboard,
    ):  # fmt: skip
        before = service.wait_app(APP, serving, "two replicas running")
        log_in(page, dashboard, path="/upgrade")
        page.wait_for_url("**/upgrade*")
        upload = page.locator(".dx-upgrade-file input[type=file]")
        junk = tmp_path / "notes.whl"
        junk.write_text("not a wheel")
        upload.set_input_files(str(junk))
        expect(page.locator(".dx-upgrade-problem")).to_contain_text("cannot be read as a wheel")
        upload.set_input_files(str(wheels["running"]))
        expect(page.locator(".dx-upgrade-problem")).to_contain_text("is the running version")
        expect(page.locator(".dx-upgrade-go")).to_be_hidden()
        new = inspect_wheel(wheels["new"])
        upload.set_input_files(str(wheels["new"]))
        expect(page.locator(".dx-upgrade-wheel")).to_contain_text(new.sha256)
        page.get_by_role("button", name=f"Upgrade to {NEW}").click()
        expect(page.locator(".dx-confirm")).to_contain_text(f"to {NEW}")
        assert service.status().version == __version__  # nothing before the confirmation
        page.get_by_role("button", name="Yes, upgrade").click()
        wait_until(lambda: answers_as(service, NEW), 180, f"DeployEx answering as {NEW}")
        log = tmp_path / "var" / "upgrade.log"
        wait_until(lambda: f"DeployEx {NEW} is running" in log.read_text(), 60,
                   "the upgrade's end in its log")  # fmt: skip
        # the page's dashboard was restarted with DeployEx: the operator reloads it
        wait_until(lambda: health_answers(dashboard.url), 60, "the new dashboard")
        page.goto(f"{dashboard.url}/upgrade")
        if "/login" in page.url:
            log_in(page, dashboard, path="/upgrade")
        expect(page.locator(".dx-upgrade-log")).to_contain_text(f"DeployEx {NEW} is running")
        expect(page.locator(".dx-upgrade-intro")).to_contain_text(f"DeployEx {NEW}, installed")
        assert replicas_of(service.app(APP)) == replicas_of(before)
        with service.client() as dx:
            (entry,) = dx.events(kind="deployex_upgrade")
        assert entry.actor == "admin@127.0.0.1"
        progress = (tmp_path / "var" / "upgrade.log").read_text()
        assert f"current -> {NEW} (previous -> {__version__})" in progress, progress


def answers_as(service: Service, version: str) -> bool:
    try:
        return service.status().version == version
    except Exception:  # restarting
        return False


# -- the wheel itself (fast) ---------------------------------------------------------------------


def test_files_that_are_not_a_deployex_wheel_are_refused_with_the_reason(tmp_path: Path) -> None:
    text = tmp_path / "notes.whl"
    text.write_text("not a zip")
    other = tmp_path / "requests-2.0-py3-none-any.whl"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("requests-2.0.dist-info/METADATA", "Name: requests\nVersion: 2.0\n")
    cases = {
        tmp_path / "missing.whl": "no such file",
        tmp_path / "deployex.tar.gz": "not a wheel",
        text: "cannot be read as a wheel",
        other: "is requests, not deployex-actors",
    }
    (tmp_path / "deployex.tar.gz").write_bytes(b"x")
    for path, reason in cases.items():
        with pytest.raises(UpgradeRefused, match=reason):
            inspect_wheel(path)


def test_a_wheel_for_another_python_is_refused() -> None:
    assert python_problem(">=3.11", (3, 11, 7)) is None
    assert python_problem(">=3.11,<4", (3, 12, 0)) is None
    assert python_problem(">=3.99", (3, 11, 7)) == (
        "it requires Python >=3.99; this host runs 3.11.7"
    )
    assert python_problem("<3.11", (3, 11, 7)) is not None
    assert python_problem("~=3.10", (3, 11, 0)) is None
    assert python_problem("~=3.10.2", (3, 11, 0)) is not None


def test_an_uploaded_file_name_stays_one_plain_name_in_the_uploads_folder() -> None:
    from dashboards.pages.upgrade import upload_name

    assert upload_name("deployex_actors-0.1.0-py3-none-any.whl") == (
        "deployex_actors-0.1.0-py3-none-any.whl"
    )  # pip needs a wheel's own name
    assert upload_name("../../var/deployex.db") == "deployex.db"
    assert upload_name("..") == upload_name(".") == upload_name(None) == "upload.whl"
    assert upload_name(".hidden.whl") == "hidden.whl"
    assert upload_name("a b$(x).whl") == "a_b__x_.whl"
