"""Writing a file so that readers see all of it or nothing, hashing it on the way.

Bytes go to a hidden temporary file next to the destination; only after they are all written and
fsynced is the file renamed to its final name. A failure (network, disk, crash) leaves no file
behind under the final name and removes the temporary one, so a half-downloaded tarball is never
mistaken for a whole one. Local disk errors become ReleaseError naming the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from deployex_actors.errors import ReleaseError


class HashingWriter:
    """A write-only file object that counts and hashes (SHA-256) what passes through it."""

    def __init__(self, out: BinaryIO, dest: Path) -> None:
        self._out = out
        self._dest = dest
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> int:
        self._digest.update(chunk)
        self.size += len(chunk)
        try:
            return self._out.write(chunk)
        except OSError as e:
            raise _cannot_write(self._dest, e) from None

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


class ProgressReader:
    """A file being read for an upload, telling `progress(bytes_read, size)` as it goes.

    Reports the position, not a running sum: a client that reads the file twice (S3 hashes the
    body first, then sends it) shows its progress twice instead of past 100 %.
    """

    def __init__(
        self, source: BinaryIO, size: int, progress: Callable[[int, int], None] | None
    ) -> None:
        self._source = source
        self.size = size
        self._progress = progress

    def read(self, n: int = -1) -> bytes:
        chunk = self._source.read(n)
        if self._progress is not None and chunk:
            self._progress(self._source.tell(), self.size)
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._source.seek(offset, whence)

    def tell(self) -> int:
        return self._source.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True


@contextlib.contextmanager
def atomic_write(dest: Path) -> Iterator[HashingWriter]:
    """Yield a writer; when the block ends normally, the bytes appear at `dest` all at once."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    except OSError as e:
        raise _cannot_write(dest, e) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            writer = HashingWriter(out, dest)
            yield writer
            _finish(out, tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dest.parent)


def _finish(out: BinaryIO, tmp: Path, dest: Path) -> None:
    try:
        out.flush()
        os.fsync(out.fileno())
        # mkstemp makes the file 0600; releases and descriptors are not secret, and other users
        # (an operator, a CI job) may need to read them.
        tmp.chmod(0o644)
        tmp.rename(dest)
    except OSError as e:
        raise _cannot_write(dest, e) from None


def _cannot_write(dest: Path, error: OSError) -> ReleaseError:
    return ReleaseError(f"cannot write {dest}: {error.strerror or error}")


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every filesystem allows it, and that is not an error.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
