#!/usr/bin/env bash
# Installs DeployEx as a systemd service on Debian/Ubuntu, as root. See docs/operations.md.
#
# Layout (upstream's paths):
#   /opt/deployex/VERSION/          one virtualenv per installed version, side by side
#   /opt/deployex/current           -> VERSION, what the unit runs (bin/deployex)
#   /opt/deployex/previous          -> the version `current` pointed to before the last update
#   /usr/local/lib/deployex/deployex-stop   the unit's ExecStop (runs as root: root-owned)
#   /etc/systemd/system/deployex.service
#   /etc/deployex/deployex.yaml     written only when absent; secrets.env likewise
#   /var/lib/deployex  /var/log/deployex  /var/log/monitored-apps   DeployEx's user's, 0700
#
# /opt/deployex belongs to the user deployex, as upstream's install dir does, so that DeployEx can
# install a new version of itself next to the running one; nothing there runs as root.
# Idempotent: running the same command twice changes nothing the second time.
set -euo pipefail

PROG="deployex.sh"
# The virtualenvs are built and checked with their own packages only, not the caller's.
unset PYTHONPATH PYTHONHOME PYTHONUSERBASE
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
UNIT_SOURCE="$SCRIPT_DIR/../systemd/deployex.service"
STOP_SOURCE="$SCRIPT_DIR/../systemd/deployex-stop"
SERVICE_USER="deployex"
PACKAGE="deployex-actors"
MIN_PYTHON="3.11"

usage() {
    cat <<EOF
Usage: $PROG COMMAND [OPTIONS]

Commands:
  --install              create the user and folders, install a version of DeployEx into
                         /opt/deployex/VERSION, point /opt/deployex/current at it, install the
                         systemd unit, write /etc/deployex/deployex.yaml and secrets.env when
                         absent; restarts DeployEx only if it already runs
  --update               install a version side by side, switch current (previous keeps the old
                         one) and restart DeployEx if it runs: the replicas keep running and are
                         adopted, the state is kept
  --uninstall [--purge]  stop DeployEx (and its replicas), remove the unit and /opt/deployex;
                         keeps /etc/deployex, the state and the logs unless --purge (which also
                         removes the user)
  --help                 this text

Options:
  --wheel FILE           install this wheel (its dependencies from the package index)
  --version V            install $PACKAGE==V from the package index
  --wheelhouse DIR       take every package from DIR, never from the network (pip --no-index)
  --config FILE          the YAML to install as /etc/deployex/deployex.yaml when there is none
  --python PY            the Python (>= $MIN_PYTHON) the virtualenv is made with (default: python3)
  --root DIR             install under DIR instead of / (a throwaway root, for tests): no user is
                         created, files keep the caller's owner, systemd is never touched
EOF
}

say() { echo "$PROG: $*"; }
fail() {
    echo "$PROG: error: $*" >&2
    exit "${2:-1}"
}

COMMAND="" WHEEL="" VERSION="" WHEELHOUSE="" CONFIG="" PYTHON="python3" ROOT="" PURGE=""
need_value() {
    if [ $# -lt 2 ] || [ -z "$2" ] || [[ "$2" == --* ]]; then
        fail "$1 needs a value (see --help)" 2
    fi
}
set_command() {
    [ -z "$COMMAND" ] || fail "give one command, not $COMMAND and $1 (see --help)" 2
    COMMAND="$1"
}
while [ $# -gt 0 ]; do
    case "$1" in
    --install | --update | --uninstall) set_command "$1" ;;
    --help | -h)
        usage
        exit 0
        ;;
    --purge) PURGE=1 ;;
    --wheel | --version | --wheelhouse | --config | --python | --root)
        need_value "$@"
        case "$1" in
        --wheel) WHEEL="$2" ;;
        --version) VERSION="$2" ;;
        --wheelhouse) WHEELHOUSE="$2" ;;
        --config) CONFIG="$2" ;;
        --python) PYTHON="$2" ;;
        --root) ROOT="$2" ;;
        esac
        shift
        ;;
    *) fail "unknown argument '$1' (see --help)" 2 ;;
    esac
    shift
done

[ -n "$COMMAND" ] || fail "no command: give --install, --update, --uninstall or --help" 2
if [ -n "$PURGE" ] && [ "$COMMAND" != "--uninstall" ]; then
    fail "--purge goes with --uninstall only" 2
fi
if [ "$COMMAND" != "--uninstall" ]; then
    [ -n "$WHEEL" ] || [ -n "$VERSION" ] || fail "$COMMAND needs --wheel FILE or --version V" 2
    [ -z "$WHEEL" ] || [ -z "$VERSION" ] || fail "give --wheel or --version, not both" 2
    [ -z "$WHEEL" ] || [ -f "$WHEEL" ] || fail "no such wheel: $WHEEL" 2
    [ -z "$WHEELHOUSE" ] || [ -d "$WHEELHOUSE" ] || fail "no such wheelhouse: $WHEELHOUSE" 2
    [ -z "$CONFIG" ] || [ -f "$CONFIG" ] || fail "no such configuration file: $CONFIG" 2
