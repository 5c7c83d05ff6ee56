"""What changed between the applied configuration and a newly read one, and how each change is
applied (upstream's config watcher strategy). Pure functions over `Config`.

Each changed key of the upgradable subset gets a strategy, shown as a badge:

- `immediate`: adopted as soon as the change is applied (the owner gets `ConfigChanged`);
- `next_deploy`: stored at once, used by the replicas deployed from then on (a running replica
  keeps what it was started with, also across its crash restarts);
- `full_deploy`: the app's replicas are all replaced, one at a time, right after the apply;
- `restart`: not applied at all; DeployEx must be restarted to use it.

Secrets never leave this module in a diff: notification URLs and options (webhook addresses,
PagerDuty routing keys) and app `env` values are shown as `•••`, with "(changed)" when only a
hidden value differs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, is_dataclass, replace
from typing import Any

from deployex_actors.config import Application, Config

IMMEDIATE = "immediate"
NEXT_DEPLOY = "next_deploy"
FULL_DEPLOY = "full_deploy"
RESTART = "restart"
BADGES = {
    IMMEDIATE: "Immediate",
    NEXT_DEPLOY: "Next deploy",
    FULL_DEPLOY: "Full deploy",
    RESTART: "Restart needed",
}
HIDDEN = "•••"

# Top-level keys applied while running (upstream's, then ours). `logs_max_bytes` belongs to the
# log history (a sibling feature); it is named here so it is never taken for a restart key.
TOP_LEVEL: dict[str, str] = {
    "logs_retention_time_ms": IMMEDIATE,
    "metrics_retention_time_ms": IMMEDIATE,
    "monitoring": IMMEDIATE,
    "notifications": IMMEDIATE,
    "logs_max_bytes": IMMEDIATE,
    "config_watch_interval_ms": IMMEDIATE,
}
# Per-app keys; every key of `Application` is here (test_config_diff checks it).
PER_APP: dict[str, str] = {
    "replicas": IMMEDIATE,
    "deploy_rollback_timeout_ms": IMMEDIATE,
    "deploy_schedule_interval_ms": IMMEDIATE,
    "monitoring": IMMEDIATE,
    "certificates": IMMEDIATE,  # accepted, not acted upon (model.Certificate)
    "language": NEXT_DEPLOY,
    "env": NEXT_DEPLOY,
    # ours: what a replica is started and watched with is fixed in its Monitor's spec
    "ready_after_ms": NEXT_DEPLOY,
    "restart_backoff_base_ms": NEXT_DEPLOY,
    "restart_backoff_max_ms": NEXT_DEPLOY,
    "readiness": NEXT_DEPLOY,
    "env_passthrough": NEXT_DEPLOY,
    "hot_upgrade": NEXT_DEPLOY,  # judged when the next version is prepared
    "replica_ports": FULL_DEPLOY,
}
NOT_COMPARED = {"name", "applications", "source", "warnings"}


@dataclass(frozen=True)
class Change:
    """One changed key: `key` is its path in the YAML (`applications.myapp.replicas`)."""

    key: str
    old: str
    new: str
    strategy: str
    app: str | None = None

    @property
    def badge(self) -> str:
        return BADGES[self.strategy]


@dataclass(frozen=True)
class ConfigDiff:
    changes: tuple[Change, ...] = ()  # the upgradable subset: applied on approval
    restart_needed: tuple[Change, ...] = ()  # changed, but only a DeployEx restart uses them
    added_apps: tuple[str, ...] = ()
    removed_apps: tuple[str, ...] = ()
    changed_apps: tuple[str, ...] = ()  # configured before and after, with a changed key

    @property
    def empty(self) -> bool:
        return not self.changes and not self.restart_needed

    @property
    def changes_count(self) -> int:
        """Upstream's count: changed top-level keys, every app change together counting as 1."""
        tops = {c.key.split(".", 1)[0] for c in self.changes}
        return len(tops)

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.changes)


def diff(applied: Config, new: Config) -> ConfigDiff:
    """Every change from `applied` to `new`, the strategy of each."""
    changes: list[Change] = []
    restart: list[Change] = []
    for f in fields(Config):
        if f.name in NOT_COMPARED or not f.metadata.get("yaml", True):
            continue
        old_value, new_value = getattr(applied, f.name), getattr(new, f.name)
        if old_value != new_value:
            change = _change(f.name, f.name, old_value, new_value, TOP_LEVEL.get(f.name, RESTART))
            (restart if change.strategy == RESTART else changes).append(change)
    before = {a.name: a for a in applied.applications}
    after = {a.name: a for a in new.applications}
    added = tuple(name for name in after if name not in before)
    removed = tuple(name for name in before if name not in after)
    for name in added:
        changes.append(Change(f"applications.{name}", "(none)", _app_line(after[name]),
                              IMMEDIATE, name))  # fmt: skip
    for name in removed:
        changes.append(Change(f"applications.{name}", _app_line(before[name]), "(removed)",
                              IMMEDIATE, name))  # fmt: skip
    changed = []
    for name in (n for n in after if n in before):
        per_app = _app_changes(before[name], after[name])
        changes += per_app
        if per_app:
            changed.append(name)
    return ConfigDiff(tuple(changes), tuple(restart), added, removed, tuple(changed))


def applicable(applied: Config, new: Config) -> Config:
    """The configuration that runs once `new` is approved: its upgradable keys, and the
    restart-needed ones as they are now (they change only with a DeployEx restart)."""
    kept = {
        f.name: getattr(applied, f.name)
        for f in fields(Config)
        if f.name not in NOT_COMPARED and f.name not in TOP_LEVEL and f.metadata.get("yaml", True)
    }
    return replace(new, **kept)


def full_deploy_needed(old: Application, new: Application) -> bool:
    """Whether applying `new` replaces all of the app's replicas now (a `full_deploy` key)."""
    return any(c.strategy == FULL_DEPLOY for c in _app_changes(old, new))


def _app_changes(old: Application, new: Application) -> list[Change]:
    found = []
    for f in fields(Application):
        if f.name in NOT_COMPARED:
            continue
        old_value, new_value = getattr(old, f.name), getattr(new, f.name)
        if old_value != new_value:
            key = f"applications.{new.name}.{f.name}"
            found.append(_change(key, f.name, old_value, new_value, PER_APP[f.name], new.name))
    return found


def _change(
    key: str, name: str, old: Any, new: Any, strategy: str, app: str | None = None
) -> Change:
    old_text, new_text = show(name, old), show(name, new)
    if old_text == new_text:  # only a hidden value differs
        new_text += " (changed)"
    return Change(key, old_text, new_text, strategy, app)


def _app_line(app: Application) -> str:
    return f"{app.language}, {app.replicas} replica(s)"


# -- showing values without their secrets ----------------------------------------------------------


def show(name: str, value: Any) -> str:
    """A value as the diff shows it: compact JSON, secrets hidden."""
    if value is None:
        return "null"
    if isinstance(value, str | int | float | bool):
        return json.dumps(value)
    plain = _plain(value)
    if name == "notifications":
        plain = [_hide_notification(n) for n in plain]
    elif name == "env":
        plain = [{"key": e["key"], "value": HIDDEN} for e in plain]
    return json.dumps(plain, ensure_ascii=False, separators=(", ", ": "))


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return asdict(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _hide_notification(entry: dict[str, Any]) -> dict[str, Any]:
    hidden = dict(entry)
    if hidden.get("url"):
        hidden["url"] = HIDDEN
    hidden["options"] = {key: HIDDEN for key in hidden.get("options") or {}}
    return hidden
