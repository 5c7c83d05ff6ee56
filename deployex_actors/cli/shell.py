"""`deployex shell`: a Python REPL attached to the running DeployEx, with the facade as `dx`."""

from __future__ import annotations

import argparse
import code

HELP = "open a Python shell attached to the running DeployEx (the facade is `dx`)"
BANNER = """DeployEx admin shell, attached on 127.0.0.1:{port}. `dx` is the facade:
  dx.status()                     apps and replicas
  dx.versions(app)                deployment history
  dx.events(app=None, kind=None)  the event journal
  dx.restart(app, sname=None)     forced restart of a replica, or of every replica of app
  dx.ping()                       is DeployEx answering?
Leave with Ctrl-D; DeployEx keeps running."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from deployex_actors.cli import add_config_option

    parser = subparsers.add_parser("shell", help=HELP, description=HELP)
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from deployex_actors.client import DeployEx

    dx = DeployEx.attach(args.config)
    code.interact(banner=BANNER.format(port=dx.port), local={"dx": dx}, exitmsg="")
    return 0
