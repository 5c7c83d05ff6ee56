"""Hot-upgrade detection on the real fixture releases (rebar3, mix, Gleam shipment).

The new version is read from its tarball, as the Fetcher has it after the download; the running
version from its unpacked folder, as a replica's `current/` holds it. The umbrella and
dependency cases are the real Elixir and Erlang tarballs rewritten with extra applications, since
the fixture build makes single-application releases only.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from pathlib import Path

import pytest

from deployex_actors.core.hot_upgrade import AppChange, decide
from deployex_actors.releases import safe_unpack
from deployex_actors.releases.relup import read_release
from tests.beam_fixtures import CRASHING, UPGRADE, ReleaseDist

pytestmark = pytest.mark.slow

FROM, TO = UPGRADE
HOT_APPS = ["myerlangapp", "myelixirapp"]


def unpacked(dist: ReleaseDist, app: str, vsn: str, where: Path) -> Path:
    """The release as a replica runs it: unpacked by DeployEx into its service folder."""
    target = where / "service" / app / f"{app}-abc123" / "current"
    safe_unpack(dist.tarball(app, vsn), target)
    return target


def add_apps(rel_text: bytes, apps: Mapping[str, str]) -> bytes:
    """A .rel with more applications, appended to its list."""
    text = rel_text.decode()
    cut = text.rindex("]}")
    extra = "".join(f',\n          {{{a},"{v}",permanent}}' for a, v in apps.items())
    return (text[:cut] + extra + text[cut:]).encode()


def rewritten(
    source: Path,
    dest: Path,
    changed: Mapping[str, bytes] | None = None,
    added: Mapping[str, bytes] | None = None,
) -> Path:
    """A copy of a release tarball with some files' contents changed and some files added."""
    changed, added = dict(changed or {}), dict(added or {})
    with tarfile.open(source) as old, tarfile.open(dest, "w:gz", compresslevel=1) as new:
        for member in old:
            if member.name in changed:
                data = changed.pop(member.name)
                member.size = len(data)
                new.addfile(member, io.BytesIO(data))
            elif member.isfile():
                new.addfile(member, old.extractfile(member))
            else:
                new.addfile(member)
        for name, data in added.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            new.addfile(info, io.BytesIO(data))
    assert not changed, f"not in {source.name}: {sorted(changed)}"
    return dest


def member(tarball: Path, name: str) -> bytes:
    with tarfile.open(tarball) as tar:
        f = tar.extractfile(name)
        assert f is not None
        return f.read()


@pytest.mark.parametrize("app", HOT_APPS)
def test_the_upgradable_fixture_is_hot_from_the_running_version(
    release_dist: ReleaseDist, tmp_path: Path, app: str
) -> None:
    new = read_release(release_dist.tarball(app, TO), TO)
    running = read_release(unpacked(release_dist, app, FROM, tmp_path), FROM)
    decision = decide(FROM, new, enabled=True, running=running)
    assert decision.hot, decision.reason
    assert decision.changes == (AppChange(app, FROM, TO),)
    assert decision.reason == f"hot upgrade {FROM} -> {TO}: {app} {FROM} -> {TO}"
    # without the running release, the relup and Jellyfish say the same
    assert decide(FROM, new).hot


def test_the_erlang_appup_is_found_where_rebar3_tarballs_keep_it(
    release_dist: ReleaseDist,
) -> None:
    new = read_release(release_dist.tarball("myerlangapp", TO), TO)
    assert [a.path for a in new.appups] == ["lib/myerlangapp-0.2.0/priv/appup/myerlangapp.appup"]
    assert new.jellyfish == ()


def test_the_elixir_release_carries_jellyfish_metadata_that_agrees(
    release_dist: ReleaseDist,
) -> None:
    new = read_release(release_dist.tarball("myelixirapp", TO), TO)
    [entry] = new.jellyfish
    assert (entry.app, entry.type, entry.from_version, entry.to_version) == (
        "myelixirapp",
        "project",
        FROM,
        TO,
    )


