"""Publish the demo app of config/local.yaml to its local bucket, as a CI pipeline would.

Builds the sample releases (myerlangapp, myelixirapp, mygleamapp; cached after the first time)
with tests/fixtures/build_releases.sh, then publishes myerlangapp 0.1.0 unless the bucket already
names a version. 0.2.0 (hot-upgradable) and 0.3.0 (crashes after boot) are left beside it in
the build cache, for trying rollouts by hand:

    deployex bucket publish myerlangapp 0.2.0 <printed path>/myerlangapp-0.2.0.tar.gz
"""

from __future__ import annotations

import sys
from pathlib import Path

from deployex_actors.config import load_config
from deployex_actors.errors import CurrentJsonMissing
from deployex_actors.releases import release_store
from tests.beam_fixtures import build_releases

APP, VERSION = "myerlangapp", "0.1.0"


def main(config_path: str = "config/local.yaml") -> int:
    dist = build_releases()
    config = load_config(config_path)
    Path(config.release_bucket).mkdir(parents=True, exist_ok=True)  # a local bucket is a folder
    store = release_store(config)
    try:
        current = store.read_current(APP).version
        print(f"demo: {APP} {current} is already published in {store.description}")
    except CurrentJsonMissing:
        store.publish(APP, VERSION, dist.tarball(APP, VERSION))
        print(f"demo: published {APP} {VERSION} to {store.description}")
    print(f"demo: more versions to publish by hand are in {dist.dist / APP}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
