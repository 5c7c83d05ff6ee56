"""Hot upgrade or full deployment, decided from what the releases say (pure; no files, no nodes)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from deployex_actors.core.hot_upgrade import (
    GLEAM_SHIPMENT,
    NOT_A_RELEASE,
    AppChange,
    Appup,
    FromVersion,
    JellyfishEntry,
    MetadataProblem,
    ReleaseContents,
    Relup,
    UpgradePath,
    decide,
)
from deployex_actors.core.rollout import FULL_DEPLOYMENT, HOT_UPGRADE

OTP = (("kernel", "8.5.3"), ("stdlib", "4.2"), ("sasl", "4.2"))


def appup(app: str, vsn: str, *froms: str, regex: bool = False) -> Appup:
    where = f"lib/{app}-{vsn}/ebin/{app}.appup"
    return Appup(app, vsn, tuple(FromVersion(f, regex) for f in froms), where)


def relup(to: str, *paths: UpgradePath) -> Relup:
    return Relup(to, paths, f"releases/{to}/relup")


def release(vsn: str, apps: dict[str, str], **kw: object) -> ReleaseContents:
    fields = {"name": "myapp", "erts": "13.1.5", "applications": (*OTP, *apps.items())}
    return ReleaseContents(vsn, **{**fields, **kw})  # type: ignore[arg-type]


RUNNING = release("0.1.0", {"myapp": "0.1.0"})
NEW = release(
    "0.2.0",
    {"myapp": "0.2.0"},
    relup=relup("0.2.0", UpgradePath("0.1.0", (("myapp", "0.2.0"),))),
    appups=(appup("myapp", "0.2.0", "0.1.0"),),
)


def full(reason: str) -> str:
    return f"{reason}: full deployment"


def test_a_release_with_a_relup_and_appup_from_the_running_version_is_hot() -> None:
    decision = decide("0.1.0", NEW, running=RUNNING)
    assert decision.hot and decision.kind == HOT_UPGRADE
    assert (decision.from_version, decision.to_version) == ("0.1.0", "0.2.0")
    assert decision.changes == (AppChange("myapp", "0.1.0", "0.2.0"),)
    assert decision.reason == "hot upgrade 0.1.0 -> 0.2.0: myapp 0.1.0 -> 0.2.0"


def test_hot_upgrade_false_in_the_yaml_forces_a_full_deployment() -> None:
    decision = decide("0.1.0", NEW, enabled=False, running=RUNNING)
    assert decision.kind == FULL_DEPLOYMENT and not decision.hot
    assert decision.reason == full("hot_upgrade: false in the configuration")


def test_a_gleam_shipment_is_always_a_full_deployment() -> None:
    decision = decide("0.1.0", ReleaseContents("0.2.0", GLEAM_SHIPMENT))
    assert decision.reason == full(
        "gleam shipment (erlang-shipment/ has no OTP release to upgrade)"
    )


def test_a_tarball_without_releases_is_not_an_otp_release() -> None:
    decision = decide("0.1.0", ReleaseContents("0.2.0", NOT_A_RELEASE))
    assert decision.reason == full("0.2.0 is not an OTP release (no releases/ folder)")


def test_the_running_version_again_is_not_an_upgrade() -> None:
    assert decide("0.2.0", NEW).reason == full("0.2.0 is the running version")


def test_no_relup_file_is_a_full_deployment_that_says_so() -> None:
    decision = decide("0.1.0", replace(NEW, relup=None), running=RUNNING)
    assert decision.reason == full("no relup from 0.1.0 in 0.2.0 (releases/0.2.0/relup is missing)")


def test_a_relup_from_other_versions_only_names_them() -> None:
    decision = decide("0.0.9", NEW)
    assert decision.reason == full("no relup from 0.0.9 in 0.2.0 (it upgrades from 0.1.0)")
    empty = replace(NEW, relup=relup("0.2.0"))
    assert decide("0.1.0", empty).reason == full(
        "no relup from 0.1.0 in 0.2.0 (it upgrades from no version)"
    )


def test_a_relup_of_another_version_is_refused() -> None:
    other = replace(NEW, relup=Relup("0.2.1", NEW.relup.up, "releases/0.2.0/relup"))
    assert decide("0.1.0", other).reason == full(
        "releases/0.2.0/relup is the relup of version 0.2.1, not 0.2.0"
    )


def test_a_relup_that_restarts_the_emulator_is_a_full_deployment() -> None:
    restart = replace(NEW, relup=relup("0.2.0", UpgradePath("0.1.0", (), True)))
    assert decide("0.1.0", restart).reason == full(
        "the relup from 0.1.0 to 0.2.0 restarts the emulator (new ERTS or OTP)"
    )


def test_a_relup_that_loads_what_the_release_does_not_ship_is_refused() -> None:
    stale = replace(NEW, relup=relup("0.2.0", UpgradePath("0.1.0", (("myapp", "0.1.9"),))))
    assert decide("0.1.0", stale).reason == full(
        "the relup from 0.1.0 loads myapp 0.1.9, but 0.2.0 ships myapp 0.2.0"
    )
    foreign = replace(NEW, relup=relup("0.2.0", UpgradePath("0.1.0", (("other", "1.0.0"),))))
    assert decide("0.1.0", foreign).reason == full(
        "the relup from 0.1.0 loads other 1.0.0, but 0.2.0 has no other"
    )


def test_an_unreadable_relup_or_rel_is_the_reason() -> None:
    broken = MetadataProblem(
        "releases/0.2.0/relup",
        "releases/0.2.0/relup is not valid Erlang term text (line 3, column 1: unexpected ')')",
    )
    decision = decide("0.1.0", replace(NEW, relup=None, problems=(broken,)))
    assert decision.reason == full(broken.message)


def test_a_release_without_its_rel_file_is_a_full_deployment() -> None:
    decision = decide("0.1.0", replace(NEW, applications=()))
    assert decision.reason == full("no release file for 0.2.0 (releases/0.2.0/*.rel)")


def test_another_release_name_or_erts_than_the_running_one_is_a_full_deployment() -> None:
    renamed = replace(RUNNING, name="otherapp")
    assert decide("0.1.0", NEW, running=renamed).reason == full(
        "0.2.0 is release myapp, the running one is otherapp"
    )
    older_erts = replace(RUNNING, erts="13.1.4")
    assert decide("0.1.0", NEW, running=older_erts).reason == full(
        "0.2.0 runs on erts 13.1.5, 0.1.0 on erts 13.1.4"
    )


# -- every application that changes has its appup ----------------------------------------------

UMBRELLA_RUNNING = release("0.1.0", {"myapp": "0.1.0", "myweb": "0.1.0", "mydep": "1.0.0"})
UMBRELLA = release(
    "0.2.0",
    {"myapp": "0.2.0", "myweb": "0.2.0", "mydep": "1.1.0", "newdep": "0.5.0"},
    relup=relup("0.2.0", UpgradePath("0.1.0", (("myapp", "0.2.0"), ("myweb", "0.2.0")))),
    appups=(
        appup("myapp", "0.2.0", "0.1.0"),
        appup("myweb", "0.2.0", "0.1.0"),
        appup("mydep", "1.1.0", r"1\..*", regex=True),
    ),
    jellyfish=(
        JellyfishEntry("myapp", "project", "0.1.0", "0.2.0", "lib/myapp-0.2.0/ebin/jellyfish.json"),
        JellyfishEntry("myweb", "project", "0.1.0", "0.2.0", "lib/myweb-0.2.0/ebin/jellyfish.json"),
        JellyfishEntry(
            "mydep", "dependency", "1.0.0", "1.1.0", "lib/mydep-1.1.0/ebin/jellyfish.json"
        ),
    ),
)


def test_an_umbrella_with_a_dependency_upgrade_is_hot_when_every_change_has_its_appup() -> None:
    decision = decide("0.1.0", UMBRELLA, running=UMBRELLA_RUNNING)
    assert decision.hot
    # newdep is new to the release: it is started, not upgraded, and needs no appup
    assert decision.changes == (
        AppChange("myapp", "0.1.0", "0.2.0"),
        AppChange("myweb", "0.1.0", "0.2.0"),
        AppChange("mydep", "1.0.0", "1.1.0"),
    )
    assert decision.reason == (
        "hot upgrade 0.1.0 -> 0.2.0: myapp 0.1.0 -> 0.2.0, myweb 0.1.0 -> 0.2.0, "
        "mydep 1.0.0 -> 1.1.0"
    )


def test_an_umbrella_app_that_changes_without_an_appup_makes_it_a_full_deployment() -> None:
    without = replace(UMBRELLA, appups=tuple(a for a in UMBRELLA.appups if a.app != "myweb"))
    decision = decide("0.1.0", without, running=UMBRELLA_RUNNING)
    assert decision.reason == full("myweb changes 0.1.0 -> 0.2.0 but has no appup")


def test_a_dependency_whose_appup_does_not_upgrade_from_the_running_version() -> None:
    froms = (FromVersion("0.9.0"), FromVersion(r"2\..*", regex=True))
    appups = (*UMBRELLA.appups[:2], Appup("mydep", "1.1.0", froms, "lib/mydep-1.1.0/ebin/x"))
    decision = decide("0.1.0", replace(UMBRELLA, appups=appups), running=UMBRELLA_RUNNING)
    assert decision.reason == full(
        r"the appup of mydep 1.1.0 has no upgrade from 1.0.0 (it upgrades from 0.9.0, /2\..*/)"
    )


def test_an_appup_for_another_version_of_the_app_does_not_count() -> None:
    appups = (*UMBRELLA.appups[:2], appup("mydep", "1.0.5", "1.0.0"))
    decision = decide("0.1.0", replace(UMBRELLA, appups=appups), running=UMBRELLA_RUNNING)
    assert decision.reason == full(
        "lib/mydep-1.0.5/ebin/mydep.appup is the appup of mydep 1.0.5, not 1.1.0"
    )


def test_an_unreadable_appup_matters_only_for_an_app_that_changes() -> None:
    bad = MetadataProblem("lib/mydep-1.1.0/ebin/mydep.appup", "mydep.appup is broken", "mydep")
    decision = decide("0.1.0", replace(UMBRELLA, problems=(bad,)), running=UMBRELLA_RUNNING)
    assert decision.reason == full("mydep.appup is broken")
    unchanged = MetadataProblem("lib/kernel-8.5.3/ebin/kernel.appup", "broken", "kernel")
    assert decide("0.1.0", replace(UMBRELLA, problems=(unchanged,)), running=UMBRELLA_RUNNING).hot


def test_jellyfish_metadata_must_agree_with_both_releases() -> None:
    wrong_from = replace(
        UMBRELLA,
        jellyfish=(JellyfishEntry("myweb", "project", "0.0.9", "0.2.0", "lib/myweb/j.json"),),
    )
    assert decide("0.1.0", wrong_from, running=UMBRELLA_RUNNING).reason == full(
        "lib/myweb/j.json says myweb 0.0.9 -> 0.2.0, but the running release runs myweb 0.1.0"
    )
    wrong_to = replace(
        UMBRELLA,
        jellyfish=(JellyfishEntry("mydep", "dependency", "1.0.0", "1.2.0", "lib/mydep/j.json"),),
    )
    assert decide("0.1.0", wrong_to, running=UMBRELLA_RUNNING).reason == full(
        "lib/mydep/j.json says mydep 1.0.0 -> 1.2.0, but 0.2.0 ships mydep 1.1.0"
    )


def test_without_the_running_release_changes_come_from_relup_and_jellyfish() -> None:
    decision = decide("0.1.0", UMBRELLA)
    assert decision.hot
    assert decision.changes == (
        AppChange("myapp", "0.1.0", "0.2.0"),
        AppChange("myweb", "0.1.0", "0.2.0"),
        AppChange("mydep", "1.0.0", "1.1.0"),
    )
    # a running release folder without a readable .rel counts as not read
    assert decide("0.1.0", UMBRELLA, running=ReleaseContents("0.1.0")).changes == decision.changes


def test_without_the_running_release_an_app_the_relup_loads_still_needs_an_appup() -> None:
    no_metadata = replace(NEW, appups=())
    decision = decide("0.1.0", no_metadata)
    assert decision.reason == full("myapp changes its version -> 0.2.0 but has no appup")
    assert decide("0.1.0", NEW).changes == (AppChange("myapp", None, "0.2.0"),)


# -- the contract of the reason ----------------------------------------------------------------

FULL_CASES = [
    decide("0.1.0", NEW, enabled=False),
    decide("0.1.0", ReleaseContents("0.2.0", GLEAM_SHIPMENT)),
    decide("0.1.0", replace(NEW, relup=None)),
    decide("0.0.1", NEW),
    decide("0.1.0", replace(UMBRELLA, appups=()), running=UMBRELLA_RUNNING),
]


@pytest.mark.parametrize("decision", FULL_CASES, ids=lambda d: d.reason[:40])
def test_a_full_deployment_reason_is_one_journal_line_that_says_so(decision: object) -> None:
    assert decision.kind == FULL_DEPLOYMENT and decision.changes == ()
    assert decision.reason.endswith(": full deployment") and "\n" not in decision.reason


@pytest.mark.parametrize(
    ("pattern", "version", "matches"),
    [
        (r".*", "anything", True),
        (r"1\..*", "1.0.0", True),
        (r"1\..*", "11.0", False),
        (r"^4\.0$", "4.0", True),
        (r"^4\.0$", "4.0.1", False),
        # systools takes the first match and wants it to be the whole version
        (r"4\.0|4\.0\.1", "4.0.1", False),
        (r"(unclosed", "1.0", False),
    ],
)
def test_appup_regex_versions_match_as_systools_matches_them(
    pattern: str, version: str, matches: bool
) -> None:
    assert FromVersion(pattern, regex=True).matches(version) is matches
    assert FromVersion("1.0.0").matches("1.0.0") and not FromVersion("1.0").matches("1.0.0")
