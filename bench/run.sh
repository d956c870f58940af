#!/usr/bin/env bash
# Side-by-side benchmark on loopback (bounded: a few 10-second runs), as the issue asks:
#   GET /health of flowgresd        vs nginx `return 200`          (the machine's HTTP floor),
#                                      also with both logging every request
#   authenticated GET /api/v1/workspaces/{id}
#                                   vs pgbench running the same SQL (the database floor):
#                                      api_key_authenticate + workspace_get in one pipeline,
#                                      exactly the daemon's one round trip
# Prints req/s, p50 and p99 for each and the ratios. Uses its own throwaway cluster and ports.
# Settings: DURATION (s, default 10), CONNECTIONS (wrk, default 64), PG_CLIENTS (default 16).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_clients=${PG_CLIENTS:-16}
source bench/lib.sh
start_cluster_and_daemon
curl -sf -H "Authorization: Bearer $key" "$api/workspaces/$workspace_id" >/dev/null

start_nginx

# pgbench in pipeline mode: one Sync per transaction, like the daemon. Percentiles from the
# per-transaction log (column 3 is latency in microseconds).
run_pgbench() {
    local name=$1 script=$2
    pgbench -h "$socket" -p "$pg_port" -U postgres -n -M prepared -c "$pg_clients" -j "$threads" -T 2 -f "$script" \
        bench >/dev/null 2>&1
    (cd "$root" && pgbench -h "$socket" -p "$pg_port" -U postgres -n -M prepared -c "$pg_clients" -j "$threads" \
        -T "$duration" -f "$script" --log --log-prefix="$root/pgbench" bench >"$root/pgbench.out" 2>&1)
    local tps p50 p99
    tps=$(awk '/^tps/ {print $3}' "$root/pgbench.out" | head -n 1)
    read -r p50 p99 < <(cat "$root"/pgbench.* 2>/dev/null | awk '{print $3}' | sort -n |
        awk '{v[NR]=$1} END {printf "%.2fms %.2fms\n", v[int(NR*0.5)]/1000, v[int(NR*0.99)]/1000}')
    rm -f "$root"/pgbench.[0-9]*
    printf '%-44s %12s tps     p50 %-9s p99 %-9s\n' "$name" "$tps" "$p50" "$p99"
    echo "$tps" >"$root/$name.rps"
}

cat >"$root/workspace_get.sql" <<SQL
\\startpipeline
select flowgres.api_key_authenticate('$key_hash', 'read');
select flowgres.workspace_get('$workspace_id')::text;
\\endpipeline
SQL

echo "== $(nproc) cores; wrk -t$threads -c$connections -d${duration}s; pgbench -c$pg_clients -j$threads -T$duration"
run_wrk nginx_return_200 "http://127.0.0.1:$nginx_port/"
run_wrk flowgresd_health "http://127.0.0.1:$daemon_port/health"
run_pgbench pgbench_workspace_get "$root/workspace_get.sql"
run_wrk flowgresd_workspace_get "$api/workspaces/$workspace_id" -H "Authorization: Bearer $key"

# Both logging every request: nginx its access log, flowgresd its JSON request lines (as
# `make run` starts it), each to a file.
NGINX_NAME=-logging NGINX_ACCESS_LOG=1 start_nginx
logging_port=$(free_port)
FLOWGRES_LOG_REQUESTS=true build/flowgresd --database_url "host=$socket port=$pg_port user=postgres dbname=bench" \
    --admin_key "$admin_key" --port "$logging_port" --workers "$threads" >"$root/flowgresd-logging.log" 2>&1 &
cleanups+=("kill $!")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$logging_port/ready" >/dev/null && break; sleep 0.1; done
run_wrk nginx_logging "http://127.0.0.1:$nginx_port/"
run_wrk flowgresd_health_logging "http://127.0.0.1:$logging_port/health"
echo "request lines written: nginx $(wc -l <"$root/nginx-logging/access.log"), flowgresd $(grep -c '"msg":"request"' "$root/flowgresd-logging.log")"

echo
echo "ratio /health / nginx:                         $(ratio flowgresd_health nginx_return_200)   (target >= 0.80)"
echo "ratio /health / nginx, both logging requests:  $(ratio flowgresd_health_logging nginx_logging)   (target >= 0.90)"
echo "ratio GET workspace / pgbench (same SQL):      $(ratio flowgresd_workspace_get pgbench_workspace_get)   (target >= 0.60)"
