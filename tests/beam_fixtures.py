"""Real BEAM releases for the tests: built once, cached, unpacked and run as real nodes.

This module owns the cache of tarballs built by tests/fixtures/build_releases.sh (under
tests/fixtures/build/<hash>/dist/{app}/{app}-{vsn}.tar.gz, keyed by the script, the app sources
and the OTP release), the `release_dist` and `beam_nodes` pytest fixtures, and the helpers that
start a fixture release the way DeployEx does and make sure no node outlives its test.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deployex_actors.beam.launch import Replica, start_command
from tests.servers import LOOPBACK, free_port

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
BUILD_SCRIPT = FIXTURES_DIR / "build_releases.sh"
APPS_DIR = FIXTURES_DIR / "apps"
CACHE_ROOT = FIXTURES_DIR / "build"  # git-ignored
BUILD_INFO = "build-info.json"  # written last inside a cache entry; its inode marks the build

LANGUAGES = {"myerlangapp": "erlang", "myelixirapp": "elixir", "mygleamapp": "gleam"}
VERSIONS = ("0.1.0", "0.2.0", "0.3.0")
UPGRADE = ("0.1.0", "0.2.0")  # 0.2.0 carries appup/relup from 0.1.0
CRASHING = "0.3.0"  # halts with status 1 CRASH_AFTER (default 2) seconds after boot

BUILD_TIMEOUT_S = 600
# Variables a start script or the VM would take from the caller instead of from the node's spec.
LEAKY_ENV_PREFIXES = ("RELEASE_", "RELX_")
LEAKY_ENV = (
    *("BINDIR", "ROOTDIR", "EMU", "PROGNAME", "ELIXIR_ERL_OPTIONS"),
    *("ERL_LIBS", "ERL_FLAGS", "ERL_AFLAGS", "ERL_ZFLAGS", "PORT", "CRASH_AFTER"),
)


class FixtureBuildError(RuntimeError):
    """The release fixtures could not be built; the message says why and how to fix it."""


@dataclass(frozen=True)
class ReleaseDist:
    """A complete cache entry: `dist/` laid out as a release bucket's dist folder."""

    root: Path
    built: bool = field(default=False, compare=False)  # True when this call ran the build

    @property
    def dist(self) -> Path:
        return self.root / "dist"

    def tarball(self, app: str, vsn: str) -> Path:
        path = self.dist / app / f"{app}-{vsn}.tar.gz"
        if not path.is_file():
            raise FileNotFoundError(f"no fixture tarball {path.relative_to(self.root)}")
        return path


# --- building and caching -------------------------------------------------------------------


