"""`deployex bucket ...`: publish and inspect releases in the configured bucket.

`publish` does what a CI pipeline does: upload the tarball, then point current.json at it, so
that a DeployEx polling the bucket never sees a version whose tarball is not there yet.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from deployex_actors import catalog
from deployex_actors.cli.attach import add_config_option
from deployex_actors.cli.progress import Progress
from deployex_actors.config import load_config

HELP = "publish and inspect releases in the release bucket"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bucket", help=HELP, description=HELP)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    publish = actions.add_parser(
        "publish", help="upload a release tarball, then make it the current version"
    )
    publish.add_argument("app")
    publish.add_argument("version")
    publish.add_argument("tarball", type=Path)
    publish.add_argument(
        "--pre-command",
        action="append",
        default=[],
        metavar="CMD",
        help="command run before the release starts, e.g. 'eval MyApp.Migrator.migrate' "
        "(repeat for several, in order)",
    )
    publish.add_argument("--hash", help="hash recorded in current.json (default: tarball sha256)")
    add_config_option(publish)
    publish.set_defaults(run=run_publish)

    current = actions.add_parser("current", help="print the app's current.json")
    current.add_argument("app")
    add_config_option(current)
    current.set_defaults(run=run_current)

    versions = actions.add_parser("versions", help="list the versions present in the bucket")
    versions.add_argument("app")
    add_config_option(versions)
    versions.set_defaults(run=run_versions)


def _store(args: argparse.Namespace):
    from deployex_actors.releases import release_store

    config = load_config(args.config)
    return config, release_store(config)


def run_publish(args: argparse.Namespace) -> int:
    config, store = _store(args)
    progress = Progress(f"uploading {args.tarball.name} to {store.description}")
    try:
        release = store.publish(args.app, args.version, args.tarball,
                                pre_commands=args.pre_command, hash=args.hash,
                                progress=progress)  # fmt: skip
    finally:
        progress.finish()
    key = catalog.current_json_key(args.app, config.account_name)
    print(f"published {args.app} {release.version} to {store.description} ({key})")
    return 0


def run_current(args: argparse.Namespace) -> int:
    _, store = _store(args)
    release = store.read_current(args.app)
    document = {"version": release.version, "hash": release.hash}
    document["pre_commands"] = list(release.pre_commands)
    print(json.dumps(document, indent=2))
    return 0


def run_versions(args: argparse.Namespace) -> int:
    _, store = _store(args)
    for version in store.list_versions(args.app):
        print(version)
    return 0
