"""How each language's replica is started, and how a remote shell reaches it.

    elixir  current/bin/{app} start         RELEASE_NODE, RELEASE_DISTRIBUTION=sname,
                                            RELEASE_COOKIE; TLS flags in ELIXIR_ERL_OPTIONS
    erlang  current/bin/{app} foreground    RELX_REPLACE_OS_VARS=true, RELEASE_NODE,
                                            RELEASE_COOKIE, RELEASE_SSL_OPTIONS (vm.args
                                            placeholders ${RELEASE_NODE} ... expand them)
    gleam   erl -pa current/erlang-shipment/*/ebin -eval '{app}@@main:run({app})'
                -noshell -sname {sname} -setcookie {cookie} [TLS flags]

Every replica, pre-command and remote shell gets a defined environment, never DeployEx's own
(which holds its secrets and cloud credentials): from DeployEx's environment only the base
allow-list below and the names the app lists in `env_passthrough`; then the YAML `env`, the port
variables and the language's own variables above.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deployex_actors.catalog import node_name
from deployex_actors.errors import DeployexError

# What any program expects to find (erlexec refuses to start without HOME); nothing of DeployEx.
BASE_NAMES = frozenset(
    ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR")
)
BASE_PREFIXES = ("LC_",)
GLEAM_SHIPMENT = "erlang-shipment"


@dataclass(frozen=True)
class Replica:
    """Everything needed to start one replica of an app from its unpacked release."""

    app: str
    language: str
    sname: str
    release_dir: Path  # the replica's current/ folder
    cookie: str
    ports: Mapping[str, int] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    tls_optfile: Path | None = None  # -ssl_dist_optfile, when distribution uses mutual TLS
    passthrough: tuple[str, ...] = ()  # names of DeployEx's own variables handed on, on purpose

    @property
    def node(self) -> str:
        return node_name(self.sname)

    @property
    def tls_flags(self) -> list[str]:
        if self.tls_optfile is None:
            return []
        return ["-proto_dist", "inet_tls", "-ssl_dist_optfile", str(self.tls_optfile)]


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def allowed_environment(
    base: Mapping[str, str], passthrough: tuple[str, ...] = ()
) -> dict[str, str]:
    """What a replica may see of DeployEx's environment `base`: the allow-list and `passthrough`."""
    return {
        key: value
        for key, value in base.items()
        if key in BASE_NAMES or key.startswith(BASE_PREFIXES) or key in passthrough
    }


def _replica_environment(replica: Replica, base: Mapping[str, str]) -> dict[str, str]:
    env = allowed_environment(base, replica.passthrough)
    env.update(replica.env)
    env.update({key: str(port) for key, port in replica.ports.items()})
    return env


def executable(replica: Replica) -> Path:
    """The file or folder that must exist after unpacking for the replica to start."""
    if replica.language == "gleam":
        return replica.release_dir / GLEAM_SHIPMENT
    return replica.release_dir / "bin" / replica.app


def start_command(replica: Replica, base_env: Mapping[str, str] | None = None) -> Command:
    """argv, environment and working folder that start the replica in the foreground."""
    env = _replica_environment(replica, os.environ if base_env is None else base_env)
    flags = " ".join(replica.tls_flags)
    if replica.language == "elixir":
        env.update(
            RELEASE_NODE=replica.sname,
            RELEASE_DISTRIBUTION="sname",
            RELEASE_COOKIE=replica.cookie,
        )
        if flags:
            env["ELIXIR_ERL_OPTIONS"] = flags
        argv = [str(executable(replica)), "start"]
    elif replica.language == "erlang":
        env.update(
            RELX_REPLACE_OS_VARS="true",
            RELEASE_NODE=replica.sname,
            RELEASE_COOKIE=replica.cookie,
            RELEASE_SSL_OPTIONS=flags,
        )
        argv = [str(executable(replica)), "foreground"]
    elif replica.language == "gleam":
        argv = [
            _system_erl(),
            "-pa",
            *map(str, _gleam_code_paths(replica)),
            "-eval",
            f"{replica.app}@@main:run({replica.app})",
            "-noshell",
            "-sname",
            replica.sname,
            "-setcookie",
            replica.cookie,
            *replica.tls_flags,
        ]
    else:
        raise DeployexError(f"language {replica.language!r} is not supported")
    return Command(argv, env, replica.release_dir)