def otp_release() -> str:
    """The OTP major release of the `erl` on PATH, e.g. "25"."""
    expr = "io:put_chars(erlang:system_info(otp_release)), halt()."
    try:
        result = subprocess.run(
            ["erl", "-noshell", "-eval", expr], capture_output=True, text=True, timeout=60
        )
    except FileNotFoundError:
        raise FixtureBuildError(
            "erl is not installed: run `bash ops/dev/test.sh` (ops/dev/setup.sh installs Erlang)"
        ) from None
    if result.returncode != 0:
        raise FixtureBuildError(f"erl failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


def fixture_hash(script: Path, sources: Path, otp: str) -> str:
    """A key that changes whenever the build script, any app source or the OTP release does."""
    digest = hashlib.sha256()
    inputs = [(Path("build_releases.sh"), script)]
    inputs += [(p.relative_to(sources), p) for p in sorted(sources.rglob("*")) if p.is_file()]
    for name, path in inputs:
        digest.update(f"{name}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(f"otp\0{otp}".encode())
    return digest.hexdigest()[:16]


def build_releases(
    cache_root: Path = CACHE_ROOT,
    script: Path = BUILD_SCRIPT,
    sources: Path = APPS_DIR,
    otp: str | None = None,
) -> ReleaseDist:
    """Return the cached build for the current inputs, building it first if there is none.

    A build goes to a temp folder beside the cache entry and is renamed into place only when
    complete, so a half-built entry is never used; a file lock makes concurrent pytest
    processes wait for one build instead of each running their own.
    """
    key = fixture_hash(script, sources, otp if otp is not None else otp_release())
    entry = cache_root / key
    if (entry / BUILD_INFO).is_file():
        return ReleaseDist(entry)
    cache_root.mkdir(parents=True, exist_ok=True)
    with _locked(cache_root / ".lock"):
        if (entry / BUILD_INFO).is_file():  # another process built it while we waited
            return ReleaseDist(entry)
        _remove_other_entries(cache_root, keep=key)
        shutil.rmtree(entry, ignore_errors=True)  # an entry without BUILD_INFO is not a build
        _build_into(entry, script, key)
    return ReleaseDist(entry, built=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_other_entries(cache_root: Path, keep: str) -> None:
    """Drop builds for older inputs and half-built folders left by a killed build (lock held)."""
    for path in cache_root.iterdir():
        if path.is_dir() and path.name != keep:
            shutil.rmtree(path, ignore_errors=True)


def _build_into(entry: Path, script: Path, key: str) -> None:
    partial = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=entry.parent))
    partial.chmod(0o755)  # mkdtemp's 0700 would stay on the cache entry after the rename
    log = partial / "build.log"
    started = time.monotonic()
    try:
        with log.open("wb") as out:
            result = subprocess.run(
                ["bash", str(script), str(partial)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=clean_env(),
                timeout=BUILD_TIMEOUT_S,
            )
        if result.returncode != 0:
            raise FixtureBuildError(
                f"{script.name} failed with status {result.returncode}:\n{tail(log, 40)}"
            )
        info = {"hash": key, "seconds": round(time.monotonic() - started, 1)}
        (partial / BUILD_INFO).write_text(json.dumps(info) + "\n")
        partial.rename(entry)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without what would leak into a release, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(LEAKY_ENV_PREFIXES) and key not in LEAKY_ENV
    }
    return {**env, **(extra or {})}


def tail(path: Path, lines: int) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def unpack(tarball: Path, dest: Path) -> Path:
    """Extract a fixture tarball into `dest` (created if needed) and return `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    return dest


# --- running nodes --------------------------------------------------------------------------

_sname_counter = itertools.count(1)


def unique_sname() -> str:
    """An sname no other test, session or pytest process on this host is using."""
    return f"t{os.getpid()}x{next(_sname_counter)}"


@dataclass(frozen=True)
class NodeSpec:
    """One fixture release to run as a node: a `launch.Replica` plus the port it answers on."""

    replica: Replica
    port: int

    @property
    def app(self) -> str:
        return self.replica.app

    @property
    def root(self) -> Path:
        return self.replica.release_dir

    @property
    def sname(self) -> str:
        return self.replica.sname

    @property
    def cookie(self) -> str:
        return self.replica.cookie

    @property
    def node(self) -> str:
        return self.replica.node


@dataclass(frozen=True)
class RunningNode:
    """A fixture release started as its own process group; the Popen pid is the beam."""

    spec: NodeSpec
    proc: subprocess.Popen
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        return tail(self.log, lines)


def start_node(spec: NodeSpec, log: Path) -> RunningNode:
    """Start the node in its own session with stdout and stderr in `log`; stop it with stop_node."""
    # Started exactly as DeployEx starts a replica (deployex_actors.beam.launch).
    command = start_command(spec.replica, clean_env())
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command.argv,
            cwd=command.cwd,
            env=command.env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return RunningNode(spec, proc, log)


def stop_node(node: RunningNode, grace_s: float = 10.0) -> int:
    """SIGTERM the node's process group, SIGKILL what is left after `grace_s`; return its status."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        node.proc.wait(grace_s)
    # Whatever else is still in the group (erl_child_setup, a shell) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(node.proc.pid, signal.SIGKILL)
    return node.proc.wait()


def wait_until(
    condition: Callable[[], bool], deadline_s: float, what: str, interval_s: float = 0.05
) -> None:
    """Poll `condition` until it holds; TimeoutError naming `what` after `deadline_s`."""
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError(f"{what} after {deadline_s} s")
        time.sleep(interval_s)


def read_banner(port: int, timeout_s: float = 2.0) -> str:
    """Connect to 127.0.0.1:port and read until the server closes the connection."""
    chunks = []
    with socket.create_connection((LOOPBACK, port), timeout_s) as conn:
        while chunk := conn.recv(1024):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def wait_for_banner(node: RunningNode, expected: str, deadline_s: float = 30.0) -> None:
    """Wait until the node's port answers `expected`; fail early, with its log, if it exits."""

    def answers() -> bool:
        if node.proc.poll() is not None:
            raise AssertionError(
                f"{node.spec.app} exited with {node.proc.returncode} before answering "
                f"{expected!r}; log:\n{node.log_tail()}"
            )
        try:
            return read_banner(node.spec.port) == expected
        except OSError:
            return False

    wait_until(answers, deadline_s, f"{node.spec.app} did not answer {expected!r}")


def epmd_names() -> set[str]:
    """The snames registered in the local epmd (empty when epmd is not running)."""
    result = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10)
    return {line.split()[1] for line in result.stdout.splitlines() if line.startswith("name ")}


