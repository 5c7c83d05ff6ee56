"""Versions side by side under `install_path`: `{install_path}/{VERSION}/` is a virtualenv,
`current` and `previous` are links to two of them.

A new version is installed without touching the running one: a fresh virtualenv whose
site-packages start as hard links to the running version's (so only what the wheel changes is
downloaded or written, and the install works offline when the dependencies did not change), then
pip installs the wheel into it. A marker file written last tells a whole install from a broken
one. Switching is replacing a link atomically.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deployex_actors.upgrade.wheel import UpgradeRefused, WheelInfo

INSTALLED_MARK = ".deployex-installed"  # holds the wheel's sha256; written last
PIP_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class Layout:
    root: Path  # install_path

    def folder(self, version: str) -> Path:
        return self.root / version

    @property
    def current(self) -> Path:
        return self.root / "current"

    @property
    def previous(self) -> Path:
        return self.root / "previous"

    def version_of(self, link: Path) -> str | None:
        """The version a link points to, or None when there is no such link."""
        return str(link.readlink()) if link.is_symlink() else None

    def is_installed(self, version: str) -> bool:
        return (self.folder(version) / INSTALLED_MARK).is_file()

    def command(self, version: str | None = None) -> Path:
        """The `deployex` of a version, or of `current`."""
        return (self.folder(version) if version else self.current) / "bin" / "deployex"


def installation_env() -> dict[str, str]:
    """Our environment for running another installation's Python: without PYTHONPATH and
    PYTHONHOME, which would make it import this one's packages (or a checkout's)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def install(wheel: WheelInfo, layout: Layout, say: Callable[[str], None]) -> Path:
    """Install `wheel` as `{install_path}/{version}` beside the running version."""
    target = layout.folder(wheel.version)
    mark = target / INSTALLED_MARK
    if mark.is_file():
        if mark.read_text().strip() == wheel.sha256:
            say(f"{wheel.version} is already installed in {target} from this wheel")
            return target
        raise UpgradeRefused(
            f"{wheel.version} is already installed in {target} from another wheel; remove that "
            "folder first (it is not the running one)"
        )
    if target.exists():
        say(f"removing an incomplete earlier install in {target}")
        shutil.rmtree(target)
    layout.root.mkdir(parents=True, exist_ok=True)
    try:
        say(f"creating a virtualenv in {target}")
        _run([sys._base_executable, "-m", "venv", "--without-pip", str(target)], "venv")
        say("linking the running version's packages into it")
        shutil.copytree(_site_packages(Path(sys.prefix)), _site_packages(target),
                        symlinks=True, dirs_exist_ok=True, copy_function=_link_or_copy)  # fmt: skip
        say(f"installing {wheel.path.name} (pip; new or changed dependencies are downloaded)")
        _run([str(target / "bin" / "python"), "-m", "pip", "install", "--upgrade", "--quiet",
              "--disable-pip-version-check", "--no-warn-script-location", str(wheel.path)],
             "pip install")  # fmt: skip
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    mark.write_text(wheel.sha256 + "\n")
    return target


def switch(layout: Layout, version: str) -> str | None:
    """Point `current` at `version` (and `previous` at what `current` was); the old current."""
    if not layout.is_installed(version):
        raise UpgradeRefused(f"{version} is not installed under {layout.root}")
    old = layout.version_of(layout.current)
    _point(layout.current, version)
    if old and old != version:
        _point(layout.previous, old)
    return old


def _point(link: Path, version: str) -> None:
    staged = link.with_name(f".{link.name}.new")
    staged.unlink(missing_ok=True)
    staged.symlink_to(version)  # relative: the folder can be moved or mounted elsewhere
    staged.replace(link)


def _site_packages(prefix: Path) -> Path:
    return Path(sysconfig.get_path("purelib", vars={"base": str(prefix)}))


def _link_or_copy(source: str, dest: str) -> None:
    try:
        os.link(source, dest)
    except OSError:  # another file system
        shutil.copy2(source, dest)


def _run(argv: list[str], what: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=installation_env(),
                              timeout=PIP_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise UpgradeRefused(f"{what} did not finish within {PIP_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines()
                 if ln.strip() and not ln.startswith("WARNING: Location")]  # fmt: skip
        raise UpgradeRefused(f"{what} failed: {' / '.join(lines[-3:]) or done.returncode}")
