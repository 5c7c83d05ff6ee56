"""The YAML configuration: upstream files load, defaults match upstream, errors name the key."""

from __future__ import annotations

import inspect
import logging
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest

from deployex_actors.config import (
    CONFIG_PATH_ENV,
    Application,
    Config,
    load_config,
    model,
    parse_config,
    resolve_config_path,
)
from deployex_actors.config.loader import DEFAULT_CONFIG_PATH
from deployex_actors.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = "release_adapter: local\nsecrets_adapter: env\n"


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    return caught.value.problems


@pytest.mark.parametrize("name", ["local.yaml", "aws.yaml", "gcp.yaml", "upstream-example.yaml"])
def test_shipped_example_files_load_without_warnings(name: str) -> None:
    config = load_config(ROOT / "config" / name)
    assert config.applications
    assert config.warnings == ()


def test_upstream_example_keeps_every_value() -> None:
    config = load_config(ROOT / "config" / "upstream-example.yaml")
    shop = config.application("shop")
    assert (config.account_name, config.release_adapter, config.secrets_adapter) == (
        "prod",
        "s3",
        "aws",
    )
    assert config.otp_version == 28
    assert shop.replicas == 2
    assert shop.ports_of_slot(2) == {"PORT": 4002}
    assert dict((e.key, e.value) for e in shop.env)["SHOP_PHX_SERVER"] == "true"
    assert [m.type for m in shop.monitoring] == ["atom", "process", "port"]
    assert shop.certificates[0].dns_provider == "route53"
    assert [n.adapter for n in config.notifications] == ["webhook", "slack", "pagerduty"]
    assert config.notifications[2].enabled is False


def test_minimal_file_gets_every_upstream_default() -> None:
    config = parse_config(MINIMAL + "applications:\n  - name: myapp\n")
    app = config.application("myapp")
    assert config.account_name == "local"
    assert config.port == 5001
    assert config.release_bucket == "/tmp/deployex/bucket"
    assert config.metrics_retention_time_ms == 3_600_000
    assert config.logs_retention_time_ms == 3_600_000
    assert config.monitoring == ()  # a type not listed is not watched
    assert (app.language, app.replicas) == ("elixir", 3)
    assert (app.deploy_rollback_timeout_ms, app.deploy_schedule_interval_ms) == (600_000, 5_000)
    assert (app.ready_after_ms, app.restart_backoff_base_ms, app.restart_backoff_max_ms) == (
        30_000,
        2_000,
        300_000,
    )


def test_monitoring_entry_defaults_are_75_90_with_restart() -> None:
    config = parse_config(MINIMAL + "monitoring:\n  - type: memory\n")
    memory = config.monitoring_of("memory")
    assert memory is not None
    assert (memory.warning_threshold_percent, memory.restart_threshold_percent) == (75, 90)
    assert memory.enable_restart is True
    assert config.monitoring_of("atom") is None


def test_hot_upgrade_is_on_unless_an_app_turns_it_off() -> None:
    config = parse_config(
        MINIMAL + "applications:\n  - name: a\n  - name: b\n    hot_upgrade: false\n"
    )
    assert [app.hot_upgrade for app in config.applications] == [True, False]


