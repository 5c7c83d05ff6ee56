"""Each language's fixture release, started by `beam.launch` as DeployEx starts replicas, and
reached through the pure-Python distribution client: rpc, stats, TLS, remote shell."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from deployex_actors.beam import Atom, connect
from deployex_actors.beam.launch import remote_shell_command
from deployex_actors.beam.terms import text
from deployex_actors.errors import HandshakeFailed
from tests.beam_fixtures import LANGUAGES, NodeLauncher, wait_for_banner
from tests.test_beam_link import make_certificates

pytestmark = pytest.mark.slow
SERVER_MODULE = {
    "myerlangapp": "myerlangapp_server",
    "myelixirapp": "Elixir.Myelixirapp.Server",
    "mygleamapp": "mygleamapp",
}


@pytest.mark.parametrize("app", sorted(LANGUAGES))
def test_each_fixture_kind_answers_rpc_and_reports_sane_stats(
    app: str, beam_nodes: NodeLauncher
) -> None:
    node = beam_nodes.start(app, "0.1.0")
    wait_for_banner(node, f"{app} 0.1.0\n")
    with connect(node.spec.node, node.spec.cookie) as link:
        assert link.ping() > 0
        info = link.rpc(SERVER_MODULE[app], "info", [])
        assert text(info[Atom("version")]) == "0.1.0"
        assert int(text(info[Atom("os_pid")])) == node.proc.pid  # the Popen pid is the beam
        stats = link.stats()
        for count, limit in (
            (stats.process_count, stats.process_limit),
            (stats.port_count, stats.port_limit),
            (stats.atom_count, stats.atom_limit),
        ):
            assert 0 < count < limit
        assert stats.memory_total > 1_000_000


@pytest.mark.parametrize("app", sorted(LANGUAGES))
def test_each_fixture_kind_runs_with_mutual_tls_distribution(
    app: str, beam_nodes: NodeLauncher, tmp_path: Path
) -> None:
    tls = make_certificates(tmp_path / "certs", "deployex")
    optfile = tmp_path / "inet_tls.conf"
    optfile.write_text(tls.ssl_dist_optfile())
    node = beam_nodes.start(app, "0.1.0", tls_optfile=optfile)
    wait_for_banner(node, f"{app} 0.1.0\n")
    with connect(node.spec.node, node.spec.cookie, tls=tls, timeout=10) as link:
        assert link.tls
        assert link.rpc("erlang", "node", []) == node.spec.node
    foreign = make_certificates(tmp_path / "foreign", "intruder")
    with pytest.raises(HandshakeFailed, match="TLS"):
        connect(node.spec.node, node.spec.cookie, tls=foreign, timeout=5)


@pytest.mark.parametrize("app", sorted(LANGUAGES))
def test_remote_shell_command_reaches_the_running_replica(
    app: str, beam_nodes: NodeLauncher
) -> None:
    node = beam_nodes.start(app, "0.1.0")
    wait_for_banner(node, f"{app} 0.1.0\n")
    command = remote_shell_command(node.spec.replica)
    # An answer only the attached node can give: a failed attach also prints the node's name.
    expression = "{node(), 6 * 7}" + ("" if LANGUAGES[app] == "elixir" else ".")
    # {'n@h',42} or {n@h,42} (Erlang), {:"n@h", 42} or {:n@h, 42} (Elixir)
    answer = re.compile(r"\{:?['\"]?" + re.escape(node.spec.node) + r"['\"]?, ?42\}")
    output = _interact(command.argv, command.env, command.cwd, expression, answer)
    assert answer.search(output), output


def _interact(argv: list[str], env: dict, cwd: Path, line: str, expect: re.Pattern) -> str:
    """Run an interactive shell on a pty, type `line`, return what it printed (until `expect`
    appears in the answer), then end the shell's process group (never the replica)."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdin=secondary, stdout=secondary, stderr=secondary,
        start_new_session=True,
    )  # fmt: skip
    os.close(secondary)
    seen = b""
    typed = False
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(main, 4096)
                except OSError:
                    break
            if not typed and (b">" in seen):
                os.write(main, line.encode() + b"\r")
                typed = True
            elif typed and expect.search(seen.decode(errors="replace")):
                break
        return seen.decode(errors="replace")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        os.close(main)


def test_tls_flags_are_where_each_language_reads_them(tmp_path: Path) -> None:
    from deployex_actors.beam.launch import Replica, start_command

    optfile = tmp_path / "inet_tls.conf"
    base = Replica("a", "erlang", "a-000001", tmp_path, "c", {"PORT": 1}, tls_optfile=optfile)
    flags = f"-proto_dist inet_tls -ssl_dist_optfile {optfile}"
    assert start_command(base, {}).env["RELEASE_SSL_OPTIONS"] == flags
    assert start_command(replace(base, language="elixir"), {}).env["ELIXIR_ERL_OPTIONS"] == flags
    gleam = start_command(replace(base, language="gleam"), {})
    assert gleam.argv[-4:] == ["-proto_dist", "inet_tls", "-ssl_dist_optfile", str(optfile)]
