"""`deployex restart APP [SNAME]`: forced restart of a replica, or of every replica of an app."""

from __future__ import annotations

import argparse

from deployex_actors.cli.attach import add_config_option, facade

HELP = "restart one replica (SNAME) or every replica of APP"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("restart", help=HELP, description=HELP)
    parser.add_argument("app")
    parser.add_argument("sname", nargs="?")
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    snames = facade(args).restart(args.app, args.sname, actor="cli")
    print(f"restarting {', '.join(snames) if snames else 'nothing (no replica runs)'}")
    return 0
