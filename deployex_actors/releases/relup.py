"""What a release carries for a hot upgrade, read from its tarball or from its unpacked folder.

`read_release(source, version)` returns a `core.hot_upgrade.ReleaseContents` for `version`:

    releases/{version}/relup                 the upgrade paths (rebar3 relup, systools:make_relup)
    releases/{version}/*.rel, releases/*.rel the release name, ERTS and application versions
    releases/RELEASES                        the same, for a release release_handler unpacked
    lib/{app}-{vsn}/ebin/{app}.appup         an application's upgrade instructions (mix keeps it)
    lib/{app}-{vsn}/priv/appup/{app}.appup   the same where rebar3 tarballs keep it
    lib/{app}-{vsn}/ebin/jellyfish.json      Jellyfish's {"name", "type", "from", "to"} (Elixir)

and whether it is an OTP release at all (`releases/`) or a Gleam `erlang-shipment/`.

Reading never writes anything and never follows a path out of the release: from a tarball, only
regular file entries are read, straight from the archive; from a folder, only regular files whose
real path stays inside it. Each file is read up to MAX_FILE_BYTES and all of them up to
MAX_TOTAL_BYTES. A metadata file that is there but cannot be used (too large, not valid term
text, not the expected shape) does not fail the reading: it becomes a `MetadataProblem`, whose
message names the file, so the decision can say why it is a full deployment. A tarball that
cannot be read at all is TarballMissing / TarballCorrupt, as everywhere else.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployex_actors.beam.consult import consult
from deployex_actors.beam.terms import Atom
from deployex_actors.core.hot_upgrade import (
    GLEAM_SHIPMENT,
    NOT_A_RELEASE,
    OTP_RELEASE,
    Appup,
    FromVersion,
    JellyfishEntry,
    MetadataProblem,
    ReleaseContents,
    Relup,
    UpgradePath,
)
from deployex_actors.errors import ReleaseError, ReleaseMetadataInvalid, TermSyntaxError
from deployex_actors.releases.tarball import reading_tarball
from deployex_actors.releases.versions import version_problem

MAX_FILE_BYTES = 4 << 20
MAX_TOTAL_BYTES = 32 << 20
_EMULATOR_RESTARTS = {"restart_new_emulator", "restart_emulator"}
_JELLYFISH_TYPES = ("project", "dependency")


@dataclass
class _Files:
    """The metadata files found, as (release-relative path -> bytes), and what could not be read."""

    kind: str = NOT_A_RELEASE
    data: dict[str, bytes] = field(default_factory=dict)
    problems: list[MetadataProblem] = field(default_factory=list)
    total: int = 0

    def add(self, name: str, size: int, read: Callable[[], bytes]) -> None:
        if size > MAX_FILE_BYTES:
            self.problems.append(
                _problem(name, f"{name} is larger than {MAX_FILE_BYTES >> 20} MiB")
            )
        elif self.total + size > MAX_TOTAL_BYTES:
            self.problems.append(
                MetadataProblem(name, f"hot-upgrade files over {MAX_TOTAL_BYTES >> 20} MiB in all")
            )
        else:
            self.total += size
            self.data[name] = read()[:MAX_FILE_BYTES]


def read_release(source: Path, version: str) -> ReleaseContents:
    """The hot-upgrade facts of `version` in a release tarball (`.tar.gz`) or unpacked folder."""
    problem = version_problem(version)
    if problem:
        raise ReleaseError(f"cannot read release version {version!r}: it {problem}")
    wanted = _wanted_names(version)
    source = Path(source)
    if source.is_dir():
        return _contents(version, _from_folder(source, wanted))
    if source.exists() or source.name.endswith(".gz"):
        return _contents(version, _from_tarball(source, wanted))  # TarballMissing when gone
    raise ReleaseError(f"no release folder or tarball at {source}")


def _wanted_names(version: str) -> re.Pattern[str]:
    v = re.escape(version)
    return re.compile(
        rf"releases/{v}/relup|releases/(?:{v}/)?[^/]+\.rel|releases/RELEASES"
        r"|lib/[^/]+/(?:ebin|priv/appup)/[^/]+\.appup|lib/[^/]+/ebin/jellyfish\.json"
    )


def _kind_of(name: str) -> str | None:
    top = name.split("/", 1)[0]
    return {"releases": OTP_RELEASE, "erlang-shipment": GLEAM_SHIPMENT}.get(top)


def _merge_kind(files: _Files, name: str) -> None:
    kind = _kind_of(name)
    # a release wins over a shipment: only an OTP release can be upgraded, and it says so itself
    if kind == OTP_RELEASE or (kind == GLEAM_SHIPMENT and files.kind == NOT_A_RELEASE):
        files.kind = kind


def _from_tarball(path: Path, wanted: re.Pattern[str]) -> _Files:
    files = _Files()
    with reading_tarball(path) as tar:
        for member in tar:
            name = posixpath.normpath(member.name).lstrip("/")
            _merge_kind(files, name)
            if member.isfile() and wanted.fullmatch(name) and name not in files.data:
                reader = tar.extractfile(member)
                if reader is not None:
                    with reader:
                        files.add(name, member.size, lambda r=reader: r.read(MAX_FILE_BYTES))
    return files


def _from_folder(root: Path, wanted: re.Pattern[str]) -> _Files:
    files = _Files()
    real_root = root.resolve()
    for top in ("releases", "erlang-shipment"):
        if (root / top).is_dir():
            _merge_kind(files, top)
    for candidate in _candidates(root):
        name = candidate.relative_to(root).as_posix()
        if not wanted.fullmatch(name):
            continue
        real = candidate.resolve()
        # Only regular files whose real path stays inside the release folder.
        if real.is_relative_to(real_root) and real.is_file():
            files.add(name, real.stat().st_size, lambda r=real: _read_head(r))
    return files


def _candidates(root: Path) -> Iterator[Path]:
    """The files of the folders where metadata lives (not the whole release: erts, beams...)."""
    releases = root / "releases"
    for folder in (releases, *_subfolders(releases)):
        yield from _files_in(folder)
    for app in _subfolders(root / "lib"):
        yield from _files_in(app / "ebin")
        yield from _files_in(app / "priv" / "appup")


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError:
        return []


def _files_in(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.is_dir())
    except OSError:
        return []


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(MAX_FILE_BYTES)


# -- from files to facts ----------------------------------------------------------------------


def _contents(version: str, files: _Files) -> ReleaseContents:
    problems = list(files.problems)
    if files.kind != OTP_RELEASE:
        return ReleaseContents(version, files.kind)
    release = _release(version, files.data, problems)
    relup = _parsed(f"releases/{version}/relup", files.data, _relup, problems)
    appups = [
        appup
        for name in sorted(files.data)
        if name.endswith(".appup")
        and (appup := _parsed(name, files.data, _appup, problems, _app_of(name))) is not None
    ]
    jellyfish = [
        entry
        for name in sorted(files.data)
        if name.endswith("/jellyfish.json")
        and (entry := _parsed(name, files.data, _jellyfish, problems, _app_of(name))) is not None
    ]
    name, erts, applications = release or (None, None, ())
    return ReleaseContents(
        version=version,
        kind=OTP_RELEASE,
        name=name,
        erts=erts,
        applications=applications,
        relup=relup,
        appups=tuple(appups),
        jellyfish=tuple(jellyfish),
        problems=tuple(problems),
    )


def _parsed(
    name: str,
    data: dict[str, bytes],
    parse: Callable[[str, bytes], Any],
    problems: list[MetadataProblem],
    app: str | None = None,
) -> Any:
    if name not in data:
        return None
    try:
        return parse(name, data[name])
    except ReleaseMetadataInvalid as e:
        problems.append(MetadataProblem(name, str(e), app))
        return None


def _app_of(name: str) -> str:
    """`lib/{app}-{vsn}/...` -> app."""
    return name.split("/")[1].rsplit("-", 1)[0]


def _problem(name: str, message: str) -> MetadataProblem:
    return MetadataProblem(name, message, _app_of(name) if name.startswith("lib/") else None)


def _terms(name: str, data: bytes) -> list[Any]:
    try:
        return consult(data)
    except TermSyntaxError as e:
        raise ReleaseMetadataInvalid(f"{name} is not valid Erlang term text ({e})") from None


def _one_term(name: str, data: bytes, what: str) -> Any:
    terms = _terms(name, data)
    if len(terms) != 1:
        raise ReleaseMetadataInvalid(f"{name} is not {what}: it holds {len(terms)} terms, not 1")
    return terms[0]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and not isinstance(value, Atom) else None


def _relup(name: str, data: bytes) -> Relup:
    what = "a relup ({Vsn, [{UpFrom, Descr, Instructions}], [{DownTo, ...}]})"
    term = _one_term(name, data, what)
    if not (isinstance(term, tuple) and len(term) == 3 and _text(term[0])):
        raise ReleaseMetadataInvalid(f"{name} is not {what}")
    up = term[1]
    if not isinstance(up, list) or not all(_is_path(p) for p in up):
        raise ReleaseMetadataInvalid(f"{name} is not {what}: its upgrade list is malformed")
    return Relup(term[0], tuple(_upgrade_path(p) for p in up), name)


def _is_path(item: Any) -> bool:
    return (
        isinstance(item, tuple)
        and len(item) == 3
        and _text(item[0]) is not None
        and isinstance(item[2], list)
    )


def _upgrade_path(item: tuple[Any, Any, list[Any]]) -> UpgradePath:
    loads, restarts = [], False
    for instruction in item[2]:
        if isinstance(instruction, Atom) and str(instruction) in _EMULATOR_RESTARTS:
            restarts = True
        elif _is_load(instruction):
            app, vsn, _modules = instruction[1]
            loads.append((str(app), vsn))
    return UpgradePath(item[0], tuple(loads), restarts)


def _is_load(instruction: Any) -> bool:
    """`{load_object_code, {App, Vsn, Modules}}`."""
    return (
        isinstance(instruction, tuple)
        and len(instruction) == 2
        and instruction[0] == Atom("load_object_code")
        and isinstance(instruction[1], tuple)
        and len(instruction[1]) == 3
        and isinstance(instruction[1][0], Atom)
        and _text(instruction[1][1]) is not None
    )


def _appup(name: str, data: bytes) -> Appup:
    what = "an appup ({Vsn, [{UpFrom, Instructions}], [{DownTo, Instructions}]})"
    term = _one_term(name, data, what)
    if not (isinstance(term, tuple) and len(term) == 3 and _text(term[0])):
        raise ReleaseMetadataInvalid(f"{name} is not {what}")
    up = term[1]
    if not isinstance(up, list) or not all(isinstance(i, tuple) and len(i) == 2 for i in up):
        raise ReleaseMetadataInvalid(f"{name} is not {what}: its upgrade list is malformed")
    froms = []
    for from_vsn, _instructions in up:
        if isinstance(from_vsn, bytes):  # a regular expression, as OTP's own appups use
            froms.append(FromVersion(from_vsn.decode("utf-8", "replace"), regex=True))
        elif _text(from_vsn) is not None:
            froms.append(FromVersion(from_vsn))
        else:
            raise ReleaseMetadataInvalid(f"{name}: {from_vsn!r} is not a version to upgrade from")
    app = posixpath.basename(name).removesuffix(".appup")
    return Appup(app, term[0], tuple(froms), name)


def _jellyfish(name: str, data: bytes) -> JellyfishEntry:
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReleaseMetadataInvalid(f"{name} is not valid JSON ({e})") from None
    if not isinstance(document, dict):
        raise ReleaseMetadataInvalid(f"{name} is not a JSON object")
    kind = document.get("type", "project")
    if kind not in _JELLYFISH_TYPES:
        raise ReleaseMetadataInvalid(f"{name}: type {kind!r} is not one of project, dependency")
    values = [document.get(key) for key in ("name", "from", "to")]
    if not all(isinstance(v, str) and v for v in values):
        raise ReleaseMetadataInvalid(f'{name} needs "name", "from" and "to" as strings')
    app, from_vsn, to_vsn = values
    return JellyfishEntry(app, kind, from_vsn, to_vsn, name)


def _release(
    version: str, data: dict[str, bytes], problems: list[MetadataProblem]
) -> tuple[str, str, tuple[tuple[str, str], ...]] | None:
    """(name, erts, applications) of `version`: its own .rel first, then others, then RELEASES."""
    own = sorted(n for n in data if n.startswith(f"releases/{version}/") and n.endswith(".rel"))
    others = sorted(n for n in data if n.count("/") == 1 and n.endswith(".rel"))
    failures: list[MetadataProblem] = []
    for name in [*own, *others, "releases/RELEASES"]:
        parse = _releases_file if name.endswith("RELEASES") else _rel_file
        found = _parsed(name, data, lambda n, d, p=parse: p(n, d, version), failures)
        if found is not None:
            return found
    # Unreadable files matter only when nothing else says what the release holds.
    problems.extend(failures[:1])
    return None


def _rel_file(name: str, data: bytes, version: str) -> tuple[str, str, Any] | None:
    """`{release, {Name, Vsn}, {erts, ErtsVsn}, [{App, Vsn, ...}]}`, if it is of `version`."""
    what = "a .rel file ({release, {Name, Vsn}, {erts, Vsn}, Applications})"
    term = _one_term(name, data, what)
    if not (
        isinstance(term, tuple)
        and len(term) == 4
        and term[0] == Atom("release")
        and isinstance(term[1], tuple)
        and len(term[1]) == 2
        and isinstance(term[2], tuple)
        and len(term[2]) == 2
    ):
        raise ReleaseMetadataInvalid(f"{name} is not {what}")
    (rel_name, rel_vsn), (_erts, erts_vsn) = term[1], term[2]
    if rel_vsn != version:
        return None
    return str(rel_name), str(erts_vsn), _applications(name, term[3])


def _releases_file(name: str, data: bytes, version: str) -> tuple[str, str, Any] | None:
    """release_handler's `[{release, Name, Vsn, ErtsVsn, [{App, Vsn, Dir}], Status}]`."""
    what = "a RELEASES file ([{release, Name, Vsn, ErtsVsn, Libs, Status}])"
    term = _one_term(name, data, what)
    if not isinstance(term, list):
        raise ReleaseMetadataInvalid(f"{name} is not {what}")
    for entry in term:
        if isinstance(entry, tuple) and len(entry) == 6 and entry[0] == Atom("release"):
            if entry[2] == version:
                return str(entry[1]), str(entry[3]), _applications(name, entry[4])
        else:
            raise ReleaseMetadataInvalid(f"{name} is not {what}")
    return None


def _applications(name: str, apps: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(apps, list) or not all(
        isinstance(a, tuple) and len(a) >= 2 and isinstance(a[0], Atom) and _text(a[1])
        for a in apps
    ):
        raise ReleaseMetadataInvalid(f"{name}: its application list is not [{{App, Vsn, ...}}]")
    return tuple((str(a[0]), a[1]) for a in apps)
