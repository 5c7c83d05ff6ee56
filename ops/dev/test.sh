#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine (as root): installs what it needs, then runs
# pytest. Extra arguments go to pytest, e.g. `bash ops/dev/test.sh -m "not slow"` for the fast set.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=ops/dev/setup.sh
source ops/dev/setup.sh
ensure_system_packages
ensure_venv
exec "$VENV/bin/python" -m pytest "$@"