def test_local_adapter_defaults_paths_under_tmp_and_cloud_ones_under_var() -> None:
    local = parse_config(MINIMAL)
    cloud = parse_config(
        "release_adapter: s3\nrelease_bucket: b\nsecrets_adapter: aws\nsecrets_path: s\n"
    )
    assert local.var_path == "/tmp/deployex/varlib"
    assert local.monitored_app_log_path == "/tmp/deployex/varlog"
    assert cloud.var_path == "/var/lib/deployex"
    assert cloud.log_path == "/var/log/deployex"
    assert cloud.monitored_app_log_path == "/var/log/monitored-apps"


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            MINIMAL
            + "applications:\n  - name: a\n  - name: b\n    monitoring:\n      - type: disk\n",
            "applications[1].monitoring[0].type: 'disk' is not one of atom, process, port",
        ),
        (
            MINIMAL + "applications:\n  - name: a\n    monitoring:\n      - type: memory\n",
            "applications[0].monitoring[0].type: 'memory' is not one of atom, process, port",
        ),
        (
            MINIMAL + "monitoring:\n  - type: cpu\n",
            "monitoring[0].type: 'cpu' is not one of memory, atom, process, port",
        ),
        ("release_adapter: ftp\nsecrets_adapter: env\n", "release_adapter: 'ftp' is not one of"),
        ("release_adapter: local\n", "secrets_adapter: missing; must be one of env, aws, gcp"),
        (MINIMAL + "port: '5001x'\n", "port: '5001x' is not an integer"),
        (MINIMAL + "port: 70000\n", "port: 70000 is above the maximum 65535"),
        (MINIMAL + "applications:\n  - name: a\n    replicas: yes\n", "replicas: true is not"),
        (MINIMAL + "applications:\n  - name: my-app\n", "applications[0].name: 'my-app' is not"),
        (MINIMAL + "applications:\n  - language: erlang\n", "applications[0].name: missing"),
        (MINIMAL + "applications: {name: a}\n", "applications: name: a is not a list"),
        (MINIMAL + "applications:\n  - just-a-string\n", "applications[0]: 'just-a-string' is not"),
        (
            MINIMAL + "applications:\n  - name: a\n    language: rust\n",
            "applications[0].language: 'rust' is not one of elixir, erlang, gleam",
        ),
        (
            MINIMAL + "applications:\n  - name: a\n  - name: a\n",
            "applications[1].name: 'a' is configured twice",
        ),
        (
            MINIMAL + "monitoring:\n  - type: memory\n    enable_restart: maybe\n",
            "monitoring[0].enable_restart: 'maybe' is not true or false",
        ),
        (
            MINIMAL + "applications:\n  - name: a\n    hot_upgrade: maybe\n",
            "applications[0].hot_upgrade: 'maybe' is not true or false",
        ),
        (
            MINIMAL
            + "monitoring:\n  - type: memory\n    warning_threshold_percent: 95\n"
            + "    restart_threshold_percent: 90\n",
            "monitoring[0].warning_threshold_percent: 95 is above restart_threshold_percent 90",
        ),
        (
            MINIMAL + "monitoring:\n  - type: atom\n  - type: atom\n",
            "monitoring[1].type: 'atom' is listed twice",
        ),
        (
            "release_adapter: s3\nsecrets_adapter: env\n",
            "release_bucket: missing; required by release_adapter s3",
        ),
        (
            "release_adapter: gcp-storage\nrelease_bucket: ''\nsecrets_adapter: env\n",
            "release_bucket: missing; required by release_adapter gcp-storage",
        ),
        (
            "release_adapter: local\nrelease_bucket: ''\nsecrets_adapter: env\n",
            "release_bucket: missing; required by release_adapter local",
        ),
        (
            "release_adapter: local\nsecrets_adapter: aws\n",
            "secrets_path: missing; required by secrets_adapter aws",
        ),
        (
            MINIMAL + "notifications:\n  - adapter: pagerduty\n",
            "notifications[0].options.routing_key: missing; required by adapter pagerduty",
        ),
        (
            MINIMAL + "notifications:\n  - adapter: webhook\n    url: http://x\n"
            "    events: [crash]\n",
            "notifications[0].events[0]: 'crash' is not one of",
        ),
        (
            MINIMAL + "applications:\n  - name: a\n    replica_ports:\n      - key: PORT\n"
            "        base: 5000\n",
            "applications[0].replica_ports[0].base: slots 5000..5003 overlap port 5001 of port",
        ),
        (
            MINIMAL + "applications:\n  - name: a\n    replicas: 2\n    replica_ports:\n"
            "      - {key: PORT, base: 4000}\n  - name: b\n    replica_ports:\n"
            "      - {key: PORT, base: 4002}\n",
            "applications[1].replica_ports[0].base: slots 4002..4005 overlap port 4002 of a.PORT",
        ),
        (
            MINIMAL + "applications:\n  - name: a\n    env:\n      - key: 1BAD\n",
            "applications[0].env[0].key: '1BAD' is not a valid environment variable name",
        ),
        (
            MINIMAL + "applications:\n  - name: " + "a" * 250 + "\n",
            "applications[0].name: 250 characters is too long for an app name: at most 183",
        ),
        (
            MINIMAL + "account_name: " + "b" * 256 + "\n",
            "account_name: 256 bytes is too long: at most 255",
        ),
        (MINIMAL + "account_name: ../x\n", "account_name: '../x' is not a folder name"),
        (
            MINIMAL + "applications:\n  - name: a\n    env_passthrough: [OK, 2BAD]\n",
            "applications[0].env_passthrough[1]: '2BAD' is not a valid environment variable",
        ),
    ],
)
def test_error_names_key_path_value_and_what_is_allowed(yaml_text: str, expected: str) -> None:
    problems = problems_of(yaml_text)
    assert any(expected in p for p in problems), problems


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    problems = problems_of("release_adapter: ftp\nsecrets_adapter: vault\nport: x\n")
    assert len(problems) == 3


