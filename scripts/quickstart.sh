#!/usr/bin/env bash
# The README quickstart, end to end against the local gateway: every step prints its JSON.
# Uses a throw-away config dir and gateway data dir unless you set RUN402_CONFIG_DIR /
# RUN402_LOCAL_DIR, so it never touches your real allowance.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091
source "$ROOT/scripts/bootstrap.sh"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/run402-quickstart.XXXXXX")"
export RUN402_CONFIG_DIR="${RUN402_CONFIG_DIR:-$WORK/config}"
export RUN402_LOCAL_DIR="${RUN402_LOCAL_DIR:-$WORK/local}"
cleanup() { run402 local down >/dev/null 2>&1 || true; }
trap cleanup EXIT

step() { printf '\n$ %s\n' "$*" >&2; "$@"; }

step run402 local up --port 0 | tee "$WORK/up.json"
export RUN402_API_BASE="$(python -c 'import json,sys; print(json.load(open(sys.argv[1]))["api_base"])' "$WORK/up.json")"
step run402 init --json
step run402 tier set prototype
step run402 projects provision --name demo
step run402 projects sql "create table notes (id serial primary key, body text not null, created_at timestamptz default now())"
step run402 projects sql "insert into notes (body) values ('hello'), ('from run402')"
step run402 projects sql "select id, body from notes order by id"
step run402 projects list
step run402 allowance balance
printf '\nQuickstart complete: a paid prototype tier, a project, a table with rows.\n' >&2
