"""The `deployex` command line.

Each command lives in its own module with `register(subparsers)` and `run(args) -> int`, so adding
a command is adding a file and one line in COMMANDS. Failures print one line on stderr and exit
non-zero; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from deployex_actors import __version__
from deployex_actors.cli import (
    bucket,
    certs,
    check_config,
    config,
    events,
    hash_password,
    logs,
    notify,
    observer,
    restart,
    rollout_commands,
    run,
    shell,
    status,
    top,
    trace,
    upgrade,
    versions,
)
from deployex_actors.errors import DeployexError

COMMANDS = (
    run,
    status,
    top,
    restart,
    rollout_commands,
    versions,
    events,
    logs,
    notify,
    observer,
    trace,
    shell,
    check_config,
    config,
    hash_password,
    bucket,
    upgrade,
    certs,
)
PROG = "deployex"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Deployment supervisor for BEAM applications (Elixir, Erlang, Gleam).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and debug logs on failure"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def fail(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format=f"{PROG}: %(levelname)s: %(message)s",
    )
    try:
        return args.run(args)
    except DeployexError as exc:
        if args.debug:
            raise
        for line in getattr(exc, "problems", None) or [str(exc)]:
            fail(line)
        return 1
    except KeyboardInterrupt:
        fail("interrupted")
        return 130
    except Exception as exc:
        if args.debug:
            raise
        fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return 1
