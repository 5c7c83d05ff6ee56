"""`deployex events`: the event journal (deployments, crashes, restarts, operator actions)."""

from __future__ import annotations

import argparse

from deployex_actors.cli.attach import add_config_option, facade

HELP = "show the event journal, newest first"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("events", help=HELP, description=HELP)
    parser.add_argument("--app", help="only this app")
    parser.add_argument("--kind", help="only this kind (crash, deploy, forced_restart, ...)")
    parser.add_argument("--limit", type=int, default=50)
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    for event in facade(args).events(args.app, args.kind, args.limit):
        where = " ".join(x for x in (event.app, event.sname) if x) or "deployex"
        print(f"{event.at:%Y-%m-%d %H:%M:%S}  {event.kind:<18} {where:<28} {event.message}"
              f"  [{event.actor}]")  # fmt: skip
    return 0
