"""What every release bucket does, written once over five object-store primitives.

A backend (local folder, S3, GCS) subclasses `BucketStore` and supplies only how to read, stream,
list and write one object, mapping its own errors: a missing object is a return value (None /
False), anything else that stops it from talking to its bucket is BucketUnreachable. Bucket keys
come from the catalog; the rules for names, current.json and tarballs from their own modules.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from deployex_actors.catalog import current_json_key, dist_prefix, tarball_key
from deployex_actors.catalog import version_of_tarball_key as _version_of_key
from deployex_actors.errors import CurrentJsonMissing, TarballMissing
from deployex_actors.releases.atomicfile import HashingWriter, ProgressReader, atomic_write
from deployex_actors.releases.current import (
    CurrentRelease,
    parse_current_json,
    render_current_json,
)
from deployex_actors.releases.tarball import DownloadedTarball, check_tarball
from deployex_actors.releases.versions import (
    require_release_names,
    sort_versions,
    version_problem,
)

TARBALL_CONTENT_TYPE = "application/gzip"
JSON_CONTENT_TYPE = "application/json"


class BucketStore(ABC):
    """A release bucket for one account (the `{account_name}` in current.json's key)."""

    description: str

    def __init__(self, account_name: str) -> None:
        self.account_name = account_name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r}, account={self.account_name!r})"

    # -- the contract (see store.ReleaseStore) ----------------------------------------------------

    def read_current(self, app: str) -> CurrentRelease:
        require_release_names(app)
        key = current_json_key(app, self.account_name)
        data = self._read(key)
        if data is None:
            raise CurrentJsonMissing(
                f"no current.json for {app} at {self.where(key)}: nothing has been published "
                f"for account {self.account_name!r} yet"
            )
        return parse_current_json(data, self.where(key))

    def download(self, app: str, version: str, dest_dir: Path) -> DownloadedTarball:
        require_release_names(app, version)
        key = tarball_key(app, version)
        dest = Path(dest_dir) / Path(key).name
        with atomic_write(dest) as out:
            if not self._fetch(key, out):
                raise TarballMissing(f"no tarball for {app} {version} at {self.where(key)}")
        return DownloadedTarball(
            path=dest, size=out.size, sha256=out.sha256, app=app, version=version
        )

    def list_versions(self, app: str) -> list[str]:
        require_release_names(app)
        versions = (_version_of_key(app, key) for key in self._keys(dist_prefix(app)))
        # A key whose version could never be downloaded is not offered as a version.
        return sort_versions(v for v in versions if v is not None and not version_problem(v))

    def publish(
        self,
        app: str,
        version: str,
        tarball: Path,
        pre_commands: Sequence[str] = (),
        hash: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> CurrentRelease:
        """See store.ReleaseStore.publish; `progress(bytes_sent, size)` follows the upload."""
        require_release_names(app, version)
        draft = CurrentRelease(version, hash, tuple(pre_commands))
        # The same rules a host applies when it reads it back, checked before anything is sent.
        release = parse_current_json(render_current_json(draft), f"the release {app} {version}")
        sha256 = check_tarball(Path(tarball))
        if hash is None:
            release = replace(release, hash=sha256)
        # Tarball first: a host that sees the new current.json must find its tarball in place.
        with open(tarball, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            body = ProgressReader(source, size, progress)
            self._put_file(tarball_key(app, version), body, TARBALL_CONTENT_TYPE)
        key = current_json_key(app, self.account_name)
        self._put_bytes(key, render_current_json(release), JSON_CONTENT_TYPE)
        return release

    def where(self, key: str) -> str:
        """The full name of an object, as shown in messages: `s3://bucket/dist/...`."""
        return f"{self.description.rstrip('/')}/{key}"

    # -- what a backend supplies ----------------------------------------------------------------

    @abstractmethod
    def _read(self, key: str) -> bytes | None:
        """The object's bytes, or None when there is no such object."""

    @abstractmethod
    def _fetch(self, key: str, out: HashingWriter) -> bool:
        """Stream the object into `out`; False (nothing written) when there is no such object."""

    @abstractmethod
    def _keys(self, prefix: str) -> Iterable[str]:
        """Keys of all objects under `prefix`."""

    @abstractmethod
    def _put_file(self, key: str, body: ProgressReader, content_type: str) -> None:
        """Store a local file, read from `body` (its `size` bytes), as the object `key`."""

    @abstractmethod
    def _put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store bytes as the object `key`, replacing any."""
