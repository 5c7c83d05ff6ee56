"""`deployex upgrade WHEEL | --rollback`: DeployEx upgrades itself and keeps its replicas.

The new version is installed beside the running one under `install_path`, checks itself
(`--verify`, run by the new version: the running YAML loads, the state database migrates), then
`current` is switched and DeployEx re-executes into it, adopting every replica (same pids).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from deployex_actors.cli.attach import add_config_option
from deployex_actors.cli.progress import Progress

HELP = "upgrade DeployEx itself from a wheel, keeping the replicas (or --rollback)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("upgrade", help=HELP, description=HELP)
    parser.add_argument("wheel", nargs="?", type=Path, help="a deployex_actors .whl file")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--rollback", action="store_true", help="return to the previous version")
    what.add_argument(
        "--verify",
        action="store_true",
        help="(run by the new version during an upgrade) check that this version can take over",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument(
        "--actor", help="who is journaled as doing it (default cli:USER; the dashboard: its user)"
    )
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.verify:
        from deployex_actors.upgrade.checks import verify

        for line in verify(args.config):
            print(line)
        return 0
    if bool(args.wheel) == args.rollback:
        print("deployex: error: give a WHEEL or --rollback (one of them)", file=sys.stderr)
        return 2
    from deployex_actors.config import load_config
    from deployex_actors.upgrade import steps

    config = load_config(args.config)
    what = "roll DeployEx back to the previous version" if args.rollback else (
        f"upgrade DeployEx from {args.wheel}")  # fmt: skip
    if not args.yes and not _confirmed(what):
        print("nothing done")
        return 1
    say = Progress("upgrade").say
    actor = args.actor or f"cli:{getpass.getuser()}"
    if args.rollback:
        version = steps.rollback(config, say, actor)
    else:
        version = steps.upgrade(config, args.wheel, say, actor)
    print(f"DeployEx {version} is running; its replicas were kept")
    return 0


def _confirmed(what: str) -> bool:
    if not sys.stdin.isatty():
        print(f"deployex: error: {what}? Not a terminal: pass --yes to confirm", file=sys.stderr)
        return False
    return input(f"{what}? [y/N] ").strip().lower() in ("y", "yes")
