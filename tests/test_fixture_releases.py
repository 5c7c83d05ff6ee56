"""The release fixtures themselves: cached builds, bucket layout, and real nodes that behave.

The fast tests drive the cache with a stand-in build script; the slow ones build (or reuse) the
nine real tarballs and run them as BEAM nodes.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from tests.beam_fixtures import (
    APPS_DIR,
    BUILD_INFO,
    CRASHING,
    LANGUAGES,
    UPGRADE,
    VERSIONS,
    FixtureBuildError,
    NodeLauncher,
    ReleaseDist,
    RunningNode,
    build_releases,
    epmd_names,
    fixture_hash,
    wait_for_banner,
    wait_until_unregistered,
)

APPS = sorted(LANGUAGES)


def names_in(tarball: Path) -> set[str]:
    with tarfile.open(tarball) as tar:
        return set(tar.getnames())


def read_member(tarball: Path, name: str) -> bytes:
    with tarfile.open(tarball) as tar:
        member = tar.extractfile(name)
        assert member is not None, f"{name} is not a file in {tarball.name}"
        return member.read()


def has_match(names: set[str], pattern: str) -> bool:
    return any(re.fullmatch(pattern, name) for name in names)


# --- the cache, with a stand-in build script -------------------------------------------------

FAKE_BUILD = """#!/usr/bin/env bash
set -euo pipefail
echo "run" >> "{runs}"
{body}
mkdir -p "$1/dist/myapp" && echo tarball > "$1/dist/myapp/myapp-0.1.0.tar.gz"
"""


@pytest.fixture
def fake_inputs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(build script, app sources, file with one line per script run) for a stand-in build."""
    sources = tmp_path / "apps"
    (sources / "myapp").mkdir(parents=True)
    (sources / "myapp" / "server.erl").write_text("-module(server).\n")
    runs = tmp_path / "runs"
    runs.touch()
    return write_fake_build(tmp_path, runs, "sleep 0.3"), sources, runs


def write_fake_build(folder: Path, runs: Path, body: str) -> Path:
    script = folder / "build.sh"
    script.write_text(FAKE_BUILD.format(runs=runs, body=body))
    return script


def test_fixture_hash_follows_the_script_every_source_and_the_otp_release(tmp_path: Path) -> None:
    sources = shutil.copytree(APPS_DIR, tmp_path / "apps")
    script = tmp_path / "build.sh"
    script.write_text("echo build\n")
    first = fixture_hash(script, sources, "25")

    assert fixture_hash(script, sources, "25") == first
    assert fixture_hash(script, sources, "26") != first
    server = sources / "myerlangapp" / "src" / "myerlangapp_server.erl"
    server.write_text(server.read_text() + "\n")
    assert fixture_hash(script, sources, "25") != first


def test_concurrent_builds_run_the_script_once(
    tmp_path: Path, fake_inputs: tuple[Path, Path, Path]
) -> None:
    script, sources, runs = fake_inputs
    cache = tmp_path / "cache"
    results: list[ReleaseDist] = []

    def build() -> None:
        results.append(build_releases(cache, script, sources, otp="25"))

    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert runs.read_text().splitlines() == ["run"]
    assert len({result.root for result in results}) == 1
    assert sorted(result.built for result in results) == [False, False, True]
    assert results[0].tarball("myapp", "0.1.0").read_text() == "tarball\n"


def test_changed_sources_replace_the_old_cache_entry(
    tmp_path: Path, fake_inputs: tuple[Path, Path, Path]
) -> None:
    script, sources, runs = fake_inputs
    cache = tmp_path / "cache"
    old = build_releases(cache, script, sources, otp="25")
    (sources / "myapp" / "server.erl").write_text("-module(server). %% changed\n")

    new = build_releases(cache, script, sources, otp="25")

    assert new.built and new.root != old.root
    assert [p.name for p in cache.iterdir() if p.is_dir()] == [new.root.name]
    assert len(runs.read_text().splitlines()) == 2


def test_failed_build_caches_nothing_and_shows_the_log(
    tmp_path: Path, fake_inputs: tuple[Path, Path, Path]
) -> None:
    _, sources, runs = fake_inputs
    script = write_fake_build(tmp_path, runs, 'echo "rebar3 exploded" >&2; exit 3')
    cache = tmp_path / "cache"

    with pytest.raises(FixtureBuildError, match=r"(?s)status 3.*rebar3 exploded"):
        build_releases(cache, script, sources, otp="25")

    assert [p for p in cache.iterdir() if p.is_dir()] == []


