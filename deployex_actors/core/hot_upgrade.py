"""Hot upgrade or full deployment: the decision, from what the new release carries. Pure.

`decide(from_version, contents, enabled, running)` is called after a download, when a replica of
the app runs `from_version` and the tarball (read into `contents` by releases/relup.py) is the
version to deploy. `running` is the same reading of the running replica's own release folder;
with it, the applications that change are known exactly (its .rel against the new one), without
it they are taken from the relup and Jellyfish's metadata.

It is a hot upgrade only when all of these hold, checked in this order; the first that fails is
the reason for a full deployment, in one line that ends with ": full deployment":

1. `hot_upgrade` is not false in the app's YAML;
2. the tarball is an OTP release (not a Gleam erlang-shipment, not something else);
3. it is another version than the running one;
4. its relup, .rel and (of a changing application) appup and jellyfish.json files are readable;
5. `releases/{to}/relup` is the new version's and has an upgrade path from the running version,
   that does not restart the emulator, and loads the application versions the release ships;
6. the running and new releases have the same name and ERTS (when the running one is known);
7. every application that changes has an appup for its new version with an upgrade from its
   running version (from any version, when the running version of the app is not known);
8. every jellyfish.json agrees with the .rel files about its application's versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from deployex_actors.core.rollout import FULL_DEPLOYMENT, HOT_UPGRADE

OTP_RELEASE = "otp_release"  # bin/, lib/, releases/: mix release, rebar3 tar
GLEAM_SHIPMENT = "gleam_shipment"  # erlang-shipment/: Gleam's export, no release to upgrade
NOT_A_RELEASE = "not_a_release"


@dataclass(frozen=True)
class FromVersion:
    """A version an appup upgrades from: a string, or (a binary in the appup) a regex."""

    text: str
    regex: bool = False

    def matches(self, version: str) -> bool:
        if not self.regex:
            return version == self.text
        # As systools does: the first match of the expression must be the whole version.
        try:
            found = re.search(self.text, version)
        except re.error:
            return False
        return found is not None and found.group() == version

    def __str__(self) -> str:
        return f"/{self.text}/" if self.regex else self.text


@dataclass(frozen=True)
class Appup:
    """`{Vsn, [{UpFrom, Instructions}], [{DownTo, Instructions}]}` of one application."""

    app: str
    version: str
    up_from: tuple[FromVersion, ...]
    path: str  # inside the release, for messages

    def upgrades_from(self, version: str) -> bool:
        return any(candidate.matches(version) for candidate in self.up_from)


@dataclass(frozen=True)
class UpgradePath:
    """One `{FromVsn, Descr, Instructions}` of a relup's upgrade list, summarised."""

    from_version: str
    loads: tuple[tuple[str, str], ...] = ()  # (app, version) of each load_object_code
    restarts_emulator: bool = False


@dataclass(frozen=True)
class Relup:
    version: str
    up: tuple[UpgradePath, ...]
    path: str

    def up_from(self, version: str) -> UpgradePath | None:
        return next((p for p in self.up if p.from_version == version), None)


@dataclass(frozen=True)
class JellyfishEntry:
    """`lib/{app}-{vsn}/ebin/jellyfish.json`: `{"name", "type", "from", "to"}`."""

    app: str
    type: str  # "project" (an app of the release) or "dependency"
    from_version: str
    to_version: str
    path: str


@dataclass(frozen=True)
class MetadataProblem:
    """A metadata file that is there but cannot be read; `app` is None for the release's own."""

    path: str
    message: str
    app: str | None = None


@dataclass(frozen=True)
class ReleaseContents:
    """What a release (a tarball, or an unpacked release folder) says about version `version`."""

    version: str
    kind: str = OTP_RELEASE
    name: str | None = None  # the release name in its .rel
    erts: str | None = None
    applications: tuple[tuple[str, str], ...] = ()  # (app, version) from the .rel
    relup: Relup | None = None
    appups: tuple[Appup, ...] = ()
    jellyfish: tuple[JellyfishEntry, ...] = ()
    problems: tuple[MetadataProblem, ...] = ()

    def app_versions(self) -> dict[str, str]:
        return dict(self.applications)


@dataclass(frozen=True)
class AppChange:
    app: str
    from_version: str | None  # None: the running release was not read
    to_version: str

    def __str__(self) -> str:
        return f"{self.app} {self.from_version or '?'} -> {self.to_version}"


@dataclass(frozen=True)
class Decision:
    kind: str  # FULL_DEPLOYMENT or HOT_UPGRADE
    from_version: str
    to_version: str
    reason: str  # one line for the journal
    changes: tuple[AppChange, ...] = ()  # what a hot upgrade upgrades

    @property
    def hot(self) -> bool:
        return self.kind == HOT_UPGRADE


