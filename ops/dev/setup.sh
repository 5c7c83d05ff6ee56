# Sourced by ops/dev/test.sh and ops/dev/run-demo.sh: installs what this project needs on a fresh
# Debian 12 machine (as root) and keeps the project's virtualenv in .venv up to date.
# Idempotent: a second run installs nothing.

VENV=".venv"
# Debian packages the suite needs (python venv support; the BEAM toolchain joins with the fixtures).
APT_PACKAGES=(python3-venv)

_apt_updated=""
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    echo "setup: need Debian packages ${missing[*]} but apt-get is not available" >&2
    return 1
  fi
  if [ -z "$_apt_updated" ]; then
    # Another apt run may hold the lock for a while on a fresh machine: wait for it.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
    _apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}"
}

ensure_system_packages() {
  # A python3 that already has venv support (e.g. pyenv) needs no python3-venv.
  if python3 -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install "${APT_PACKAGES[@]:1}"
  else
    apt_install "${APT_PACKAGES[@]}"
  fi
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
