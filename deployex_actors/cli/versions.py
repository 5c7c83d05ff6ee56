"""`deployex versions APP`: the app's deployment history, newest first."""

from __future__ import annotations

import argparse

from deployex_actors.cli.attach import add_config_option, facade

HELP = "show the deployment history of APP"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("versions", help=HELP, description=HELP)
    parser.add_argument("app")
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for record in facade(args).versions(args.app):
        print(
            f"{record.at:%Y-%m-%d %H:%M:%S}  {record.version:<12} {record.sname:<20} {record.kind}"
        )
    return 0
