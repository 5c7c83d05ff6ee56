"""One suite, every release bucket: a local folder, S3 (moto) and GCS (the emulator).

Each test gets a fresh, empty bucket created with the backend's own client, and publishes and
reads through `release_store(config)` exactly as DeployEx and `deployex bucket` do.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from deployex_actors.catalog import current_json_key, tarball_key
from deployex_actors.config.model import Config
from deployex_actors.errors import (
    BucketUnreachable,
    CurrentJsonInvalid,
    CurrentJsonMissing,
    ReleaseError,
    TarballCorrupt,
    TarballMissing,
)
from deployex_actors.releases import CurrentRelease, ReleaseStore, release_store
from deployex_actors.releases.atomicfile import atomic_write
from tests.servers import LOOPBACK, Server, free_port
from tests.tarballs import build_release

APP = "myapp"
ACCOUNT = "prod"
# An unreachable bucket must say so instead of retrying for minutes (botocore's defaults);
# a bound that catches a retry loop on a loaded machine; the figure is bench_buckets'.
QUICKLY_S = 20.0


@dataclass(frozen=True)
class Bucket:
    """A fresh bucket: its config, its store, and a raw writer that bypasses DeployEx."""

    config: Config
    put_object: Callable[[str, bytes], None]

    @property
    def store(self) -> ReleaseStore:
        return release_store(self.config)

    def missing(self) -> ReleaseStore:
        """The same backend, naming a bucket that does not exist."""
        name = self.config.release_bucket
        missing = f"{name}-missing" if "/" not in name else f"{name}/no-such-folder"
        return release_store(replace(self.config, release_bucket=missing))


def _config(adapter: str, bucket: str) -> Config:
    return Config(
        release_adapter=adapter,
        secrets_adapter="env",
        release_bucket=bucket,
        account_name=ACCOUNT,
        aws_region="us-east-1",
    )


def _local_bucket(tmp_path: Path) -> Bucket:
    root = tmp_path / "bucket"
    root.mkdir()

    def put(key: str, data: bytes) -> None:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)

    return Bucket(_config("local", str(root)), put)


def _s3_bucket() -> Bucket:
    import boto3

    name = f"releases-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=name)

    def put(key: str, data: bytes) -> None:
        client.put_object(Bucket=name, Key=key, Body=data)

    return Bucket(_config("s3", name), put)


def _gcs_bucket() -> Bucket:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    name = f"releases-{uuid.uuid4().hex[:12]}"
    bucket = storage.Client(project="test", credentials=AnonymousCredentials()).create_bucket(name)

    def put(key: str, data: bytes) -> None:
        bucket.blob(key).upload_from_string(data)

    return Bucket(_config("gcp-storage", name), put)


@pytest.fixture(
    params=[
        "local",
        pytest.param("s3", marks=pytest.mark.slow),
        pytest.param("gcs", marks=pytest.mark.slow),
    ]
)
def bucket(request: pytest.FixtureRequest, tmp_path: Path) -> Bucket:
    if request.param == "s3":
        request.getfixturevalue("aws_env")
        return _s3_bucket()
    if request.param == "gcs":
        request.getfixturevalue("gcs_env")
        return _gcs_bucket()
    return _local_bucket(tmp_path)


@pytest.fixture
def release(tmp_path: Path) -> Callable[[str], Path]:
    """Build `myapp-{version}.tar.gz` (a mix-release-shaped tarball) in a folder of its own."""
    built = tmp_path / "built"
    built.mkdir()
    return lambda version: build_release(built / f"{APP}-{version}.tar.gz", APP, version)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    folder = tmp_path / "downloads"
    folder.mkdir()
    return folder


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- publish and read back -----------------------------------------------------------------------


def test_published_release_reads_back_with_hash_and_pre_commands(
    bucket: Bucket, release: Callable[[str], Path]
) -> None:
    commands = ["eval MyApp.Migrator.migrate", "eval MyApp.Seeds.run"]
    published = bucket.store.publish(APP, "1.2.3", release("1.2.3"), commands, hash="abc123")
    expected = CurrentRelease("1.2.3", "abc123", tuple(commands))
    assert published == expected
    assert bucket.store.read_current(APP) == expected


def test_hash_defaults_to_the_tarball_sha256(
    bucket: Bucket, release: Callable[[str], Path]
) -> None:
    tarball = release("0.1.0")
    bucket.store.publish(APP, "0.1.0", tarball)
    assert bucket.store.read_current(APP) == CurrentRelease("0.1.0", sha256(tarball), ())


def test_latest_publish_is_current_and_versions_list_in_natural_order(
    bucket: Bucket, release: Callable[[str], Path]
) -> None:
    for version in ("0.9.0", "0.10.0", "0.2.0"):
        bucket.store.publish(APP, version, release(version))
    # Neighbours that are not myapp tarballs must not show up as versions.
    bucket.put_object("dist/myapp/NOTES.txt", b"not a release")
    bucket.put_object("dist/other/other-9.9.9.tar.gz", b"another app")
    bucket.put_object("dist/myapp/other-9.9.9.tar.gz", b"misfiled")
    assert bucket.store.read_current(APP).version == "0.2.0", "the last publish, not the highest"
    assert bucket.store.list_versions(APP) == ["0.2.0", "0.9.0", "0.10.0"]


def test_app_with_nothing_published_has_no_versions(bucket: Bucket) -> None:
    assert bucket.store.list_versions(APP) == []


def test_current_json_is_where_upstream_deployex_reads_it(
    bucket: Bucket, release: Callable[[str], Path], dest: Path
) -> None:
    # Written by hand, as an upstream CI pipeline would: the store must read it as its own.
    tarball = release("2.0.0")
    bucket.put_object(tarball_key(APP, "2.0.0"), tarball.read_bytes())
    bucket.put_object(
        current_json_key(APP, ACCOUNT),
        b'{"version": "2.0.0", "hash": "h", "pre_commands": ["eval M.f"]}',
    )
    assert bucket.store.read_current(APP) == CurrentRelease("2.0.0", "h", ("eval M.f",))
    assert bucket.store.download(APP, "2.0.0", dest).sha256 == sha256(tarball)


# -- download ------------------------------------------------------------------------------------


def test_download_gives_the_published_bytes_and_only_the_final_file(
    bucket: Bucket, release: Callable[[str], Path], dest: Path
) -> None:
    tarball = release("1.0.0")
    bucket.store.publish(APP, "1.0.0", tarball)
    got = bucket.store.download(APP, "1.0.0", dest)
    assert got.path == dest / "myapp-1.0.0.tar.gz"
    assert got.path.read_bytes() == tarball.read_bytes()
    assert (got.size, got.sha256) == (tarball.stat().st_size, sha256(tarball))
    assert (got.app, got.version) == (APP, "1.0.0")
    assert names(dest) == ["myapp-1.0.0.tar.gz"], "no temporary file left beside it"


def test_missing_tarball_is_reported_and_leaves_nothing(bucket: Bucket, dest: Path) -> None:
    with pytest.raises(TarballMissing, match=r"no tarball for myapp 3\.0\.0 at .*myapp-3\.0\.0"):
        bucket.store.download(APP, "3.0.0", dest)
    assert names(dest) == []


# -- bad current.json ----------------------------------------------------------------------------


def test_missing_current_json_is_reported(bucket: Bucket) -> None:
    with pytest.raises(CurrentJsonMissing) as caught:
        bucket.store.read_current(APP)
    where = f"{bucket.store.description}/versions/myapp/prod/current.json"
    assert f"no current.json for myapp at {where}" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"version": 1.2}', '"version" must be a string'),
        (b'{"hash": "abc"}', 'has no "version"'),
        (b"<?xml version='1.0'?><Error>NoSuchKey</Error>", "not valid JSON at line 1, column 1"),
    ],
)
def test_invalid_current_json_is_reported_naming_the_object(
    bucket: Bucket, body: bytes, says: str
) -> None:
    bucket.put_object(current_json_key(APP, ACCOUNT), body)
    with pytest.raises(CurrentJsonInvalid) as caught:
        bucket.store.read_current(APP)
    message = str(caught.value)
    assert f"{bucket.store.description}/versions/myapp/prod/current.json" in message
    assert says in message


# -- refusals ------------------------------------------------------------------------------------


def test_corrupt_tarball_is_refused_before_anything_is_uploaded(
    bucket: Bucket, release: Callable[[str], Path]
) -> None:
    tarball = release("1.0.0")
    tarball.write_bytes(tarball.read_bytes()[:100])
    with pytest.raises(TarballCorrupt, match=r"myapp-1\.0\.0\.tar\.gz"):
        bucket.store.publish(APP, "1.0.0", tarball)
    assert bucket.store.list_versions(APP) == []
    with pytest.raises(CurrentJsonMissing):
        bucket.store.read_current(APP)


def test_blank_pre_command_is_refused_before_anything_is_uploaded(
    bucket: Bucket, release: Callable[[str], Path]
) -> None:
    with pytest.raises(CurrentJsonInvalid, match=r'"pre_commands"\[0\] is empty'):
        bucket.store.publish(APP, "1.0.0", release("1.0.0"), [""])
    assert bucket.store.list_versions(APP) == []


def test_unreachable_bucket_is_reported_quickly(bucket: Bucket, dest: Path) -> None:
    store = bucket.missing()
    for attempt in (
        lambda: store.read_current(APP),
        lambda: store.list_versions(APP),
        lambda: store.download(APP, "1.0.0", dest),
    ):
        started = time.monotonic()
        with pytest.raises(BucketUnreachable) as caught:
            attempt()
        assert time.monotonic() - started < QUICKLY_S
        assert store.description.split("://")[-1] in str(caught.value), "names the bucket"
    assert names(dest) == []


# -- backend specifics ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["s3", "gcs"])
def test_publishing_to_a_missing_cloud_bucket_is_unreachable(
    request: pytest.FixtureRequest, backend: str, release: Callable[[str], Path]
) -> None:
    request.getfixturevalue("aws_env" if backend == "s3" else "gcs_env")
    bucket = _s3_bucket() if backend == "s3" else _gcs_bucket()
    with pytest.raises(BucketUnreachable, match="-missing"):
        bucket.missing().publish(APP, "1.0.0", release("1.0.0"))


@pytest.mark.slow
def test_s3_endpoint_on_a_closed_port_is_unreachable_quickly(aws_env: Server, dest: Path) -> None:
    closed = f"http://{LOOPBACK}:{free_port()}"
    store = release_store(replace(_config("s3", "releases"), release_endpoint_url=closed))
    started = time.monotonic()
    with pytest.raises(BucketUnreachable) as caught:
        store.download(APP, "1.0.0", dest)
    assert time.monotonic() - started < QUICKLY_S
    assert "cannot reach S3 bucket 'releases'" in str(caught.value)
    assert closed in str(caught.value)
    assert names(dest) == []


@pytest.mark.slow
def test_release_endpoint_url_points_at_an_s3_compatible_store(
    aws_env: Server, monkeypatch: pytest.MonkeyPatch, release: Callable[[str], Path]
) -> None:
    bucket = _s3_bucket()
    # Only the YAML setting says where the store is; boto3's own variable is gone.
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    config = replace(bucket.config, release_endpoint_url=aws_env.url)
    release_store(config).publish(APP, "1.0.0", release("1.0.0"))
    assert release_store(config).read_current(APP).version == "1.0.0"


@pytest.mark.slow
def test_gcs_emulator_on_a_closed_port_is_unreachable_quickly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://{LOOPBACK}:{free_port()}")
    store = release_store(_config("gcp-storage", "releases"))  # DeployEx's own retry budget
    started = time.monotonic()
    with pytest.raises(BucketUnreachable, match="cannot reach GCS bucket 'releases'"):
        store.read_current(APP)
    assert time.monotonic() - started < QUICKLY_S


def test_unreadable_gcs_credentials_file_is_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    key_file = tmp_path / "sa.json"
    key_file.write_text('{"type": "service_account"}')
    config = replace(_config("gcp-storage", "releases"), google_credentials=str(key_file))
    with pytest.raises(BucketUnreachable, match="cannot load the GCS service-account file"):
        release_store(config).read_current(APP)


def test_local_publish_creates_the_bucket_folder(
    tmp_path: Path, release: Callable[[str], Path]
) -> None:
    root = tmp_path / "fresh" / "bucket"
    store = release_store(_config("local", str(root)))
    store.publish(APP, "1.0.0", release("1.0.0"), ["eval M.f"])
    assert names(root / "dist" / APP) == ["myapp-1.0.0.tar.gz"]
    assert names(root / "versions" / APP / ACCOUNT) == ["current.json"]


def test_interrupted_write_leaves_no_file_at_all(tmp_path: Path) -> None:
    dest = tmp_path / "myapp-1.0.0.tar.gz"
    with pytest.raises(ConnectionResetError), atomic_write(dest) as out:
        out.write(b"first half")
        raise ConnectionResetError("peer went away")
    assert names(tmp_path) == []


@pytest.mark.parametrize(
    ("adapter", "description"),
    [("local", "/srv/bucket"), ("s3", "s3://my-releases"), ("gcp-storage", "gs://my-releases")],
)
def test_adapter_is_chosen_from_release_adapter(adapter: str, description: str) -> None:
    bucket = "/srv/bucket" if adapter == "local" else "my-releases"
    assert release_store(_config(adapter, bucket)).description == description


def test_unknown_adapter_is_refused_with_the_choices() -> None:
    with pytest.raises(ReleaseError, match="use one of local, s3, gcp-storage"):
        release_store(_config("ftp", "x"))


def test_importing_releases_loads_no_cloud_client_library() -> None:
    code = (
        "import sys, deployex_actors.releases\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'google')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
