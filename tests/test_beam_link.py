"""The hidden-node client against real `erl` nodes: handshake, rpc, ticks, failures, TLS."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from deployex_actors.beam import Atom, TlsOptions, connect
from deployex_actors.beam.link import NodeStats
from deployex_actors.errors import BadRpc, HandshakeFailed, NodeDown, NodeNotFound, RpcTimeout
from tests.beam_fixtures import wait_until
from tests.erl_nodes import erl_node, unique_sname

pytestmark = pytest.mark.slow


def test_rpc_ping_and_stats_over_one_connection(tmp_path: Path) -> None:
    with erl_node(tmp_path) as node, connect(node.node, node.cookie) as link:
        assert link.rpc("lists", "reverse", [[1, 2, 3]]) == [3, 2, 1]
        assert link.rpc("os", "getpid", []) == list(str(node.pid).encode())
        assert link.ping() > 0
        stats = link.stats()
        assert isinstance(stats, NodeStats)
        assert 0 < stats.process_count < stats.process_limit
        assert 0 < stats.port_count < stats.port_limit
        assert 0 < stats.atom_count < stats.atom_limit
        assert stats.memory_total > 1_000_000
        # hidden: the node does not list us among its visible peers
        assert link.rpc("erlang", "nodes", []) == []
        assert link.local_node in map(str, link.rpc("erlang", "nodes", [Atom("hidden")]))


def test_a_wrong_cookie_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    with erl_node(tmp_path) as node, pytest.raises(HandshakeFailed, match="cookie"):
        connect(node.node, "not-the-cookie")


def test_an_unregistered_node_is_reported_as_not_found() -> None:
    with pytest.raises(NodeNotFound, match="not registered"):
        connect(f"{unique_sname()}@{os.uname().nodename.split('.')[0]}", "cookie")


def test_node_killed_mid_call_fails_the_call_at_once(tmp_path: Path) -> None:
    downs: list[NodeDown] = []
    with erl_node(tmp_path) as node:
        link = connect(node.node, node.cookie, on_down=downs.append)
        pending = link.call_async("timer", "sleep", [60_000])
        os.kill(node.pid, signal.SIGKILL)
        with pytest.raises(NodeDown):
            pending.result(timeout=5)  # no hang: the socket closes with the process
        assert not link.alive
        wait_until(lambda: downs, 5, "on_down called")  # from the link's own thread
        assert node.node in str(downs[0])
        with pytest.raises(NodeDown):
            link.rpc("erlang", "node", [])


def freeze(pid: int) -> None:
    """SIGSTOP, and wait until it took: a request sent meanwhile could still be answered."""
    os.kill(pid, signal.SIGSTOP)
    wait_until(lambda: Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T",
               5, f"process {pid} stopped", interval_s=0.01)  # fmt: skip


def test_a_frozen_node_is_declared_down_within_the_tick_window(tmp_path: Path) -> None:
    with erl_node(tmp_path) as node:
        link = connect(node.node, node.cookie, tick_s=0.25)
        freeze(node.pid)  # alive but silent: only missing ticks reveal it
        try:
            started = time.monotonic()
            with pytest.raises(NodeDown, match="tick"):
                link.rpc("erlang", "node", [], timeout=10)
            assert time.monotonic() - started < 4 * 0.25 + 2  # the tick window, plus slack
        finally:
            os.kill(node.pid, signal.SIGCONT)


def test_an_idle_link_stays_up_because_we_tick(tmp_path: Path) -> None:
    # The node drops peers silent for net_ticktime (2 s here); ours ticks every 0.25 s.
    with (
        erl_node(tmp_path, "-kernel", "net_ticktime", "2") as node,
        connect(node.node, node.cookie, tick_s=0.25) as link,
    ):
        idle_until = time.monotonic() + 4  # being idle is the scenario, not a wait
        while time.monotonic() < idle_until:
            threading.Event().wait(0.5)
            assert link.alive
        assert link.rpc("erlang", "node", []) == node.node


def test_twenty_concurrent_calls_each_get_their_own_answer(tmp_path: Path) -> None:
    with erl_node(tmp_path) as node, connect(node.node, node.cookie) as link:

        def call(n: int) -> list[int]:
            link.rpc("timer", "sleep", [50])
            return link.rpc("lists", "seq", [1, n + 300])

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(call, range(20)))
        assert [len(a) for a in answers] == [n + 300 for n in range(20)]


def test_a_slow_call_times_out_and_the_link_keeps_working(tmp_path: Path) -> None:
    with erl_node(tmp_path) as node, connect(node.node, node.cookie) as link:
        with pytest.raises(RpcTimeout, match="timer:sleep"):
            link.rpc("timer", "sleep", [1000], timeout=0.1)
        assert link.rpc("erlang", "node", []) == node.node


def test_badrpc_is_a_typed_error_with_the_reason(tmp_path: Path) -> None:
    with erl_node(tmp_path) as node, connect(node.node, node.cookie) as link:
        with pytest.raises(BadRpc) as caught:
            link.rpc("no_such_module", "f", [])
        assert caught.value.reason[0] == "EXIT"
        # output of a call goes to us as group leader and must not block it
        assert link.rpc("io", "format", [list(b"hello~n")]) == "ok"


# -- TLS distribution ----------------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path, name: str) -> TlsOptions:
    """A CA and one certificate (server and client auth) for this host, as deployex uses."""
    folder.mkdir(parents=True)
    host = os.uname().nodename.split(".")[0]
    new_key = ("req", "-new", "-nodes", "-newkey", "rsa:2048")
    _openssl(*new_key, "-x509", "-days", "2", "-keyout", "ca.key", "-out", "ca.crt",
             "-subj", f"/CN={name}-ca", cwd=folder)  # fmt: skip
    _openssl(*new_key, "-keyout", "deployex.key", "-out", "node.csr",
             "-subj", f"/CN={name}", cwd=folder)  # fmt: skip
    (folder / "node.ext").write_text(
        f"subjectAltName=DNS:localhost,DNS:{host},IP:127.0.0.1\n"
        "extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
    )
    _openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-out", "deployex.crt", "-extfile", "node.ext",
             cwd=folder)  # fmt: skip
    return TlsOptions.from_folder(folder)


@pytest.fixture
def tls_node(tmp_path: Path):
    tls = make_certificates(tmp_path / "certs", "deployex")
    optfile = tmp_path / "inet_tls.conf"
    optfile.write_text(tls.ssl_dist_optfile())
    flags = ("-proto_dist", "inet_tls", "-ssl_dist_optfile", str(optfile))
    with erl_node(tmp_path, *flags) as node:
        yield node, tls


def test_tls_distribution_with_the_shared_ca_works(tls_node, tmp_path: Path) -> None:
    node, tls = tls_node
    with connect(node.node, node.cookie, tls=tls) as link:
        assert link.tls
        assert link.rpc("erlang", "node", []) == node.node
        assert link.stats().process_count > 0


def test_tls_distribution_refuses_a_certificate_from_a_foreign_ca(tls_node, tmp_path) -> None:
    node, _tls = tls_node
    foreign = make_certificates(tmp_path / "foreign", "intruder")
    with pytest.raises(HandshakeFailed, match="TLS"):
        connect(node.node, node.cookie, tls=foreign)


def test_plain_tcp_to_a_tls_node_is_refused(tls_node) -> None:
    node, _tls = tls_node
    with pytest.raises(HandshakeFailed):
        connect(node.node, node.cookie, timeout=3)


# -- answers as of a given time, for the samplers ------------------------------------------------


def test_stats_at_answers_at_the_time_asked_for_on_the_links_thread(tmp_path: Path) -> None:
    with erl_node(tmp_path) as node, connect(node.node, node.cookie) as link:
        answers: list = []
        asked = time.time()
        link.stats_at(asked + 0.4, lambda s: answers.append((s, time.time())), timeout=0.5)
        wait_until(lambda: answers, 5, "stats")
        stats, at = answers[0]
        assert isinstance(stats, NodeStats) and stats.process_count > 0
        assert 0.35 <= at - asked < 0.4 + 0.5
        assert link.rpc("erlang", "node", []) == node.node  # the link goes on


def test_stats_at_gives_none_when_the_node_is_late_or_the_link_goes(tmp_path: Path) -> None:
    with erl_node(tmp_path) as node:
        link = connect(node.node, node.cookie)
        answers: list = []
        freeze(node.pid)  # it will not answer in time
        try:
            asked = time.monotonic()
            link.stats_at(time.time(), answers.append, timeout=0.3)
            wait_until(lambda: answers, 5, "a timeout")
            assert answers == [None] and time.monotonic() - asked < 2
        finally:
            os.kill(node.pid, signal.SIGCONT)
        link.stats_at(time.time() + 30, answers.append, timeout=1)
        link.close()
        wait_until(lambda: len(answers) == 2, 5, "the link's end")
        assert answers == [None, None]
