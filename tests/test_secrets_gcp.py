"""The gcp adapter against a Secret Manager stand-in over real HTTP (tests/gcp_secret_server.py).

google-auth signs a JWT with the service account's key, trades it for a token at the stand-in's
/token, and the adapter reads the secret with that token, as against Google.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from deployex_actors.config import Config
from deployex_actors.errors import SecretsError
from deployex_actors.secrets import load_secrets
from tests.gcp_secret_server import GcpSecretServer, serving
from tests.servers import LOOPBACK, free_port

pytestmark = pytest.mark.slow

PROJECT = "deployex-test-project"
SECRET = "deployex-myapp-prod-secrets"
HASH = bcrypt.hashpw(b"admin-pw", bcrypt.gensalt(4)).decode()
VALUES = {
    "DEPLOYEX_SECRET_KEY_BASE": "kb-9f1c-very-secret-key-base",
    "DEPLOYEX_ERLANG_COOKIE": "ck-77aa-very-secret-cookie",
    "DEPLOYEX_ADMIN_HASHED_PASSWORD": HASH,
}


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def gcp_server(private_key: rsa.RSAPrivateKey) -> Iterator[GcpSecretServer]:
    with serving(private_key.public_key()) as server:
        yield server


def write_service_account(path: Path, key: rsa.RSAPrivateKey, token_uri: str) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "test-key-1",
        "private_key": pem,
        "client_email": f"deployex@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info))
    return path


def gcp_config(credentials: Path | None, endpoint_url: str, secret: str = SECRET) -> Config:
    return Config(
        release_adapter="gcp-storage",
        secrets_adapter="gcp",
        secrets_path=secret,
        google_credentials=str(credentials) if credentials else None,
        secrets_endpoint_url=endpoint_url,
    )


@pytest.fixture
def credentials_file(
    tmp_path: Path, private_key: rsa.RSAPrivateKey, gcp_server: GcpSecretServer
) -> Path:
    return write_service_account(tmp_path / "sa.json", private_key, gcp_server.token_uri)


def test_the_latest_version_becomes_the_secrets(
    gcp_server: GcpSecretServer, credentials_file: Path
) -> None:
    gcp_server.store.put(PROJECT, SECRET, VALUES)
    got = load_secrets(gcp_config(credentials_file, gcp_server.url))
    assert got.secret_key_base == VALUES["DEPLOYEX_SECRET_KEY_BASE"]
    assert got.erlang_cookie == VALUES["DEPLOYEX_ERLANG_COOKIE"]
    assert bcrypt.checkpw(b"admin-pw", got.admin_hashed_password.encode())
    assert gcp_server.store.tokens_issued == 1


def test_application_default_credentials_are_used_without_google_credentials(
    gcp_server: GcpSecretServer, credentials_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials_file))
    gcp_server.store.put(PROJECT, SECRET, VALUES)
    got = load_secrets(gcp_config(None, gcp_server.url))
    assert got.erlang_cookie == VALUES["DEPLOYEX_ERLANG_COOKIE"]


def test_an_unknown_secret_is_named(gcp_server: GcpSecretServer, credentials_file: Path) -> None:
    with pytest.raises(SecretsError) as caught:
        load_secrets(gcp_config(credentials_file, gcp_server.url, secret="no-such-secret"))
    message = str(caught.value)
    assert f"secret 'no-such-secret' in project {PROJECT!r} not found" in message


def test_a_denied_secret_names_the_role_to_grant(
    gcp_server: GcpSecretServer, credentials_file: Path
) -> None:
    gcp_server.store.put(PROJECT, SECRET, VALUES)
    gcp_server.store.deny(PROJECT, SECRET)
    with pytest.raises(SecretsError) as caught:
        load_secrets(gcp_config(credentials_file, gcp_server.url))
    assert "permission denied" in str(caught.value)
    assert "roles/secretmanager.secretAccessor" in str(caught.value)


def test_a_payload_that_is_not_json_is_refused_without_echoing_it(
    gcp_server: GcpSecretServer, credentials_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gcp_server.store.put(PROJECT, SECRET, "DEPLOYEX_ERLANG_COOKIE=ck-77aa-very-secret-cookie")
    with (
        caplog.at_level(logging.DEBUG, logger="deployex_actors"),
        pytest.raises(SecretsError) as caught,
    ):
        load_secrets(gcp_config(credentials_file, gcp_server.url))
    message = str(caught.value)
    assert f"secret {SECRET!r} in project {PROJECT!r} is not valid JSON" in message
    assert "ck-77aa" not in message
    assert "ck-77aa" not in caplog.text


def test_a_missing_key_is_named_and_no_value_is_shown(
    gcp_server: GcpSecretServer, credentials_file: Path
) -> None:
    partial = {k: v for k, v in VALUES.items() if k != "DEPLOYEX_SECRET_KEY_BASE"}
    gcp_server.store.put(PROJECT, SECRET, partial)
    with pytest.raises(SecretsError) as caught:
        load_secrets(gcp_config(credentials_file, gcp_server.url))
    message = str(caught.value)
    assert "DEPLOYEX_SECRET_KEY_BASE is missing" in message
    assert SECRET in message
    assert not any(value in message for value in partial.values())


def test_a_key_the_token_endpoint_does_not_know_is_refused(
    gcp_server: GcpSecretServer, tmp_path: Path
) -> None:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    credentials = write_service_account(tmp_path / "other.json", other_key, gcp_server.token_uri)
    gcp_server.store.put(PROJECT, SECRET, VALUES)
    with pytest.raises(SecretsError, match="refused the service account's token request"):
        load_secrets(gcp_config(credentials, gcp_server.url))


def test_a_credentials_file_without_project_id_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({"type": "service_account", "client_email": "x@y"}))
    with pytest.raises(SecretsError, match=f"google_credentials file {path} has no project_id"):
        load_secrets(gcp_config(path, f"http://{LOOPBACK}:{free_port()}"))


def test_a_server_that_is_down_fails_within_seconds(
    tmp_path: Path, private_key: rsa.RSAPrivateKey
) -> None:
    down = f"http://{LOOPBACK}:{free_port()}"
    credentials = write_service_account(tmp_path / "sa.json", private_key, f"{down}/token")
    started = time.monotonic()
    with pytest.raises(SecretsError) as caught:
        load_secrets(gcp_config(credentials, down))
    assert time.monotonic() - started < 10
    assert "token endpoint is unreachable" in str(caught.value)


def test_secret_manager_down_behind_a_working_token_endpoint_is_reported(
    gcp_server: GcpSecretServer, credentials_file: Path
) -> None:
    down = f"http://{LOOPBACK}:{free_port()}"
    with pytest.raises(SecretsError) as caught:
        load_secrets(gcp_config(credentials_file, down))
    assert f"Secret Manager at {down} is unreachable" in str(caught.value)
