"""Every door tried the way another local user, or a replica, would try it.

The attacker is a real process running as `nobody` (setpriv). DeployEx's folders are put in a
folder that `nobody` may enter, so that the only lock left is DeployEx's own.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import psutil
import pytest

from deployex_actors.beam.launch import Replica, pre_command, remote_shell_command
from deployex_actors.catalog import Catalog
from deployex_actors.config import load_config
from deployex_actors.core.status import AppSnapshot
from tests.beam_fixtures import LANGUAGES, NodeLauncher, ReleaseDist, wait_until
from tests.deployex_service import (
    DEPLOYEX,
    Service,
    app_entry,
    publish,
    running_service,
    wait_banner,
    write_config,
)

pytestmark = pytest.mark.slow
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
SYSTEM_PYTHON = "/usr/bin/python3"

# A pickle whose loading runs a command: what thespian's transport would unpickle unread.
ATTACK = r"""
import json, os, pickle, socket, sys

class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[1],))

frame = pickle.dumps(Payload())
answers = {}
for port in sys.argv[2:]:
    try:
        with socket.create_connection(("127.0.0.1", int(port)), 5) as conn:
            conn.sendall(b"%d>" % len(frame) + frame)
            conn.settimeout(5)
            answers[port] = conn.recv(200).decode("latin-1")
    except OSError as exc:
        answers[port] = repr(exc)
print(json.dumps(answers))
"""

# Each door a local user would try; what happened, by name.
PROBE = r"""
import json, os, socket, sys
paths = json.loads(sys.argv[1])
seen = {}
def attempt(name, action):
    try:
        action()
        seen[name] = "allowed"
    except PermissionError:
        seen[name] = "denied"
    except OSError as exc:
        seen[name] = f"{type(exc).__name__}: {exc}"
attempt("list the folder around", lambda: os.listdir(paths["open"]))
attempt("list var_path", lambda: os.listdir(paths["var"]))
attempt("read the key", lambda: open(paths["key"], "rb").read())
attempt("read the state", lambda: open(paths["db"], "rb").read())
attempt("read a pidfile", lambda: open(paths["pidfile"], "rb").read())
attempt("write a pidfile", lambda: open(paths["pidfile"], "ab").write(b"x"))
attempt("list the logs", lambda: os.listdir(paths["logs"]))
attempt("read a replica log", lambda: open(paths["replica_log"], "rb").read())
def forge_reading():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.connect(paths["samples"])
    sock.send(json.dumps({"app": "x", "sname": "x", "at": 0, "values": {},
                          "ready_after_s": 0}).encode())
