"""Release buckets: where versions are published and where every host fetches them from.

One `ReleaseStore` Protocol, one adapter per backend (`local.py`, `s3.py`, `gcs.py`) chosen by
`release_store(config)`, the current.json format (`current.py`), confined unpacking of the
tarballs (`unpack.py`), and what a release carries for a hot upgrade (`relup.py`). Importing this
package loads neither boto3 nor google-cloud-storage; an adapter's client library is loaded when
that adapter is chosen.
"""

from deployex_actors.releases.current import (
    CurrentRelease,
    parse_current_json,
    render_current_json,
)
from deployex_actors.releases.relup import read_release
from deployex_actors.releases.store import ReleaseStore, release_store
from deployex_actors.releases.tarball import DownloadedTarball
from deployex_actors.releases.unpack import safe_unpack
from deployex_actors.releases.versions import sort_versions, version_sort_key

__all__ = [
    "CurrentRelease",
    "DownloadedTarball",
    "ReleaseStore",
    "parse_current_json",
    "read_release",
    "release_store",
    "render_current_json",
    "safe_unpack",
    "sort_versions",
    "version_sort_key",
]
