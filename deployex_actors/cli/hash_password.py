"""`deployex hash-password`: make the bcrypt hash for DEPLOYEX_ADMIN_HASHED_PASSWORD."""

from __future__ import annotations

import argparse
import getpass
import sys

import bcrypt

from deployex_actors.errors import DeployexError

HELP = "print the bcrypt hash of an admin password (prompted without echo, or read from stdin)"
BCRYPT_MAX_BYTES = 72


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("hash-password", help=HELP, description=HELP)
    parser.add_argument("--rounds", type=int, default=12, help="bcrypt cost factor (default 12)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    password = _read_password()
    print(hash_password(password, rounds=args.rounds))
    return 0


def hash_password(password: str, rounds: int = 12) -> str:
    encoded = password.encode("utf-8")
    if not encoded:
        raise DeployexError("the password is empty")
    if len(encoded) > BCRYPT_MAX_BYTES:
        raise DeployexError(
            f"the password is {len(encoded)} bytes; bcrypt uses at most {BCRYPT_MAX_BYTES}"
        )
    if not 4 <= rounds <= 31:
        raise DeployexError(f"--rounds {rounds} is not between 4 and 31")
    return bcrypt.hashpw(encoded, bcrypt.gensalt(rounds)).decode("ascii")


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Admin password: ")
    if getpass.getpass("Again: ") != first:
        raise DeployexError("the two passwords differ")
    return first
