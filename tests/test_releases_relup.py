"""Reading a release's hot-upgrade files from a tarball or an unpacked folder, safely.

The fast tests use small tarballs written here in the shapes of mix and rebar3 releases; the
slow ones (tests/test_hot_upgrade_fixtures.py) read the real fixture releases.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from deployex_actors.core.hot_upgrade import (
    GLEAM_SHIPMENT,
    NOT_A_RELEASE,
    OTP_RELEASE,
    Appup,
    FromVersion,
    JellyfishEntry,
    Relup,
    UpgradePath,
    decide,
)
from deployex_actors.errors import ReleaseError, TarballCorrupt, TarballMissing
from deployex_actors.releases import relup as relup_module
from deployex_actors.releases import safe_unpack
from deployex_actors.releases.relup import read_release
from tests.tarballs import (
    Entry,
    build_tarball,
    file,
    folder,
    gleam_shipment_entries,
    mix_release_entries,
    symlink,
)

APP = "myapp"


def rel(vsn: str, apps: dict[str, str], name: str = APP, erts: str = "14.2.5") -> bytes:
    listed = ",\n  ".join(f'{{{a},"{v}",permanent}}' for a, v in apps.items())
    head = f'{{release,{{"{name}","{vsn}"}},{{erts,"{erts}"}}'
    return f"%% coding: utf-8\n{head},\n [{listed}]}}.\n".encode()


def relup_text(to: str, frm: str, loads: dict[str, str]) -> bytes:
    script = ",".join(f'{{load_object_code,{{{a},"{v}",[{a}_server]}}}}' for a, v in loads.items())
    return (
        f'{{"{to}",\n [{{"{frm}",[],[{script},point_of_no_return]}}],\n'
        f' [{{"{frm}",[],[point_of_no_return]}}]}}.\n'
    ).encode()


def appup_text(vsn: str, *froms: str) -> bytes:
    ups = ",".join(f'{{"{f}",[{{update,{APP}_server,{{advanced,[]}}}}]}}' for f in froms)
    return f'{{"{vsn}",[{ups}],[]}}.\n'.encode()


def jellyfish(name: str, frm: str, to: str, kind: str = "project") -> bytes:
    return f'{{"name": "{name}", "type": "{kind}", "from": "{frm}", "to": "{to}"}}'.encode()


def upgradable(vsn: str = "0.2.0", frm: str = "0.1.0", *extra: Entry) -> list[Entry]:
    """A mix-shaped release of `vsn` with relup, appup and jellyfish.json from `frm`."""
    lib = f"lib/{APP}-{vsn}/ebin"
    return [
        *mix_release_entries(APP, vsn),
        file(f"releases/{vsn}/{APP}.rel", rel(vsn, {"kernel": "9.2", APP: vsn})),
        file(f"releases/{vsn}/relup", relup_text(vsn, frm, {APP: vsn})),
        file(f"{lib}/{APP}.appup", appup_text(vsn, frm)),
        file(f"{lib}/jellyfish.json", jellyfish(APP, frm, vsn)),
        *extra,
    ]


def tarball(tmp_path: Path, entries: list[Entry], name: str = "myapp-0.2.0.tar.gz") -> Path:
    return build_tarball(tmp_path / name, entries)


def test_a_mix_release_tarball_gives_its_relup_rel_appup_and_jellyfish(tmp_path: Path) -> None:
    contents = read_release(tarball(tmp_path, upgradable()), "0.2.0")
    assert (contents.kind, contents.version, contents.name, contents.erts) == (
        OTP_RELEASE,
        "0.2.0",
        APP,
        "14.2.5",
    )
    assert contents.applications == (("kernel", "9.2"), (APP, "0.2.0"))
    assert contents.relup == Relup(
        "0.2.0", (UpgradePath("0.1.0", ((APP, "0.2.0"),)),), "releases/0.2.0/relup"
    )
    where = "lib/myapp-0.2.0/ebin"
    assert contents.appups == (
        Appup(APP, "0.2.0", (FromVersion("0.1.0"),), f"{where}/myapp.appup"),
    )
    assert contents.jellyfish == (
        JellyfishEntry(APP, "project", "0.1.0", "0.2.0", f"{where}/jellyfish.json"),
    )
    assert contents.problems == ()
    assert decide("0.1.0", contents).hot


def test_the_unpacked_folder_reads_the_same_as_its_tarball(tmp_path: Path) -> None:
    source = tarball(tmp_path, upgradable())
    safe_unpack(source, tmp_path / "new")
    assert read_release(tmp_path / "new", "0.2.0") == read_release(source, "0.2.0")


def test_the_rebar3_appup_under_priv_is_read_too(tmp_path: Path) -> None:
    entries = [
        *mix_release_entries(APP, "0.2.0"),
        file("releases/0.2.0/myapp.rel", rel("0.2.0", {APP: "0.2.0"})),
        file("releases/0.2.0/relup", relup_text("0.2.0", "0.1.0", {APP: "0.2.0"})),
        file("lib/myapp-0.2.0/priv/appup/myapp.appup", appup_text("0.2.0", "0.1.0")),
    ]
    contents = read_release(tarball(tmp_path, entries), "0.2.0")
    assert [a.path for a in contents.appups] == ["lib/myapp-0.2.0/priv/appup/myapp.appup"]
    assert decide("0.1.0", contents).hot


def test_names_written_with_a_leading_dot_slash_are_the_same_files(tmp_path: Path) -> None:
    entries = [
        folder("./releases"),
        file("./releases/0.2.0/myapp.rel", rel("0.2.0", {APP: "0.2.0"})),
        file("./releases/0.2.0/relup", relup_text("0.2.0", "0.1.0", {APP: "0.2.0"})),
    ]
    contents = read_release(tarball(tmp_path, entries), "0.2.0")
    assert contents.relup is not None and contents.name == APP


def test_a_gleam_shipment_and_a_stray_tarball_are_told_apart(tmp_path: Path) -> None:
    gleam = tarball(tmp_path, gleam_shipment_entries("mygleam"), "g.tar.gz")
    assert read_release(gleam, "0.2.0").kind == GLEAM_SHIPMENT
    stray = tarball(tmp_path, [file("README", b"hi\n")], "s.tar.gz")
    assert read_release(stray, "0.2.0").kind == NOT_A_RELEASE
    safe_unpack(gleam, tmp_path / "g")
    assert read_release(tmp_path / "g", "0.2.0").kind == GLEAM_SHIPMENT


def test_the_rel_of_the_version_is_used_not_a_stale_one_of_another(tmp_path: Path) -> None:
    # mix's tar keeps every releases/*.rel left in the rel dir
    stale = file("releases/myapp-0.1.0.rel", rel("0.1.0", {APP: "0.1.0"}, erts="13.0"))
    contents = read_release(tarball(tmp_path, upgradable("0.2.0", "0.1.0", stale)), "0.2.0")
    assert (contents.erts, contents.app_versions()[APP]) == ("14.2.5", "0.2.0")
    # the same tarball read for 0.1.0 finds that release's .rel, and no relup for it
    old = read_release(tmp_path / "myapp-0.2.0.tar.gz", "0.1.0")
    assert (old.erts, old.app_versions()[APP], old.relup) == ("13.0", "0.1.0", None)


def test_a_release_unpacked_by_release_handler_is_known_by_its_releases_file(
    tmp_path: Path,
) -> None:
    # unpack_release deletes releases/VSN/APP.rel; what it holds is then in releases/RELEASES
    releases = (
        '[{release,"myapp","0.2.0","14.2.5",\n'
        '  [{kernel,"9.2","/srv/lib/kernel-9.2"},{myapp,"0.2.0","/srv/lib/myapp-0.2.0"}],\n'
        "  permanent}].\n"
    )
    entries = [*mix_release_entries(APP, "0.2.0"), file("releases/RELEASES", releases.encode())]
    contents = read_release(tarball(tmp_path, entries), "0.2.0")
    assert contents.applications == (("kernel", "9.2"), (APP, "0.2.0"))


# -- what is not read, and what cannot be ----------------------------------------------------


def test_a_symlink_out_of_the_unpacked_folder_is_never_followed(tmp_path: Path) -> None:
    secret = tmp_path / "outside.relup"
    secret.write_bytes(relup_text("0.2.0", "0.1.0", {APP: "0.2.0"}))
    root = tmp_path / "current"
    safe_unpack(tarball(tmp_path, upgradable()), root)
    relup = root / "releases" / "0.2.0" / "relup"
    relup.unlink()
    relup.symlink_to(secret)
    assert read_release(root, "0.2.0").relup is None


def test_a_symlink_entry_in_a_tarball_is_not_read_as_metadata(tmp_path: Path) -> None:
    entries = [
        *mix_release_entries(APP, "0.2.0"),
        file("releases/0.2.0/myapp.rel", rel("0.2.0", {APP: "0.2.0"})),
        symlink("releases/0.2.0/relup", "../../../../etc/passwd"),
    ]
    assert read_release(tarball(tmp_path, entries), "0.2.0").relup is None


def test_an_oversized_metadata_file_is_a_problem_not_a_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relup_module, "MAX_FILE_BYTES", 64)
    contents = read_release(tarball(tmp_path, upgradable()), "0.2.0")
    paths = {p.path for p in contents.problems}
    assert "releases/0.2.0/relup" in paths and contents.relup is None
    relup_problem = next(p for p in contents.problems if p.path == "releases/0.2.0/relup")
    assert relup_problem.app is None and "is larger than" in relup_problem.message


def test_metadata_beyond_the_total_cap_is_a_release_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relup_module, "MAX_TOTAL_BYTES", 200)
    contents = read_release(tarball(tmp_path, upgradable()), "0.2.0")
    assert any("MiB in all" in p.message and p.app is None for p in contents.problems)
    assert not decide("0.1.0", contents).hot


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "releases/0.2.0/relup",
            b'{"0.2.0", [{"0.1.0", [], [point_of_no_return]}\n',
            "releases/0.2.0/relup is not valid Erlang term text (line 2, column 1: the file "
            "ends where ']' was expected)",
        ),
        ("releases/0.2.0/relup", b"{relup}.", "releases/0.2.0/relup is not a relup ("),
        (
            "releases/0.2.0/relup",
            b'{"0.2.0", [oops], []}.',
            "releases/0.2.0/relup is not a relup ({Vsn, [{UpFrom, Descr, Instructions}], "
            "[{DownTo, ...}]}): its upgrade list is malformed",
        ),
        ("releases/0.2.0/relup", b'{"0.2.0",[],[]}.\nx.', "holds 2 terms, not 1"),
    ],
)
def test_an_unusable_relup_is_a_release_problem_that_names_it(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    entries = [
        *mix_release_entries(APP, "0.2.0"),
        file(name, data),
        file("releases/0.2.0/myapp.rel", rel("0.2.0", {APP: "0.2.0"})),
    ]
    contents = read_release(tarball(tmp_path, entries), "0.2.0")
    [problem] = contents.problems
    assert (problem.path, problem.app) == (name, None)
    assert message in problem.message
    assert decide("0.1.0", contents).reason == f"{problem.message}: full deployment"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "lib/myapp-0.2.0/ebin/myapp.appup",
            b'{"0.2.0", [{0.1, []}], []}.',
            "lib/myapp-0.2.0/ebin/myapp.appup: 0.1 is not a version to upgrade from",
        ),
        ("lib/myapp-0.2.0/ebin/myapp.appup", b"{a, b}.", "is not an appup ("),
        ("lib/myapp-0.2.0/ebin/jellyfish.json", b"{not json", "is not valid JSON ("),
        ("lib/myapp-0.2.0/ebin/jellyfish.json", b"[1]", "is not a JSON object"),
        (
            "lib/myapp-0.2.0/ebin/jellyfish.json",
            jellyfish(APP, "0.1.0", "0.2.0", kind="library"),
            "type 'library' is not one of project, dependency",
        ),
        (
            "lib/myapp-0.2.0/ebin/jellyfish.json",
            b'{"name": "myapp", "to": "0.2.0"}',
            'needs "name", "from" and "to" as strings',
        ),
    ],
)
def test_an_unusable_appup_or_jellyfish_is_a_problem_of_its_app(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    entries = [
        *mix_release_entries(APP, "0.2.0"),
        file(name, data),
        file("releases/0.2.0/myapp.rel", rel("0.2.0", {APP: "0.2.0"})),
        file("releases/0.2.0/relup", relup_text("0.2.0", "0.1.0", {APP: "0.2.0"})),
    ]
    contents = read_release(tarball(tmp_path, entries), "0.2.0")
    [problem] = contents.problems
    assert (problem.path, problem.app) == (name, APP)
    assert message in problem.message
    # the app changes (the relup loads it), so its broken file is the reason
    assert decide("0.1.0", contents).reason == f"{problem.message}: full deployment"


def test_an_unreadable_stale_rel_is_ignored_when_the_versions_own_is_fine(
    tmp_path: Path,
) -> None:
    broken = file("releases/myapp-0.1.0.rel", b"{release, oops")
    contents = read_release(tarball(tmp_path, upgradable("0.2.0", "0.1.0", broken)), "0.2.0")
    assert contents.problems == () and contents.name == APP
    alone = [*mix_release_entries(APP, "0.2.0"), broken]
    [problem] = read_release(tarball(tmp_path, alone, "b.tar.gz"), "0.2.0").problems
    assert problem.path == "releases/myapp-0.1.0.rel" and "not valid Erlang term" in problem.message


def test_a_version_that_could_not_be_a_folder_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match=r"cannot read release version '\.\./0\.2\.0'"):
        read_release(tarball(tmp_path, upgradable()), "../0.2.0")


def test_a_missing_release_folder_is_named_as_one(tmp_path: Path) -> None:
    gone = tmp_path / "service" / "myapp" / "myapp-abc123" / "current"
    with pytest.raises(ReleaseError, match=f"no release folder or tarball at {gone}$"):
        read_release(gone, "0.1.0")


def test_a_missing_or_damaged_tarball_is_reported_as_everywhere_else(tmp_path: Path) -> None:
    with pytest.raises(TarballMissing):
        read_release(tmp_path / "nope.tar.gz", "0.2.0")
    whole = tarball(tmp_path, upgradable()).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(TarballCorrupt):
        read_release(cut, "0.2.0")
    not_gzip = tmp_path / "plain.tar.gz"
    not_gzip.write_bytes(gzip.decompress(whole)[:100])
    with pytest.raises(TarballCorrupt):
        read_release(not_gzip, "0.2.0")
