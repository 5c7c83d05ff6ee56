"""Release versions and app names as they appear in bucket keys, and how versions sort.

A version becomes part of a bucket key (`dist/{app}/{app}-{version}.tar.gz`), a file name and a
folder name (`releases/{version}/`), so only characters that are safe in all three are allowed:
letters, digits and `. _ + -`, starting with a letter or digit. That covers SemVer (mix), rebar3
and Gleam versions. App names follow the YAML rule (an Erlang atom, no `-`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from deployex_actors.errors import ReleaseError

_VERSION_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]*")
_APP_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN_RE = re.compile(r"\d+|\D+")
MAX_VERSION_LENGTH = 128


def version_problem(version: str) -> str | None:
    """Why `version` cannot name a release, or None when it can."""
    if not version:
        return "is empty"
    if len(version) > MAX_VERSION_LENGTH:
        return f"is longer than {MAX_VERSION_LENGTH} characters"
    if not _VERSION_RE.fullmatch(version):
        return (
            f"{version!r} has characters a version cannot have "
            "(allowed: letters, digits and . _ + -, starting with a letter or digit)"
        )
    return None


def require_release_names(app: str, version: str | None = None) -> None:
    """Refuse an app name or version that would not make a safe bucket key or path."""
    if not _APP_RE.fullmatch(app):
        raise ReleaseError(
            f"app name {app!r} is not valid: use letters, digits and _ (no - or /), "
            "as in the YAML applications list"
        )
    problem = None if version is None else version_problem(version)
    if problem:
        raise ReleaseError(f"version {problem}")


def version_sort_key(version: str) -> tuple:
    """Natural SemVer-like order: 0.9.0 < 0.10.0, and 1.0.0-rc.1 < 1.0.0."""
    core, _, build = version.partition("+")
    release, dash, pre = core.partition("-")
    # A pre-release sorts before its release (SemVer); build metadata only breaks ties.
    return (_natural(release), 0 if dash else 1, _natural(pre), _natural(build), version)


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Versions in ascending natural order, oldest first."""
    return sorted(set(versions), key=version_sort_key)


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    # Numbers compare as numbers and sort before words, so tuples never compare int with str.
    return tuple(
        (0, int(token), "") if token.isdigit() else (1, 0, token)
        for token in _TOKEN_RE.findall(text)
    )
