"""`deployex bucket publish` then `deployex bucket current`, as a CI pipeline and an operator
would run them, against a local folder, S3 (moto server) and GCS (the emulator)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest

from tests.servers import Server
from tests.tarballs import build_release
from tests.test_cli import deployex

APP = "myapp"


def _write_config(tmp_path: Path, adapter: str, bucket: str, endpoint: str | None = None) -> Path:
    lines = [
        f"release_adapter: {adapter}",
        f"release_bucket: {bucket}",
        "secrets_adapter: env",
        "account_name: prod",
        f"var_path: {tmp_path}/var",
        f"log_path: {tmp_path}/log",
        f"monitored_app_log_path: {tmp_path}/apps",
    ]
    if endpoint:
        lines.append(f"release_endpoint_url: {endpoint}")
    path = tmp_path / "deployex.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _round_trip(config: Path, tmp_path: Path) -> None:
    tarball = build_release(tmp_path / "myapp-1.2.3.tar.gz", APP, "1.2.3")
    published = deployex(
        "bucket", "publish", APP, "1.2.3", str(tarball),
        "--pre-command", "eval MyApp.Migrator.migrate", "--pre-command", "eval MyApp.Seed.run",
        "--config", str(config),
    )  # fmt: skip
    assert published.returncode == 0, published.stderr
    assert "published myapp 1.2.3" in published.stdout

    current = deployex("bucket", "current", APP, "--config", str(config))
    assert current.returncode == 0, current.stderr
    document = json.loads(current.stdout)
    assert document["version"] == "1.2.3"
    assert document["pre_commands"] == ["eval MyApp.Migrator.migrate", "eval MyApp.Seed.run"]
    assert len(document["hash"]) == 64  # the tarball's sha256 by default

    versions = deployex("bucket", "versions", APP, "--config", str(config))
    assert versions.stdout.split() == ["1.2.3"]


def test_publish_then_current_round_trips_in_a_local_bucket(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "local", str(tmp_path / "bucket"))
    _round_trip(config, tmp_path)
    assert (tmp_path / "bucket/dist/myapp/myapp-1.2.3.tar.gz").is_file()
    assert (tmp_path / "bucket/versions/myapp/prod/current.json").is_file()


@pytest.mark.slow
def test_publish_then_current_round_trips_in_s3(tmp_path: Path, aws_env: Server) -> None:
    bucket = f"releases-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    _round_trip(_write_config(tmp_path, "s3", bucket, endpoint=aws_env.url), tmp_path)


@pytest.mark.slow
def test_publish_then_current_round_trips_in_gcs(tmp_path: Path, gcs_env: Server) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    bucket = f"releases-{uuid.uuid4().hex[:12]}"
    storage.Client(project="test", credentials=AnonymousCredentials()).create_bucket(bucket)
    _round_trip(_write_config(tmp_path, "gcp-storage", bucket), tmp_path)


def test_current_of_an_unpublished_app_is_one_clear_line(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "local", str(tmp_path / "bucket"))
    (tmp_path / "bucket").mkdir()
    result = deployex("bucket", "current", APP, "--config", str(config))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "current.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_publishing_a_corrupt_tarball_is_refused_and_nothing_is_published(tmp_path: Path) -> None:
    config = _write_config(tmp_path, "local", str(tmp_path / "bucket"))
    bad = tmp_path / "myapp-9.9.9.tar.gz"
    bad.write_bytes(b"this is not a tarball")
    result = deployex("bucket", "publish", APP, "9.9.9", str(bad), "--config", str(config))
    assert result.returncode == 1
    assert not (tmp_path / "bucket/versions/myapp/prod/current.json").exists()
