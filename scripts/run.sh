#!/usr/bin/env bash
# `make run`: start the embedded cluster under ./var/ (unless FLOWGRES_DATABASE_URL names an
# existing server, which must preload flowgres), create or update the control database and
# extension, load the demo once (with a workspace database on a second embedded server under
# var/pool, FLOWGRES_POOL_PORT), (re)start flowgresd on 127.0.0.1:8080 (FLOWGRES_PORT) with
# the admin key kept in var/admin_key, and print how to connect.
set -euo pipefail
cd "$(dirname "$0")/.."

port=${FLOWGRES_PG_PORT:-5544}
if [ -n "${FLOWGRES_DATABASE_URL:-}" ]; then
    url=$FLOWGRES_DATABASE_URL
    psql_command="psql '$url'"
else
    # flowgres is preloaded: a running server keeps the library it started with. After
    # `make install` put a newer one in place, restart so the server runs what was built.
    library="$(pg_config --pkglibdir)/flowgres.so"
    if [ -f var/pgdata/postmaster.pid ] && [ "$library" -nt var/pgdata/postmaster.pid ]; then
        echo "restarting the embedded cluster to load the new flowgres library"
        scripts/cluster.sh restart var
    fi
    scripts/cluster.sh up var "$port"
    socket=$(realpath var/sock)
    if ! psql -h "$socket" -p "$port" -U postgres -d postgres -Atqc "select 1 from pg_database where datname = 'flowgres'" | grep -q 1; then
        psql -h "$socket" -p "$port" -U postgres -d postgres -qc "create database flowgres"
    fi
    url="postgresql://postgres@127.0.0.1:$port/flowgres"
    psql_command="psql -h $socket -p $port -U postgres flowgres"
fi

psql "$url" -v ON_ERROR_STOP=1 -qc "create extension if not exists flowgres" 2>&1 | grep -v "already exists" || true
# A database made by an older checkout is brought to the installed version.
PGOPTIONS="-c client_min_messages=warning" psql "$url" -v ON_ERROR_STOP=1 -qc "alter extension flowgres update"
# The demo is loaded once: its user's email is the marker.
if [ "$(psql "$url" -Atqc "select count(*) from flowgres.users where email = 'demo@flowgres.dev'")" = "0" ]; then
    psql "$url" -v ON_ERROR_STOP=1 -q -f scripts/demo.sql >/dev/null
    echo "demo loaded: workspace 'demo', app 'hello' (published, public_anonymous)"
fi

# The demo workspace's own database (README, "Workspace databases"): a pool server under
# var/pool, master keys in var/master.keys (mode 600, never in the database), backups in
# var/backups; then the guestbook app, whose db_schema goes through the schema-change review.
# A failure here leaves the rest of the demo running.
pool_port=${FLOWGRES_POOL_PORT:-5545}
mkdir -p var
if [ ! -s var/master.keys ]; then
    (umask 077 && build/flowgres-provision keygen --id demo1 >var/master.keys)
fi
export FLOWGRES_MASTER_KEY_FILE=$(realpath var/master.keys) FLOWGRES_BACKUP_DIR=$(realpath -m var/backups)
if ! scripts/demo_database.sh "$url" var/pool "$pool_port"; then
    echo "warning: the demo workspace database could not be set up; the rest of the demo runs without it" >&2
fi

# The bootstrap admin key: made once, kept private under var/, reused by later runs.
mkdir -p var/log
if [ -n "${FLOWGRES_ADMIN_KEY:-}" ]; then
    admin_key=$FLOWGRES_ADMIN_KEY
else
    if [ ! -s var/admin_key ]; then
        (umask 077 && build/flowgresd --new-key >var/admin_key)
    fi
    admin_key=$(cat var/admin_key)
fi

