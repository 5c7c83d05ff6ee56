"""Release tarballs built by the tests with tarfile: realistic ones, damaged ones, hostile ones.

Realistic layouts follow what `mix release`, `rebar3 as prod tar` and Gleam's `erlang-shipment/`
export produce (bin/, erts-*/, lib/, releases/; or one top folder), small but shaped the same.
Hostile entries are written as raw TarInfo headers, so building a device node needs no root.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path

# A hostile or unusual entry: a function that adds itself to an open archive.
Entry = Callable[[tarfile.TarFile], None]

START_SCRIPT = b'#!/bin/sh\necho "starting $0"\n'


def file(name: str, data: bytes = b"data\n", mode: int = 0o644) -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), mode
        tar.addfile(info, io.BytesIO(data))

    return add


def folder(name: str, mode: int = 0o755) -> Entry:
    return _header(name, tarfile.DIRTYPE, mode=mode)


def symlink(name: str, target: str) -> Entry:
    return _header(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return _header(name, tarfile.LNKTYPE, linkname=target)


def char_device(name: str) -> Entry:
    return _header(name, tarfile.CHRTYPE, devmajor=1, devminor=3)  # like /dev/null


def block_device(name: str) -> Entry:
    return _header(name, tarfile.BLKTYPE, devmajor=8, devminor=0)  # like /dev/sda


def fifo(name: str) -> Entry:
    return _header(name, tarfile.FIFOTYPE)


def build_tarball(path: Path, entries: Iterable[Entry]) -> Path:
    """Write a gzip tar at `path` holding `entries`, in order."""
    with tarfile.open(path, "w:gz") as tar:
        for add in entries:
            add(tar)
    return path


def mix_release_entries(app: str, version: str) -> list[Entry]:
    """The shape of a `mix release` tar: bin/, erts-*/, lib/, releases/ (with an internal link)."""
    return [
        folder("bin"),
        file(f"bin/{app}", START_SCRIPT, 0o755),
        folder("erts-14.2.5"),
        folder("erts-14.2.5/bin"),
        file("erts-14.2.5/bin/beam.smp", b"\x7fELF not really\n", 0o755),
        folder("lib"),
        folder(f"lib/{app}-{version}"),
        folder(f"lib/{app}-{version}/ebin"),
        file(f"lib/{app}-{version}/ebin/{app}.app", f"{{application,{app},[]}}.\n".encode()),
        folder("releases"),
        folder(f"releases/{version}"),
        file(f"releases/{version}/vm.args", b"-sname replica\n"),
        file("releases/start_erl.data", f"14.2.5 {version}\n".encode()),
        # Relative and internal, as the ERTS bin links in real releases are.
        symlink("bin/beam", "../erts-14.2.5/bin/beam.smp"),
    ]


def gleam_shipment_entries(app: str) -> list[Entry]:
    """The shape of a tar of Gleam's `erlang-shipment/` export."""
    return [
        folder("erlang-shipment"),
        file("erlang-shipment/entrypoint.sh", START_SCRIPT, 0o755),
        folder(f"erlang-shipment/{app}"),
        folder(f"erlang-shipment/{app}/ebin"),
        file(f"erlang-shipment/{app}/ebin/{app}@@main.beam", b"FOR1 beam\n"),
    ]


def build_release(path: Path, app: str, version: str) -> Path:
    return build_tarball(path, mix_release_entries(app, version))


def _header(name: str, kind: bytes, linkname: str = "", mode: int = 0o644, **extra: int) -> Entry:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.mode = kind, linkname, mode
        for key, value in extra.items():
            setattr(info, key, value)
        tar.addfile(info)

    return add
