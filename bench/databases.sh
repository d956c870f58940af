#!/usr/bin/env bash
# Workspace databases (README "Performance"), on loopback, bounded:
#   1. provisioning time of 50 workspace databases with flowgres-provision, one after another
#      (median and p95; the anchor is Neon's "under 1 second" for a new database), each one
#      role, database, grants, schema, a login as the tenant, and the tenant migrations;
#   2. a workflow start → db_select → output, POST /api/v1/apps/{id}/runs at 64 connections,
#      through flowgresd's pool of the workspace database, beside pgbench running the same
#      SELECT straight at that database.
# The bench cluster is both the control plane and the one pool server here. Settings:
# DURATION (s, default 10), CONNECTIONS (default 64), WORKSPACES (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
workspaces=${WORKSPACES:-50}
export FLOWGRES_MASTER_KEYS=$(build/flowgres-provision keygen --id bench)
start_cluster_and_daemon --run_wait_ms 30000 --workspace_pool_size 4 --workspace_pool_global_cap 64
bench_psql -c "update flowgres.workspaces set plan = 'enterprise' where id = '$workspace_id'"
raise_concurrent_run_cap
control="host=$socket port=$pg_port user=postgres dbname=bench"
provision() { build/flowgres-provision --control "$control" "$@"; }
provision server add bench --host 127.0.0.1 --port "$pg_port" --admin "host=$socket port=$pg_port user=postgres dbname=postgres" \
    --skip-hba-check >/dev/null  # a bench: the cluster trusts everyone on loopback

echo "== provisioning $workspaces workspace databases, one after another"
: >"$root/provision.ms"
for i in $(seq 1 "$workspaces"); do
    user=$(curl -sf -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
        -d "{\"email\":\"tenant$i@example.com\",\"display_name\":\"Tenant $i\"}" "$api/users")
    workspace=$(echo "$user" | jq -r .data.workspace.id)
    started=$(date +%s%N)
    provision provision "$workspace" >/dev/null
    echo $(( ($(date +%s%N) - started) / 1000000 )) >>"$root/provision.ms"
done
sort -n "$root/provision.ms" | awk '{ms[NR] = $1} END {
    printf "provisioning: %d databases, median %d ms, p95 %d ms, max %d ms\n", NR, ms[int((NR + 1) / 2)], ms[int(NR * 0.95 + 0.999)], ms[NR]}'

echo "== a db_select workflow through the workspace pool vs pgbench"
target=$(curl -sf -X POST -H "Authorization: Bearer $key" "$api/workspaces/$workspace_id/database")
db_name=$(echo "$target" | jq -r .data.db_name)
db_user=$(echo "$target" | jq -r .data.db_user)
psql -h "$socket" -p "$pg_port" -U postgres -d "$db_name" -qc \
    "create table data.items (id int primary key, name text not null);
     insert into data.items select g, 'item ' || g from generate_series(1, 10000) g;
     alter table data.items owner to $db_user; analyze data.items"
workflow='{"nodes": [
  {"id": "start", "type": "start", "data": {"inputs": [{"name": "id", "required": true}]}},
  {"id": "find", "type": "db_select", "config": {"table": "items", "columns": ["id", "name"], "where": {"id": "{{id}}"}}},
  {"id": "out", "type": "output"}],
 "edges": [{"source": "start", "target": "find"}, {"source": "find", "target": "out"}]}'
app_id=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"name":"lookup"}' \
    "$api/workspaces/$workspace_id/apps" | jq -r .data.id)
curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "{\"version\":\"1.0.0\",\"workflow\":$workflow}" "$api/apps/$app_id/versions" >/dev/null
answer=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"inputs":{"id":42}}' "$api/apps/$app_id/runs")
[ "$(echo "$answer" | jq -c .data.outputs.out.rows)" = '[{"id":42,"name":"item 42"}]' ] ||
    { echo "the workflow did not answer as expected: $answer"; exit 1; }

cat >"$root/run.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
request = function()
    return wrk.format(nil, nil, nil, '{"inputs":{"id":' .. math.random(1, 10000) .. '}}')
end
LUA
cat >"$root/select.sql" <<'SQL'
\set id random(1, 10000)
select id, name from data.items where id = :id;
SQL

echo "== $(nproc) cores; wrk -t$threads -c$connections -d${duration}s; pgbench -c$connections -j$threads -T$duration -M prepared"
run_wrk flowgresd_db_select_workflow "$api/apps/$app_id/runs" -s "$root/run.lua"
out=$(pgbench -h "$socket" -p "$pg_port" -U postgres -n -M prepared -c "$connections" -j "$threads" -T "$duration" \
    -f "$root/select.sql" "$db_name" 2>&1)
tps=$(echo "$out" | awk '/^tps/ {print $3}')
latency=$(echo "$out" | awk '/latency average/ {print $4}')
printf '%-44s %12s tx/s    avg %s ms\n' pgbench_same_select "$tps" "$latency"
echo "$tps" >"$root/pgbench_same_select.rps"
completed=$(bench_psql -c "select count(*) from flowgres.executions where status = 'completed'")
echo "executions completed: $completed"
echo
echo "ratio flowgresd workflow runs / pgbench SELECTs: $(ratio flowgresd_db_select_workflow pgbench_same_select)"
