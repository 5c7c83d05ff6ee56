"""Release tarballs as files: what a download produced, and whether a file is a whole gzip tar.

Every reader of a tarball goes through `reading_tarball`, so that a truncated or corrupt archive
is always reported the same way (TarballCorrupt, naming the file) wherever it is met.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from deployex_actors.errors import TarballCorrupt, TarballMissing

_CHUNK = 1 << 20
# What tarfile and gzip raise for a damaged archive: bad headers, early end, bad CRC, bad deflate.
_CORRUPT = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


@dataclass(frozen=True)
class DownloadedTarball:
    """A tarball downloaded whole into a local folder."""

    path: Path
    size: int
    sha256: str
    app: str
    version: str


@contextlib.contextmanager
def reading_tarball(path: Path) -> Iterator[tarfile.TarFile]:
    """Open a gzip tar; corruption met while opening or inside the block is TarballCorrupt."""
    try:
        tar = tarfile.open(path, "r:gz")  # noqa: SIM115 - closed by the with block below
    except FileNotFoundError:
        raise TarballMissing(f"no tarball at {path}") from None
    except (OSError, *_CORRUPT) as e:
        raise TarballCorrupt(f"{path} is not a readable gzip tar archive: {_reason(e)}") from None
    try:
        with tar:
            yield tar
    except tarfile.FilterError:
        raise  # a refused entry, not a damaged archive: the caller reports it
    except _CORRUPT as e:
        raise TarballCorrupt(f"{path} is damaged (truncated or corrupt): {_reason(e)}") from None


def check_tarball(path: Path) -> str:
    """Read the whole archive, refusing a damaged or empty one; return the file's SHA-256 hex."""
    with reading_tarball(path) as tar:
        members = 0
        for member in tar:
            members += 1
            # Reading the data is what notices an archive cut short inside a file.
            if member.isfile() and (data := tar.extractfile(member)) is not None:
                with data:
                    while data.read(_CHUNK):
                        pass
        # Drain the gzip stream too, so its CRC and length trailer are checked.
        while tar.fileobj is not None and tar.fileobj.read(_CHUNK):
            pass
    if members == 0:
        raise TarballCorrupt(f"{path} is an empty archive: it holds no release")
    return sha256_of(path)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(error: BaseException) -> str:
    return str(error) or type(error).__name__
