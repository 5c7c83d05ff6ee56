"""The steps of a hot upgrade on a running replica, and what their answers mean. Pure.

When the Fetcher has judged version B a hot upgrade of the A a replica runs (core.hot_upgrade),
it places B's tarball at `releases/B/{release}.tar.gz` in that replica's release folder, and the
replica's Monitor runs these steps on the node, over its distribution link, one at a time, each
with its own timeout (replica/hot_upgrade.py does the calls, core/lifecycle.py the sequencing):

    0 pre-commands                          (local)         only when current.json has some
    1 unpack_release("B/{release}")         -> {ok, "B"}    lib/ and releases/B/ next to A's
    2 check_install_release("B")            -> {ok, A, _}   the relup is loadable
    3 install_release("B", [{update_paths, true}]) -> {ok, A, _}   code_change runs here
    4 make_permanent("B")                   -> ok           RELEASES and start_erl.data say B
    5 start script                          (local file)    bin/{release}-B over bin/{release}

The pre-commands run first, each as a program of B's own unpacked copy (`new/` of the sname,
like upstream's `new/bin/{app}`) with the replica's environment: a failing migration leaves A
untouched. They are a step of their own, counted only when there are some.

A step is skipped when the node's `which_releases` shows it done (`already_done`): a Monitor
killed mid-upgrade is replaced by one that asks for the same upgrade again, and release_handler
answers a repeated step with an error (`existing_release`, `already_installed`) — or, for
`set_removed` of the release it runs, with a dangerous `ok`.

Step 5 is release_handler's gap: unpack_release keeps old files, so a relx release's
`bin/{release}` still names A's version and a restart would boot A; mix's script reads
start_erl.data and has no versioned copy, so there is nothing to do for it.

A failure in steps 1-2 changes nothing the node runs: the unpacked release is marked removed
(`set_removed`, which keeps every file; `remove_release` could delete libraries A shares when,
as with mix, release_handler invented A's entry with an empty library list) and B is ghosted.
A failure from step 3 on may have replaced code: the replica is restarted, and boots its last
permanent release.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployex_actors.beam.terms import Atom

STEP_TIMEOUT_S = 60.0  # per step, as upstream's rpc timeout
UNDO_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Target:
    """What is upgraded: the release (its name in the .rel) from one version to another, and
    the pre-commands of current.json to run first."""

    release: str
    from_version: str
    to_version: str
    pre_commands: tuple[str, ...] = ()

    @property
    def tarball(self) -> str:
        """Where unpack_release reads it, relative to the node's release root."""
        return f"releases/{self.to_version}/{self.release}.tar.gz"


@dataclass(frozen=True)
class Step:
    name: str
    installs: bool  # from this step on, the running code may have changed
    timeout_s: float = STEP_TIMEOUT_S
    local: bool = False  # a file fix-up in the release folder, not a call on the node


PRE_COMMANDS = Step("pre_commands", installs=False, local=True)
STEPS = (
    Step("unpack_release", installs=False),
    Step("check_install_release", installs=False),
    Step("install_release", installs=True),
    Step("make_permanent", installs=True),
    Step("start_script", installs=True, timeout_s=10.0, local=True),
)

# The statuses in `which_releases` of release B once a step has been done on the node.
DONE_WHEN = {
    "unpack_release": frozenset({"unpacked", "current", "permanent", "old"}),
    "check_install_release": frozenset({"current", "permanent"}),
    "install_release": frozenset({"current", "permanent"}),
    "make_permanent": frozenset({"permanent"}),
}


def steps_of(target: Target) -> tuple[Step, ...]:
    return (PRE_COMMANDS, *STEPS) if target.pre_commands else STEPS


def position(target: Target, index: int) -> str:
    return f"step {index + 1} of {len(steps_of(target))}"


def progress(target: Target, index: int) -> str:
    return f"hot upgrade {position(target, index)}: {steps_of(target)[index].name}"


def release_status(releases: Any, version: str) -> str | None:
    """B's status in a `which_releases` answer ([{Name, Vsn, Libs, Status}]), None if absent."""
    if not isinstance(releases, list):
        return None
    for entry in releases:
        if isinstance(entry, tuple) and len(entry) == 4 and text_of(entry[1]) == version:
            return str(entry[3])
    return None


def already_done(step: Step, status: str | None) -> bool:
    """Has an earlier attempt done this step on the node, whose `which_releases` shows B so?"""
    return status in DONE_WHEN.get(step.name, ())


def may_undo(status: str | None) -> bool:
    """set_removed only forgets a release that was unpacked and never installed: release_handler
    also accepts it for the release the node runs."""
    return status in (None, "unpacked")


def call(step: Step, target: Target) -> tuple[str, str, list[Any]]:
    """The `release_handler` call of an rpc step: module, function, arguments."""
    vsn = charlist(target.to_version)
    args: dict[str, list[Any]] = {
        "unpack_release": [charlist(f"{target.to_version}/{target.release}")],
        "check_install_release": [vsn],
        "install_release": [vsn, [(Atom("update_paths"), True)]],
        "make_permanent": [vsn],
    }
    return "release_handler", step.name, args[step.name]


def undo_call(target: Target) -> tuple[str, str, list[Any]]:
    """Forget an unpacked release without deleting a file (see the module docstring)."""
    return "release_handler", "set_removed", [charlist(target.to_version)]


def problem(step: Step, reply: Any, target: Target) -> str | None:
    """None when the reply is the step's success, else one line saying what it answered."""
    ok = False
    if step.name == "unpack_release":
        ok = _is(reply, 2) and text_of(reply[1]) == target.to_version
    elif step.name in ("check_install_release", "install_release"):
        ok = _is(reply, 3)
    elif step.name == "make_permanent":
        ok = reply == "ok"
    if ok:
        return None
    return f"{step.name} answered {show(reply)}"


def start_script(target: Target) -> tuple[str, str]:
    """(source, destination) of step 5, relative to the release root."""
    return f"bin/{target.release}-{target.to_version}", f"bin/{target.release}"


def charlist(text: str) -> list[int]:
    """An Erlang string (release_handler wants lists, not binaries)."""
    return list(text.encode())


def text_of(term: Any) -> str | None:
    if isinstance(term, bytes):
        return term.decode(errors="replace")
    if isinstance(term, list) and all(isinstance(c, int) for c in term):
        return bytes(c & 0xFF for c in term).decode(errors="replace") if term else ""
    if isinstance(term, str):
        return str(term)
    return None


def show(term: Any) -> str:
    """An answer as an operator reads it: strings as strings, atoms bare."""
    if isinstance(term, bool):
        return str(term).lower()
    if isinstance(term, Atom):
        return str(term)
    if isinstance(term, tuple):
        return "{" + ",".join(show(t) for t in term) + "}"
    if isinstance(term, list):
        text = text_of(term)
        if text is not None and term and text.isprintable():
            return f'"{text}"'
        return "[" + ",".join(show(t) for t in term) + "]"
    return repr(term)


def _is(reply: Any, size: int) -> bool:
    return isinstance(reply, tuple) and len(reply) == size and reply[0] == "ok"
