#!/usr/bin/env bash
# `make run`: start the embedded cluster under ./var/ (unless FLOWGRES_DATABASE_URL names an
# existing server, which must preload flowgres), create the control database and extension,
# load the demo once, and print how to connect.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${FLOWGRES_PG_PORT:-5544}
if [ -n "${FLOWGRES_DATABASE_URL:-}" ]; then
    url=$FLOWGRES_DATABASE_URL
    psql_command="psql '$url'"
else
    scripts/cluster.sh up var "$port"
    socket=$(realpath var/sock)
    if ! psql -h "$socket" -p "$port" -U postgres -d postgres -Atqc "select 1 from pg_database where datname = 'flowgres'" | grep -q 1; then
        psql -h "$socket" -p "$port" -U postgres -d postgres -qc "create database flowgres"
    fi
    url="postgresql://postgres@127.0.0.1:$port/flowgres"
    psql_command="psql -h $socket -p $port -U postgres flowgres"
fi

psql "$url" -v ON_ERROR_STOP=1 -qc "create extension if not exists flowgres" 2>&1 | grep -v "already exists" || true
# The demo is loaded once: its user's email is the marker.
if [ "$(psql "$url" -Atqc "select count(*) from flowgres.users where email = 'demo@flowgres.dev'")" = "0" ]; then
    psql "$url" -v ON_ERROR_STOP=1 -q -f scripts/demo.sql >/dev/null
    echo "demo loaded: workspace 'demo', app 'hello' (published, public_anonymous)"
fi

cat <<TXT

flowgres is running.
  control database:  $url
  psql:              $psql_command
  try:               select flowgres.workspace_list();
  stop:              make stop
TXT
