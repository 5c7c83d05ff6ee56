#!/usr/bin/env bash
# DeployEx with the local demo config (config/local.yaml) and a sample app, from a fresh Debian 12
# machine as root: installs what it needs, builds and publishes the demo release to the local
# bucket (/tmp/deployex/bucket), then runs `deployex run` in the foreground (Ctrl-C stops it and
# its replicas).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=ops/dev/setup.sh
source ops/dev/setup.sh
ensure_system_packages
ensure_venv
"$VENV/bin/python" -m ops.dev.demo_release config/local.yaml
exec "$VENV/bin/deployex" run --config config/local.yaml "$@"
