"""Real wheels of this checkout, as a release pipeline builds them (pip wheel, build isolation),
optionally with another version or an edit, for the self-upgrade and installer tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "deployex_actors", "dashboards")


def build_wheel(
    dest: Path, version: str | None = None, edit: Callable[[Path], None] | None = None
) -> Path:
    """A wheel of the working tree in `dest`: as `version` if given, after `edit(source_root)`."""
    source = dest / f"src-{version or 'same'}"
    source.mkdir(parents=True)
    for name in SOURCES:
        origin = CHECKOUT / name
        if origin.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(origin, source / name, ignore=ignore)
        else:
            shutil.copy2(origin, source / name)
    if version is not None:
        init = source / "deployex_actors" / "__init__.py"
        text = init.read_text()
        start = text.index('__version__ = "') + len('__version__ = "')
        init.write_text(text[:start] + version + text[text.index('"', start) :])
    if edit is not None:
        edit(source)
    out = dest / f"wheel-{version or 'same'}"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--disable-pip-version-check", "-w", str(out), str(source)],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("*.whl")
    return wheel
