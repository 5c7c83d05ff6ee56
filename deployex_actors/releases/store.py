"""The release bucket contract, and the one place that picks a backend from the configuration.

The engine only ever sees a `ReleaseStore`; which bucket sits behind it (a local folder, S3 or an
S3-compatible store, Google Cloud Storage) is decided here from `release_adapter`. Backends are
imported only when chosen, so a process that never talks to S3 never loads boto3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from deployex_actors.errors import ReleaseError

if TYPE_CHECKING:
    from deployex_actors.config import Config
    from deployex_actors.releases.current import CurrentRelease
    from deployex_actors.releases.tarball import DownloadedTarball


class ReleaseStore(Protocol):
    """A release bucket: `versions/{app}/{account}/current.json` and `dist/{app}/*.tar.gz`."""

    description: str  # where it is, for messages: "s3://bucket", "gs://bucket", "/tmp/bucket"

    def read_current(self, app: str) -> CurrentRelease:
        """The app's current.json. CurrentJsonMissing / CurrentJsonInvalid / BucketUnreachable."""
        ...

    def download(self, app: str, version: str, dest_dir: Path) -> DownloadedTarball:
        """Download `{app}-{version}.tar.gz` into `dest_dir`, all or nothing.

        TarballMissing / BucketUnreachable; a failed download leaves no file behind.
        """
        ...

    def list_versions(self, app: str) -> list[str]:
        """Versions with a tarball under `dist/{app}/`, oldest first (0.9.0 before 0.10.0)."""
        ...

    def publish(
        self,
        app: str,
        version: str,
        tarball: Path,
        pre_commands: Sequence[str] = (),
        hash: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> CurrentRelease:
        """Upload the tarball, then point current.json at it (hash defaults to its SHA-256).

        A tarball that is not a whole gzip tar is refused (TarballCorrupt) before any upload.
        `progress(bytes_sent, size)` is called as the tarball goes up.
        """
        ...


def release_store(config: Config) -> ReleaseStore:
    """The bucket named by `release_adapter` / `release_bucket` for `account_name`."""
    adapter = config.release_adapter
    if adapter == "local":
        from deployex_actors.releases.local import LocalStore

        return LocalStore.from_config(config)
    if adapter == "s3":
        from deployex_actors.releases.s3 import S3Store

        return S3Store.from_config(config)
    if adapter == "gcp-storage":
        from deployex_actors.releases.gcs import GcsStore

        return GcsStore.from_config(config)
    raise ReleaseError(
        f"release_adapter {adapter!r} is not supported; use one of local, s3, gcp-storage"
    )
