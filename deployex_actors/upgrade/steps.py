"""A self-upgrade and its rollback, step by step, for the CLI and the dashboard alike.

Everything that can fail is checked before `current` moves: the wheel, the Python version, that
the running DeployEx was started through `current` (else re-executing would not run the new
version), the install, and the new version's own checks. Only then is `current` switched and
DeployEx asked to restart: its launcher re-executes `current/bin/deployex run` in the same
process, and the new version adopts every replica. If it does not answer as the new version in
time, `current` is pointed back.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from deployex_actors.config import Config
from deployex_actors.errors import DeployexError
from deployex_actors.upgrade.install import Layout, install, installation_env, switch
from deployex_actors.upgrade.wheel import UpgradeRefused, WheelInfo, inspect_wheel, python_problem

COME_BACK_S = 120.0
VERIFY_TIMEOUT_S = 120.0
Say = Callable[[str], None]


def upgrade(config: Config, wheel_path: Path, say: Say, actor: str) -> str:
    """Upgrade the running DeployEx to the wheel's version; that version once it answers."""
    wheel = inspect_wheel(wheel_path)
    say(f"wheel {wheel.path.name}: deployex-actors {wheel.version}, sha256 {wheel.sha256}")
    if problem := python_problem(wheel.requires_python):
        raise UpgradeRefused(f"{wheel.path.name} cannot run here: {problem}")
    layout = Layout(Path(config.install_path))
    running = _running_version(config, layout)
    if wheel.version == running:
        raise UpgradeRefused(f"{wheel.version} is the running version")
    install(wheel, layout, say)
    verify(layout, wheel, config, say)
    old = switch(layout, wheel.version)
    say(f"current -> {wheel.version} (previous -> {old})")
    _restart_into(config, layout, wheel.version, old, say, actor)
    _journal(config, "deployex_upgrade",
             f"DeployEx upgraded from {running} to {wheel.version} (wheel sha256 {wheel.sha256})",
             actor)  # fmt: skip
    return wheel.version


def rollback(config: Config, say: Say, actor: str) -> str:
    """Return to the version `previous` points to; that version once it answers."""
    layout = Layout(Path(config.install_path))
    target = layout.version_of(layout.previous)
    if target is None or not layout.is_installed(target):
        raise UpgradeRefused(f"no previous version to return to under {layout.root}")
    running = _running_version(config, layout)
    old = switch(layout, target)
    say(f"current -> {target} (previous -> {old})")
    _restart_into(config, layout, target, old, say, actor)
    _journal(config, "deployex_rollback", f"DeployEx rolled back from {running} to {target}", actor)
    return target


def verify(layout: Layout, wheel: WheelInfo, config: Config, say: Say) -> None:
    """The new version's own checks, run by its own `deployex`; UpgradeRefused if one fails."""
    argv = [str(layout.command(wheel.version)), "upgrade", "--verify"]
    if config.source is not None:
        argv += ["--config", str(config.source)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=installation_env(),
                              timeout=VERIFY_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise UpgradeRefused(
            f"{wheel.version}'s checks did not end in {VERIFY_TIMEOUT_S:.0f} s"
        ) from None
    for line in done.stdout.splitlines():
        say(f"  ok: {line}")
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise UpgradeRefused(f"{wheel.version} refused by its own checks: {reason[0]}; "
                             "the running version is untouched")  # fmt: skip


def _running_version(config: Config, layout: Layout) -> str:
    """The running DeployEx's version, after making sure a re-exec would go through `current`."""
    from deployex_actors.client import DeployEx

    with DeployEx.attach(config) as dx:
        snapshot = dx.status()
    try:
        process = psutil.Process(snapshot.pid)
        argv, cwd = process.cmdline(), process.cwd()
    except psutil.Error as exc:
        raise UpgradeRefused(
            f"cannot read how DeployEx was started (pid {snapshot.pid}): {exc}"
        ) from None
    script = Path(cwd, argv[1]) if len(argv) > 1 else None
    if script != layout.command():
        raise UpgradeRefused(
            f"DeployEx runs as `{' '.join(argv[:2])}`, not through {layout.command()}: a "
            "restart would not run the new version (install it with ops/installer/deployex.sh)"
        )
    return snapshot.version


def _restart_into(
    config: Config, layout: Layout, version: str, old: str | None, say: Say, actor: str
) -> None:
    from deployex_actors.client import DeployEx

    with DeployEx.attach(config) as dx:
        dx.restart_deployex(actor)
    say(f"DeployEx restarting into {version} (replicas keep running)")
    deadline = time.monotonic() + COME_BACK_S
    while time.monotonic() < deadline:
        try:
            with DeployEx.attach(config, timeout=3) as dx:
                if dx.status().version == version:
                    say(f"DeployEx {version} answers")
                    return
        except DeployexError:
            pass
        time.sleep(0.5)  # polling a restarting service, bounded by the deadline
    if old is not None:
        switch(layout, old)
    raise UpgradeRefused(
        f"DeployEx did not answer as {version} within {COME_BACK_S:.0f} s; current points to "
        f"{old} again: restart DeployEx (systemctl restart deployex) to run it"
    )


def _journal(config: Config, kind: str, message: str, actor: str) -> None:
    from deployex_actors.client import DeployEx

    with DeployEx.attach(config) as dx:
        dx.journal(kind, message, actor)