@pytest.mark.parametrize("app", HOT_APPS)
def test_an_unpacked_new_release_reads_the_same_as_its_tarball(
    release_dist: ReleaseDist, tmp_path: Path, app: str
) -> None:
    tarball = release_dist.tarball(app, TO)
    safe_unpack(tarball, tmp_path / "new")
    assert read_release(tmp_path / "new", TO) == read_release(tarball, TO)


def test_a_gleam_shipment_is_a_full_deployment_with_its_reason(
    release_dist: ReleaseDist,
) -> None:
    new = read_release(release_dist.tarball("mygleamapp", TO), TO)
    assert decide(FROM, new).reason == (
        "gleam shipment (erlang-shipment/ has no OTP release to upgrade): full deployment"
    )


@pytest.mark.parametrize("app", HOT_APPS)
def test_a_version_without_a_relup_from_the_running_one_is_a_full_deployment(
    release_dist: ReleaseDist, tmp_path: Path, app: str
) -> None:
    crashing = read_release(release_dist.tarball(app, CRASHING), CRASHING)
    running = read_release(unpacked(release_dist, app, TO, tmp_path), TO)
    assert decide(TO, crashing, running=running).reason == (
        f"no relup from {TO} in {CRASHING} (releases/{CRASHING}/relup is missing): full deployment"
    )
    # back from the crashing version to the upgradable one: its relup is from 0.1.0 only
    upgradable = read_release(release_dist.tarball(app, TO), TO)
    assert decide(CRASHING, upgradable).reason == (
        f"no relup from {CRASHING} in {TO} (it upgrades from {FROM}): full deployment"
    )


@pytest.mark.parametrize("app", HOT_APPS)
def test_hot_upgrade_false_makes_the_upgradable_fixture_a_full_deployment(
    release_dist: ReleaseDist, app: str
) -> None:
    new = read_release(release_dist.tarball(app, TO), TO)
    decision = decide(FROM, new, enabled=False)
    assert not decision.hot
    assert decision.reason == "hot_upgrade: false in the configuration: full deployment"


# -- umbrella and dependency upgrades, on rewritten real tarballs -----------------------------

ELIXIR = "myelixirapp"
EX_REL = f"releases/{TO}/{ELIXIR}.rel"


def app_files(
    app: str, vsn: str, appup_from: str | None, jelly: tuple[str, str] | None
) -> dict[str, bytes]:
    """The ebin files of one more application: .app, and maybe appup and jellyfish.json."""
    ebin = f"lib/{app}-{vsn}/ebin"
    files = {f"{ebin}/{app}.app": f'{{application,{app},[{{vsn,"{vsn}"}}]}}.\n'.encode()}
    if appup_from is not None:
        files[f"{ebin}/{app}.appup"] = f'{{"{vsn}",[{{{appup_from},[]}}],[]}}.\n'.encode()
    if jelly is not None:
        kind, old = jelly
        files[f"{ebin}/jellyfish.json"] = (
            f'{{"name": "{app}", "type": "{kind}", "from": "{old}", "to": "{vsn}"}}'.encode()
        )
    return files


@pytest.fixture
def umbrella_running(release_dist: ReleaseDist, tmp_path: Path) -> Path:
    """The running 0.1.0 umbrella: myelixirapp 0.1.0, myweb 0.1.0 and dependency mydep 1.0.0."""
    current = unpacked(release_dist, ELIXIR, FROM, tmp_path)
    rel = current / "releases" / FROM / f"{ELIXIR}.rel"
    rel.write_bytes(add_apps(rel.read_bytes(), {"myweb": FROM, "mydep": "1.0.0"}))
    return current


