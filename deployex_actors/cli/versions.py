"""`deployex versions APP`: the app's deployment history, newest first."""

from __future__ import annotations

import argparse

HELP = "show the deployment history of APP"


def register(subparsers: argparse._SubParsersAction) -> None:
    from deployex_actors.cli import add_config_option

    parser = subparsers.add_parser("versions", help=HELP, description=HELP)
    parser.add_argument("app")
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from deployex_actors.client import DeployEx

    for record in DeployEx.attach(args.config).versions(args.app):
        print(
            f"{record.at:%Y-%m-%d %H:%M:%S}  {record.version:<12} {record.sname:<20} {record.kind}"
        )
    return 0
