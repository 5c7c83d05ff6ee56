"""current.json as a CI pipeline writes it and a host reads it: every way it can be wrong."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployex_actors.errors import CurrentJsonInvalid
from deployex_actors.releases import CurrentRelease, parse_current_json, render_current_json

WHERE = "s3://bucket/versions/myapp/prod/current.json"


def refused(data: bytes) -> str:
    with pytest.raises(CurrentJsonInvalid) as caught:
        parse_current_json(data, WHERE)
    message = str(caught.value)
    assert WHERE in message, "the message must name the object"
    return message


def test_full_descriptor_is_read_with_hash_and_pre_commands_in_order() -> None:
    data = b"""{"version": "1.2.3", "hash": "abc123",
                "pre_commands": ["eval My.Migrator.migrate", "eval My.Seeds.run"]}"""
    assert parse_current_json(data, WHERE) == CurrentRelease(
        version="1.2.3",
        hash="abc123",
        pre_commands=("eval My.Migrator.migrate", "eval My.Seeds.run"),
    )


def test_only_version_is_required() -> None:
    assert parse_current_json(b'{"version": "0.1.0"}', WHERE) == CurrentRelease("0.1.0")


def test_null_hash_and_null_pre_commands_mean_none() -> None:
    data = b'{"version": "0.1.0", "hash": null, "pre_commands": null}'
    assert parse_current_json(data, WHERE) == CurrentRelease("0.1.0", None, ())


def test_unknown_keys_from_other_tools_are_ignored() -> None:
    data = b'{"version": "2.0.0", "published_by": "ci", "commit": "deadbeef"}'
    assert parse_current_json(data, WHERE).version == "2.0.0"


def test_semver_with_pre_release_and_build_is_a_version() -> None:
    data = b'{"version": "1.0.0-rc.1+build.7"}'
    assert parse_current_json(data, WHERE).version == "1.0.0-rc.1+build.7"


def test_not_json_names_line_and_column() -> None:
    message = refused(b'{"version": "1.2.3",\n "hash": }')
    assert "not valid JSON at line 2, column 10" in message


def test_empty_file_is_not_json() -> None:
    assert "not valid JSON at line 1, column 1" in refused(b"")


def test_not_utf8_is_refused() -> None:
    assert "not UTF-8" in refused(b'{"version": "\xff"}')


@pytest.mark.parametrize(
    ("data", "found"),
    [(b'["1.2.3"]', "found a list"), (b'"1.2.3"', "found string '1.2.3'"), (b"null", "null")],
)
def test_not_an_object_is_refused(data: bytes, found: str) -> None:
    message = refused(data)
    assert "must be a JSON object" in message
    assert found in message


def test_missing_version_is_refused() -> None:
    assert 'has no "version"' in refused(b'{"hash": "abc"}')


def test_empty_version_is_refused() -> None:
    assert '"version" is empty' in refused(b'{"version": ""}')


@pytest.mark.parametrize(
    ("value", "found"), [(b"1.2", "number 1.2"), (b"true", "boolean true"), (b"[1]", "a list")]
)
def test_non_string_version_is_refused(value: bytes, found: str) -> None:
    message = refused(b'{"version": ' + value + b"}")
    assert '"version" must be a string' in message
    assert found in message


@pytest.mark.parametrize("version", ["../../etc/passwd", "1.0 beta", "/1.0", ".hidden"])
def test_version_that_cannot_be_a_file_name_is_refused(version: str) -> None:
    message = refused(b'{"version": "' + version.encode() + b'"}')
    assert "characters a version cannot have" in message


def test_hash_that_is_not_a_string_is_refused() -> None:
    message = refused(b'{"version": "1.0.0", "hash": 42}')
    assert '"hash" must be a string, found number 42' in message


def test_pre_commands_that_are_not_a_list_are_refused() -> None:
    message = refused(b'{"version": "1.0.0", "pre_commands": "eval My.Migrator.migrate"}')
    assert '"pre_commands" must be a list of strings' in message


def test_pre_command_that_is_not_a_string_is_refused_by_position() -> None:
    message = refused(b'{"version": "1.0.0", "pre_commands": ["eval A.b", 7]}')
    assert '"pre_commands"[1] must be a string, found number 7' in message


def test_blank_pre_command_is_refused() -> None:
    assert '"pre_commands"[0] is empty' in refused(b'{"version": "1.0.0", "pre_commands": [" "]}')


def test_rendered_descriptor_is_upstream_shaped() -> None:
    text = render_current_json(CurrentRelease("1.2.3", "abc", ("eval A.b",))).decode()
    assert text.endswith("\n")
    assert '"version": "1.2.3"' in text
    assert '"hash": "abc"' in text
    assert '"pre_commands": [\n    "eval A.b"\n  ]' in text


_versions = st.from_regex(r"[0-9A-Za-z][0-9A-Za-z._+-]{0,20}", fullmatch=True)
_commands = st.text(min_size=1, max_size=30).filter(str.strip)


@given(_versions, st.none() | st.text(max_size=64), st.lists(_commands, max_size=4))
def test_what_is_rendered_reads_back_equal(
    version: str, hash: str | None, commands: list[str]
) -> None:
    release = CurrentRelease(version, hash, tuple(commands))
    assert parse_current_json(render_current_json(release), WHERE) == release
