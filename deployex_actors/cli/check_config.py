"""`deployex check-config`: validate the YAML and print what DeployEx will do with it."""

from __future__ import annotations

import argparse

from deployex_actors.config import Config, load_config

HELP = "validate a configuration file and print a summary"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check-config", help=HELP, description=HELP)
    parser.add_argument("path", nargs="?", help="YAML file (default: as for --config)")
    parser.add_argument("--config", dest="config_option", metavar="YAML", help=argparse.SUPPRESS)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.path or args.config_option)  # logs each warning
    print(summary(config))
    return 0


def summary(config: Config) -> str:
    lines = [
        f"configuration {config.source}: ok",
        f"  account       {config.account_name}"
        f" (host {config.hostname}, dashboard port {config.port})",
        f"  releases      {config.release_adapter} {config.release_bucket}"
        + (f" via {config.release_endpoint_url}" if config.release_endpoint_url else ""),
        f"  secrets       {config.secrets_adapter}"
        + (f" {config.secrets_path}" if config.secrets_path else ""),
        f"  state         {config.var_path}",
        f"  distribution  {_distribution(config)}",
        f"  logs          {config.log_path} (replicas: {config.monitored_app_log_path})",
        f"  host watch    {_monitoring(config.monitoring)}",
        f"  applications  {len(config.applications)}",
    ]
    for app in config.applications:
        ports = (
            ", ".join(f"{p.key} {p.base}..{p.base + app.replicas}" for p in app.replica_ports)
            or "no ports"
        )
        lines.append(
            f"    {app.name:<16} {app.language:<7} {app.replicas} replicas, {ports}; "
            f"watch {_monitoring(app.monitoring)}"
        )
    return "\n".join(lines)


def _distribution(config: Config) -> str:
    if config.otp_tls_certificates:
        return f"mutual TLS, certificates in {config.otp_tls_certificates}"
    return "plain TCP (the cookie only)"


def _monitoring(entries: tuple) -> str:
    if not entries:
        return "nothing"
    return ", ".join(
        f"{m.type} {m.warning_threshold_percent}/{m.restart_threshold_percent}%"
        + ("" if m.enable_restart else " (no restart)")
        for m in entries
    )
