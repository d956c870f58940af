#!/usr/bin/env bash
# The public runtime side by side (README "Performance"), on loopback, bounded:
#   POST /runtime/{workspace}/{app} {"inputs":{"name":"Ada"}} of a published public_anonymous
#   app, 3 nodes (start → transform → output), limits raised so nothing is refused
#   vs the same flow as a Node-RED 5 http-in flow (http in → function → http response),
#      an n8n 2 webhook workflow (Webhook → Set → Respond to Webhook; N8N=0 leaves it out,
#      its install is about 3 GB), and nginx `return 200` with the answer's bytes
# at 64 and 1,000 connections. Each flowgresd request is admitted (session, rate limits in
# shared memory, quota), billed, and run as a durable execution with its events, as a
# visitor's request is; the peers keep nothing (n8n is set not to save successful runs).
# Prints executions/s, p50 and p99 and the ratios. Settings: DURATION (s, default 10),
# N8N (1 or 0, default 1), SOAK (s, default 0: none): after the comparison, flowgresd alone at
# 1,000 connections for that long, its resident memory sampled every 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true

with_n8n=${N8N:-1}
source bench/lib.sh
node_bin=$(bench/peers/install.sh $([ "$with_n8n" = 1 ] && echo n8n))
start_cluster_and_daemon --run_wait_ms 30000
bench_psql -c "update flowgres.workspaces set plan = 'enterprise' where id = '$workspace_id'"

workflow='{"nodes": [
  {"id": "start", "type": "start", "data": {"inputs": [{"name": "name", "required": true}]}},
  {"id": "greet", "type": "transform", "config": {"template": {"greeting": "hello {{name}}"}}},
  {"id": "out", "type": "output", "config": {"value": "{{greet}}"}}],
 "edges": [{"source": "start", "target": "greet"}, {"source": "greet", "target": "out"}]}'
policy='{"access_mode": "public_anonymous",
         "rate_limit": {"per_ip": {"max_requests": 1000000, "window_seconds": 60}}}'
publish_app greeter "$workflow" "$policy"
answer=$(curl -sf -H 'Content-Type: application/json' -d '{"inputs":{"name":"Ada"}}' "$runtime_url")
[ "$(echo "$answer" | jq -c .data.outputs)" = '{"out":{"greeting":"hello Ada"}}' ] ||
    { echo "the runtime did not answer as expected: $answer"; exit 1; }

start_nginx '{"out":{"greeting":"hello Ada"}}'
start_node_red "$node_bin" bench/peers/node-red-runtime-flows.json
[ "$(jq -c .out "$root/node-red.answer")" = '{"greeting":"hello Ada"}' ] ||
    { echo "Node-RED did not answer as expected:"; tail -20 "$root/node-red.log"; exit 1; }

if [ "$with_n8n" = 1 ]; then
    n8n_port=$(free_port)
    psql -h "$socket" -p "$pg_port" -U postgres -qc "create database n8n"
    n8n=(env N8N_USER_FOLDER="$root/n8n" N8N_PORT="$n8n_port" N8N_LISTEN_ADDRESS=127.0.0.1
         N8N_DIAGNOSTICS_ENABLED=false N8N_VERSION_NOTIFICATIONS_ENABLED=false N8N_PERSONALIZATION_ENABLED=false
         N8N_LOG_LEVEL=warn EXECUTIONS_DATA_SAVE_ON_SUCCESS=none N8N_RUNNERS_ENABLED=false
         DB_TYPE=postgresdb DB_POSTGRESDB_HOST="$socket" DB_POSTGRESDB_PORT="$pg_port" DB_POSTGRESDB_DATABASE=n8n
         DB_POSTGRESDB_USER=postgres
         "$node_bin/node" build/peers/n8n/node_modules/n8n/bin/n8n)
    "${n8n[@]}" import:workflow --input=bench/peers/n8n-runtime-workflow.json >"$root/n8n-setup.log" 2>&1
    "${n8n[@]}" publish:workflow --id=benchRuntime0001 >>"$root/n8n-setup.log" 2>&1
    "${n8n[@]}" start >"$root/n8n.log" 2>&1 &
    cleanups+=("kill $!")
    wait_for_answer "http://127.0.0.1:$n8n_port/webhook/run" "$root/n8n.answer" 1200
    [ "$(jq -c .out "$root/n8n.answer" 2>/dev/null)" = '{"greeting":"hello Ada"}' ] ||
        { echo "n8n did not answer as expected:"; cat "$root/n8n.answer"; tail -n 20 "$root/n8n-setup.log" "$root/n8n.log"; exit 1; }
fi

cat >"$root/run.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"inputs":{"name":"Ada"}}'
wrk.headers["Content-Type"] = "application/json"
LUA

for connections in 64 1000; do
    echo "== $(nproc) cores; wrk -t$threads -c$connections -d${duration}s"
    # A 10 s timeout: at 1,000 connections a request waits behind hundreds of others.
    run_wrk "nginx_return_200_c$connections" "http://127.0.0.1:$nginx_port/" -s "$root/run.lua" --timeout 10s
    run_wrk "node_red_http_in_c$connections" "http://127.0.0.1:$node_red_port/run" -s "$root/run.lua" --timeout 10s
    if [ "$with_n8n" = 1 ]; then
        run_wrk "n8n_webhook_c$connections" "http://127.0.0.1:$n8n_port/webhook/run" -s "$root/run.lua" --timeout 10s
    fi
    metrics_snapshot "c$connections"
    run_wrk "flowgresd_runtime_c$connections" "$runtime_url" -s "$root/run.lua" --timeout 10s
    waits_since "c$connections"
done
if [ "${SOAK:-0}" -gt 0 ]; then
    # Flat memory: the last sample within 10% of the first, taken once the soak has run 10 s
    # (connections open, caches and pools filled).
    wrk -t "$threads" -c 1000 -d "${SOAK}s" --timeout 10s --latency -s "$root/run.lua" "$runtime_url" >"$root/soak.out" &
    soak=$!
    samples=()
    for ((elapsed = 10; elapsed <= SOAK; elapsed += 10)); do
        sleep 10
        samples+=("$(awk '/^VmRSS/ {print $2}' "/proc/$daemon_pid/status")")
    done
    wait "$soak"
    echo "== flowgresd alone, wrk -t$threads -c1000 -d${SOAK}s: $(awk '/Requests\/sec/ {print $2}' "$root/soak.out") req/s," \
        "p99 $(awk '$1 == "99%" {print $2}' "$root/soak.out")"
    echo "flowgresd RSS (kB, every 10 s): ${samples[*]}"
    awk -v first="${samples[0]}" -v last="${samples[-1]}" \
        'BEGIN { printf "RSS last / first: %.3f (flat: within 10%%)\n", last / first }'
fi
wait_for_runs_to_end
billed=$(bench_psql -c "select coalesce(sum(quantity), 0) from flowgres.usage_events where dimension = 'requests'")
echo "executions recorded: $(executions_counts); requests billed: $billed"
not_completed_by_code
echo
for connections in 64 1000; do
    echo "c=$connections: runtime / nginx $(ratio "flowgresd_runtime_c$connections" "nginx_return_200_c$connections")," \
        "/ Node-RED $(ratio "flowgresd_runtime_c$connections" "node_red_http_in_c$connections")" \
        "$([ "$with_n8n" = 1 ] && echo ", / n8n $(ratio "flowgresd_runtime_c$connections" "n8n_webhook_c$connections")")"
done