def umbrella_tarball(
    dist: ReleaseDist,
    dest: Path,
    myweb_appup: bool = True,
    mydep_from: str = '<<"1\\\\.0\\\\..*">>',
) -> Path:
    """The 0.2.0 umbrella: myweb 0.2.0 and mydep 1.1.0 added beside the real myelixirapp 0.2.0."""
    source = dist.tarball(ELIXIR, TO)
    new_rel = add_apps(member(source, EX_REL), {"myweb": TO, "mydep": "1.1.0"})
    added = {
        **app_files("myweb", TO, f'"{FROM}"' if myweb_appup else None, ("project", FROM)),
        **app_files("mydep", "1.1.0", mydep_from, ("dependency", "1.0.0")),
    }
    return rewritten(source, dest, changed={EX_REL: new_rel}, added=added)


def test_an_umbrella_with_a_dependency_upgrade_is_hot_when_every_app_has_its_appup(
    release_dist: ReleaseDist, tmp_path: Path, umbrella_running: Path
) -> None:
    tarball = umbrella_tarball(release_dist, tmp_path / "umbrella.tar.gz")
    new = read_release(tarball, TO)
    decision = decide(FROM, new, running=read_release(umbrella_running, FROM))
    assert decision.hot, decision.reason
    assert decision.changes == (
        AppChange(ELIXIR, FROM, TO),
        AppChange("myweb", FROM, TO),
        AppChange("mydep", "1.0.0", "1.1.0"),
    )
    assert {e.app: e.type for e in new.jellyfish} == {
        ELIXIR: "project",
        "myweb": "project",
        "mydep": "dependency",
    }


def test_an_umbrella_app_without_its_appup_makes_it_a_full_deployment(
    release_dist: ReleaseDist, tmp_path: Path, umbrella_running: Path
) -> None:
    tarball = umbrella_tarball(release_dist, tmp_path / "u.tar.gz", myweb_appup=False)
    running = read_release(umbrella_running, FROM)
    assert decide(FROM, read_release(tarball, TO), running=running).reason == (
        f"myweb changes {FROM} -> {TO} but has no appup: full deployment"
    )


def test_a_dependency_appup_that_does_not_upgrade_from_the_running_version(
    release_dist: ReleaseDist, tmp_path: Path, umbrella_running: Path
) -> None:
    tarball = umbrella_tarball(release_dist, tmp_path / "u.tar.gz", mydep_from='"0.9.0"')
    running = read_release(umbrella_running, FROM)
    assert decide(FROM, read_release(tarball, TO), running=running).reason == (
        "the appup of mydep 1.1.0 has no upgrade from 1.0.0 (it upgrades from 0.9.0): "
        "full deployment"
    )


def test_an_erlang_dependency_upgrade_needs_its_appup_too(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    app = "myerlangapp"
    current = unpacked(release_dist, app, FROM, tmp_path)
    rel = current / "releases" / FROM / f"{app}.rel"
    rel.write_bytes(add_apps(rel.read_bytes(), {"mydep": "1.0.0"}))
    running = read_release(current, FROM)
    source, rel_name = release_dist.tarball(app, TO), f"releases/{TO}/{app}.rel"
    new_rel = add_apps(member(source, rel_name), {"mydep": "1.1.0"})
    without = rewritten(
        source,
        tmp_path / "without.tar.gz",
        changed={rel_name: new_rel},
        added=app_files("mydep", "1.1.0", None, None),
    )
    assert decide(FROM, read_release(without, TO), running=running).reason == (
        "mydep changes 1.0.0 -> 1.1.0 but has no appup: full deployment"
    )
    # rebar3_appup_plugin's place for it: priv/appup/
    with_appup = rewritten(
        source,
        tmp_path / "with.tar.gz",
        changed={rel_name: new_rel},
        added={
            **app_files("mydep", "1.1.0", None, None),
            "lib/mydep-1.1.0/priv/appup/mydep.appup": b'{"1.1.0",[{"1.0.0",[]}],[]}.\n',
        },
    )
    decision = decide(FROM, read_release(with_appup, TO), running=running)
    assert decision.hot, decision.reason
    assert AppChange("mydep", "1.0.0", "1.1.0") in decision.changes
