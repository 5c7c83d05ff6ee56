"""The aws adapter against AWS Secrets Manager as moto serves it over real HTTP."""

from __future__ import annotations

import json
import logging
import time
import uuid

import bcrypt
import boto3
import pytest

from deployex_actors.config import Config
from deployex_actors.errors import SecretsError
from deployex_actors.secrets import load_secrets
from tests.servers import LOOPBACK, Server, free_port

pytestmark = pytest.mark.slow

HASH = bcrypt.hashpw(b"admin-pw", bcrypt.gensalt(4)).decode()
VALUES = {
    "DEPLOYEX_SECRET_KEY_BASE": "kb-9f1c-very-secret-key-base",
    "DEPLOYEX_ERLANG_COOKIE": "ck-77aa-very-secret-cookie",
    "DEPLOYEX_ADMIN_HASHED_PASSWORD": HASH,
}


def create_secret(secret_string: str) -> str:
    """A fresh secret in moto (the server outlives one test), returning its name."""
    name = f"deployex-myapp-prod-secrets-{uuid.uuid4().hex[:8]}"
    client = boto3.client("secretsmanager", region_name="us-east-1")
    client.create_secret(Name=name, SecretString=secret_string)
    return name


def aws_config(secret_name: str, endpoint_url: str | None = None) -> Config:
    return Config(
        release_adapter="s3",
        secrets_adapter="aws",
        secrets_path=secret_name,
        aws_region="us-east-1",
        secrets_endpoint_url=endpoint_url,
    )


def test_the_secret_json_becomes_the_secrets(aws_env: Server) -> None:
    name = create_secret(json.dumps({**VALUES, "OTHER_APP_KEY": "ignored"}))
    got = load_secrets(aws_config(name))
    assert got.secret_key_base == VALUES["DEPLOYEX_SECRET_KEY_BASE"]
    assert got.erlang_cookie == VALUES["DEPLOYEX_ERLANG_COOKIE"]
    assert bcrypt.checkpw(b"admin-pw", got.admin_hashed_password.encode())
    assert not got.development_defaults


def test_secrets_endpoint_url_is_used_when_set(
    aws_env: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = create_secret(json.dumps(VALUES))
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert (
        load_secrets(aws_config(name, endpoint_url=aws_env.url)).erlang_cookie
        == (VALUES["DEPLOYEX_ERLANG_COOKIE"])
    )


def test_a_missing_secret_is_named(aws_env: Server) -> None:
    with pytest.raises(SecretsError) as caught:
        load_secrets(aws_config("deployex-no-such-secret"))
    message = str(caught.value)
    assert "'deployex-no-such-secret' not found in region us-east-1" in message


def test_a_secret_string_that_is_not_json_is_refused_without_echoing_it(
    aws_env: Server, caplog: pytest.LogCaptureFixture
) -> None:
    name = create_secret("DEPLOYEX_ERLANG_COOKIE=ck-77aa-very-secret-cookie")
    with (
        caplog.at_level(logging.DEBUG, logger="deployex_actors"),
        pytest.raises(SecretsError) as caught,
    ):
        load_secrets(aws_config(name))
    message = str(caught.value)
    assert f"AWS Secrets Manager secret {name!r} is not valid JSON" in message
    assert "ck-77aa" not in message
    assert "ck-77aa" not in caplog.text


def test_a_secret_string_that_is_a_json_array_is_refused(aws_env: Server) -> None:
    name = create_secret(json.dumps(list(VALUES.values())))
    with pytest.raises(SecretsError, match="is JSON but not an object") as caught:
        load_secrets(aws_config(name))
    assert "ck-77aa" not in str(caught.value)


def test_a_missing_key_is_named_and_no_value_is_shown(
    aws_env: Server, caplog: pytest.LogCaptureFixture
) -> None:
    partial = {k: v for k, v in VALUES.items() if k != "DEPLOYEX_ADMIN_HASHED_PASSWORD"}
    name = create_secret(json.dumps(partial))
    with (
        caplog.at_level(logging.DEBUG, logger="deployex_actors"),
        pytest.raises(SecretsError) as caught,
    ):
        load_secrets(aws_config(name))
    message = str(caught.value)
    assert name in message
    assert "DEPLOYEX_ADMIN_HASHED_PASSWORD is missing" in message
    for value in partial.values():
        assert value not in message
        assert value not in caplog.text


def test_an_unreachable_endpoint_fails_within_seconds(aws_env: Server) -> None:
    closed = f"http://{LOOPBACK}:{free_port()}"
    started = time.monotonic()
    with pytest.raises(SecretsError) as caught:
        load_secrets(aws_config("deployex-myapp-prod-secrets", endpoint_url=closed))
    assert time.monotonic() - started < 10
    assert f"AWS Secrets Manager at {closed} is unreachable" in str(caught.value)
