"""What the commands that talk to a running DeployEx share."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deployex_actors.client import DeployEx


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="YAML",
        help="configuration file (default: $DEPLOYEX_CONFIG_YAML_PATH, else config/local.yaml)",
    )


def facade(args: argparse.Namespace) -> DeployEx:
    from deployex_actors.client import DeployEx

    return DeployEx.attach(args.config)
