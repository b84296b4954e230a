#!/usr/bin/env bash
# Idempotent developer setup: a venv with the pinned tooling, and a local
# redis-server (apt-installed when running as root, otherwise a clear message).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
# Everything is installed by hash (--require-hashes), the installer included.
UV_VERSION=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements/installer.txt)

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
PYTHON=${PYTHON:-python3}
if ! python_ok "$PYTHON"; then
  echo "setup: Python 3.11 or newer is required ('$PYTHON' is $("$PYTHON" --version 2>&1 || echo missing))." >&2
  exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ "$("$VENV/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
    -r requirements/installer.txt
fi
"$VENV/bin/uv" pip install --quiet --require-hashes --python "$VENV/bin/python" -r requirements/dev.txt

if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
  as_root=""
  [ "$(id -u)" = 0 ] || as_root="sudo -n"   # CI runners have password-less sudo
  if command -v apt-get >/dev/null && $as_root true 2>/dev/null; then
    echo "setup: installing redis-server and redis-tools with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    $as_root apt-get install -y -qq redis-server redis-tools >/dev/null 2>&1 \
      || { $as_root apt-get update -qq && $as_root apt-get install -y -qq redis-server redis-tools >/dev/null; }
    # The Debian package starts a system service on :6379; nothing here uses it.
    ($as_root service redis-server stop || true) >/dev/null 2>&1
  else
    echo "setup: redis-server and redis-cli are missing. Install them (Debian: 'sudo apt-get install redis-server redis-tools') and run 'make setup' again." >&2
    exit 1
  fi
fi
echo "setup: ready ($("$VENV/bin/python" --version), $(redis-server --version | cut -d' ' -f1-3))"
