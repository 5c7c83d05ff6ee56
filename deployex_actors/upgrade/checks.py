"""What a new version checks before DeployEx switches to it, run by the new version itself
(`deployex upgrade --verify`): the running YAML loads, and the state database migrates (on a copy
taken with SQLite's backup API, so the running DeployEx's file is not touched)."""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

from deployex_actors import __version__
from deployex_actors.catalog import Catalog
from deployex_actors.config import load_config
from deployex_actors.state import StateStore
from deployex_actors.state.schema import LATEST_VERSION, user_version


def verify(config_path: str | None) -> list[str]:
    """One line per check passed; a DeployexError (ConfigError, StateError...) for a failure."""
    done = [f"DeployEx {__version__} runs on Python {sys.version.split()[0]}"]
    config = load_config(config_path)
    done.append(f"the configuration {config.source} loads ({len(config.applications)} app(s))")
    database = Catalog.from_config(config).state_db
    if not database.exists():
        done.append("no state database yet: nothing to migrate")
        return done
    with tempfile.TemporaryDirectory(prefix="deployex-verify-") as scratch:
        copy = Path(scratch) / "deployex.db"
        source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            with sqlite3.connect(copy) as target:
                source.backup(target)
                before = user_version(target)
            target.close()
        finally:
            source.close()
        with StateStore(copy):
            pass  # opening migrates, as the new version will at its start
        done.append(f"the state database migrates (schema {before} -> {LATEST_VERSION})")
    return done
