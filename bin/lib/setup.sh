# Shared by bin/dev and bin/test: the virtualenv and the redis-server binary, installed when missing.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"

# Create .venv and install the project (with dev extras) when pyproject.toml changed since last time.
ensure_venv() {
  local python="${PYTHON:-python3}" stamp="$VENV/.feynman-installed" want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating virtualenv in $VENV"
    "$python" -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing feynman-jobs and its pinned dependencies"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev]"
    echo "$want" > "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

# Celery and Dramatiq for bench/peers (the `bench` extra), when pyproject.toml changed since last time:
# not part of `dev`, so bin/test and CI never download them.
ensure_bench_extra() {
  local stamp="$VENV/.feynman-bench-installed" want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing the bench extra (Celery, Dramatiq) for bench/peers"
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev,bench]"
    echo "$want" > "$stamp"
  fi
}

# redis-server on PATH: install Debian's package when we may, else say exactly what to run.
ensure_redis_server() {
  command -v redis-server >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing redis-server (Debian package)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null
    command -v redis-server >/dev/null 2>&1 && return 0
  fi
  echo "redis-server is not installed. Install it with: sudo apt-get install -y redis-server" >&2
  echo "(or set REDIS_URL to a Redis you already run)" >&2
  exit 1
}

# promtool (Debian's prometheus package) checks deploy/prometheus/alerts.yml in bin/test.
ensure_promtool() {
  command -v promtool >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing promtool (Debian package prometheus, for the alert rules)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null
    command -v promtool >/dev/null 2>&1 && return 0
  fi
  echo "promtool is not installed. Install it with: sudo apt-get install -y prometheus" >&2
  exit 1
}

# Debian's chromium for the browser test (Playwright drives it; its own browser download fails offline).
ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium (Debian package, for the browser test)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
    command -v chromium >/dev/null 2>&1 && return 0
  fi
  echo "chromium is not installed; the browser test will be skipped." >&2
  echo "Install it with: sudo apt-get install -y chromium" >&2
}

# Debian's faketime (libfaketime) for the multi-host test: one worker host runs with its clock an hour off.
ensure_faketime() {
  command -v faketime >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing faketime (Debian package, for the multi-host test)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q faketime >/dev/null
    command -v faketime >/dev/null 2>&1 && return 0
  fi
  echo "faketime is not installed; the multi-host test will be skipped." >&2
  echo "Install it with: sudo apt-get install -y faketime" >&2
}
