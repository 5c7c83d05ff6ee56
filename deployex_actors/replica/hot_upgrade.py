"""A hot upgrade's steps, performed on the replica over the Monitor's distribution link.

Each step (core.hot_upgrade_steps) is a job of the Monitor (replica/jobs.py), so that the
Monitor keeps hearing its replica's exit, a stop or a timer while `install_release` waits on
the node (up to the step's timeout). No helper node, no erl_call: the calls go through the link
the Monitor already holds.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import subprocess
from pathlib import Path

from deployex_actors.beam.launch import Replica, pre_command
from deployex_actors.beam.link import NodeLink
from deployex_actors.core import hot_upgrade_steps as steps
from deployex_actors.errors import BeamError, DeployexError
from deployex_actors.replica import process

PRE_COMMAND_TIMEOUT_S = 600.0  # a migration may be long; one that hangs must not hold B forever

log = logging.getLogger(__name__)


def perform(link: NodeLink | None, root: Path, target: steps.Target, index: int) -> str | None:
    """Run step `index` but the pre-commands; None when it succeeded (or the node shows it done
    already), else what went wrong, in one line."""
    step = steps.steps_of(target)[index]
    if step.local:
        return _point_start_script(root, target)
    if link is None or not link.alive:
        return "no distribution link to the replica"
    try:
        if steps.already_done(step, _status_on_node(link, target, step.timeout_s)):
            return None
        module, function, args = steps.call(step, target)
        reply = link.rpc(module, function, args, step.timeout_s)
    except BeamError as exc:
        return str(exc)
    return steps.problem(step, reply, target)


def run_pre_commands(
    replica: Replica, commands: tuple[str, ...], logs: tuple[Path, Path]
) -> str | None:
    """Each pre-command in turn, as a program of `replica` (B's unpacked copy), its output in
    the replica's logs; the first that fails or outlives PRE_COMMAND_TIMEOUT_S ends the step."""
    for text in commands:
        try:
            proc = process.spawn(pre_command(replica, text), *logs)
        except (DeployexError, OSError) as exc:
            return f"pre-command {text!r}: {exc}"
        try:
            code = proc.wait(PRE_COMMAND_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
            return f"pre-command {text!r} still ran after {PRE_COMMAND_TIMEOUT_S:g} s: killed"
        if code != 0:
            return f"pre-command {text!r} exited with status {code}"
    return None


def undo_unpack(link: NodeLink | None, root: Path, target: steps.Target) -> str | None:
    """After a failure before install: the node forgets the unpacked release (its files stay,
    see core.hot_upgrade_steps), and a tarball it did not unpack is removed. A release the node
    has installed meanwhile (an earlier attempt got further) is left alone."""
    with contextlib.suppress(OSError):
        (root / target.tarball).unlink()
    if link is None or not link.alive:
        return "no distribution link to the replica"
    try:
        status = _status_on_node(link, target, steps.UNDO_TIMEOUT_S)
        if not steps.may_undo(status):
            return f"{target.to_version} is {status} on the node: not forgotten"
        module, function, args = steps.undo_call(target)
        reply = link.rpc(module, function, args, steps.UNDO_TIMEOUT_S)
    except BeamError as exc:
        return str(exc)
    # {error, {no_such_release, B}}: the unpack itself failed, nothing to forget.
    return None if reply == "ok" or "no_such_release" in steps.show(reply) else steps.show(reply)


def _status_on_node(link: NodeLink, target: steps.Target, timeout_s: float) -> str | None:
    releases = link.rpc("release_handler", "which_releases", [], timeout_s)
    return steps.release_status(releases, target.to_version)


def _point_start_script(root: Path, target: steps.Target) -> str | None:
    with contextlib.suppress(OSError):  # placed again for an unpack that was done already
        (root / target.tarball).unlink()
    source, dest = (root / p for p in steps.start_script(target))
    if not source.is_file():
        return None  # mix: the script reads releases/start_erl.data, made permanent already
    scratch = dest.with_name(f".{dest.name}.new")
    try:
        shutil.copy2(source, scratch)
        scratch.replace(dest)
    except OSError as exc:
        return f"cannot copy {source.name} over {dest.name}: {exc}"
    return None
