"""`python -m dashboards.serve --config <yaml>`: the dashboard as its own process.

The Web actor runs this as a supervised child with the secrets in the environment (see
dashboards.settings). It attaches to the running actor system (never starts one), serves on
the YAML `port`, and keeps serving, with a "DeployEx not answering" banner, while the actor
system is unreachable. SIGTERM or SIGINT stops it cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from tornado.ioloop import PeriodicCallback

from dashboards.auth import SessionStore
from dashboards.context import DashboardContext
from dashboards.feed import Feed
from dashboards.gateway import Gateway
from dashboards.settings import Settings, settings_from_env
from dashboards.terminals import HostTmux, Terminals
from deployex_actors.catalog import Catalog
from deployex_actors.config import load_config
from deployex_actors.errors import DeployexError

log = logging.getLogger("deployex.dashboard")
LOG_TICK_MS = 500
TERMINAL_SWEEP_MS = 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.serve", description=__doc__)
    parser.add_argument("--config", help="the DeployEx YAML (default: DEPLOYEX_CONFIG_YAML_PATH)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = settings_from_env(load_config(args.config), os.environ)
    except DeployexError as exc:
        print(f"deployex dashboard: error: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(settings))


def build_context(settings: Settings) -> DashboardContext:
    gateway = Gateway(settings.config)
    feed = Feed(
        gateway,
        settings.config.metrics_retention_time_ms / 1000,
        settings.config.watchdog_interval_ms / 1000,
    )
    config = settings.config
    terminals = Terminals(
        config.terminals_max,
        config.terminal_idle_timeout_ms / 1000,
        HostTmux(Catalog.from_config(config).var_path / "terminals"),
        enabled=config.terminals,
    )
    sessions = SessionStore(settings.session_ttl_s)
    return DashboardContext(settings, gateway, feed, sessions, terminals=terminals)


async def serve(settings: Settings) -> int:
    from dashboards.app import make_server  # Panel loads here, never in the actor system

    context = build_context(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    server = make_server(context)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server.start()
    context.feed.start()
    tails = PeriodicCallback(context.logs.tick, LOG_TICK_MS)
    tails.start()
    if left := context.terminals.tmux.kill_leftovers():
        log.warning("%d host terminal(s) of an earlier dashboard were still running: ended", left)
    sweep = PeriodicCallback(context.sweep_terminals, TERMINAL_SWEEP_MS)
    sweep.start()
    log.info("dashboard on http://%s:%d (%r)", settings.host, settings.port, settings)
    try:
        await stop.wait()
    finally:
        sweep.stop()
        context.terminals.close_all("the dashboard stopped")
        tails.stop()
        await context.feed.stop()
        server.stop()
        context.gateway.close()
    log.info("dashboard stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
