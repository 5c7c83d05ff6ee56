"""Unpacking a release tarball into a folder, confined to that folder, all or nothing.

Every entry is checked before anything is written, and refused (UnpackRefused, naming the entry)
when it could write or point outside the target: absolute paths, `..` escapes, symlinks that are
absolute or resolve outside, hard links to anything but an earlier file of the archive, entries
placed beneath a symlink, and device or fifo nodes. tarfile's "data" filter then applies the same
rules again while extracting, as a second line of defence. Extraction goes into a hidden sibling
staging folder that is renamed to the target only once everything is out, so a partly unpacked
folder never becomes `current/`.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import shutil
import tarfile
from pathlib import Path

from deployex_actors.errors import ReleaseError, UnpackRefused
from deployex_actors.releases.tarball import reading_tarball

_KIND_NAMES = {
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a fifo",
}


def safe_unpack(tarball: Path, target: Path) -> None:
    """Unpack `tarball` into `target`, which must not exist yet; see the module docstring."""
    tarball, target = Path(tarball), Path(target)
    if target.exists() or target.is_symlink():
        raise UnpackRefused(f"cannot unpack {tarball.name} into {target}: it already exists")
    with reading_tarball(tarball) as tar:
        members = tar.getmembers()
        check_members(members, tarball.name)
        staging = _staging_folder(target)
        try:
            _extract(tar, members, staging, target)
            _promote(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def check_members(members: list[tarfile.TarInfo], tarball_name: str) -> None:
    """Refuse the whole archive at its first entry that could escape or is of a refused kind."""
    # Every symlink of the archive, whatever its position: a later one can redirect the
    # paths of earlier entries once both are on disk.
    symlinks = {_normal(m.name) for m in members if m.issym()}
    seen: dict[str, tarfile.TarInfo] = {}
    for member in members:
        problem = _problem(member, seen, symlinks)
        if problem:
            raise UnpackRefused(f"{tarball_name}: refused entry {member.name!r}: {problem}")
        seen[_normal(member.name)] = member


def _problem(
    member: tarfile.TarInfo, seen: dict[str, tarfile.TarInfo], symlinks: set[str]
) -> str | None:
    if member.name.startswith("/"):
        return "it has an absolute path"
    path = _normal(member.name)
    if _escapes(path):
        return "its path leads outside the target folder (..)"
    if member.type in _KIND_NAMES:
        return f"it is {_KIND_NAMES[member.type]}"
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return f"it is of an unsupported kind (tar type {member.type!r})"
    if path == "." and not member.isdir():
        return "it would replace the target folder itself"
    if any(path.startswith(f"{link}/") for link in symlinks):
        return "it would be written through a symlink of the archive"
    if path in seen and not (member.isdir() and seen[path].isdir()):
        return "it appears twice in the archive"
    if member.issym():
        return _symlink_problem(path, member.linkname, symlinks)
    if member.islnk():
        return _hardlink_problem(member.linkname, seen)
    return None


def _symlink_problem(path: str, link: str, symlinks: set[str]) -> str | None:
    if not link or link.startswith("/"):
        return f"it is a symlink to an absolute path ({link!r})"
    # Resolve the target as the filesystem would, starting from the symlink's own folder.
    parts = [p for p in posixpath.dirname(path).split("/") if p]
    for step in link.split("/"):
        if step in ("", "."):
            continue
        if parts and "/".join(parts) in symlinks:
            # Where "x/.." or "x/y" lands depends on what x points to: refuse rather than guess.
            return f"it is a symlink whose target passes through another symlink ({link!r})"
        if step != "..":
            parts.append(step)
        elif parts:
            parts.pop()
        else:
            return f"it is a symlink that leads outside the target folder ({link!r})"
    return None


def _hardlink_problem(link: str, seen: dict[str, tarfile.TarInfo]) -> str | None:
    if link.startswith("/"):
        return f"it is a hard link to an absolute path ({link!r})"
    target = _normal(link)
    if _escapes(target):
        return f"it is a hard link that leads outside the target folder ({link!r})"
    earlier = seen.get(target)
    if earlier is None or not (earlier.isfile() or earlier.islnk()):
        return f"it is a hard link to {link!r}, which is not an earlier file of the archive"
    return None


def _staging_folder(target: Path) -> Path:
    # A sibling, so the final rename stays on one filesystem and is atomic.
    staging = target.parent / f".{target.name}.partial-{secrets.token_hex(4)}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir(mode=0o755)
    except OSError as e:
        raise ReleaseError(f"cannot create {staging}: {e.strerror or e}") from None
    return staging


def _extract(
    tar: tarfile.TarFile, members: list[tarfile.TarInfo], into: Path, target: Path
) -> None:
    name = Path(tar.name or "tarball").name
    try:
        tar.extractall(into, members=members, filter="data")
    except tarfile.FilterError as e:
        raise UnpackRefused(f"{name}: refused entry {e.tarinfo.name!r}: {e}") from None
    except OSError as e:
        # Name the entry relative to the archive: the staging folder means nothing to a reader.
        entry = os.path.relpath(e.filename, into) if e.filename else "?"
        raise ReleaseError(
            f"cannot unpack {name} into {target}: {e.strerror or e} (at {entry})"
        ) from None


def _promote(staging: Path, target: Path) -> None:
    try:
        staging.rename(target)
    except OSError as e:
        raise ReleaseError(
            f"cannot move the unpacked release to {target}: {e.strerror or e}"
        ) from None


def _normal(name: str) -> str:
    return posixpath.normpath(name.rstrip("/") or ".")


def _escapes(path: str) -> bool:
    return path == ".." or path.startswith("../")
