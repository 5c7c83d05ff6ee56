"""The `deployex` command as an operator runs it: a real process, exit codes and output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bcrypt

ROOT = Path(__file__).resolve().parents[1]
DEPLOYEX = str(Path(sys.executable).with_name("deployex"))


def deployex(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DEPLOYEX, *args], input=stdin, capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_help_lists_the_commands() -> None:
    result = deployex("--help")
    assert result.returncode == 0
    for command in ("check-config", "hash-password", "bucket"):
        assert command in result.stdout


def test_check_config_of_the_local_demo_exits_0_with_a_summary() -> None:
    result = deployex("check-config", "config/local.yaml")
    assert result.returncode == 0, result.stderr
    assert "myerlangapp" in result.stdout
    assert "erlang" in result.stdout


def test_broken_yaml_exits_non_zero_with_the_key_path_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "release_adapter: local\nsecrets_adapter: env\napplications:\n"
        "  - name: a\n  - name: b\n    monitoring:\n      - type: disk\n"
    )
    result = deployex("check-config", str(bad))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"deployex: error: {bad}: applications[1].monitoring[0].type: "
        "'disk' is not one of atom, process, port"
    ]
    assert "Traceback" not in result.stderr


def test_unknown_keys_are_reported_as_warnings_and_still_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("release_adapter: local\nsecrets_adapter: env\nfoo: 1\n")
    result = deployex("check-config", str(path))
    assert result.returncode == 0
    assert "foo: unknown key, ignored" in result.stderr


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = deployex("--debug", "check-config", str(tmp_path / "missing.yaml"))
    assert result.returncode != 0
    assert "Traceback" in result.stderr


def test_hash_password_from_stdin_gives_a_bcrypt_hash_that_verifies() -> None:
    result = deployex("hash-password", "--rounds", "4", stdin="s3cret pass\n")
    assert result.returncode == 0, result.stderr
    hashed = result.stdout.strip()
    assert bcrypt.checkpw(b"s3cret pass", hashed.encode())
    assert "s3cret" not in result.stdout + result.stderr


def test_hash_password_refuses_empty_and_over_72_bytes() -> None:
    empty = deployex("hash-password", stdin="\n")
    long = deployex("hash-password", stdin="x" * 73 + "\n")
    assert empty.returncode == 1 and "empty" in empty.stderr
    assert long.returncode == 1 and "73 bytes" in long.stderr
