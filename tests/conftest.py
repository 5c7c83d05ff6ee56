"""Shared fixtures: real servers, isolated AWS/GCP environment, fresh folders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import Server, free_port, gcs_emulator_argv, moto_argv, running

# Credentials that only the local servers accept; no test may reach a real cloud.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """moto in server mode: S3 and Secrets Manager over real HTTP on 127.0.0.1."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with running(moto_argv(port), port, log) as server:
        yield server


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """gcp-storage-emulator over real HTTP on 127.0.0.1."""
    port = free_port()
    log = tmp_path_factory.mktemp("gcs") / "gcs.log"
    with running(gcs_emulator_argv(port), port, log) as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_server: Server) -> Server:
    """Point boto3 at the moto server with fake credentials for one test."""
    for key, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return moto_server


@pytest.fixture
def gcs_env(monkeypatch: pytest.MonkeyPatch, gcs_emulator: Server) -> Server:
    """Point google-cloud-storage at the emulator for one test."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    return gcs_emulator


from tests.beam_fixtures import beam_nodes, release_dist  # noqa: E402, F401
from tests.browser import browser, page  # noqa: E402, F401
