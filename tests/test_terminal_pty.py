"""The PTY under a browser terminal, without a browser (fast)."""

from __future__ import annotations

import contextlib
import os

import psutil
import pytest

from dashboards.terminals import PtyProcess, base_environment
from tests.beam_fixtures import wait_until


@pytest.fixture
def sleeper() -> PtyProcess:
    process = PtyProcess(["sleep", "30"], base_environment(), "/", 24, 80)
    try:
        yield process
    finally:
        process.close()


@pytest.mark.timeout(10)
def test_a_paste_into_a_program_that_does_not_read_is_cut_not_waited_for(sleeper) -> None:
    # the dashboard's event loop writes this: a hung remote shell must not stall it
    dropped = sleeper.write("x" * 1_000_000)
    assert 0 < dropped < 1_000_000


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_closing_ends_the_whole_process_group() -> None:
    # A shell and its child, both deaf to SIGHUP (as a `nohup`ed or stuck program is): only a
    # signal to the whole group, and the SIGKILL after the hangup, end the child too.
    argv = ["sh", "-c", "trap '' HUP; sleep 300 & wait"]
    shell = PtyProcess(argv, base_environment(), "/", 24, 80)
    children: list[psutil.Process] = []

    def forked() -> bool:
        children[:] = psutil.Process(shell.pid).children()
        return bool(children)

    try:
        assert os.getpgid(shell.pid) == shell.pid  # a session and group of its own
        wait_until(forked, 10, "the shell's child started")
        assert os.getpgid(children[0].pid) == shell.pid
    finally:
        shell.close()
    try:
        wait_until(shell.exited, 10, "the program ended")
        wait_until(lambda: gone(children[0].pid), 10, "the program's child ended")
    finally:  # a failure here must not leave the child behind
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()


def test_a_terminal_gets_none_of_deployex_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "DEPLOYEX_ADMIN_HASHED_PASSWORD": "$2b$04$hash",
        "DEPLOYEX_SECRET_KEY_BASE": "key-base",
        "DEPLOYEX_ERLANG_COOKIE": "cookie",
        "AWS_SECRET_ACCESS_KEY": "aws",
    }
    for key, value in secrets.items():
        monkeypatch.setenv(key, value)
    env = base_environment()
    assert not set(secrets) & set(env) and not set(secrets.values()) & set(env.values())
    assert env["TERM"] == "xterm-256color" and "PATH" in env