# --- the real tarballs ------------------------------------------------------------------------


@pytest.mark.slow
def test_second_build_is_a_cache_hit(release_dist: ReleaseDist) -> None:
    marker = (release_dist.root / BUILD_INFO).stat()

    again = build_releases()

    assert again.root == release_dist.root
    assert not again.built
    after = (again.root / BUILD_INFO).stat()
    assert (after.st_ino, after.st_mtime_ns) == (marker.st_ino, marker.st_mtime_ns)


@pytest.mark.slow
def test_the_nine_tarballs_are_laid_out_as_in_the_bucket(release_dist: ReleaseDist) -> None:
    found = sorted(p.relative_to(release_dist.dist) for p in release_dist.dist.rglob("*.tar.gz"))
    assert found == sorted(
        Path(app) / f"{app}-{vsn}.tar.gz" for app in LANGUAGES for vsn in VERSIONS
    )


@pytest.mark.slow
@pytest.mark.parametrize("vsn", VERSIONS)
def test_erlang_tarball_is_a_rebar3_prod_release(release_dist: ReleaseDist, vsn: str) -> None:
    names = names_in(release_dist.tarball("myerlangapp", vsn))

    assert {"bin/myerlangapp", f"releases/{vsn}/vm.args", f"releases/{vsn}/start.boot"} <= names
    assert f"lib/myerlangapp-{vsn}/ebin/myerlangapp_server.beam" in names
    assert has_match(names, r"erts-[\d.]+/bin/beam\.smp")
    assert has_match(names, r"lib/ssl-[\d.]+/ebin/ssl\.app")
    assert has_match(names, r"lib/sasl-[\d.]+/ebin/release_handler\.beam")
    upgradable = vsn == UPGRADE[1]
    assert (f"releases/{vsn}/relup" in names) is upgradable
    assert (f"lib/myerlangapp-{vsn}/priv/appup/myerlangapp.appup" in names) is upgradable
    if vsn == CRASHING:  # built from an empty rel dir: no start scripts of earlier releases
        scripts = {name for name in names if name.startswith("bin/myerlangapp-")}
        assert scripts == {f"bin/myerlangapp-{vsn}"}


@pytest.mark.slow
def test_erlang_vm_args_take_node_cookie_and_tls_flags_from_the_environment(
    release_dist: ReleaseDist,
) -> None:
    vm_args = read_member(release_dist.tarball("myerlangapp", "0.1.0"), "releases/0.1.0/vm.args")

    lines = vm_args.decode().splitlines()
    assert {
        "-sname ${RELEASE_NODE}",
        "-setcookie ${RELEASE_COOKIE}",
        "${RELEASE_SSL_OPTIONS}",
    } <= set(lines)


@pytest.mark.slow
@pytest.mark.parametrize("vsn", VERSIONS)
def test_elixir_tarball_is_a_mix_release(release_dist: ReleaseDist, vsn: str) -> None:
    tarball = release_dist.tarball("myelixirapp", vsn)
    names = names_in(tarball)
    ebin = f"lib/myelixirapp-{vsn}/ebin"

    assert {"bin/myelixirapp", f"releases/{vsn}/start.boot", "releases/start_erl.data"} <= names
    assert f"{ebin}/Elixir.Myelixirapp.Server.beam" in names
    assert has_match(names, r"erts-[\d.]+/bin/beam\.smp")
    assert has_match(names, r"lib/ssl-[\d.]+/ebin/ssl\.app")
    assert has_match(names, r"lib/sasl-[\d.]+/ebin/release_handler\.beam")
    upgradable = vsn == UPGRADE[1]
    assert (f"releases/{vsn}/relup" in names) is upgradable
    assert (f"{ebin}/myelixirapp.appup" in names) is upgradable
    assert (f"{ebin}/jellyfish.json" in names) is upgradable
    if upgradable:
        jellyfish = json.loads(read_member(tarball, f"{ebin}/jellyfish.json"))
        assert jellyfish == {
            "name": "myelixirapp",
            "type": "project",
            "from": UPGRADE[0],
            "to": UPGRADE[1],
        }


