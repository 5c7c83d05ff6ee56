"""`deployex certs generate DIR`: the CA and node certificate for mutual-TLS distribution."""

from __future__ import annotations

import argparse
from pathlib import Path

# not deployex_actors.certs here: it loads cryptography (~10 MB), and every `deployex` command,
# `deployex run` too, imports this module to build its parser
from deployex_actors.beam.tls import CA_DAYS, NODE_DAYS

HELP = "make certificates for mutual-TLS Erlang distribution (see docs/mtls.md)"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("certs", help=HELP, description=HELP)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate",
        help="write ca.crt, ca.key, deployex.crt and deployex.key into DIR",
        description="Write a CA (ca.crt, ca.key) and the node certificate DeployEx and its "
        "replicas share (deployex.crt, deployex.key) into DIR, the folder to give as "
        "otp_tls_certificates or DEPLOYEX_OTP_TLS_CERT_PATH. Keys: EC P-256, mode 0600.",
    )
    generate.add_argument("folder", type=Path, metavar="DIR")
    generate.add_argument(
        "--days", type=int, default=NODE_DAYS,
        help=f"validity of the node certificate (default {NODE_DAYS})",
    )  # fmt: skip
    generate.add_argument(
        "--ca-days", type=int, default=CA_DAYS,
        help=f"validity of the CA (default {CA_DAYS})",
    )  # fmt: skip
    generate.add_argument(
        "--name", action="append", default=[], metavar="NAME",
        help="another host name or IP address for the certificate's SAN (repeatable); "
        "always included: this host's short name and FQDN, localhost and 127.0.0.1",
    )  # fmt: skip
    mode = generate.add_mutually_exclusive_group()
    mode.add_argument(
        "--renew", action="store_true",
        help="keep the CA found in DIR; replace only the node key and certificate",
    )  # fmt: skip
    mode.add_argument(
        "--force", action="store_true", help="replace certificates and keys already in DIR"
    )
    generate.set_defaults(run=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    from deployex_actors import certs

    plan = certs.Plan(
        folder=args.folder,
        names=tuple(dict.fromkeys([*certs.host_names(), *args.name])),
        days=args.days,
        ca_days=args.ca_days,
        renew=args.renew,
        force=args.force,
    )
    written = certs.generate(plan, progress=lambda line: print(line, flush=True))
    print(f"done: {len(written)} files in {args.folder}; set otp_tls_certificates (or "
          f"DEPLOYEX_OTP_TLS_CERT_PATH) to {args.folder.resolve()}")  # fmt: skip
    return 0
