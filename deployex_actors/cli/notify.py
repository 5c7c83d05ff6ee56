"""`deployex notify test [CHANNEL]`: send a test notification and say what each channel answered."""

from __future__ import annotations

import argparse

from deployex_actors.cli.attach import add_config_option, facade

HELP = "notification channels: send a test notification"
TEST_HELP = (
    "send a `test` notification to CHANNEL (its number in `notifications:`, from 1, or an "
    "adapter name), or to every enabled channel; exit 1 if any failed"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("notify", help=HELP, description=HELP)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    test = actions.add_parser("test", help=TEST_HELP, description=TEST_HELP)
    test.add_argument("channel", nargs="?", metavar="CHANNEL")
    add_config_option(test)
    test.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    results = facade(args).notify_test(args.channel)
    for result in results:
        outcome = "delivered" if result.delivered else "failed"
        print(f"{result.label:<14} {outcome:<9} {result.detail}")
    return 0 if all(r.delivered for r in results) else 1