def remote_shell_command(replica: Replica, base_env: Mapping[str, str] | None = None) -> Command:
    """An interactive shell attached to the running replica (needs a terminal)."""
    env = _replica_environment(replica, os.environ if base_env is None else base_env)
    if replica.language == "elixir":
        env.update(
            RELEASE_NODE=replica.sname,
            RELEASE_DISTRIBUTION="sname",
            RELEASE_COOKIE=replica.cookie,
        )
        if replica.tls_flags:
            env["ELIXIR_ERL_OPTIONS"] = " ".join(replica.tls_flags)
        return Command([str(executable(replica)), "remote"], env, replica.release_dir)
    if replica.language == "erlang":
        erl, boot_args = _release_erl(replica), _release_boot_args(replica)
    else:
        erl, boot_args = _system_erl(), []
    argv = [
        erl,
        *boot_args,
        "-remsh",
        replica.node,
        "-sname",
        f"remsh{secrets.token_hex(3)}",
        "-hidden",
        "-setcookie",
        replica.cookie,
        *replica.tls_flags,
    ]
    return Command(argv, env, replica.release_dir)


def _gleam_code_paths(replica: Replica) -> list[Path]:
    shipment = replica.release_dir / GLEAM_SHIPMENT
    return sorted(p for p in shipment.glob("*/ebin") if p.is_dir())


def _system_erl() -> str:
    erl = shutil.which("erl")
    if erl is None:
        raise DeployexError("gleam replicas need Erlang's `erl` on PATH, and none was found")
    return erl


def _release_erl(replica: Replica) -> str:
    found = sorted(replica.release_dir.glob("erts-*/bin/erl"))
    return str(found[-1]) if found else _system_erl()


def _release_boot_args(replica: Replica) -> list[str]:
    """A release's own erl looks for bin/start.boot, which a release does not have: boot the
    plain system it ships (relx's no_dot_erlang, which its own consoles use)."""
    boot = replica.release_dir / "bin" / "no_dot_erlang"
    return ["-boot", str(boot)] if boot.with_suffix(".boot").exists() else []


def pre_command(replica: Replica, text: str, base_env: Mapping[str, str] | None = None) -> Command:
    """What a `pre_commands` entry of current.json runs, before the replica starts.

    elixir: `bin/{app} <text>`, as upstream (e.g. `eval MyApp.Release.migrate`);
    erlang, gleam: `eval EXPR` evaluates EXPR in a fresh VM that has the release's code on its
    path (the release's own ERTS for erlang, the system `erl` for gleam) and halts; any other
    text is a program of the release (e.g. `bin/migrate --all`) with its arguments.
    All of them get the replica's environment and run in its release folder.
    """
    env = _replica_environment(replica, os.environ if base_env is None else base_env)
    words = shlex.split(text)
    if not words:
        raise DeployexError("empty pre-command")
    if replica.language == "elixir":
        env.update(RELEASE_NODE=f"pre{secrets.token_hex(3)}", RELEASE_COOKIE=replica.cookie)
        env["RELEASE_DISTRIBUTION"] = "none"
        return Command([str(executable(replica)), *words], env, replica.release_dir)
    if words[0] == "eval":
        expression = text.strip()[len("eval") :].strip().rstrip(".")
        if replica.language == "erlang":
            root = replica.release_dir
            erl = _release_erl(replica)
            paths = sorted(map(str, root.glob("lib/*/ebin")))
            boot_args = _release_boot_args(replica)
        else:
            erl, paths, boot_args = _system_erl(), list(map(str, _gleam_code_paths(replica))), []
        argv = [erl, *boot_args, "-noshell", "-pa", *paths, "-eval", f"{expression}, halt()."]
        return Command(argv, env, replica.release_dir)
    program = replica.release_dir / words[0]
    return Command([str(program), *words[1:]], env, replica.release_dir)
