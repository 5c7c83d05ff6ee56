"""`deployex run`: start DeployEx in the foreground (the service)."""

from __future__ import annotations

import argparse

from deployex_actors.cli.attach import add_config_option

HELP = "run DeployEx in the foreground until SIGTERM/SIGINT"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help=HELP, description=HELP)
    add_config_option(parser)
    parser.add_argument(
        "--keep-replicas",
        action="store_true",
        help="leave the replicas running on exit (the next `deployex run` adopts them)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from deployex_actors.service import run as serve

    return serve(args.config, keep_replicas=args.keep_replicas)