# The demo's model provider: without FLOWGRES_LLM_BASE_URL it is the bundled test provider on
# loopback, which the daemon may then reach (127.0.0.1 only; set FLOWGRES_EGRESS_ALLOW to choose).
llm_port=${FLOWGRES_LLM_PORT:-8090}
if [ -z "${FLOWGRES_LLM_BASE_URL:-}" ]; then export FLOWGRES_EGRESS_ALLOW=${FLOWGRES_EGRESS_ALLOW:-127.0.0.1/32}; fi

# (Re)start the daemon so a fresh build is what answers.
http_port=${FLOWGRES_PORT:-8080}
if [ -s var/flowgresd.pid ] && kill -0 "$(cat var/flowgresd.pid)" 2>/dev/null; then
    kill -TERM "$(cat var/flowgresd.pid)"
    for _ in $(seq 1 100); do kill -0 "$(cat var/flowgresd.pid)" 2>/dev/null || break; sleep 0.1; done
fi
FLOWGRES_DATABASE_URL=$url FLOWGRES_ADMIN_KEY=$admin_key FLOWGRES_PORT=$http_port \
    nohup build/flowgresd >>var/log/flowgresd.log 2>&1 &
echo $! >var/flowgresd.pid
ready=no
for _ in $(seq 1 100); do
    if curl -sf "http://127.0.0.1:$http_port/ready" >/dev/null 2>&1; then ready=yes; break; fi
    sleep 0.1
done
if [ "$ready" != yes ]; then
    echo "flowgresd did not become ready; its log (var/log/flowgresd.log) ends with:" >&2
    tail -n 20 var/log/flowgresd.log >&2
    exit 1
fi

# The demo's AI app (README "The llm step"): its provider is registered through the daemon,
# which seals the key. A failure here leaves the rest of the demo running.
if ! scripts/demo_llm.sh "$url" "http://127.0.0.1:$http_port" "$admin_key" var "$llm_port"; then
    echo "warning: the demo's AI app could not be set up; the rest of the demo runs without it" >&2
fi

hello_app_id=$(psql "$url" -Atqc "select a.id from flowgres.apps a join flowgres.workspaces w on w.id = a.workspace_id
                                   where w.slug = 'demo' and a.slug = 'hello'")
if [ -n "${FLOWGRES_LLM_BASE_URL:-}" ]; then demo_model=$(echo "${FLOWGRES_LLM_MODELS:-gpt-4o-mini}" | cut -d, -f1); else demo_model=local-echo-not-a-model; fi
cat <<TXT

flowgres is running.
  control database:  $url
  psql:              $psql_command
  API:               http://127.0.0.1:$http_port/api/v1   (OpenAPI: http://127.0.0.1:$http_port/openapi.json)
  health:            http://127.0.0.1:$http_port/health  /ready  /metrics
  public page:       http://127.0.0.1:$http_port/runtime/demo/hello   (the demo app; open it in a browser)
  database app:      http://127.0.0.1:$http_port/runtime/demo/guestbook   (writes to the workspace's own database)
  AI app:            http://127.0.0.1:$http_port/runtime/demo/ask   (${FLOWGRES_LLM_BASE_URL:-the bundled test provider: it echoes, it is not a model})
  gateway (OpenAI):  curl -s -H "Authorization: Bearer \$(cat var/gateway_key)" -H 'Content-Type: application/json' \\
                       -d '{"model": "$demo_model", "messages": [{"role": "user", "content": "Hello"}]}' \\
                       http://127.0.0.1:$http_port/v1/chat/completions
  custom domain:     curl -s -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \\
                       -d '{"domain": "hello.example.test"}' http://127.0.0.1:$http_port/api/v1/apps/$hello_app_id/domains
                     answers the TXT record that proves it; README "Custom domains" walks through it locally
                     with pebble (DNS, verification, a certificate, HTTPS at curl --resolve hello.example.test:…)
  admin key:         $admin_key
  try:               curl -s -H "Authorization: Bearer $admin_key" http://127.0.0.1:$http_port/api/v1/error-codes
  daemon log:        var/log/flowgresd.log
  stop:              make stop
TXT