@pytest.mark.slow
@pytest.mark.parametrize("vsn", VERSIONS)
def test_gleam_tarball_is_an_erlang_shipment(release_dist: ReleaseDist, vsn: str) -> None:
    tarball = release_dist.tarball("mygleamapp", vsn)
    names = names_in(tarball)
    ebin = "erlang-shipment/mygleamapp/ebin"

    assert all(name.split("/")[0] == "erlang-shipment" for name in names)
    assert {f"{ebin}/mygleamapp.beam", f"{ebin}/mygleamapp@@main.beam"} <= names
    assert "erlang-shipment/entrypoint.sh" in names
    assert has_match(names, r"erlang-shipment/gleam_stdlib/ebin/.+\.beam")
    assert f'{{vsn, "{vsn}"}}' in read_member(tarball, f"{ebin}/mygleamapp.app").decode()


# --- the tarballs as running nodes ------------------------------------------------------------


def assert_pid_is_the_beam(node: RunningNode) -> None:
    """Each start command ends in exec, so a supervisor's Popen pid is the VM itself."""
    exe = Path(f"/proc/{node.proc.pid}/exe").resolve()
    assert exe.name == "beam.smp", f"pid {node.proc.pid} runs {exe}"


@pytest.mark.slow
@pytest.mark.parametrize("app", APPS)
def test_first_version_answers_its_banner_and_stops_on_sigterm(
    app: str, beam_nodes: NodeLauncher
) -> None:
    node = beam_nodes.start(app, "0.1.0")

    wait_for_banner(node, f"{app} 0.1.0\n")
    assert_pid_is_the_beam(node)
    assert node.spec.sname in epmd_names()

    node.proc.send_signal(signal.SIGTERM)
    assert node.proc.wait(timeout=20) == 0, node.log_tail()
    wait_until_unregistered([node.spec.sname])


@pytest.mark.slow
@pytest.mark.parametrize("app", APPS)
def test_crashing_version_exits_with_status_1_seconds_after_boot(
    app: str, beam_nodes: NodeLauncher
) -> None:
    node = beam_nodes.start(app, CRASHING)

    wait_for_banner(node, f"{app} {CRASHING}\n")

    assert node.proc.wait(timeout=15) == 1, node.log_tail()
    assert "crashing on purpose" in node.log_tail()
    wait_until_unregistered([node.spec.sname])


def erl_binary(text: str) -> str:
    """How erl_call prints a binary: #Bin<48,46,49> for <<"0.1">>."""
    return f"#Bin<{','.join(str(byte) for byte in text.encode())}>"


def erl_call(node: RunningNode, module: str, function: str, args: str) -> str:
    """One call on the node with the erl_call that every release carries in its ERTS."""
    (program,) = node.spec.root.glob("erts-*/bin/erl_call")
    argv = [str(program), "-sname", node.spec.sname, "-c", node.spec.cookie, "-R"]
    argv += ["-a", f"{module} {function} {args}"]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("app", "server"),
    [("myerlangapp", "myerlangapp_server"), ("myelixirapp", "Elixir.Myelixirapp.Server")],
)
def test_upgradable_version_hot_upgrades_a_running_node_in_place(
    app: str, server: str, beam_nodes: NodeLauncher, release_dist: ReleaseDist
) -> None:
    old, new = UPGRADE
    node = beam_nodes.start(app, old)
    wait_for_banner(node, f"{app} {old}\n")
    os_pid = erl_binary(str(node.proc.pid))
    assert f"os_pid => {os_pid}" in erl_call(node, server, "info", "[]")
    staged = node.spec.root / "releases" / new / f"{app}.tar.gz"
    staged.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(release_dist.tarball(app, new), staged)

    steps = [
        ("unpack_release", f'["{new}/{app}"]', f'{{ok, "{new}"}}'),
        ("check_install_release", f'["{new}"]', f'{{ok, "{old}", []}}'),
        ("install_release", f'["{new}", [{{update_paths, true}}]]', f'{{ok, "{old}", []}}'),
        ("make_permanent", f'["{new}"]', "ok"),
    ]
    for function, args, expected in steps:
        assert erl_call(node, "release_handler", function, args) == expected

    wait_for_banner(node, f"{app} {new}\n", deadline_s=5)
    assert node.proc.poll() is None
    info = erl_call(node, server, "info", "[]")
    assert f"os_pid => {os_pid}" in info
    assert f"upgraded_from => {erl_binary(old)}" in info
    assert f"started_vsn => {erl_binary(old)}" in info
    assert f"code_vsn => {erl_binary(new)}" in info
    assert erl_call(node, server, "spawn_idle", "[3]") == "ok"
