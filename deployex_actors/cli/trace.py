"""`deployex trace APP SNAME 'mod:fun/arity'`: calls of a function on a replica's node, live.

The node's tracer enforces the limits itself: it stops after --max messages (100; at most
10 000), after --seconds (30), above --rate messages in one second (1000), when you press
Ctrl-C, and when DeployEx's connection to the node goes away. Every trace is journaled.
"""

from __future__ import annotations

import argparse
import datetime
import time

from deployex_actors.cli.attach import add_config_option, facade
from deployex_actors.core.tracing import MAX_DEFAULT, RATE_DEFAULT, SECONDS_DEFAULT, trace_spec

HELP = "trace calls of module:function/arity on a replica's node, with limits"
POLL_S = 0.5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("trace", help=HELP, description=__doc__)
    parser.add_argument("app")
    parser.add_argument("sname")
    parser.add_argument("target", help="module:function/arity (arity may be _)")
    parser.add_argument("--max", type=int, default=MAX_DEFAULT, help="messages (100)")
    parser.add_argument("--seconds", type=int, default=SECONDS_DEFAULT, help="duration (30)")
    parser.add_argument("--rate", type=int, default=RATE_DEFAULT, help="messages/s (1000)")
    parser.add_argument("--returns", action="store_true", help="also trace return values")
    parser.add_argument("--match", help="only calls whose arguments match, e.g. '[_, 42]'")
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    spec = trace_spec(args.target, args.max, args.seconds, args.rate, args.returns, args.match)
    dx = facade(args)

    def call(name: str, *more: object) -> dict:
        return dx.observe(args.app, args.sname, name, *more, actor="cli")

    tracer = call("trace_start", spec)
    print(f"tracing {spec.target} on {args.sname} (max {spec.max}, {spec.seconds} s, "
          f"{spec.rate}/s); Ctrl-C stops", flush=True)  # fmt: skip
    try:
        while True:
            report = call("trace_fetch", tracer)
            show(report)
            if report.get("status") != "running":
                break
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        report = call("trace_stop", tracer)
        show(report)
    print(f"trace stopped: {report.get('reason')}, {report.get('count')} message(s)")
    return 0


def show(report: dict) -> None:
    for event in report.get("events", []):
        at = datetime.datetime.fromtimestamp(event["at_ms"] / 1000)
        text = event["text"].decode(errors="replace")
        print(f"{at:%H:%M:%S.%f}"[:-3] + f" {event['pid'].decode()} {event['kind']} {text}",
              flush=True)  # fmt: skip