fi
if [ -n "$ROOT" ]; then
    mkdir -p "$ROOT"
    ROOT="$(cd "$ROOT" && pwd)"
elif [ "$(id -u)" != 0 ]; then
    fail "run as root (or with --root DIR for a throwaway root)"
fi

OPT="$ROOT/opt/deployex"
ETC="$ROOT/etc/deployex"
VAR="$ROOT/var/lib/deployex"
LOG="$ROOT/var/log/deployex"
APP_LOG="$ROOT/var/log/monitored-apps"
UNIT="$ROOT/etc/systemd/system/deployex.service"
STOP_HELPER="$ROOT/usr/local/lib/deployex/deployex-stop"

# systemd is only asked when it runs this host (sd_booted's test) and never with --root.
systemd_running() { [ -z "$ROOT" ] && [ -d /run/systemd/system ]; }
# chown to the service user, or nothing with --root (the files stay the caller's)
own() { [ -n "$ROOT" ] || chown "$@"; }

ensure_user() {
    if [ -n "$ROOT" ]; then
        say "--root: not creating the user $SERVICE_USER (files keep their owner $(id -un))"
    elif ! getent passwd "$SERVICE_USER" >/dev/null; then
        say "creating the system user $SERVICE_USER"
        useradd --system --user-group --home-dir /var/lib/deployex --no-create-home \
            --shell /usr/sbin/nologin "$SERVICE_USER"
    fi
}

ensure_folders() {
    say "folders: $OPT $ETC $VAR $LOG $APP_LOG"
    install -d -m 0755 "$OPT"
    own "$SERVICE_USER:$SERVICE_USER" "$OPT"
    install -d -m 0750 "$ETC"
    own "root:$SERVICE_USER" "$ETC"
    for dir in "$VAR" "$LOG" "$APP_LOG"; do
        install -d -m 0700 "$dir"
        own "$SERVICE_USER:$SERVICE_USER" "$dir"
    done
    # systemd opens the unit's log files as root: made here, they belong to DeployEx's user,
    # which appends to deployex-stdout.log itself too.
    for file in "$LOG/deployex-stdout.log" "$LOG/deployex-stderr.log"; do
        [ -e "$file" ] || install -m 0600 /dev/null "$file"
        own "$SERVICE_USER:$SERVICE_USER" "$file"
    done
}

check_python() {
    command -v "$PYTHON" >/dev/null || fail "no $PYTHON (apt-get install python3 python3-venv)"
    "$PYTHON" -c "import sys; sys.exit(sys.version_info < (${MIN_PYTHON/./, }))" ||
        fail "$PYTHON is $("$PYTHON" --version 2>&1); DeployEx needs Python >= $MIN_PYTHON"
    if ! "$PYTHON" -c "import ensurepip, venv" 2>/dev/null; then
        [ -z "$ROOT" ] || fail "$PYTHON cannot make virtualenvs (install python3-venv)"
        say "installing python3-venv (apt-get)"
        apt-get install -y -q python3-venv >/dev/null
    fi
}

# The version a wheel holds: name-VERSION-tags.whl (the wheel file name standard).
wheel_version() {
    local name
    name="$(basename "$1")"
    [[ "$name" == deployex_actors-*.whl ]] || fail "$name is not a wheel of $PACKAGE"
    name="${name#deployex_actors-}"
    echo "${name%%-*}"
}

# Make /opt/deployex/VERSION; a folder without .installed (an interrupted run) is made again.
# Virtualenvs hold their own path, so it is built where it stays (never moved into place).
install_version() {
    local version="$1" dir="$OPT/$1" pip_args=(--quiet --disable-pip-version-check)
    if [ -f "$dir/.installed" ] && "$dir/bin/deployex" --version >/dev/null 2>&1; then
        say "version $version is already installed in $dir"
        return
    fi
    rm -rf "$dir"
    say "creating the virtualenv $dir"
    "$PYTHON" -m venv "$dir"
    [ -z "$WHEELHOUSE" ] || pip_args+=(--no-index --find-links "$WHEELHOUSE")
    say "installing $PACKAGE $version and its dependencies (pip; this takes a minute or two)"
    if [ -n "$WHEEL" ]; then
        "$dir/bin/pip" install "${pip_args[@]}" "$WHEEL"
    else
        "$dir/bin/pip" install "${pip_args[@]}" "$PACKAGE==$version"
    fi
    local reported
    reported="$("$dir/bin/deployex" --version)"
    [ "$reported" = "deployex $version" ] ||
        fail "$dir/bin/deployex says '$reported', expected 'deployex $version'"
    touch "$dir/.installed"
    own -R "$SERVICE_USER:$SERVICE_USER" "$dir"
    say "installed $reported in $dir"
}

# Point a link of /opt/deployex at a version, atomically (rename over the old link).
point() {
    local link="$OPT/$1" version="$2"
    ln -sfn "$version" "$link.new"
    own -h "$SERVICE_USER:$SERVICE_USER" "$link.new"
    mv -Tf "$link.new" "$link"
}