def decide(
    from_version: str,
    contents: ReleaseContents,
    enabled: bool = True,
    running: ReleaseContents | None = None,
) -> Decision:
    """Hot upgrade from `from_version` to `contents.version`, or full deployment and why."""
    to = contents.version
    known = running if running is not None and running.applications else None
    why = _not_upgradable(from_version, contents, enabled) or _other_release(contents, known)
    changes: tuple[AppChange, ...] = ()
    if why is None:
        changes = app_changes(from_version, contents, known)
        why = _appup_missing(changes, contents) or _jellyfish_disagrees(contents, known)
    if why is not None:
        return Decision(FULL_DEPLOYMENT, from_version, to, f"{why}: full deployment")
    listed = ", ".join(map(str, changes)) or "no application changes its version"
    return Decision(
        HOT_UPGRADE, from_version, to, f"hot upgrade {from_version} -> {to}: {listed}", changes
    )


def app_changes(
    from_version: str, contents: ReleaseContents, running: ReleaseContents | None
) -> tuple[AppChange, ...]:
    """The applications whose version changes; an application new to the release is not one."""
    new = contents.app_versions()
    if running is not None:
        old = running.app_versions()
        return tuple(
            AppChange(app, old[app], vsn) for app, vsn in new.items() if old.get(app, vsn) != vsn
        )
    # Without the running .rel: what the relup loads and what Jellyfish says changes.
    path = contents.relup.up_from(from_version) if contents.relup else None
    changed = dict(path.loads) if path else {}
    changed |= {e.app: e.to_version for e in contents.jellyfish}
    froms = {e.app: e.from_version for e in contents.jellyfish}
    return tuple(
        AppChange(app, froms.get(app), vsn) for app, vsn in new.items() if changed.get(app) == vsn
    )


def _not_upgradable(from_version: str, contents: ReleaseContents, enabled: bool) -> str | None:
    to = contents.version
    if not enabled:
        return "hot_upgrade: false in the configuration"
    if contents.kind == GLEAM_SHIPMENT:
        return "gleam shipment (erlang-shipment/ has no OTP release to upgrade)"
    if contents.kind != OTP_RELEASE:
        return f"{to} is not an OTP release (no releases/ folder)"
    if from_version == to:
        return f"{to} is the running version"
    release_problem = next((p for p in contents.problems if p.app is None), None)
    if release_problem is not None:
        return release_problem.message
    if not contents.applications:
        return f"no release file for {to} (releases/{to}/*.rel)"
    return _relup_unusable(from_version, contents)


def _relup_unusable(from_version: str, contents: ReleaseContents) -> str | None:
    to, relup = contents.version, contents.relup
    if relup is None:
        return f"no relup from {from_version} in {to} (releases/{to}/relup is missing)"
    if relup.version != to:
        return f"{relup.path} is the relup of version {relup.version}, not {to}"
    path = relup.up_from(from_version)
    if path is None:
        others = ", ".join(p.from_version for p in relup.up) or "no version"
        return f"no relup from {from_version} in {to} (it upgrades from {others})"
    if path.restarts_emulator:
        return f"the relup from {from_version} to {to} restarts the emulator (new ERTS or OTP)"
    ships = contents.app_versions()
    for app, vsn in path.loads:
        if ships.get(app) != vsn:
            shipped = f"ships {app} {ships[app]}" if app in ships else f"has no {app}"
            return f"the relup from {from_version} loads {app} {vsn}, but {to} {shipped}"
    return None


def _other_release(contents: ReleaseContents, running: ReleaseContents | None) -> str | None:
    if running is None:
        return None
    if running.name and contents.name and running.name != contents.name:
        return f"{contents.version} is release {contents.name}, the running one is {running.name}"
    if running.erts and contents.erts and running.erts != contents.erts:
        return (
            f"{contents.version} runs on erts {contents.erts}, "
            f"{running.version} on erts {running.erts}"
        )
    return None


def _appup_missing(changes: tuple[AppChange, ...], contents: ReleaseContents) -> str | None:
    for change in changes:
        app, old, new = change.app, change.from_version, change.to_version
        problem = next((p for p in contents.problems if p.app == app), None)
        if problem is not None:
            return problem.message
        appups = [a for a in contents.appups if a.app == app]
        if not appups:
            return f"{app} changes {old or 'its version'} -> {new} but has no appup"
        for_new = [a for a in appups if a.version == new]
        if not for_new:
            return f"{appups[0].path} is the appup of {app} {appups[0].version}, not {new}"
        if old is not None and not any(a.upgrades_from(old) for a in for_new):
            froms = ", ".join(str(f) for a in for_new for f in a.up_from) or "no version"
            return f"the appup of {app} {new} has no upgrade from {old} (it upgrades from {froms})"
    return None


def _jellyfish_disagrees(contents: ReleaseContents, running: ReleaseContents | None) -> str | None:
    ships = contents.app_versions()
    had = running.app_versions() if running is not None else None
    for entry in contents.jellyfish:
        says = f"{entry.path} says {entry.app} {entry.from_version} -> {entry.to_version}"
        if ships.get(entry.app) != entry.to_version:
            shipped = ships.get(entry.app)
            what = f"ships {entry.app} {shipped}" if shipped else f"has no {entry.app}"
            return f"{says}, but {contents.version} {what}"
        if had is not None and had.get(entry.app) != entry.from_version:
            old = had.get(entry.app)
            what = f"runs {entry.app} {old}" if old else f"has no {entry.app}"
            return f"{says}, but the running release {what}"
    return None
