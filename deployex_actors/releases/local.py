"""The local release bucket: a folder on this host with the same layout as a cloud bucket.

`release_bucket` is the folder (upstream's default `/tmp/deployex/bucket`). Objects are plain
files under it; writes are atomic (temporary file, fsync, rename), so a host polling the folder
never reads a half-written current.json or tarball. Publishing creates the folder if needed, as
`mkdir -p` would; reading from a folder that does not exist is BucketUnreachable.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from deployex_actors.errors import BucketUnreachable
from deployex_actors.releases.atomicfile import HashingWriter, ProgressReader, atomic_write
from deployex_actors.releases.bucket import BucketStore

if TYPE_CHECKING:
    from deployex_actors.config import Config

_CHUNK = 1 << 20


class LocalStore(BucketStore):
    """Releases in a local folder."""

    def __init__(self, root: Path, account_name: str) -> None:
        super().__init__(account_name)
        self.root = Path(root)
        self.description = str(self.root)

    @classmethod
    def from_config(cls, config: Config) -> LocalStore:
        return cls(Path(config.release_bucket), config.account_name)

    def _read(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            self._require_root()
            return None
        except OSError as e:
            raise self._unreachable(key, e) from None

    def _fetch(self, key: str, out: HashingWriter) -> bool:
        try:
            with open(self._path(key), "rb") as source:
                while chunk := source.read(_CHUNK):
                    out.write(chunk)  # a local disk error here is already a ReleaseError
        except FileNotFoundError:
            self._require_root()
            return False
        except OSError as e:
            raise self._unreachable(key, e) from None
        return True

    def _keys(self, prefix: str) -> Iterable[str]:
        self._require_root()
        folder = self._path(prefix)
        try:
            names = sorted(p.name for p in folder.iterdir() if p.is_file())
        except FileNotFoundError:
            return []
        except OSError as e:
            raise self._unreachable(prefix, e) from None
        return [f"{prefix}{name}" for name in names]

    def _put_file(self, key: str, body: ProgressReader, content_type: str) -> None:
        with atomic_write(self._path(key)) as out:
            shutil.copyfileobj(body, out, _CHUNK)

    def _put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        with atomic_write(self._path(key)) as out:
            out.write(data)

    def _path(self, key: str) -> Path:
        # Keys are built by the catalog from checked app names and versions: never absolute,
        # never `..`.
        return self.root / key

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise BucketUnreachable(
                f"local release bucket {self.root} does not exist or is not a folder "
                "(release_bucket in the YAML)"
            )

    def _unreachable(self, key: str, error: OSError) -> BucketUnreachable:
        return BucketUnreachable(f"cannot read {self.where(key)}: {error.strerror or error}")
