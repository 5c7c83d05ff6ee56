"""The S3 release bucket (AWS, or any S3-compatible store such as MinIO), through boto3.

Region comes from `aws_region`; the endpoint from `release_endpoint_url` when set, otherwise
boto3's own resolution (which honours AWS_ENDPOINT_URL); credentials from boto3's usual chain
(environment, profile, instance role). Timeouts and retries are short on purpose: a Deployer polls
every few seconds, so a bucket that cannot be reached should say so quickly and be tried again on
the next tick rather than hold the poll for minutes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from deployex_actors.errors import BucketUnreachable
from deployex_actors.releases.atomicfile import HashingWriter, ProgressReader
from deployex_actors.releases.bucket import BucketStore

if TYPE_CHECKING:
    from deployex_actors.config import Config

CONNECT_TIMEOUT_S = 3.0
READ_TIMEOUT_S = 30.0
MAX_ATTEMPTS = 2  # the first try and one retry
_CHUNK = 1 << 20
# Error codes that mean "this object is not there" (GetObject gives NoSuchKey; HEAD gives 404).
_NO_SUCH_OBJECT = {"NoSuchKey", "404", "NotFound"}


class S3Store(BucketStore):
    """Releases in an S3 bucket."""

    def __init__(
        self,
        bucket: str,
        account_name: str,
        region: str | None = None,
        endpoint_url: str | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        super().__init__(account_name)
        self.bucket = bucket
        self.description = f"s3://{bucket}"
        self._region = region
        self._endpoint_url = endpoint_url
        self._boto_config = BotoConfig(
            connect_timeout=connect_timeout_s,
            read_timeout=READ_TIMEOUT_S,
            retries={"mode": "standard", "max_attempts": max_attempts},
        )

    @classmethod
    def from_config(cls, config: Config) -> S3Store:
        return cls(
            config.release_bucket,
            config.account_name,
            region=config.aws_region,
            endpoint_url=config.release_endpoint_url,
        )

    @cached_property
    def _client(self) -> Any:
        # Built on first use: creating it reads credentials files, and a store is often built
        # in one place and used in another.
        return boto3.session.Session().client(
            "s3",
            region_name=self._region,
            endpoint_url=self._endpoint_url,
            config=self._boto_config,
        )

    def _read(self, key: str) -> bytes | None:
        with self._talking(key):
            body = self._get(key)
            if body is None:
                return None
            with body:
                return body.read()

    def _fetch(self, key: str, out: HashingWriter) -> bool:
        with self._talking(key):
            body = self._get(key)
            if body is None:
                return False
            with body:
                for chunk in body.iter_chunks(_CHUNK):
                    out.write(chunk)
        return True

    def _keys(self, prefix: str) -> Iterable[str]:
        with self._talking(prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            return [item["Key"] for page in pages for item in page.get("Contents", ())]

    def _put_file(self, key: str, body: ProgressReader, content_type: str) -> None:
        with self._talking(key):
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
            )

    def _put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        with self._talking(key):
            self._client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )

    def _get(self, key: str) -> Any | None:
        """The object's streaming body, or None when the bucket answers that it has no such key."""
        try:
            return self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as e:
            if _code(e) in _NO_SUCH_OBJECT:
                return None
            raise

    @contextmanager
    def _talking(self, key: str) -> Iterator[None]:
        """Turn boto's errors for `key` into BucketUnreachable naming the bucket and the cause."""
        try:
            yield
        except ClientError as e:
            raise BucketUnreachable(
                f"S3 bucket {self.bucket!r} cannot serve {self.where(key)}: "
                f"{_code(e)} {_message(e)}"
            ) from None
        except BotoCoreError as e:
            # Connection refused or timed out, no credentials, no region, a stream cut short.
            raise BucketUnreachable(
                f"cannot reach S3 bucket {self.bucket!r} for {self.where(key)}: {e}"
            ) from None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "unknown"))


def _message(error: ClientError) -> str:
    message = error.response.get("Error", {}).get("Message") or ""
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return f"({message}, HTTP {status})" if message else f"(HTTP {status})"
