"""`deployex top`: a refreshing table of the replicas and their usage (like `pm2 monit`)."""

from __future__ import annotations

import argparse
import sys
import threading

from deployex_actors.cli.attach import add_config_option, facade
from deployex_actors.core import thresholds
from deployex_actors.core.metrics import HOST, Sample
from deployex_actors.core.status import DeployexSnapshot

HELP = "show replicas with CPU, memory and BEAM usage, refreshing (--once: one snapshot)"
CLEAR = "\x1b[H\x1b[2J"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("top", help=HELP, description=HELP)
    parser.add_argument("--once", action="store_true", help="print one snapshot and exit")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    dx = facade(args)
    stop = threading.Event()
    while True:
        table = render(dx.status(), dx.latest_metrics())
        if args.once or not sys.stdout.isatty():
            print(table)
            if args.once:
                return 0
        else:
            print(CLEAR + table, flush=True)
        try:
            if stop.wait(args.interval):
                return 0
        except KeyboardInterrupt:
            return 0


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**20:.0f}M"


def _pct(current: float | None, limit: float | None) -> str:
    value = thresholds.percent(current, limit)
    return "-" if value is None else f"{value}%"


def render(snapshot: DeployexSnapshot, latest: dict[str, Sample | None]) -> str:
    host = latest.get(HOST)
    header = f"DeployEx {snapshot.version} on {snapshot.host}"
    if host is not None:
        v = host.values
        header += (
            f"   cpu {v.get('cpu_percent', 0):.0f}%   memory {v.get('memory_percent', 0):.0f}% of "
            f"{_mib(v.get('memory_total'))}   load {v.get('load1', 0):.2f}"
        )
    lines = [header, ""]
    lines.append(
        f"{'APP':<14} {'SNAME':<20} {'STATUS':<12} {'VERSION':<9} {'CPU':>5} {'RSS':>6} "
        f"{'BEAM':>6} {'PROC':>5} {'PORT':>5} {'ATOM':>5} {'CRASH':>5} {'FORCED':>6}"
    )
    for app in snapshot.apps:
        for r in app.replicas:
            sample = latest.get(r.sname)
            v = sample.values if sample else {}
            cpu = v.get("cpu_percent")
            lines.append(
                f"{app.app:<14} {r.sname:<20} {r.status:<12} {r.version:<9} "
                f"{'-' if cpu is None else f'{cpu:.0f}%':>5} {_mib(v.get('rss')):>6} "
                f"{_mib(v.get('beam_memory')):>6} "
                f"{_pct(v.get('process_count'), v.get('process_limit')):>5} "
                f"{_pct(v.get('port_count'), v.get('port_limit')):>5} "
                f"{_pct(v.get('atom_count'), v.get('atom_limit')):>5} "
                f"{r.crash_restarts:>5} {r.forced_restarts:>6}"
            )
    return "\n".join(lines)
