# Sourced by ops/dev/test.sh and ops/dev/run-demo.sh: installs what this project needs on a fresh
# Debian 12 machine (as root) and keeps the project's virtualenv in .venv up to date.
# Idempotent: a second run installs nothing and prints nothing.

VENV=".venv"
# Debian packages the suite needs: python venv support first (skipped when python3 already has
# it), then the BEAM toolchain that tests/fixtures/build_releases.sh builds real releases with,
# then the browser the dashboard tests drive through Playwright (never `playwright install`),
# and tmux, which the dashboard's host terminal runs.
APT_PACKAGES=(
  python3-venv
  erlang-base erlang-crypto erlang-ssl erlang-public-key erlang-asn1 erlang-runtime-tools
  erlang-tools erlang-syntax-tools erlang-parsetools erlang-inets erlang-dev erlang-eunit elixir
  chromium tmux shellcheck
)
# rebar3 is taken out of its .deb rather than installed: installing it pulls erlang-wx, GTK and
# WebKit (+320 MB) while the package itself is one escript. build_releases.sh looks here too.
REBAR3_DIR="/opt/rebar3"

_apt_updated=""
apt_update_once() {
  if [ -z "$_apt_updated" ]; then
    # Another apt run may hold the lock for a while on a fresh machine: wait for it.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
    _apt_updated=1
  fi
}

apt_install() {
  local missing=() installed
  # One dpkg-query for all packages (the check runs on every test run); it fails when one is
  # unknown to dpkg, which only means missing.
  installed=" $(dpkg-query -W -f='${Package}=${Status}\n' "$@" 2>/dev/null \
    | sed -n 's/=install ok installed$//p' | tr '\n' ' ' || true)"
  for pkg in "$@"; do
    [[ "$installed" == *" $pkg "* ]] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "setup: need Debian packages ${missing[*]} but apt-get is not available" >&2
    return 1
  fi
  apt_update_once
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}"
}

ensure_rebar3() {
  if command -v rebar3 >/dev/null || [ -x "$REBAR3_DIR/usr/bin/rebar3" ]; then
    return 0
  fi
  if ! command -v apt-get >/dev/null; then
    echo "setup: need rebar3 (on PATH or in $REBAR3_DIR) but apt-get is not available" >&2
    return 1
  fi
  local tmp
  tmp="$(mktemp -d)"
  # As root, apt drops to the _apt user to download and warns it cannot write a mktemp folder.
  if ! (cd "$tmp" && apt-get -qq -o APT::Sandbox::User=root download rebar3 2>/dev/null); then
    apt_update_once
    (cd "$tmp" && apt-get -qq -o APT::Sandbox::User=root download rebar3)
  fi
  # Extract beside the target and rename, so a half-extracted rebar3 is never found.
  rm -rf "$REBAR3_DIR.partial"
  dpkg-deb -x "$tmp"/rebar3_*.deb "$REBAR3_DIR.partial"
  mv "$REBAR3_DIR.partial" "$REBAR3_DIR"
  rm -rf "$tmp"
}

ensure_system_packages() {
  if ! command -v dpkg-query >/dev/null && command -v erl >/dev/null && command -v mix >/dev/null; then
    # Not Debian, but the toolchain is already there (asdf, Homebrew, ...): use it as it is.
    ensure_rebar3
    return 0
  fi
  # A python3 that already has venv support (e.g. pyenv) needs no python3-venv.
  if python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install "${APT_PACKAGES[@]:1}"
  else
    apt_install "${APT_PACKAGES[@]}"
  fi
  ensure_rebar3
}

ensure_venv() {
  local stamp
  stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  if [ ! -e "$stamp" ]; then
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e '.[test]'
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
}
