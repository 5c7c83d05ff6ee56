"""The catalog owns every path and name; these are the formats upstream DeployEx uses."""

from __future__ import annotations

import re
from pathlib import Path

from deployex_actors import catalog
from deployex_actors.catalog import Catalog
from deployex_actors.config import parse_config


def test_sname_is_app_dash_six_base36_chars_and_fresh_each_time() -> None:
    names = {catalog.new_sname("myapp") for _ in range(200)}
    assert len(names) == 200
    assert all(re.fullmatch(r"myapp-[0-9a-z]{6}", n) for n in names)


def test_app_of_sname_accepts_only_snames() -> None:
    assert catalog.app_of_sname("my_app-a1b2c3") == "my_app"
    assert catalog.app_of_sname("my_app-a1b2c") is None
    assert catalog.app_of_sname("my-app-a1b2c3") is None
    assert catalog.app_of_sname("deployex.db") is None


def test_node_name_uses_the_short_hostname() -> None:
    assert catalog.node_name("myapp-abc123", "host") == "myapp-abc123@host"
    assert "." not in catalog.node_name("myapp-abc123").split("@")[1]


def test_bucket_keys_match_the_upstream_layout() -> None:
    assert catalog.current_json_key("myapp", "prod") == "versions/myapp/prod/current.json"
    assert catalog.tarball_key("myapp", "1.2.3") == "dist/myapp/myapp-1.2.3.tar.gz"
    assert catalog.version_of_tarball_key("myapp", "dist/myapp/myapp-1.2.3.tar.gz") == "1.2.3"
    assert catalog.version_of_tarball_key("myapp", "dist/myapp/other-1.2.3.tar.gz") is None
    assert catalog.version_of_tarball_key("myapp", "dist/myapp/x/myapp-1.tar.gz") is None
    assert catalog.version_of_tarball_key("myapp", "dist/myapp/myapp-.tar.gz") is None


def test_disk_layout_follows_the_configured_roots(tmp_path: Path) -> None:
    config = parse_config(
        f"release_adapter: local\nsecrets_adapter: env\nvar_path: {tmp_path}/var\n"
        f"log_path: {tmp_path}/log\nmonitored_app_log_path: {tmp_path}/apps\n"
    )
    cat = Catalog.from_config(config)
    assert cat.state_db == tmp_path / "var" / "deployex.db"
    assert cat.current_dir("a", "a-000001") == tmp_path / "var/service/a/a-000001/current"
    assert cat.new_dir("a", "a-000001").name == "new"
    assert cat.previous_dir("a", "a-000001").name == "previous"
    assert cat.pidfile("a", "a-000001") == tmp_path / "var/service/a/a-000001.pid"
    assert cat.stdout_log("a", "a-000001") == tmp_path / "apps/a/a-000001-stdout.log"
    assert cat.stderr_log("a", "a-000001") == tmp_path / "apps/a/a-000001-stderr.log"
    assert cat.deployex_stdout_log == tmp_path / "log" / "deployex-stdout.log"


def test_snames_on_disk_lists_only_replica_folders_of_the_app(tmp_path: Path) -> None:
    cat = Catalog(tmp_path, tmp_path, tmp_path)
    for name in ("a-aaaaaa", "a-bbbbbb", "b-cccccc", "junk"):
        (cat.app_service_dir("a") / name).mkdir(parents=True)
    cat.pidfile("a", "a-aaaaaa").write_text("1 2")
    assert cat.snames_on_disk("a") == ["a-aaaaaa", "a-bbbbbb"]
    assert cat.snames_on_disk("zzz") == []
