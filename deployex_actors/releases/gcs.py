"""The Google Cloud Storage release bucket, through google-cloud-storage.

Credentials: with STORAGE_EMULATOR_HOST set (a local emulator) none are used; otherwise the
service-account JSON file named by `google_credentials`, or else Application Default Credentials
(the VM's service account, `gcloud auth application-default login`). Requests carry short timeouts
and a bounded retry budget, for the same reason as for S3: a Deployer polls every few seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from google.api_core import exceptions as api_errors
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.retry import DEFAULT_RETRY

from deployex_actors.errors import BucketUnreachable, TarballCorrupt
from deployex_actors.releases.atomicfile import HashingWriter, ProgressReader
from deployex_actors.releases.bucket import BucketStore

if TYPE_CHECKING:
    from deployex_actors.config import Config

EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
EMULATOR_PROJECT = "deployex-local"  # the emulator needs some project; any name will do
TIMEOUT_S = (3.0, 30.0)  # (connect, read)
RETRY_BUDGET_S = 5.0
# Ways the client says "could not talk to the bucket" other than an HTTP answer.
_TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    ConnectionError,
    InvalidResponse,
)


class GcsStore(BucketStore):
    """Releases in a GCS bucket."""

    def __init__(
        self,
        bucket: str,
        account_name: str,
        credentials_file: str | None = None,
        retry_budget_s: float = RETRY_BUDGET_S,
    ) -> None:
        super().__init__(account_name)
        self.bucket = bucket
        self.description = f"gs://{bucket}"
        self._credentials_file = credentials_file
        self._call = {"timeout": TIMEOUT_S, "retry": DEFAULT_RETRY.with_timeout(retry_budget_s)}

    @classmethod
    def from_config(cls, config: Config) -> GcsStore:
        return cls(config.release_bucket, config.account_name, config.google_credentials)

    @cached_property
    def _bucket(self) -> Any:
        # Built on first use, inside the error mapping: loading credentials can fail.
        return self._connect().bucket(self.bucket)

    def _connect(self) -> Any:
        if os.environ.get(EMULATOR_ENV):
            return storage.Client(project=EMULATOR_PROJECT, credentials=AnonymousCredentials())
        if self._credentials_file:
            try:
                return storage.Client.from_service_account_json(self._credentials_file)
            except (OSError, ValueError) as e:
                raise BucketUnreachable(
                    f"cannot load the GCS service-account file {self._credentials_file} "
                    f"(google_credentials): {e}"
                ) from None
        # project=None: reading and writing objects needs no project, and ADC may not name one.
        return storage.Client(project=None)

    def _read(self, key: str) -> bytes | None:
        with self._talking(key):
            try:
                return self._bucket.blob(key).download_as_bytes(raw_download=True, **self._call)
            except api_errors.NotFound:
                self._require_bucket(key)
                return None

    def _fetch(self, key: str, out: HashingWriter) -> bool:
        with self._talking(key):
            try:
                # raw_download: the stored bytes exactly, never transcoded by the server.
                self._bucket.blob(key).download_to_file(out, raw_download=True, **self._call)
            except api_errors.NotFound:
                self._require_bucket(key)
                return False
            except DataCorruption as e:
                raise TarballCorrupt(
                    f"download of {self.where(key)} failed its checksum: {e}"
                ) from None
        return True

    def _keys(self, prefix: str) -> Iterable[str]:
        with self._talking(prefix):
            blobs = self._bucket.client.list_blobs(self.bucket, prefix=prefix, **self._call)
            return [blob.name for blob in blobs]

    def _put_file(self, key: str, body: ProgressReader, content_type: str) -> None:
        with self._talking(key):
            blob = self._bucket.blob(key)
            blob.upload_from_file(body, size=body.size, content_type=content_type, **self._call)

    def _put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        with self._talking(key):
            blob = self._bucket.blob(key)
            # current.json must never be served from a cache: hosts poll it for changes.
            blob.cache_control = "no-cache"
            blob.upload_from_string(data, content_type=content_type, **self._call)

    def _require_bucket(self, key: str) -> None:
        """After a 404 for an object: tell a missing object from a missing bucket."""
        try:
            exists = self._bucket.exists(**self._call)
        except api_errors.Forbidden:
            return  # may read objects without buckets.get permission; the object is missing
        if not exists:
            raise BucketUnreachable(
                f"GCS bucket {self.bucket!r} does not exist ({self.where(key)})"
            )

    @contextmanager
    def _talking(self, key: str) -> Iterator[None]:
        """Turn the client's errors for `key` into BucketUnreachable naming bucket and cause."""
        where = self.where(key)
        try:
            yield
        except api_errors.NotFound:
            raise BucketUnreachable(
                f"GCS bucket {self.bucket!r} does not exist ({where})"
            ) from None
        except api_errors.RetryError as e:
            raise BucketUnreachable(
                f"cannot reach GCS bucket {self.bucket!r} for {where}: gave up retrying "
                f"({e.cause or e})"
            ) from None
        except api_errors.GoogleAPICallError as e:
            raise BucketUnreachable(
                f"GCS bucket {self.bucket!r} cannot serve {where}: HTTP {e.code} {e.message}"
            ) from None
        except GoogleAuthError as e:
            raise BucketUnreachable(
                f"no usable Google credentials for GCS bucket {self.bucket!r} ({where}): {e}"
            ) from None
        except _TRANSPORT_ERRORS as e:
            raise BucketUnreachable(
                f"cannot reach GCS bucket {self.bucket!r} for {where}: {e}"
            ) from None