def test_yaml_syntax_error_gives_line_and_column() -> None:
    (problem,) = problems_of("release_adapter: local\nsecrets_adapter: [env\n")
    assert "invalid YAML: line" in problem


@pytest.mark.parametrize("text", ["", "# only a comment\n", "- a\n- b\n"])
def test_empty_or_non_mapping_file_is_an_error(text: str) -> None:
    (problem,) = problems_of(text)
    assert problem.startswith("(top level):")


def test_unknown_keys_are_warnings_not_errors(caplog: pytest.LogCaptureFixture, tmp_path) -> None:
    path = tmp_path / "deployex.yaml"
    path.write_text(MINIMAL + "colour: blue\napplications:\n  - name: a\n    flavour: x\n")
    with caplog.at_level(logging.WARNING):
        config = load_config(path)
    assert config.warnings == (
        "colour: unknown key, ignored",
        "applications[0].flavour: unknown key, ignored",
    )
    assert "colour: unknown key, ignored" in caplog.text


def test_env_values_become_strings_as_upstream_exports_them() -> None:
    config = parse_config(
        MINIMAL + "applications:\n  - name: a\n    env:\n"
        "      - {key: FLAG, value: true}\n      - {key: N, value: 3}\n      - {key: E}\n"
    )
    assert [(e.key, e.value) for e in config.application("a").env] == [
        ("FLAG", "true"),
        ("N", "3"),
        ("E", ""),
    ]


def test_config_path_comes_from_argument_then_env_then_checkout_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CONFIG_PATH_ENV, "/etc/from-env.yaml")
    assert resolve_config_path("/etc/explicit.yaml") == Path("/etc/explicit.yaml")
    assert resolve_config_path() == Path("/etc/from-env.yaml")
    monkeypatch.delenv(CONFIG_PATH_ENV)
    assert resolve_config_path() == DEFAULT_CONFIG_PATH == ROOT / "config" / "local.yaml"


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yaml")


def test_unknown_application_lookup_lists_the_configured_ones() -> None:
    config = parse_config(MINIMAL + "applications:\n  - name: a\n")
    with pytest.raises(ConfigError, match=r"no application 'b' .*configured: a"):
        config.application("b")


def test_the_longest_app_name_that_fits_node_and_file_names_is_accepted() -> None:
    config = parse_config(MINIMAL + "applications:\n  - name: " + "a" * 183 + "\n")
    assert config.applications[0].name == "a" * 183


# -- the loader's defaults and checks are the model's ---------------------------------------------

