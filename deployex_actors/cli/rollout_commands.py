"""Rollout commands: `set-version`, `full-restart`, `ghosts`, `unghost`."""

from __future__ import annotations

import argparse

from deployex_actors.cli.attach import add_config_option, facade


def register(subparsers: argparse._SubParsersAction) -> None:
    pin = subparsers.add_parser(
        "set-version",
        help="pin APP to VERSION (manual mode), or `auto` to follow current.json again",
    )
    pin.add_argument("app")
    pin.add_argument("version", help="a version from the history or the bucket, or `auto`")
    add_config_option(pin)
    pin.set_defaults(run=run_set_version)

    full = subparsers.add_parser(
        "full-restart", help="replace every replica of APP one at a time (fresh snames)"
    )
    full.add_argument("app")
    add_config_option(full)
    full.set_defaults(run=run_full_restart)

    ghosts = subparsers.add_parser("ghosts", help="list the ghosted versions of APP")
    ghosts.add_argument("app")
    add_config_option(ghosts)
    ghosts.set_defaults(run=run_ghosts)

    unghost = subparsers.add_parser(
        "unghost", help="remove VERSION (or, without it, every version) from APP's ghosts"
    )
    unghost.add_argument("app")
    unghost.add_argument("version", nargs="?")
    add_config_option(unghost)
    unghost.set_defaults(run=run_unghost)


def run_set_version(args: argparse.Namespace) -> int:
    version = None if args.version == "auto" else args.version
    facade(args).set_mode(args.app, version, actor="cli")
    print(f"{args.app}: " + (f"pinned to {version}" if version else "following current.json"))
    return 0


def run_full_restart(args: argparse.Namespace) -> int:
    snames = facade(args).full_restart(args.app, actor="cli")
    print(f"{args.app}: replacing {len(snames)} replica(s) one at a time")
    return 0


def run_ghosts(args: argparse.Namespace) -> int:
    for ghost in facade(args).ghosts(args.app):
        print(f"{ghost.at:%Y-%m-%d %H:%M:%S}  {ghost.version:<12} {ghost.reason}")
    return 0


def run_unghost(args: argparse.Namespace) -> int:
    removed = facade(args).unghost(args.app, args.version, actor="cli")
    print(f"{args.app}: {removed} ghost(s) removed")
    return 0
