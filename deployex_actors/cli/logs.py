"""`deployex logs`: the log history of the replicas (running or gone) and of DeployEx."""

from __future__ import annotations

import argparse
import sys
import time

from deployex_actors.cli.attach import add_config_option, facade
from deployex_actors.core.log_history import (
    DEFAULT_LIMIT,
    DEPLOYEX_SERVICE,
    MAX_LIMIT,
    STREAMS,
    HistoryLine,
    HistoryResult,
    line_row,
    parse_duration_s,
)

HELP = "show the kept log lines of replicas (also crashed or retired ones) and of DeployEx"
FOLLOW_POLL_S = 1.0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "logs",
        help=HELP,
        description=f"{HELP}. APP 'deployex' shows DeployEx's own log. Output: TIME (UTC) SNAME "
        "STREAM LINE, oldest first.",
    )
    parser.add_argument("app", nargs="?", metavar="APP", help="only this app (or 'deployex')")
    parser.add_argument("sname", nargs="?", metavar="SNAME", help="only this replica")
    parser.add_argument("--since", default="15m", type=_duration,
                        help="how far back: 90s, 15m, 2h, 1d (default 15m)")  # fmt: skip
    parser.add_argument("--grep", metavar="TEXT", help="only lines containing TEXT (any case)")
    parser.add_argument("--stderr", action="store_true", help="only stderr lines")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep printing new lines until Ctrl-C")  # fmt: skip
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT,
                        help=f"at most this many lines, the newest (max {MAX_LIMIT})")  # fmt: skip
    add_config_option(parser)
    parser.set_defaults(run=run)


def _duration(text: str) -> float:
    try:
        return parse_duration_s(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    dx = facade(args)
    app, sname = args.app, args.sname
    if app == DEPLOYEX_SERVICE:
        app, sname = None, DEPLOYEX_SERVICE
    streams = ("stderr",) if args.stderr else STREAMS
    since = time.time() - args.since

    def query(after_id: int | None) -> HistoryResult:
        return dx.logs(app, sname, time.time() - since, None, args.grep, streams, args.limit,
                       after_id)  # fmt: skip

    result = query(None)
    _print(result.lines)
    if result.capped:
        print(f"deployex: the newest {result.limit} lines are shown, older ones matched too "
              "(narrow with --since/--grep or raise --limit)", file=sys.stderr)  # fmt: skip
    if not args.follow:
        return 0
    last = result.lines[-1].id if result.lines else 0
    try:
        while True:
            time.sleep(FOLLOW_POLL_S)  # the history is polled: nothing is pushed to a CLI
            result = query(last)
            _print(result.lines)
            if result.lines:
                last = result.lines[-1].id
    except KeyboardInterrupt:
        return 0


def _print(lines: tuple[HistoryLine, ...]) -> None:
    for line in lines:
        print(line_row(line), flush=True)
