"""`deployex config pending|apply|discard|reload`: the configuration change waiting for approval.

Exit codes of `pending`: 0 no pending change, 2 a change is pending, 3 the file was refused
(1: DeployEx did not answer). `apply` and `discard`: 0 done, 1 nothing to do or failed. The
commands attach with the file they watch: while it is refused, `pending` prints its errors (exit
3) and the others fail with them.
"""

from __future__ import annotations

import argparse

from deployex_actors.cli.attach import add_config_option, facade
from deployex_actors.core.config_diff import Change
from deployex_actors.core.config_watch import PENDING, REFUSED, PendingConfig
from deployex_actors.errors import ConfigError

HELP = "show, apply or discard the configuration change waiting for approval"
EXIT_PENDING = 2
EXIT_REFUSED = 3
BADGE_WIDTH = 16


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help=HELP, description=HELP)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    pending = actions.add_parser(
        "pending", help="the per-key diff (exit 0: none, 2: pending, 3: file refused)"
    )
    pending.set_defaults(run=run_pending)
    apply = actions.add_parser("apply", help="apply the pending change (journaled as `cli`)")
    apply.set_defaults(run=run_apply)
    discard = actions.add_parser("discard", help="drop the pending change")
    discard.set_defaults(run=run_discard)
    reload = actions.add_parser("reload", help="read the file now (as SIGHUP does)")
    reload.set_defaults(run=run_reload)
    for command in (apply, discard):
        command.add_argument(
            "--checksum",
            help="only if the file still has this content (the sha256 `pending` shows)",
        )
    for command in (pending, apply, discard, reload):
        add_config_option(command)


def change_line(change: Change) -> str:
    badge = f"  [{change.badge}]".ljust(BADGE_WIDTH + 4)
    return f"{badge}{change.key}: {change.old} -> {change.new}"


def describe(pending: PendingConfig) -> list[str]:
    """What `pending` prints."""
    if pending.state == REFUSED:
        return [
            f"Configuration file refused ({pending.source}); the running configuration is kept:",
            *(f"  {error}" for error in pending.errors),
        ]
    if pending.state != PENDING:
        return [f"No pending configuration change ({pending.source})."]
    diff = pending.diff
    lines = [f"Pending configuration change ({pending.source}, sha256 {pending.checksum}):"]
    lines += [change_line(c) for c in diff.changes] or ["  (nothing that can be applied)"]
    if diff.restart_needed:
        lines.append("Changed, but used only after a DeployEx restart (not applied):")
        lines += [change_line(c) for c in diff.restart_needed]
    lines.append(
        f"{diff.changes_count} changed key(s). `deployex config apply` applies it, "
        "`deployex config discard` drops it."
    )
    return lines


def exit_code(pending: PendingConfig) -> int:
    return {PENDING: EXIT_PENDING, REFUSED: EXIT_REFUSED}.get(pending.state, 0)


def run_pending(args: argparse.Namespace) -> int:
    try:
        pending = facade(args).pending_config()
    except ConfigError as exc:  # the edited file is what we attach with: it is refused too
        print("Configuration file refused; the running configuration is kept:")
        print("\n".join(f"  {problem}" for problem in exc.problems))
        return EXIT_REFUSED
    print("\n".join(describe(pending)))
    return exit_code(pending)


def run_apply(args: argparse.Namespace) -> int:
    diff = facade(args).apply_config(actor="cli", checksum=args.checksum)
    print(f"Applied {len(diff.changes)} change(s):")
    print("\n".join(change_line(c) for c in diff.changes))
    if diff.restart_needed:
        keys = ", ".join(c.key for c in diff.restart_needed)
        print(f"Not applied, restart DeployEx to use them: {keys}")
    return 0


def run_discard(args: argparse.Namespace) -> int:
    facade(args).discard_config(actor="cli", checksum=args.checksum)
    print("Pending configuration change discarded; the running configuration is kept.")
    return 0


def run_reload(args: argparse.Namespace) -> int:
    pending = facade(args).reload_config(actor="cli")
    print("\n".join(describe(pending)))
    return exit_code(pending)
