"""`deployex shell`: a Python REPL attached to the running DeployEx, with the facade as `dx`."""

from __future__ import annotations

import argparse
import code

from deployex_actors.cli.attach import add_config_option, facade

HELP = "open a Python shell attached to the running DeployEx (the facade is `dx`)"
BANNER = """DeployEx admin shell, attached on 127.0.0.1:{port}. `dx` is the facade:
  dx.status()                     apps and replicas
  dx.versions(app)                deployment history
  dx.events(app=None, kind=None)  the event journal
  dx.restart(app, sname=None)     forced restart of a replica, or of every replica of app
  dx.full_restart(app)            replace every replica one at a time (fresh snames)
  dx.set_mode(app, "1.2.3"|None)  pin a version (manual mode), or None to follow current.json
  dx.ghosts(app) / dx.unghost(app, version=None)
  dx.metrics(target, since=0)     samples of "host", "deployex" or an sname
  dx.latest_metrics()             the newest sample of every target
  dx.restart_deployex()           restart DeployEx itself (replicas keep running)
  dx.ping()                       is DeployEx answering?
Leave with Ctrl-D; DeployEx keeps running."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("shell", help=HELP, description=HELP)
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    dx = facade(args)
    code.interact(banner=BANNER.format(port=dx.port), local={"dx": dx}, exitmsg="")
    return 0
