"""current.json: the release descriptor a CI pipeline writes and every DeployEx host polls.

Owns its format, compatible with upstream DeployEx:

    {"version": "1.2.3", "hash": "...", "pre_commands": ["eval My.Migrator.migrate"]}

Parsing is pure and strict about the three keys it knows (clear messages that name the object)
and ignores any other key, so that tools adding fields of their own do not break a deployment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from deployex_actors.errors import CurrentJsonInvalid
from deployex_actors.releases.versions import version_problem


@dataclass(frozen=True)
class CurrentRelease:
    """A validated current.json: the version to run, its hash and the pre-commands to run first."""

    version: str
    hash: str | None = None
    pre_commands: tuple[str, ...] = ()


def parse_current_json(data: bytes, where: str) -> CurrentRelease:
    """Validate the bytes of a current.json; `where` names the object in error messages."""
    document = _decode(data, where)
    if not isinstance(document, dict):
        raise CurrentJsonInvalid(
            f'{where} must be a JSON object like {{"version": "1.2.3"}}, found {_kind(document)}'
        )
    return CurrentRelease(
        version=_version(document, where),
        hash=_hash(document, where),
        pre_commands=_pre_commands(document, where),
    )


def render_current_json(release: CurrentRelease) -> bytes:
    """The bytes of a current.json for `release`; `parse_current_json` reads them back equal."""
    document: dict[str, Any] = {"version": release.version}
    if release.hash is not None:
        document["hash"] = release.hash
    document["pre_commands"] = list(release.pre_commands)
    return (json.dumps(document, indent=2) + "\n").encode()


def _decode(data: bytes, where: str) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CurrentJsonInvalid(f"{where} is not UTF-8 text (byte {e.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise CurrentJsonInvalid(
            f"{where} is not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}"
        ) from None


def _version(document: dict[str, Any], where: str) -> str:
    if "version" not in document:
        raise CurrentJsonInvalid(f'{where} has no "version" key; it must name the version to run')
    version = document["version"]
    if not isinstance(version, str):
        raise CurrentJsonInvalid(
            f'{where}: "version" must be a string like "1.2.3", found {_kind(version)}'
        )
    problem = version_problem(version)
    if problem:
        raise CurrentJsonInvalid(f'{where}: "version" {problem}')
    return version


def _hash(document: dict[str, Any], where: str) -> str | None:
    value = document.get("hash")
    if value is not None and not isinstance(value, str):
        raise CurrentJsonInvalid(f'{where}: "hash" must be a string, found {_kind(value)}')
    return value


def _pre_commands(document: dict[str, Any], where: str) -> tuple[str, ...]:
    value = document.get("pre_commands")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CurrentJsonInvalid(
            f'{where}: "pre_commands" must be a list of strings, found {_kind(value)}'
        )
    for index, command in enumerate(value):
        if not isinstance(command, str):
            raise CurrentJsonInvalid(
                f'{where}: "pre_commands"[{index}] must be a string, found {_kind(command)}'
            )
        # An empty pre-command would run the bare start script, which never succeeds as one.
        if not command.strip():
            raise CurrentJsonInvalid(f'{where}: "pre_commands"[{index}] is empty')
    return tuple(value)


def _kind(value: Any) -> str:
    """How a JSON value reads in a message: `a list`, `number 1.2`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    return "a list" if isinstance(value, list) else "an object"