attempt("send to the sample channel", forge_reading)
print(json.dumps(seen))
"""


def as_nobody(script: str, *args: str) -> dict:
    result = subprocess.run([*NOBODY, SYSTEM_PYTHON, "-c", script, *args],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder any user may enter (unlike pytest's tmp_path): DeployEx's own lock is tested."""
    folder = Path(tempfile.mkdtemp(prefix="deployex-security-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def serving(count: int):
    def check(app: AppSnapshot) -> bool:
        return sum(r.status == "running" for r in app.replicas) == count

    return check


def actor_ports(service: Service) -> set[int]:
    """Every TCP port the actor system's processes listen on: admin, logger, each actor."""
    pids = {p.pid for p in service.system_processes()}
    return {
        c.laddr.port
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    }


def test_a_pickle_from_another_user_runs_nothing_on_any_actor_system_port(
    release_dist: ReleaseDist, open_folder: Path
) -> None:
    app = "mygleamapp"
    config = write_config(open_folder, [app_entry(app, replicas=1)], watchdog_interval_ms=300)
    publish(config, release_dist, app, "0.1.0")
    with running_service(config, open_folder) as service:
        before = service.wait_app(app, serving(1), "one replica")
        ports = actor_ports(service)
        admin = service.config.actor_system_port
        assert admin in ports and len(ports) >= 5  # admin, logger, root, storage, deployer...
        marker = open_folder / "pwned"
        answers = as_nobody(ATTACK, str(marker), *map(str, sorted(ports)))
        assert set(answers) == {str(p) for p in ports}
        dx = service.client()

        def rejected() -> float:
            return dx.metrics("deployex")[-1].values.get("rejected_frames") or 0

        wait_until(lambda: rejected() >= len(ports), 15, f"{len(ports)} rejected frames counted")
        assert not marker.exists()
        warnings = dx.events(kind="frames_rejected")
        assert warnings and "unauthenticated" in warnings[0].message
        # DeployEx keeps serving: it answers, and the replica was never touched
        assert dx.ping()
        after = service.app(app)
        assert [r.pid for r in after.replicas] == [r.pid for r in before.replicas]
        wait_banner(after.replicas[0].ports["PORT"], f"{app} 0.1.0\n")
        # a second wave within the minute is counted, not journaled again at once
        as_nobody(ATTACK, str(marker), str(admin))
        wait_until(lambda: rejected() >= len(ports) + 1, 15, "the second wave counted")
        assert len(dx.events(kind="frames_rejected")) == 1
        assert not marker.exists()


def test_another_user_can_read_or_change_none_of_deployex_files_and_sockets(
    release_dist: ReleaseDist, open_folder: Path
) -> None:
    app = "mygleamapp"
    config = write_config(open_folder, [app_entry(app, replicas=1)])
    publish(config, release_dist, app, "0.1.0")
    catalog = Catalog.from_config(load_config(config))
    catalog.var_path.mkdir(mode=0o755)  # left open by an older version: narrowed at start
    with running_service(config, open_folder) as service:
        replica = service.wait_app(app, serving(1), "one replica").replicas[0]
        paths = {
            "open": str(open_folder),
            "var": str(catalog.var_path),
            "key": str(catalog.actor_key),
            "db": str(catalog.state_db),
            "pidfile": str(catalog.pidfile(app, replica.sname)),
            "logs": str(catalog.log_path),
            "replica_log": str(catalog.stdout_log(app, replica.sname)),
            "samples": str(catalog.samples_socket),
        }
        seen = as_nobody(PROBE, json.dumps(paths))
        assert seen.pop("list the folder around") == "allowed"  # the probe can reach this far
        assert seen == dict.fromkeys(seen, "denied"), seen
        for folder in catalog.private_folders:
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        assert stat.S_IMODE(catalog.actor_key.stat().st_mode) == 0o600
        assert service.client().ping()


@pytest.mark.parametrize("owner", ["nobody", "open"])
def test_a_var_path_another_user_could_swap_is_refused_with_the_reason(
    owner: str, open_folder: Path
) -> None:
    parent = open_folder / "shared"
    parent.mkdir()
    if owner == "nobody":
        shutil.chown(parent, "nobody", "nogroup")
        reason = "belongs to uid"
    else:
        parent.chmod(0o777)  # writable by all, not sticky
        reason = "without the sticky bit"
    config = write_config(open_folder, [], var_path=str(parent / "var"))
    result = subprocess.run([DEPLOYEX, "run", "--config", str(config)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert reason in result.stderr and str(parent) in result.stderr


def test_a_front_end_of_another_user_cannot_attach(
    release_dist: ReleaseDist, open_folder: Path
) -> None:
    config = write_config(open_folder, [])
    open_folder.joinpath("deployex.yaml").chmod(0o644)
    with running_service(config, open_folder) as service:
        result = subprocess.run(
            [*NOBODY, DEPLOYEX, "status", "--config", str(config)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 1
        assert "cannot read the actor system key" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert service.client().ping()


# -- what replicas see ---------------------------------------------------------------------------


def secret_environment() -> dict[str, str]:
    """DeployEx's environment with every kind of secret it may hold, each value unique."""
    token = secrets.token_hex(6)
    return {
        **os.environ,
        "DEPLOYEX_ADMIN_HASHED_PASSWORD": bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode(),
        "DEPLOYEX_SECRET_KEY_BASE": f"skb-{token}-" + "k" * 64,
        "DEPLOYEX_ERLANG_COOKIE": f"cookie{token}",
        "DEPLOYEX_METRICS_TOKEN": f"metrics-{token}",
        "AWS_ACCESS_KEY_ID": f"AKIA{token.upper()}",
        "AWS_SECRET_ACCESS_KEY": f"aws-secret-{token}",
        "GOOGLE_APPLICATION_CREDENTIALS": f"/etc/deployex/gcp-{token}.json",
        "SOME_OTHER_SECRET": f"other-{token}",
        "HANDED_ON": f"handed-{token}",  # listed in env_passthrough: must arrive
    }


SECRET_NAMES = (
    "DEPLOYEX_ADMIN_HASHED_PASSWORD",
    "DEPLOYEX_SECRET_KEY_BASE",
    "DEPLOYEX_METRICS_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "SOME_OTHER_SECRET",
)


def assert_no_secrets(seen: str, env: dict[str, str], what: str) -> None:
    for name in SECRET_NAMES:
        assert name not in seen and env[name] not in seen, f"{name} reached {what}"
    assert "DEPLOYEX_ERLANG_COOKIE" not in seen, what
    assert env["HANDED_ON"] in seen, f"env_passthrough did not reach {what}"


@contextlib.contextmanager
def interactive_process(argv: list[str], env: dict, cwd: Path) -> Iterator[subprocess.Popen]:
    """A shell on a pty, as a person would have it; its process group ends afterwards."""
    main, secondary = pty.openpty()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=secondary, stdout=secondary,
                            stderr=secondary, start_new_session=True)  # fmt: skip
    os.close(secondary)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        os.close(main)


def environ_of(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode()


def dump_command(app: str, target: Path) -> str:
    """A pre-command that writes its own environment to `target`."""
    if LANGUAGES[app] == "elixir":
        body = 'Enum.map_join(System.get_env(), "\\n", fn {k, v} -> k <> "=" <> v end)'
        return f"eval 'File.write!(\"{target}\", {body})'"
    return f'eval file:write_file("{target}", [[V, 10] || V <- os:getenv()])'


def test_replicas_and_pre_commands_of_each_language_get_none_of_deployex_secrets(
    release_dist: ReleaseDist, tmp_path: Path
) -> None:
    env = secret_environment()
    passthrough = {"env_passthrough": ["HANDED_ON"],
                   "env": [{"key": "APP_SETTING", "value": "from-yaml"}]}  # fmt: skip
    entries = [app_entry(app, replicas=1, **passthrough) for app in sorted(LANGUAGES)]
    config = write_config(tmp_path, entries)
    for app in LANGUAGES:
        publish(config, release_dist, app, "0.1.0", (dump_command(app, tmp_path / f"{app}.pre"),))
    with running_service(config, tmp_path, env=env) as service:
        for app in sorted(LANGUAGES):
            replica = service.wait_app(app, serving(1), f"{app} serving").replicas[0]
            seen = environ_of(replica.pid)
            assert_no_secrets(seen, env, f"the {app} replica")
            assert "APP_SETTING=from-yaml" in seen and f"PORT={replica.ports['PORT']}" in seen
            dumped = (tmp_path / f"{app}.pre").read_text()
            assert_no_secrets(dumped, env, f"the {app} pre-command")
            assert "APP_SETTING=from-yaml" in dumped


@pytest.mark.parametrize("app", sorted(LANGUAGES))
def test_a_remote_shell_gets_none_of_deployex_secrets(app: str, beam_nodes: NodeLauncher) -> None:
    env = secret_environment()
    node = beam_nodes.start(app, "0.1.0")
    replica = Replica(**{**node.spec.replica.__dict__, "passthrough": ("HANDED_ON",)})
    command = remote_shell_command(replica, base_env=env)
    with interactive_process(command.argv, command.env, command.cwd) as proc:
        # between fork and exec (and while exec replaces it) /proc shows the parent's or no
        # environment: wait for the shell's own, which has what the replica hands on
        seen = [""]

        def own_environment() -> bool:
            seen[0] = environ_of(proc.pid)
            return env["HANDED_ON"] in seen[0]

        wait_until(own_environment, 10, "the remote shell's environment")
        assert_no_secrets(seen[0], env, f"a remote shell to {app}")
    # and the pre-command builder, for completeness of the same rule
    assert_no_secrets("\n".join(f"{k}={v}" for k, v in
                                pre_command(replica, "eval ok", base_env=env).env.items()),
                      env, "a pre-command")  # fmt: skip
