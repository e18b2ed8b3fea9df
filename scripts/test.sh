#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with Docker:
#   1. installs what the tests need (Debian packages, the Compose v2 plugin, a Python venv),
#   2. lints (ruff) and type-checks (mypy --strict),
#   3. builds the images (the base image comes from Debian packages when no registry is reachable),
#   4. runs every test layer: unit, process (real PostgreSQL/PgBouncer on 127.0.0.1), compose (Docker).
# Extra arguments go to pytest, e.g. `scripts/test.sh tests/unit -k cgroup`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "system packages and the Compose v2 plugin"
if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
bash scripts/install-deps.sh

step "Python environment (.venv)"
# Debian's own python3 (what the image runs) when present; any python3 >= 3.11 otherwise.
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

step "lint and types"
.venv/bin/ruff check .
.venv/bin/mypy

step "images"
bash scripts/docker/build-images.sh

step "tests"
if [ "$#" -gt 0 ]; then
  exec .venv/bin/pytest "$@"
fi
exec .venv/bin/pytest tests/unit tests/process tests/compose