def wait_until_unregistered(snames: Iterable[str], deadline_s: float = 15.0) -> None:
    """epmd drops a name when the node's connection closes, shortly after the node is gone."""
    wanted = set(snames)
    wait_until(
        lambda: not (epmd_names() & wanted),
        deadline_s,
        f"epmd still lists some of {sorted(wanted)}",
    )


def ensure_epmd() -> None:
    """Start the system's epmd, so the one that outlives the tests is not a temp release's copy."""
    subprocess.run(["epmd", "-daemon"], check=True, timeout=10)
    wait_until(
        lambda: subprocess.run(["epmd", "-names"], capture_output=True).returncode == 0,
        10.0,
        "epmd did not start",
    )


class NodeLauncher:
    """Unpacks fixture tarballs into a test's folder and starts them; stops every one at the end."""

    def __init__(self, dist: ReleaseDist, workdir: Path) -> None:
        self.dist = dist
        self.workdir = workdir
        self.nodes: list[RunningNode] = []

    def start(
        self,
        app: str,
        vsn: str,
        env: Mapping[str, str] | None = None,
        tls_optfile: Path | None = None,
    ) -> RunningNode:
        sname = unique_sname()
        root = unpack(self.dist.tarball(app, vsn), self.workdir / sname)
        port = free_port()
        replica = Replica(
            app=app,
            language=LANGUAGES[app],
            sname=sname,
            release_dir=root,
            cookie=secrets.token_hex(8),
            ports={"PORT": port},
            env=env or {},
            tls_optfile=tls_optfile,
        )
        spec = NodeSpec(replica, port)
        node = start_node(spec, self.workdir / f"{sname}.log")
        self.nodes.append(node)
        return node

    def stop_all(self) -> None:
        for node in self.nodes:
            stop_node(node)
        wait_until_unregistered(node.spec.sname for node in self.nodes)


# --- pytest fixtures (exposed through tests/conftest.py) ------------------------------------


@pytest.fixture(scope="session")
def release_dist() -> ReleaseDist:
    """The nine fixture tarballs, built once per set of inputs and shared by every test.

    The system's epmd is started first, so that the one outliving the tests is never a copy from
    a release that a test (or a DeployEx under test) ran from its temp folder."""
    ensure_epmd()
    return build_releases()


@pytest.fixture
def beam_nodes(release_dist: ReleaseDist, tmp_path: Path) -> Iterator[NodeLauncher]:
    """Start fixture releases as real nodes; all of them are stopped and gone from epmd after."""
    ensure_epmd()
    launcher = NodeLauncher(release_dist, tmp_path)
    try:
        yield launcher
    finally:
        launcher.stop_all()
