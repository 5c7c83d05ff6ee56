"""Unpacking release tarballs: real layouts come out whole, hostile ones write nothing at all."""

from __future__ import annotations

import gzip
import os
import stat
from pathlib import Path

import pytest

from deployex_actors.errors import ReleaseError, TarballCorrupt, TarballMissing, UnpackRefused
from deployex_actors.releases import safe_unpack
from tests.tarballs import (
    Entry,
    block_device,
    build_release,
    build_tarball,
    char_device,
    fifo,
    file,
    folder,
    gleam_shipment_entries,
    hardlink,
    symlink,
)


@pytest.fixture
def service(tmp_path: Path) -> Path:
    """A replica's service folder, where `new/` is unpacked; the tarball lives elsewhere."""
    folder = tmp_path / "service" / "myapp" / "myapp-abc123"
    folder.mkdir(parents=True)
    return folder


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def hostile(tmp_path: Path, *entries: Entry) -> Path:
    # A harmless file first: a refusal must come before anything at all is written.
    return build_tarball(tmp_path / "hostile.tar.gz", [file("README", b"hello\n"), *entries])


def assert_refused(tarball: Path, service: Path, entry: str, why: str) -> None:
    before = names(service.parent)
    target = service / "new"
    with pytest.raises(UnpackRefused) as caught:
        safe_unpack(tarball, target)
    message = str(caught.value)
    assert repr(entry) in message, message
    assert why in message, message
    assert not target.exists() and not target.is_symlink()
    assert names(service) == [], "nothing written, not even a staging folder"
    assert names(service.parent) == before, "nothing written beside the target"


def test_mix_release_unpacks_with_executables_and_internal_links(
    tmp_path: Path, service: Path
) -> None:
    tarball = build_release(tmp_path / "myapp-1.0.0.tar.gz", "myapp", "1.0.0")
    target = service / "new"
    safe_unpack(tarball, target)
    start = target / "bin" / "myapp"
    assert start.read_bytes().startswith(b"#!/bin/sh")
    assert stat.S_IMODE(start.stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "releases/1.0.0/vm.args").stat().st_mode) == 0o644
    beam = target / "bin" / "beam"
    assert beam.is_symlink() and beam.readlink() == Path("../erts-14.2.5/bin/beam.smp")
    assert beam.resolve() == (target / "erts-14.2.5/bin/beam.smp").resolve()
    assert names(service) == ["new"], "no staging folder left behind"


def test_gleam_shipment_unpacks_under_its_top_folder(tmp_path: Path, service: Path) -> None:
    tarball = build_tarball(tmp_path / "myapp-0.1.0.tar.gz", gleam_shipment_entries("myapp"))
    safe_unpack(tarball, service / "new")
    entrypoint = service / "new" / "erlang-shipment" / "entrypoint.sh"
    assert os.access(entrypoint, os.X_OK)
    assert (service / "new/erlang-shipment/myapp/ebin/myapp@@main.beam").is_file()


def test_tarball_with_dot_slash_names_unpacks(tmp_path: Path, service: Path) -> None:
    tarball = build_tarball(
        tmp_path / "t.tar.gz", [folder("."), folder("./bin"), file("./bin/app", b"x", 0o755)]
    )
    safe_unpack(tarball, service / "new")
    assert (service / "new/bin/app").read_bytes() == b"x"


def test_parent_directory_entry_is_refused(tmp_path: Path, service: Path) -> None:
    tarball = hostile(tmp_path, file("../../evil.sh", b"rm -rf /\n"))
    assert_refused(tarball, service, "../../evil.sh", "leads outside the target folder")
    assert not (service.parent.parent / "evil.sh").exists()


def test_dot_dot_hidden_inside_a_path_is_refused(tmp_path: Path, service: Path) -> None:
    tarball = hostile(tmp_path, file("bin/../../evil.sh"))
    assert_refused(tarball, service, "bin/../../evil.sh", "leads outside the target folder")


def test_absolute_path_is_refused(tmp_path: Path, service: Path) -> None:
    victim = tmp_path / "victim.txt"
    tarball = hostile(tmp_path, file(str(victim), b"overwritten\n"))
    assert_refused(tarball, service, str(victim), "absolute path")
    assert not victim.exists()


def test_symlink_to_an_absolute_path_is_refused(tmp_path: Path, service: Path) -> None:
    tarball = hostile(tmp_path, symlink("bin/sh", "/bin/sh"))
    assert_refused(tarball, service, "bin/sh", "symlink to an absolute path ('/bin/sh')")


def test_relative_symlink_escaping_the_target_is_refused(tmp_path: Path, service: Path) -> None:
    tarball = hostile(tmp_path, folder("lib"), symlink("lib/up", "../../.."))
    assert_refused(tarball, service, "lib/up", "symlink that leads outside the target folder")


def test_writing_through_a_symlink_is_refused(tmp_path: Path, service: Path) -> None:
    # The link itself stays inside; the file behind it would land wherever it points later.
    tarball = hostile(tmp_path, symlink("here", "."), file("here/x"))
    assert_refused(tarball, service, "here/x", "written through a symlink")


