"""`deployex bucket publish` then `deployex bucket current`, as a CI pipeline and an operator
would run them, against a local folder, S3 (moto server) and GCS (the emulator)."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import boto3
import pytest

from deployex_actors.cli.progress import MB, Progress
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
    # not a terminal: one progress line per quarter reached, the last at 100 %
    shown = [line for line in published.stderr.splitlines() if line.startswith("uploading")]
    assert shown and shown[-1].startswith(f"uploading {tarball.name} to "), published.stderr
    assert "100% (" in shown[-1] and len(shown) <= 5, published.stderr

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


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_one_line_on_a_terminal_and_prints_quarters_in_a_log() -> None:
    terminal, log = _Terminal(), io.StringIO()
    on_tty, in_log = Progress("uploading x", terminal), Progress("uploading x", log)
    for done in range(0, 101, 5):
        on_tty(done * MB, 100 * MB)
        in_log(done * MB, 100 * MB)
    on_tty.finish()
    in_log.finish()
    assert terminal.getvalue().count("\n") == 1  # one line, redrawn with \r
    assert terminal.getvalue().rstrip().endswith("uploading x: 100% (100.0 of 100.0 MB)\x1b[K")
    assert [line.split(":")[1].split("%")[0].strip() for line in log.getvalue().splitlines()] == [
        "0", "25", "50", "75", "100"]  # fmt: skip
