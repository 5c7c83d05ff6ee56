"""`deployex status`: every app and replica of the running DeployEx."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from deployex_actors.cli.attach import add_config_option, facade
from deployex_actors.core.status import DeployexSnapshot

HELP = "show the status of every app and replica"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("status", help=HELP, description=HELP)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    snapshot = facade(args).status()
    print(json.dumps(asdict(snapshot), indent=2) if args.json else render(snapshot))
    return 0


def render(snapshot: DeployexSnapshot) -> str:
    now = time.time()
    lines = [
        f"DeployEx {snapshot.version} on {snapshot.host} (pid {snapshot.pid}, "
        f"up {_duration(now - snapshot.started_at)})"
    ]
    if snapshot.state_error:
        lines.append(f"error: {snapshot.state_error}")
    for app in snapshot.apps:
        wanted = f"{len(app.replicas)}/{app.replicas_wanted} replicas"
        lines.append(f"{app.app} ({app.language}): {wanted}, desired {app.desired_version or '-'}")
        if app.error:
            lines.append(f"  error: {app.error}")
        for r in app.replicas:
            ports = ",".join(f"{k}={v}" for k, v in r.ports.items()) or "-"
            uptime = r.uptime_s(now)
            lines.append(
                f"  {r.sname:<20} {r.status:<12} {r.version:<10} pid {r.pid or '-':<8} "
                f"{ports:<12} up {_duration(uptime) if uptime is not None else '-':<8} "
                f"crashes {r.crash_restarts} forced {r.forced_restarts} otp {r.otp}"
                + (" (mTLS)" if r.mtls else "")
            )
            if r.last_error:
                lines.append(f"    last error: {r.last_error}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    rest = int(seconds)
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, rest = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"
