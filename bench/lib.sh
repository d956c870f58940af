# Shared by the benchmark scripts (sourced): a throwaway cluster and flowgresd on free ports,
# a user with an API key, wrk with percentiles, and ratios. Everything under $root goes at exit.
# Settings: DURATION (s, default 10), CONNECTIONS (wrk, default 64), ROUNDS (the scripts that
# compare medians of rounds, default 3).
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

# A port nothing uses now, as the kernel picks one (probing with a connection missed ports
# taken by outgoing connections, and nginx then failed to bind).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sets pg_port, socket, daemon_port, admin_key, api, key, key_hash, user_id, workspace_id.
start_cluster_and_daemon() {
    pg_port=$(free_port)
    daemon_port=$(free_port)
    echo "== setting up (cluster on $pg_port, flowgresd on $daemon_port)"
    # The maintenance worker works in flowgres.database: the bench's database, as in a real
    # install (left at its default, the worker found no database and did nothing).
    FLOWGRES_CLUSTER_SETTINGS="flowgres.database = 'bench'
${FLOWGRES_CLUSTER_SETTINGS:-}" scripts/cluster.sh up "$root/cluster" "$pg_port"
    socket="$root/cluster/sock"
    psql -h "$socket" -p "$pg_port" -U postgres -qc "create database bench"
    psql -h "$socket" -p "$pg_port" -U postgres -d bench -qc "create extension flowgres"
    admin_key=$(build/flowgresd --new-key)
    FLOWGRES_LOG_REQUESTS=false build/flowgresd --database_url "host=$socket port=$pg_port user=postgres dbname=bench" \
        --admin_key "$admin_key" --port "$daemon_port" --workers "$threads" "$@" >"$root/flowgresd.log" 2>&1 &
    daemon_pid=$!
    cleanups+=("kill $daemon_pid")
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

# Runs whose callers wrk dropped at the end of a run still finish: waits (bounded, 30 s) until
# none is pending or running, before anything is counted.
wait_for_runs_to_end() {
    # A visitor's synchronous run has no row until it is recorded: wait for the count of
    # executions to stand still too.
    local before=-1 now
    for _ in $(seq 1 300); do
        now=$(bench_psql -c "select count(*) || '/' || count(*) filter (where status in ('pending', 'running'))
                             from flowgres.executions")
        [ "$now" = "$before" ] && [ "${now#*/}" = 0 ] && break
        before=$now
        sleep 0.2
    done
}

# "N completed, M not": every execution the bench made.
executions_counts() {
    echo "$(bench_psql -c "select count(*) from flowgres.executions where status = 'completed'") completed," \
        "$(bench_psql -c "select count(*) from flowgres.executions where status <> 'completed'") not"
}

# The executions that did not complete, by status and error code (CLIENT_GONE: wrk closed the
# connection while the request was being admitted, as it does to every one in flight when a
# run ends).
not_completed_by_code() {
    bench_psql -F ' ' -c "select '  ' || status, coalesce(error ->> 'error_code', '-'), count(*) from flowgres.executions
                          where status <> 'completed' group by 1, 2 order by 3 desc"
}

# Trial and API runs are capped per workspace (flowgres.max_concurrent_runs_per_workspace,
# 16): raised past the connections, so that what is measured is runs, not refusals.
raise_concurrent_run_cap() {
    bench_psql -c "alter system set flowgres.max_concurrent_runs_per_workspace = 100000" -c "select pg_reload_conf()" >/dev/null
}

# Creates app $1 (name and slug) of the bench workspace with workflow $2, publishes it under
# access policy $3, and sets runtime_url to its public address.
publish_app() {
    local slug=$1 workflow=$2 policy=$3 app_id version_id workspace_slug
    app_id=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d "{\"name\":\"$slug\",\"slug\":\"$slug\"}" "$api/workspaces/$workspace_id/apps" | jq -r .data.id)
    version_id=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d "{\"version\":\"1.0.0\",\"workflow\":$workflow}" "$api/apps/$app_id/versions" | jq -r .data.id)
    curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d "{\"version_id\":\"$version_id\",\"access_policy\":$policy}" "$api/apps/$app_id/publish" >/dev/null
    workspace_slug=$(bench_psql -c "select slug from flowgres.workspaces where id = '$workspace_id'")
    runtime_url="http://127.0.0.1:$daemon_port/runtime/$workspace_slug/$slug"
}

# wrk: "Requests/sec" and the latency distribution's 50% and 99% lines; the rate goes to
# $root/<name>.rps for ratio. Extra arguments go to wrk (headers, -s script).
run_wrk() {
    local name=$1 url=$2
    shift 2
    local out
    wait_for_quiet_machine
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

# Waits (bounded: 120 s) until the machine is quiet: under 10% of its CPU busy over one second.
# A peer that fell behind (n8n at 1,000 connections) goes on with requests wrk has already
# dropped; whoever is measured next must not share the CPU with that backlog.
wait_for_quiet_machine() {
    python3 - <<'PY'
import sys, time
def times():
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)  # busy (not idle, not iowait), all
for _ in range(120):
    busy0, all0 = times()
    time.sleep(1)
    busy1, all1 = times()
    share = 100 * (busy1 - busy0) / max(all1 - all0, 1)
    if share < 10:
        break
else:
    print(f"(the machine was still {share:.0f}% busy after 120 s; measuring anyway)", file=sys.stderr)
PY
}

# $1's rate over $2's, to three significant digits; "n/a" when $2 answered nothing.
# The daemon's wait histograms (flowgres_*_wait_seconds in /metrics) kept under name $1, for
# waits_since: where a request's time went between its own steps over one measurement.
metrics_snapshot() { curl -sf "http://127.0.0.1:$daemon_port/metrics" >"$root/metrics.$1"; }

