"""What a DeployEx wheel says about itself, read before anything is installed."""

from __future__ import annotations

import hashlib
import re
import sys
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from deployex_actors.errors import DeployexError

DISTRIBUTION = "deployex-actors"
_VERSION = re.compile(r"^\d+(\.\d+)*([a-z]+\d*)?(\.post\d+)?(\.dev\d+)?$")
_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<|~=)\s*(\d+(?:\.\d+)*)(?:\.\*)?\s*$")


class UpgradeRefused(DeployexError):
    """A self-upgrade stopped before anything changed; the message says why."""


@dataclass(frozen=True)
class WheelInfo:
    path: Path
    version: str
    sha256: str
    requires_python: str | None


def inspect_wheel(path: Path) -> WheelInfo:
    """The version, hash and Python requirement of a DeployEx wheel; UpgradeRefused otherwise."""
    path = Path(path)
    if not path.is_file():
        raise UpgradeRefused(f"{path}: no such file")
    if not path.name.endswith(".whl"):
        raise UpgradeRefused(f"{path.name} is not a wheel (a .whl file built from deployex_actors)")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
            if len(names) != 1:
                raise UpgradeRefused(f"{path.name} has no single .dist-info/METADATA: not a wheel")
            metadata = HeaderParser().parsestr(archive.read(names[0]).decode("utf-8", "replace"))
    except (zipfile.BadZipFile, OSError) as exc:
        raise UpgradeRefused(f"{path.name} cannot be read as a wheel: {exc}") from None
    name = (metadata.get("Name") or "").strip().lower().replace("_", "-")
    if name != DISTRIBUTION:
        raise UpgradeRefused(f"{path.name} is {name or 'nameless'}, not {DISTRIBUTION}")
    version = (metadata.get("Version") or "").strip()
    if not _VERSION.match(version):
        raise UpgradeRefused(f"{path.name} has no usable version ({version!r})")
    return WheelInfo(path, version, _sha256(path), metadata.get("Requires-Python"))


def python_problem(requires: str | None, running: tuple[int, ...] | None = None) -> str | None:
    """Why this Python cannot run a wheel that `requires` (its Requires-Python), or None."""
    if not requires:
        return None
    have = running or sys.version_info[:3]
    for clause in requires.split(","):
        match = _CLAUSE.match(clause)
        if match is None:
            continue  # a form we do not read: pip checks it again when it installs
        op, wanted = match.group(1), tuple(int(p) for p in match.group(2).split("."))
        mine = have[: len(wanted)]
        ok = {
            ">=": mine >= wanted, "<=": mine <= wanted, ">": mine > wanted, "<": mine < wanted,
            "==": mine == wanted, "!=": mine != wanted,
            "~=": mine >= wanted and have[: len(wanted) - 1] == wanted[:-1],
        }[op]  # fmt: skip
        if not ok:
            running_text = ".".join(str(p) for p in have)
            return f"it requires Python {requires.strip()}; this host runs {running_text}"
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
