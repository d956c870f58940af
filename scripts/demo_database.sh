#!/usr/bin/env bash
# The demo workspace's own database, for `make run` (and its test): starts a pool server in
# POOL_DIR (cluster.sh pool), adds it to the control database as demo-pool, provisions the demo
# workspace's database there, loads the guestbook app (scripts/demo_database.sql), takes its
# db_schema through the schema-change review (submit, approve, apply) and publishes it. Each
# step is skipped when already done, so running it again changes nothing. Master keys and the
# backup directory come from the environment (FLOWGRES_MASTER_KEY_FILE or FLOWGRES_MASTER_KEYS,
# FLOWGRES_BACKUP_DIR), as flowgres-provision reads them.
#
#   demo_database.sh CONTROL_URL POOL_DIR POOL_PORT
set -euo pipefail
cd "$(dirname "$0")/.."
url=${1:?control database URL}
pool_dir=${2:?pool server directory}
pool_port=${3:?pool server port}

provision() { build/flowgres-provision --control "$url" "$@"; }
sql_value() { psql "$url" -Atqc "$1"; }

scripts/cluster.sh pool "$pool_dir" "$pool_port"
if [ "$(sql_value "select count(*) from flowgres.database_servers where name = 'demo-pool'")" = 0 ]; then
    provision server add demo-pool --host 127.0.0.1 --port "$pool_port" \
        --admin "host=$(realpath "$pool_dir/sock") port=$pool_port user=postgres dbname=postgres" >/dev/null
fi
workspace=$(sql_value "select id from flowgres.workspaces where slug = 'demo'")
if [ "$(sql_value "select status from flowgres.workspace_databases where workspace_id = '$workspace'")" != ready ]; then
    provision provision "$workspace" >/dev/null
    echo "demo workspace database provisioned on the pool server ($pool_dir, port $pool_port)"
fi
if [ "$(sql_value "select count(*) from flowgres.apps where workspace_id = '$workspace' and slug = 'guestbook'")" = 0 ]; then
    psql "$url" -v ON_ERROR_STOP=1 -q -f scripts/demo_database.sql >/dev/null
fi
app=$(sql_value "select id from flowgres.apps where workspace_id = '$workspace' and slug = 'guestbook'")
if [ "$(sql_value "select count(*) from flowgres.schema_changes where app_id = '$app' and status = 'applied'")" = 0 ]; then
    version=$(sql_value "select id from flowgres.app_versions where app_id = '$app' and version = '1.0.0'")
    change=$(provision schema submit "$app" "$version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
    provision schema approve "$change" --comment "the demo's table" >/dev/null
    provision schema apply "$change" >/dev/null
    echo "demo app 'guestbook' loaded: its table reviewed and applied in the workspace database"
fi
if [ "$(sql_value "select status from flowgres.apps where id = '$app'")" != published ]; then
    owner=$(sql_value "select id from flowgres.users where email = 'demo@flowgres.dev'")
    psql "$url" -v ON_ERROR_STOP=1 -q >/dev/null <<SQL
begin;
select set_config('flowgres.actor', '$owner', true);
select flowgres.app_publish('$app', null, '{"access_mode": "public_anonymous"}');
commit;
SQL
fi