# Each wait histogram's count, mean, median and 99th percentile (the bucket bounds they fall
# under) since snapshot $1.
waits_since() {
    curl -sf "http://127.0.0.1:$daemon_port/metrics" >"$root/metrics.now"
    python3 - "$root/metrics.$1" "$root/metrics.now" <<'PY'
import re, sys
def read(path):
    series = {}
    for line in open(path):
        m = re.match(r'^(flowgres_\w+_wait_seconds)_(bucket\{le="([^"]+)"\}|sum|count) (\S+)$', line)
        if m:
            series.setdefault(m.group(1), {})[m.group(3) or m.group(2)] = float(m.group(4))
    return series
before, after = read(sys.argv[1]), read(sys.argv[2])
for name, now in sorted(after.items()):
    was = before.get(name, {})
    delta = {key: value - was.get(key, 0) for key, value in now.items()}
    count = delta.get("count", 0)
    if count <= 0:
        continue
    bounds = sorted((float(key), value) for key, value in delta.items() if key not in ("sum", "count", "+Inf"))
    def under(share):
        bound = next((bound for bound, cumulative in bounds if cumulative >= count * share), None)
        return f"<= {bound * 1000:g} ms" if bound is not None else "above every bucket"
    label = name.removeprefix("flowgres_").removesuffix("_wait_seconds").replace("_", " ")
    print(f"  {label} wait: {int(count)} waits, mean {delta['sum'] / count * 1000:.2f} ms, "
          f"p50 {under(0.5)}, p99 {under(0.99)}")
PY
}

ratio() {
    awk -v a="$(cat "$root/$1.rps")" -v b="$(cat "$root/$2.rps")" 'BEGIN {if (b > 0) printf "%.3g", a / b; else printf "n/a"}'
}

# nginx answering every request with 200 and `$1` (default "ok") on $nginx_port: the HTTP floor.
# NGINX_ACCESS_LOG=1: nginx writes its access log (a line per request, as flowgresd's request
# log does), in $root/nginx$NGINX_NAME/access.log; NGINX_NAME keeps a second nginx apart.
start_nginx() {
    nginx_port=$(free_port)
    local dir="$root/nginx${NGINX_NAME:-}"
    local access_log="off"
    [ "${NGINX_ACCESS_LOG:-0}" = 1 ] && access_log="$dir/access.log"
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<CONF
worker_processes $threads;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 4096; }
http {
    access_log $access_log;
    keepalive_requests 1000000;
    client_body_temp_path $dir;
    proxy_temp_path $dir;
    fastcgi_temp_path $dir;
    uwsgi_temp_path $dir;
    scgi_temp_path $dir;
    server { listen 127.0.0.1:$nginx_port; location / { default_type application/json; return 200 '${1:-ok}'; } }
}
CONF
    nginx -c "$dir/nginx.conf" -p "$dir"
    cleanups+=("[ -f '$dir/nginx.pid' ] && kill \"\$(cat '$dir/nginx.pid')\"")
    sleep 0.3
}

# Node-RED (from bench/peers/install.sh, node binary directory $1) running the flows file $2 on
# $node_red_port; waits until POST /run answers, the answer in $root/node-red.answer.
start_node_red() {
    node_red_port=$(free_port)
    mkdir -p "$root/node-red"
    cp "$2" "$root/node-red/flows.json"
    NODE_RED_PORT=$node_red_port "$1/node" build/peers/node-red/node_modules/node-red/red.js \
        --settings bench/peers/node-red-settings.js --userDir "$root/node-red" >"$root/node-red.log" 2>&1 &
    cleanups+=("kill $!")
    wait_for_answer "http://127.0.0.1:$node_red_port/run" "$root/node-red.answer" 200
}

# POSTs {"inputs":{"name":"Ada"}} to $1 every 0.1 s, at most $3 times, until it answers 2xx
# with a JSON object that has "out" (a peer still starting may answer 200 with a notice); the
# answer goes to $2.
wait_for_answer() {
    for _ in $(seq 1 "$3"); do
        curl -sf -H 'Content-Type: application/json' -d '{"inputs":{"name":"Ada"}}' "$1" >"$2" 2>/dev/null &&
            jq -e 'type == "object" and has("out")' "$2" >/dev/null 2>&1 && return
        sleep 0.1
    done
}

# Rounds of runs, for targets smaller than one pair of runs' noise (gateway.sh, tls.sh): a wrk
# line kept per run ($root/<name>.line, from run_wrk), and the medians of a configuration's
# ROUNDS runs as one such line ($root/<name>.line and .rps, which ratio reads).
rounds=${ROUNDS:-3}
latency_ms_of() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'; }
run_and_keep() {
    local name=$1
    run_wrk "$@" | tee "$root/$name.line"
}
combine_rounds() {
    local name=$1 p50s="" p99s="" rpss="" round
    for round in $(seq 1 "$rounds"); do
        p50s+=" $(latency_ms_of "$(awk '{print $5}' "$root/${name}_r$round.line")")"
        p99s+=" $(latency_ms_of "$(awk '{print $7}' "$root/${name}_r$round.line")")"
        rpss+=" $(cat "$root/${name}_r$round.rps")"
    done
    median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
    median "$rpss" >"$root/$name.rps"
    printf '%-44s %12s req/s   p50 %-9s p99 %-9s (median of %s rounds)\n' "$name" "$(cat "$root/$name.rps")" \
        "$(median "$p50s")ms" "$(median "$p99s")ms" "$rounds" | tee "$root/$name.line"
}
