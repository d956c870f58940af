# Shared by the benchmark scripts (sourced): a throwaway cluster and flowgresd on free ports,
# a user with an API key, wrk with percentiles, and ratios. Everything under $root goes at exit.
# Settings: DURATION (s, default 10), CONNECTIONS (wrk, default 64).
duration=${DURATION:-10}
connections=${CONNECTIONS:-64}
threads=$(nproc)

root=$(mktemp -d /tmp/flowgres-bench.XXXXXX)
chmod 755 "$root"
cleanups=()
cleanup() {
    for command in "${cleanups[@]}"; do eval "$command" 2>/dev/null || true; done
    scripts/cluster.sh down "$root/cluster" >/dev/null 2>&1 || true
    sleep 0.5
    rm -rf "$root"
}
trap cleanup EXIT

free_port() {
    local port=$((20000 + RANDOM % 20000))
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
    echo "$port"
}

# Sets pg_port, socket, daemon_port, admin_key, api, key, key_hash, user_id, workspace_id.
start_cluster_and_daemon() {
    pg_port=$(free_port)
    daemon_port=$(free_port)
    echo "== setting up (cluster on $pg_port, flowgresd on $daemon_port)"
    scripts/cluster.sh up "$root/cluster" "$pg_port"
    socket="$root/cluster/sock"
    psql -h "$socket" -p "$pg_port" -U postgres -qc "create database bench"
    psql -h "$socket" -p "$pg_port" -U postgres -d bench -qc "create extension flowgres"
    admin_key=$(build/flowgresd --new-key)
    FLOWGRES_LOG_REQUESTS=false build/flowgresd --database_url "host=$socket port=$pg_port user=postgres dbname=bench" \
        --admin_key "$admin_key" --port "$daemon_port" --workers "$threads" "$@" >"$root/flowgresd.log" 2>&1 &
    cleanups+=("kill $!")
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$daemon_port/ready" >/dev/null && break; sleep 0.1; done

    api="http://127.0.0.1:$daemon_port/api/v1"
    local user
    user=$(curl -sf -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
        -d '{"email":"bench@example.com","display_name":"Bench"}' "$api/users")
    user_id=$(echo "$user" | jq -r .data.user.id)
    workspace_id=$(echo "$user" | jq -r .data.workspace.id)
    key=$(curl -sf -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' -d '{"name":"bench"}' \
        "$api/users/$user_id/api-keys" | jq -r .data.key)
    key_hash=$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)
}

bench_psql() { psql -h "$socket" -p "$pg_port" -U postgres -d bench -qAt "$@"; }

# wrk: "Requests/sec" and the latency distribution's 50% and 99% lines; the rate goes to
# $root/<name>.rps for ratio. Extra arguments go to wrk (headers, -s script).
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

ratio() { awk -v a="$(cat "$root/$1.rps")" -v b="$(cat "$root/$2.rps")" 'BEGIN {printf "%.2f", a / b}'; }