EVERY_RECORD = """\
release_adapter: s3
release_bucket: b
secrets_adapter: aws
secrets_path: s
monitoring: [{type: memory}]
notifications: [{adapter: webhook, url: "http://hook"}]
applications:
  - name: plain
  - name: full
    replica_ports: [{key: PORT, base: 4000}]
    env: [{key: K}]
    readiness: {type: tcp}
    certificates:
      - {type: domains, domains: [a.example], dns_provider: route53, acme_provider: lets_encrypt}
"""


def _assert_model_defaults(record: Any, given: set[str]) -> None:
    """Every field of `record` not in `given` holds exactly the default its dataclass declares."""
    for f in fields(record):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if f.name in given or default is MISSING or not f.metadata.get("yaml", True):
            continue
        assert getattr(record, f.name) == default, f"{type(record).__name__}.{f.name}"


def test_every_default_the_loader_gives_is_the_models() -> None:
    config = parse_config(EVERY_RECORD)
    plain, full = config.applications
    top = {"release_adapter", "secrets_adapter", "release_bucket", "secrets_path"}
    records = [  # each with the keys the YAML gives
        (config, top | {"monitoring", "notifications", "applications"}),
        (plain, {"name"}),
        (config.monitoring[0], {"type"}),
        (config.notifications[0], {"adapter", "url"}),
        (full.replica_ports[0], {"key", "base"}),
        (full.env[0], {"key"}),
        (full.readiness, {"type"}),
        (full.certificates[0], {"type", "domains", "dns_provider", "acme_provider"}),
    ]
    for record, given in records:
        _assert_model_defaults(record, given)
    # every dataclass of the model was looked at, so a new one cannot be left out
    assert {type(r) for r, _ in records} == {
        cls for _, cls in inspect.getmembers(model, inspect.isclass) if is_dataclass(cls)
    }


def test_local_adapter_defaults_are_the_models_local_ones() -> None:
    config = parse_config(MINIMAL)
    local = {
        f.name: f.metadata["local_default"] for f in fields(Config) if "local_default" in f.metadata
    }
    assert local  # the paths
    assert {name: getattr(config, name) for name in local} == local
    assert config.release_bucket == Config("local", "env").release_bucket


def _values_the_model_refuses() -> list[tuple[str, str]]:
    """(YAML, expected problem) for each bound and each set of allowed values that the model
    gives a field of the top level or of an application."""
    cases = []
    for cls, prefix in ((Config, ""), (Application, "applications:\n  - name: a\n    ")):
        for f in fields(cls):
            meta, key = f.metadata, f.name
            given = MINIMAL.replace(f"{key}:", "was:") + prefix + key  # the key once, last
            if meta.get("minimum") is not None:
                low = meta["minimum"]
                cases.append(
                    (f"{given}: {low - 1}\n", f"{key}: {low - 1} is below the minimum {low}")
                )
            if meta.get("maximum") is not None:
                high = meta["maximum"]
                cases.append(
                    (f"{given}: {high + 1}\n", f"{key}: {high + 1} is above the maximum {high}")
                )
            if meta.get("choices"):
                allowed = ", ".join(meta["choices"])
                cases.append((f"{given}: z\n", f"{key}: 'z' is not one of {allowed}"))
    return cases


@pytest.mark.parametrize(("yaml_text", "expected"), _values_the_model_refuses())
def test_bounds_and_allowed_values_come_from_the_model(yaml_text: str, expected: str) -> None:
    problems = problems_of(yaml_text)
    assert any(p.endswith(expected) for p in problems), problems


def test_an_entry_with_a_bad_type_has_its_other_keys_checked_too() -> None:
    problems = problems_of(
        MINIMAL + "monitoring:\n  - {type: cpu, enable_restart: maybe}\n"
        "applications:\n  - name: a\n    readiness: {type: ping, timeout_ms: 0}\n"
    )
    assert problems == [
        "monitoring[0].type: 'cpu' is not one of memory, atom, process, port",
        "monitoring[0].enable_restart: 'maybe' is not true or false",
        "applications[0].readiness.type: 'ping' is not one of tcp, http, otp",
        "applications[0].readiness.timeout_ms: 0 is below the minimum 1",
    ]
