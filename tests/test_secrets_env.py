"""The env adapter: secrets from environment variables, with development defaults locally."""

from __future__ import annotations

import logging

import bcrypt
import pytest

from deployex_actors.config import Config
from deployex_actors.errors import SecretsError
from deployex_actors.secrets import DEV_COOKIE, DEV_PASSWORD, load_secrets

HASH = bcrypt.hashpw(b"admin-pw", bcrypt.gensalt(4)).decode()
ENVIRON = {
    "DEPLOYEX_SECRET_KEY_BASE": "kb-9f1c-very-secret-key-base",
    "DEPLOYEX_ERLANG_COOKIE": "ck-77aa-very-secret-cookie",
    "DEPLOYEX_ADMIN_HASHED_PASSWORD": HASH,
    "PATH": "/usr/bin",
}
LOCAL = Config(release_adapter="local", secrets_adapter="env")
PRODUCTION = Config(release_adapter="s3", secrets_adapter="env", release_bucket="prod-bucket")


@pytest.mark.parametrize("config", [LOCAL, PRODUCTION], ids=["local", "s3"])
def test_the_three_variables_are_the_secrets(config: Config) -> None:
    got = load_secrets(config, ENVIRON)
    assert got.secret_key_base == "kb-9f1c-very-secret-key-base"
    assert got.erlang_cookie == "ck-77aa-very-secret-cookie"
    assert bcrypt.checkpw(b"admin-pw", got.admin_hashed_password.encode())
    assert not got.development_defaults


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENVIRON.items():
        monkeypatch.setenv(key, value)
    assert load_secrets(PRODUCTION).erlang_cookie == "ck-77aa-very-secret-cookie"


def test_local_mode_without_variables_uses_development_defaults_and_warns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        got = load_secrets(LOCAL, {"PATH": "/usr/bin"})
    assert got.development_defaults
    assert got.erlang_cookie == DEV_COOKIE == "cookie"
    assert bcrypt.checkpw(DEV_PASSWORD.encode(), got.admin_hashed_password.encode())
    assert bcrypt.checkpw(b"deployex", got.admin_hashed_password.encode())
    assert len(got.secret_key_base) >= 64
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "DEVELOPMENT DEFAULTS" in warnings[0].getMessage()
    assert "do not use them in production" in warnings[0].getMessage()


def test_each_boot_in_local_mode_gets_a_fresh_secret_key_base() -> None:
    first, second = load_secrets(LOCAL, {}), load_secrets(LOCAL, {})
    assert first.secret_key_base != second.secret_key_base


def test_empty_variables_count_as_unset() -> None:
    environ = dict.fromkeys(("DEPLOYEX_SECRET_KEY_BASE", "DEPLOYEX_ERLANG_COOKIE"), "")
    assert load_secrets(LOCAL, environ).development_defaults


@pytest.mark.parametrize("config", [LOCAL, PRODUCTION], ids=["local", "s3"])
def test_a_partial_set_names_the_missing_variable_and_hides_the_others(
    config: Config, caplog: pytest.LogCaptureFixture
) -> None:
    environ = {k: v for k, v in ENVIRON.items() if k != "DEPLOYEX_ERLANG_COOKIE"}
    with caplog.at_level(logging.DEBUG), pytest.raises(SecretsError) as caught:
        load_secrets(config, environ)
    message = str(caught.value)
    assert "DEPLOYEX_ERLANG_COOKIE is missing" in message
    assert "the environment" in message
    assert "DEPLOYEX_SECRET_KEY_BASE is missing" not in message
    for value in (ENVIRON["DEPLOYEX_SECRET_KEY_BASE"], HASH):
        assert value not in message
        assert value not in caplog.text
    assert "DEVELOPMENT DEFAULTS" not in caplog.text


def test_outside_local_mode_no_variables_is_an_error_naming_all_three() -> None:
    with pytest.raises(SecretsError) as caught:
        load_secrets(PRODUCTION, {"PATH": "/usr/bin"})
    message = str(caught.value)
    for key in ENVIRON.keys() - {"PATH"}:
        assert f"{key} is missing" in message
    assert "development defaults apply only when release_adapter is local (it is s3)" in message
