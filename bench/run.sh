#!/usr/bin/env bash
# Side-by-side benchmark on loopback (bounded: a few 10-second runs), as the issue asks:
#   GET /health of flowgresd        vs nginx `return 200`          (the machine's HTTP floor)
#   authenticated GET /api/v1/workspaces/{id}
#                                   vs pgbench running the same SQL (the database floor):
#                                      api_key_authenticate + workspace_get in one pipeline,
#                                      exactly the daemon's one round trip
# Prints req/s, p50 and p99 for each and the ratios. Uses its own throwaway cluster and ports.
# Settings: DURATION (s, default 10), CONNECTIONS (wrk, default 64), PG_CLIENTS (default 16).
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
pg_clients=${PG_CLIENTS:-16}
threads=$(nproc)

root=$(mktemp -d /tmp/flowgres-bench.XXXXXX)
chmod 755 "$root"
free_port() {
    local port=$((20000 + RANDOM % 20000))
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}
pg_port=$(free_port)
daemon_port=$(free_port)
nginx_port=$(free_port)
daemon_pid=""
cleanup() {
    [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null || true
    [ -f "$root/nginx/nginx.pid" ] && kill "$(cat "$root/nginx/nginx.pid")" 2>/dev/null || true
    scripts/cluster.sh down "$root/cluster" >/dev/null 2>&1 || true
    sleep 0.5
    rm -rf "$root"
}
trap cleanup EXIT

echo "== setting up (cluster on $pg_port, flowgresd on $daemon_port, nginx on $nginx_port)"
scripts/cluster.sh up "$root/cluster" "$pg_port"
socket="$root/cluster/sock"
psql -h "$socket" -p "$pg_port" -U postgres -qc "create database bench"
psql -h "$socket" -p "$pg_port" -U postgres -d bench -qc "create extension flowgres"
admin_key=$(build/flowgresd --new-key)

FLOWGRES_LOG_REQUESTS=false build/flowgresd --database_url "host=$socket port=$pg_port user=postgres dbname=bench" \
    --admin_key "$admin_key" --port "$daemon_port" --workers "$threads" >"$root/flowgresd.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$daemon_port/ready" >/dev/null && break; sleep 0.1; done

api="http://127.0.0.1:$daemon_port/api/v1"
user=$(curl -sf -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
    -d '{"email":"bench@example.com","display_name":"Bench"}' "$api/users")
user_id=$(echo "$user" | jq -r .data.user.id)
workspace_id=$(echo "$user" | jq -r .data.workspace.id)
key=$(curl -sf -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' -d '{"name":"bench"}' \
    "$api/users/$user_id/api-keys" | jq -r .data.key)
key_hash=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
curl -sf -H "Authorization: Bearer $key" "$api/workspaces/$workspace_id" >/dev/null

mkdir -p "$root/nginx"
cat >"$root/nginx/nginx.conf" <<CONF
worker_processes $threads;
pid $root/nginx/nginx.pid;
error_log $root/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $root/nginx;
    proxy_temp_path $root/nginx;
    fastcgi_temp_path $root/nginx;
    uwsgi_temp_path $root/nginx;
    scgi_temp_path $root/nginx;
    server { listen 127.0.0.1:$nginx_port; location / { return 200 'ok'; } }
}
CONF
nginx -c "$root/nginx/nginx.conf" -p "$root/nginx"
sleep 0.3

# wrk: "Requests/sec" and the latency distribution's 50% and 99% lines.
run_wrk() {
    local name=$1 url=$2
    shift 2
    local out
    # A short warm-up first: connections opened, statements prepared, caches filled.
    wrk -t "$threads" -c "$connections" -d 2s "$@" "$url" >/dev/null
    out=$(wrk -t "$threads" -c "$connections" -d "${duration}s" --latency "$@" "$url")
    local rps p50 p99 non2xx
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
    printf '%-44s %12s req/s   p50 %-9s p99 %-9s %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:+non-2xx: $non2xx}"
    echo "$rps" >"$root/$name.rps"
}

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

ratio() { awk -v a="$(cat "$root/$1.rps")" -v b="$(cat "$root/$2.rps")" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "ratio /health / nginx:                         $(ratio flowgresd_health nginx_return_200)   (target >= 0.80)"
echo "ratio GET workspace / pgbench (same SQL):      $(ratio flowgresd_workspace_get pgbench_workspace_get)   (target >= 0.60)"