install_unit() {
    if [ ! -f "$UNIT_SOURCE" ] || [ ! -f "$STOP_SOURCE" ]; then
        fail "the unit files are not next to this script ($SCRIPT_DIR/../systemd)"
    fi
    say "systemd unit: $UNIT"
    install -d -m 0755 "$(dirname "$UNIT")" "$(dirname "$STOP_HELPER")"
    install -m 0644 "$UNIT_SOURCE" "$UNIT"
    install -m 0755 "$STOP_SOURCE" "$STOP_HELPER"
    own root:root "$UNIT" "$STOP_HELPER"
}

write_config() {
    local yaml="$ETC/deployex.yaml"
    if [ -e "$yaml" ]; then
        say "keeping $yaml"
    elif [ -n "$CONFIG" ]; then
        say "writing $yaml from $CONFIG"
        install -m 0640 "$CONFIG" "$yaml"
    else
        say "writing $yaml (a starting point: edit it, see docs/configuration.md)"
        install -m 0640 /dev/null "$yaml"
        default_config >"$yaml"
    fi
    own "root:$SERVICE_USER" "$yaml"
    local secrets="$ETC/secrets.env"
    if [ -e "$secrets" ]; then
        say "keeping $secrets"
    else
        say "writing $secrets (random key base and cookie; the admin password hash is yours)"
        install -m 0600 /dev/null "$secrets"
        default_secrets >"$secrets"
    fi
}

default_config() {
    cat <<'EOF'
# DeployEx configuration (docs/configuration.md). Written once by deployex.sh --install;
# later installs and updates keep it.
account_name: "prod"
hostname: "localhost"
port: 5001

# Where releases come from: "s3" or "gcp-storage" with release_bucket: "my-bucket" (and
# aws_region / google_credentials), or "local" with a folder on this host.
release_adapter: "local"
release_bucket: "/srv/deployex/releases"
# Secrets come from /etc/deployex/secrets.env (the unit's EnvironmentFile), or "aws"/"gcp".
secrets_adapter: "env"

var_path: "/var/lib/deployex"
log_path: "/var/log/deployex"
monitored_app_log_path: "/var/log/monitored-apps"

applications: []
EOF
}

default_secrets() {
    local key_base cookie
    key_base="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))')"
    cookie="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')"
    cat <<EOF
# Read by systemd (EnvironmentFile of deployex.service) for secrets_adapter "env"; root only.
DEPLOYEX_SECRET_KEY_BASE=$key_base
DEPLOYEX_ERLANG_COOKIE=$cookie
# DeployEx does not start until this is set: the output of
#   /opt/deployex/current/bin/deployex hash-password
# DEPLOYEX_ADMIN_HASHED_PASSWORD=
EOF
}

systemd_apply() {
    if ! systemd_running; then
        say "systemd does not run here${ROOT:+ (--root)}: not reloading, enabling or restarting"
        return
    fi
    say "systemctl daemon-reload; enable deployex"
    systemctl daemon-reload
    systemctl enable --quiet deployex.service
    if systemctl is-active --quiet deployex.service; then
        say "restarting DeployEx (the replicas keep running and are adopted)"
        systemctl restart deployex.service
    else
        say "DeployEx is not running: start it with 'systemctl start deployex' when the" \
            "configuration and secrets are ready"
    fi
}

package_version() {
    if [ -n "$WHEEL" ]; then wheel_version "$WHEEL"; else echo "$VERSION"; fi
}

do_install() {
    local version
    version="$(package_version)"
    check_python
    ensure_user
    ensure_folders
    install_version "$version"
    local before=""
    [ -L "$OPT/current" ] && before="$(readlink "$OPT/current")"
    if [ "$before" != "$version" ]; then
        [ -z "$before" ] || point previous "$before"
        point current "$version"
    fi
    say "current -> $version"
    install_unit
    write_config
    systemd_apply
    say "done: DeployEx $version in $OPT/current"
}

do_update() {
    [ -L "$OPT/current" ] || fail "DeployEx is not installed in $OPT: use --install"
    do_install
}

do_uninstall() {
    if systemd_running && [ -e "$UNIT" ]; then
        say "stopping DeployEx and its replicas (systemctl disable --now deployex)"
        systemctl disable --now --quiet deployex.service || true
    fi
    say "removing $UNIT, $STOP_HELPER and $OPT"
    rm -f "$UNIT" "$STOP_HELPER"
    rmdir "$(dirname "$STOP_HELPER")" 2>/dev/null || true
    rm -rf "$OPT"
    ! systemd_running || systemctl daemon-reload
    if [ -z "$PURGE" ]; then
        say "kept $ETC, $VAR, $LOG and $APP_LOG (--purge removes them)"
        return
    fi
    say "--purge: removing $ETC, $VAR, $LOG and $APP_LOG"
    rm -rf "$ETC" "$VAR" "$LOG" "$APP_LOG"
    if [ -z "$ROOT" ] && getent passwd "$SERVICE_USER" >/dev/null; then
        say "removing the user $SERVICE_USER"
        userdel "$SERVICE_USER"
    fi
}

case "$COMMAND" in
--install) do_install ;;
--update) do_update ;;
--uninstall) do_uninstall ;;
esac
