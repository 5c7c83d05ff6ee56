"""Secrets as a value: validation of the three keys, hidden repr, and adapter choice."""

from __future__ import annotations

import logging

import bcrypt
import pytest

from deployex_actors.config import Config
from deployex_actors.errors import SecretsError
from deployex_actors.secrets import (
    KEYS,
    Secrets,
    load_secrets,
    secrets_from_json,
    secrets_from_mapping,
)

HASH = bcrypt.hashpw(b"admin-pw", bcrypt.gensalt(4)).decode()
VALUES = {
    "DEPLOYEX_SECRET_KEY_BASE": "kb-9f1c-very-secret-key-base",
    "DEPLOYEX_ERLANG_COOKIE": "ck-77aa-very-secret-cookie",
    "DEPLOYEX_ADMIN_HASHED_PASSWORD": HASH,
}


def test_the_three_keys_become_secrets() -> None:
    got = secrets_from_mapping({**VALUES, "UNRELATED": 1}, "a test")
    assert got == Secrets(
        secret_key_base=VALUES["DEPLOYEX_SECRET_KEY_BASE"],
        erlang_cookie=VALUES["DEPLOYEX_ERLANG_COOKIE"],
        admin_hashed_password=HASH,
    )
    assert not got.development_defaults


@pytest.mark.parametrize("shown", [repr, str, lambda s: f"{s}", lambda s: f"{s!r}"])
def test_repr_and_str_never_show_the_values(shown) -> None:
    text = shown(secrets_from_mapping(VALUES, "a test"))
    assert text == "Secrets(<3 values hidden>, development_defaults=False)"
    assert not any(value in text for value in VALUES.values())


def test_every_missing_key_is_named_with_where_it_was_looked_for() -> None:
    with pytest.raises(SecretsError) as caught:
        secrets_from_mapping({"DEPLOYEX_SECRET_KEY_BASE": "kb-123"}, "the vault 'prod'")
    message = str(caught.value)
    assert "the vault 'prod'" in message
    assert "DEPLOYEX_ERLANG_COOKIE is missing" in message
    assert "DEPLOYEX_ADMIN_HASHED_PASSWORD is missing" in message
    assert "DEPLOYEX_SECRET_KEY_BASE is missing" not in message
    assert "kb-123" not in message


def test_empty_and_non_string_values_are_refused_without_showing_them() -> None:
    values = {**VALUES, "DEPLOYEX_ERLANG_COOKIE": "", "DEPLOYEX_SECRET_KEY_BASE": 424242}
    with pytest.raises(SecretsError) as caught:
        secrets_from_mapping(values, "a test")
    message = str(caught.value)
    assert "DEPLOYEX_ERLANG_COOKIE is empty" in message
    assert "DEPLOYEX_SECRET_KEY_BASE is not a string (it is a number)" in message
    assert "424242" not in message


def test_json_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(SecretsError, match="not an object \\(it is an array\\)"):
        secrets_from_json('["ck-77aa-very-secret-cookie"]', "a test")


def test_broken_json_is_refused_without_echoing_it() -> None:
    with pytest.raises(SecretsError) as caught:
        secrets_from_json('{"DEPLOYEX_ERLANG_COOKIE": "ck-77aa-very-secret-cookie",', "a test")
    assert "not valid JSON" in str(caught.value)
    assert "ck-77aa" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_an_unknown_adapter_is_an_error_listing_the_known_ones() -> None:
    config = Config(release_adapter="local", secrets_adapter="vault")
    with pytest.raises(SecretsError, match="unknown secrets_adapter 'vault'; use one of env"):
        load_secrets(config, {})


def test_a_plain_password_in_place_of_the_hash_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = {**VALUES, "DEPLOYEX_ADMIN_HASHED_PASSWORD": "plain-admin-password"}
    with caplog.at_level(logging.WARNING):
        got = load_secrets(Config(release_adapter="s3", secrets_adapter="env"), environ)
    assert not got.admin_password_is_bcrypt
    assert "is not a bcrypt hash" in caplog.text
    assert "deployex hash-password" in caplog.text
    assert "plain-admin-password" not in caplog.text


def test_keys_are_upstreams_names() -> None:
    assert KEYS == (
        "DEPLOYEX_SECRET_KEY_BASE",
        "DEPLOYEX_ERLANG_COOKIE",
        "DEPLOYEX_ADMIN_HASHED_PASSWORD",
    )
