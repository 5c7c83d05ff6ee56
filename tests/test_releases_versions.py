"""The order in which versions are offered to an operator, and which names a bucket key allows."""

from __future__ import annotations

import pytest

from deployex_actors.errors import ReleaseError
from deployex_actors.releases import sort_versions
from deployex_actors.releases.versions import require_release_names


def test_versions_sort_naturally_not_alphabetically() -> None:
    assert sort_versions(["0.10.0", "0.9.0", "0.2.0", "1.0.0", "0.10.1"]) == [
        "0.2.0",
        "0.9.0",
        "0.10.0",
        "0.10.1",
        "1.0.0",
    ]


def test_pre_release_sorts_before_its_release() -> None:
    assert sort_versions(["1.0.0", "1.0.0-rc.2", "1.0.0-rc.10", "0.9.9"]) == [
        "0.9.9",
        "1.0.0-rc.2",
        "1.0.0-rc.10",
        "1.0.0",
    ]


def test_duplicates_are_listed_once() -> None:
    assert sort_versions(["1.0.0", "1.0.0"]) == ["1.0.0"]


@pytest.mark.parametrize(
    ("app", "version", "says"),
    [
        ("my-app", "1.0.0", "app name 'my-app' is not valid"),
        ("../x", "1.0.0", "app name '../x' is not valid"),
        ("myapp", "../../1.0.0", "characters a version cannot have"),
        ("myapp", "", "version is empty"),
    ],
)
def test_names_that_would_not_make_safe_bucket_keys_are_refused(
    app: str, version: str, says: str
) -> None:
    with pytest.raises(ReleaseError, match=says.replace(".", r"\.")):
        require_release_names(app, version)
