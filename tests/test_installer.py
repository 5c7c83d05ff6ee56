"""ops/installer/deployex.sh into a throwaway root (--root), with real wheels of this checkout.

The wheels are built from a copy of the checkout (one as it is, one with the version bumped);
their dependencies are made into a local wheelhouse once per module (from the package index or
pip's cache), and the installer takes every package from it (--wheelhouse: pip --no-index).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployex_actors import __version__
from tests.beam_fixtures import ReleaseDist
from tests.deployex_service import app_entry, publish, running_service, write_config
from tests.systemd_unit import INSTALLER, STOP_HELPER, UNIT
from tests.wheels import build_wheel

PYTHON = sys._base_executable  # the interpreter this suite's virtualenv was made from
# the installed `deployex` must import its own package, not this checkout (PYTHONPATH)
INSTALLED_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def run_installer(*args: str | Path, timeout_s: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(INSTALLER), *map(str, args)], capture_output=True, text=True,
        timeout=timeout_s,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deployex.sh: error: "), result.stderr
    return lines[0]


# -- arguments (fast) ----------------------------------------------------------------------------


def test_help_names_every_command() -> None:
    result = run_installer("--help")
    assert result.returncode == 0 and not result.stderr
    for word in ("--install", "--update", "--uninstall", "--purge", "--wheel", "--root"):
        assert word in result.stdout


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((), "no command"),
        (("--bogus",), "unknown argument '--bogus'"),
        (("--install",), "needs --wheel FILE or --version V"),
        (("--install", "--update", "--version", "1"), "give one command"),
        (("--install", "--wheel", "/nonexistent.whl"), "no such wheel"),
        (("--install", "--wheel", "a.whl", "--version", "1"), "not both"),
        (("--install", "--version", "1", "--purge"), "--purge goes with --uninstall"),
        (("--install", "--version"), "--version needs a value"),
    ],
)
def test_bad_arguments_fail_with_a_one_line_reason(
    tmp_path: Path, args: tuple[str, ...], reason: str
) -> None:
    result = run_installer(*args, "--root", tmp_path / "root")
    assert result.returncode == 2
    assert reason in one_line_error(result)
    assert not (tmp_path / "root" / "opt").exists()


def test_the_scripts_pass_shellcheck() -> None:
    result = subprocess.run(
        ["shellcheck", str(INSTALLER), str(STOP_HELPER)], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout


def test_update_without_an_installation_says_so(tmp_path: Path) -> None:
    result = run_installer("--update", "--version", "1.0.0", "--root", tmp_path)
    assert result.returncode == 1
    assert "not installed" in one_line_error(result)


# -- install, update, uninstall, purge (slow: two virtualenvs) -----------------------------------


@dataclass(frozen=True)
class Wheels:
    current: Path  # this checkout's version
    bumped: Path  # the same code with the next patch version
    bumped_version: str
    wheelhouse: Path


def bump(version: str) -> str:
    head, _, patch = version.rpartition(".")
    return f"{head}.{int(patch) + 1}"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wheels]:
    base = tmp_path_factory.mktemp("wheels")
    current = build_wheel(base)
    new = bump(__version__)
    bumped = build_wheel(base, new)
    assert new in bumped.name
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(base / "wheelhouse"), str(current)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    yield Wheels(current, bumped, new, base / "wheelhouse")


def install(root: Path, command: str, wheel: Path, wheels: Wheels) -> subprocess.CompletedProcess:
    result = run_installer(
        command, "--root", root, "--wheel", wheel, "--wheelhouse", wheels.wheelhouse,
        "--python", PYTHON,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def deployex_version(binary: Path) -> str:
    return subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=True, timeout=60,
        env=INSTALLED_ENV,
    ).stdout.strip()  # fmt: skip


def runs_a_replica(deployex: Path, version: str, release_dist: ReleaseDist, tmp: Path) -> None:
    """The installed package (its own code, not this checkout's) runs DeployEx and a replica."""
    (tmp / "run").mkdir()
    config = write_config(tmp / "run", [app_entry("mygleamapp", replicas=1)])
    publish(config, release_dist, "mygleamapp", "0.1.0")
    with running_service(config, tmp / "run", env=INSTALLED_ENV, deployex=str(deployex)) as svc:
        assert svc.status().version == version
        svc.wait_app(
            "mygleamapp", lambda app: [r.status for r in app.replicas] == ["running"], "running"
        )


@pytest.mark.slow
def test_install_update_uninstall_and_purge_keep_what_they_promise(
    wheels: Wheels, release_dist: ReleaseDist, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    opt, etc, var = root / "opt/deployex", root / "etc/deployex", root / "var/lib/deployex"
    logs = (root / "var/log/deployex", root / "var/log/monitored-apps")

    first = install(root, "--install", wheels.current, wheels)
    assert "creating the virtualenv" in first.stdout  # progress on the terminal
    assert "not creating the user" in first.stdout and "not reloading" in first.stdout
    assert deployex_version(opt / "current/bin/deployex") == f"deployex {__version__}"
    assert (opt / "current").readlink() == Path(__version__)
    assert (root / "etc/systemd/system/deployex.service").read_text() == UNIT.read_text()
    helper = root / "usr/local/lib/deployex/deployex-stop"
    assert helper.read_text() == STOP_HELPER.read_text() and helper.stat().st_mode & stat.S_IXUSR
    for folder in (var, *logs):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert (logs[0] / "deployex-stdout.log").exists()
    secrets = (etc / "secrets.env").read_text()
    assert stat.S_IMODE((etc / "secrets.env").stat().st_mode) == 0o600
    assert re.search(r"^DEPLOYEX_ERLANG_COOKIE=[0-9a-f]{64}$", secrets, re.M)
    assert not re.search(r"^DEPLOYEX_ADMIN_HASHED_PASSWORD=", secrets, re.M)  # the operator's
    yaml = etc / "deployex.yaml"
    checked = subprocess.run(
        [str(opt / "current/bin/deployex"), "check-config", "--config", str(yaml)],
        capture_output=True, text=True, timeout=60, env=INSTALLED_ENV,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr

    # an edited configuration survives a second install, which installs nothing again
    yaml.write_text(yaml.read_text().replace('account_name: "prod"', 'account_name: "edited"'))
    (etc / "secrets.env").write_text("DEPLOYEX_ERLANG_COOKIE=mine\n")
    (var / "deployex.db").write_bytes(b"state")
    (var / "service" / "myapp").mkdir(parents=True)
    (var / "service" / "myapp" / "myapp-abc123.pid").write_text("{}")
    again = install(root, "--install", wheels.current, wheels)
    assert "already installed" in again.stdout and "creating the virtualenv" not in again.stdout
    assert 'account_name: "edited"' in yaml.read_text()
    assert (etc / "secrets.env").read_text() == "DEPLOYEX_ERLANG_COOKIE=mine\n"

    # an update installs side by side, switches current and keeps the state
    install(root, "--update", wheels.bumped, wheels)
    assert (opt / "current").readlink() == Path(wheels.bumped_version)
    assert (opt / "previous").readlink() == Path(__version__)
    assert deployex_version(opt / "current/bin/deployex") == f"deployex {wheels.bumped_version}"
    assert deployex_version(opt / __version__ / "bin/deployex") == f"deployex {__version__}"
    assert (var / "deployex.db").read_bytes() == b"state"
    assert (var / "service/myapp/myapp-abc123.pid").exists()
    assert 'account_name: "edited"' in yaml.read_text()
    runs_a_replica(opt / "current/bin/deployex", wheels.bumped_version, release_dist, tmp_path)

    # uninstall keeps the state, the configuration and the logs; --purge removes them
    gone = run_installer("--uninstall", "--root", root)
    assert gone.returncode == 0, gone.stderr
    assert not opt.exists() and not (root / "etc/systemd/system/deployex.service").exists()
    assert not helper.exists()
    assert (var / "deployex.db").read_bytes() == b"state" and yaml.exists()
    assert all(folder.is_dir() for folder in logs)
    purged = run_installer("--uninstall", "--purge", "--root", root)
    assert purged.returncode == 0, purged.stderr
    assert not any(p.exists() for p in (etc, var, *logs))
    assert run_installer("--uninstall", "--purge", "--root", root).returncode == 0  # idempotent