def test_symlink_chain_that_escapes_through_another_symlink_is_refused(
    tmp_path: Path, service: Path
) -> None:
    # "loop/.." looks like "." on paper, but loop -> "." makes it the target's parent.
    tarball = hostile(tmp_path, symlink("sneaky", "loop/.."), symlink("loop", "."))
    assert_refused(tarball, service, "sneaky", "passes through another symlink")


def test_hard_link_to_outside_is_refused(tmp_path: Path, service: Path) -> None:
    tarball = hostile(tmp_path, hardlink("passwd", "../../../etc/passwd"))
    assert_refused(tarball, service, "passwd", "hard link that leads outside the target folder")


def test_hard_link_to_an_absolute_path_is_refused(tmp_path: Path, service: Path) -> None:
    tarball = hostile(tmp_path, hardlink("passwd", "/etc/passwd"))
    assert_refused(tarball, service, "passwd", "hard link to an absolute path")


def test_hard_link_to_a_name_not_in_the_archive_is_refused(tmp_path: Path, service: Path) -> None:
    tarball = hostile(tmp_path, hardlink("copy", "bin/not-there"))
    assert_refused(tarball, service, "copy", "not an earlier file of the archive")


def test_hard_link_to_an_earlier_file_is_kept(tmp_path: Path, service: Path) -> None:
    tarball = build_tarball(
        tmp_path / "t.tar.gz", [file("bin/app", b"x", 0o755), hardlink("bin/app2", "bin/app")]
    )
    safe_unpack(tarball, service / "new")
    assert (service / "new/bin/app2").samefile(service / "new/bin/app")


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        (char_device("dev/null"), "a character device"),
        (block_device("dev/sda"), "a block device"),
        (fifo("run/pipe"), "a fifo"),
    ],
)
def test_device_and_fifo_entries_are_refused(
    tmp_path: Path, service: Path, entry: Entry, kind: str
) -> None:
    tarball = hostile(tmp_path, entry)
    name = {"a character device": "dev/null", "a block device": "dev/sda"}.get(kind, "run/pipe")
    assert_refused(tarball, service, name, f"it is {kind}")


def test_refusal_names_the_tarball(tmp_path: Path, service: Path) -> None:
    tarball = hostile(tmp_path, file("../x"))
    with pytest.raises(UnpackRefused, match=r"^hostile\.tar\.gz: refused entry '\.\./x'"):
        safe_unpack(tarball, service / "new")


def test_existing_target_is_never_unpacked_into(tmp_path: Path, service: Path) -> None:
    tarball = build_release(tmp_path / "myapp-1.0.0.tar.gz", "myapp", "1.0.0")
    (service / "new").mkdir()
    (service / "new" / "keep").write_text("old")
    with pytest.raises(UnpackRefused, match="already exists"):
        safe_unpack(tarball, service / "new")
    assert names(service / "new") == ["keep"]


def test_truncated_tarball_is_corrupt_and_leaves_no_target(tmp_path: Path, service: Path) -> None:
    whole = build_tarball(
        tmp_path / "whole.tar.gz",
        [file("bin/app", os.urandom(256 * 1024), 0o755), file("lib/a.beam", os.urandom(4096))],
    )
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(TarballCorrupt, match=r"cut\.tar\.gz"):
        safe_unpack(cut, service / "new")
    assert names(service) == [], "the partly unpacked staging folder is removed"


def test_failure_halfway_through_removes_the_partly_unpacked_folder(
    tmp_path: Path, service: Path
) -> None:
    # Passes every check, but "bin" is a file, so writing "bin/app" fails after "bin" is out.
    tarball = build_tarball(
        tmp_path / "broken.tar.gz", [file("README"), file("bin"), file("bin/app", b"x", 0o755)]
    )
    with pytest.raises(
        ReleaseError,
        match=r"cannot unpack broken\.tar\.gz into .*/new: Not a directory \(at bin/app\)",
    ):
        safe_unpack(tarball, service / "new")
    assert names(service) == [], "neither new/ nor its staging folder is left"


def test_file_that_is_not_gzip_is_corrupt(tmp_path: Path, service: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"<Error><Code>AccessDenied</Code></Error>")
    with pytest.raises(TarballCorrupt, match=r"junk\.tar\.gz is not a readable gzip tar"):
        safe_unpack(junk, service / "new")
    assert names(service) == []


def test_gzip_that_is_not_a_tar_is_corrupt(tmp_path: Path, service: Path) -> None:
    plain = tmp_path / "plain.tar.gz"
    plain.write_bytes(gzip.compress(b"just some text, no tar headers at all" * 20))
    with pytest.raises(TarballCorrupt):
        safe_unpack(plain, service / "new")
    assert names(service) == []


def test_missing_tarball_is_reported_as_missing(tmp_path: Path, service: Path) -> None:
    with pytest.raises(TarballMissing, match="no tarball at"):
        safe_unpack(tmp_path / "nope.tar.gz", service / "new")
    assert names(service) == []
