"""The PTY under a browser terminal, without a browser (fast)."""

from __future__ import annotations

import os

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


def test_closing_ends_the_whole_process_group(sleeper) -> None:
    pid = sleeper.pid
    assert os.getpgid(pid) == pid  # a session and group of its own
    sleeper.close()
    wait_until(lambda: sleeper.exited(), 5, "the program ended")


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
