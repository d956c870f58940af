#!/usr/bin/env bash
# The llm step side by side (README "Performance"), on loopback, bounded: a published app of
# start → llm → output whose model is the test provider (tests/integration/llm_provider.py)
# answering after 50 ms of simulated model latency (LATENCY_MS), as
#   - the provider called directly (the floor: what any caller pays),
#   - POST /runtime/{workspace}/{app} on flowgresd (admitted, the call streamed, metered in
#     model_usage and the run's tokens, the execution recorded),
#   - the same flow in Node-RED 5 (http in → function → http request → function → http
#     response), which keeps and bills nothing,
# at 64 and 1,000 connections. Prints requests/s, p50 and p99, and flowgresd's and Node-RED's
# overhead over the direct call (p50 and p99 differences). Settings: DURATION (s, default 10),
# LATENCY_MS (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
latency_ms=${LATENCY_MS:-50}
source bench/lib.sh
node_bin=$(bench/peers/install.sh)

provider_port=$(free_port)
python3 tests/integration/llm_provider.py --port "$provider_port" --latency-ms "$latency_ms" >"$root/provider.log" 2>&1 &
cleanups+=("kill $!")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$provider_port/v1/models" >/dev/null && break; sleep 0.1; done

start_cluster_and_daemon --run_wait_ms 30000 --egress_allow 127.0.0.1/32
bench_psql -c "update flowgres.workspaces set plan = 'enterprise' where id = '$workspace_id'"
curl -sf -X PUT -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' -d '{"quota": null}' \
    "$api/workspaces/$workspace_id/quotas/tokens" >/dev/null
curl -sf -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
    -d "{\"name\":\"bench\",\"base_url\":\"http://127.0.0.1:$provider_port/v1\",\"models\":[{\"model\":\"bench-model\"}]}" \
    "$api/llm-providers" >/dev/null
workflow='{"nodes": [
  {"id": "start", "type": "start", "data": {"inputs": [{"name": "name", "required": true}]}},
  {"id": "ask", "type": "llm", "config": {"model": "bench-model", "userPrompt": "Say hello to {{name}}", "max_tokens": 16}},
  {"id": "out", "type": "output", "config": {"value": {"text": "{{ask.text}}"}}}],
 "edges": [{"source": "start", "target": "ask"}, {"source": "ask", "target": "out"}]}'
policy='{"access_mode": "public_anonymous", "rate_limit": {"per_ip": {"max_requests": 1000000, "window_seconds": 60}}}'
publish_app asker "$workflow" "$policy"
answer=$(curl -sf -H 'Content-Type: application/json' -d '{"inputs":{"name":"Ada"}}' "$runtime_url")
[ "$(echo "$answer" | jq -r .data.outputs.out.text)" = "Echo: Say hello to Ada" ] ||
    { echo "the runtime did not answer as expected: $answer"; tail -5 "$root/flowgresd.log"; exit 1; }

sed "s/PROVIDER_PORT/$provider_port/" bench/peers/node-red-llm-flows.json >"$root/node-red-llm-flows.json"
start_node_red "$node_bin" "$root/node-red-llm-flows.json"
[ "$(jq -r .out.text "$root/node-red.answer")" = "Echo: Say hello to Ada" ] ||
    { echo "Node-RED did not answer as expected:"; cat "$root/node-red.answer"; tail -20 "$root/node-red.log"; exit 1; }

cat >"$root/run.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"inputs":{"name":"Ada"}}'
wrk.headers["Content-Type"] = "application/json"
LUA
cat >"$root/direct.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"bench-model","max_tokens":16,"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello to Ada"}]}'
wrk.headers["Content-Type"] = "application/json"
LUA

# wrk's latency ("812.00us", "51.20ms", "1.02s") in milliseconds.
latency_ms_of() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /s$/ && v !~ /ms$/) n *= 1000; printf "%.2f", n }'; }
run_and_keep() {
    local name=$1
    run_wrk "$@" | tee "$root/$name.line"
}
overhead() {
    local subject=$1 floor=$2
    local s50 s99 f50 f99
    s50=$(latency_ms_of "$(awk '{print $5}' "$root/$subject.line")"); s99=$(latency_ms_of "$(awk '{print $7}' "$root/$subject.line")")
    f50=$(latency_ms_of "$(awk '{print $5}' "$root/$floor.line")"); f99=$(latency_ms_of "$(awk '{print $7}' "$root/$floor.line")")
    awk -v a="$s50" -v b="$f50" -v c="$s99" -v d="$f99" 'BEGIN { printf "p50 %+.2f ms, p99 %+.2f ms", a - b, c - d }'
}

for connections in 64 1000; do
    echo "== $(nproc) cores; wrk -t$threads -c$connections -d${duration}s; the model answers after ${latency_ms} ms"
    run_and_keep "provider_direct_c$connections" "http://127.0.0.1:$provider_port/v1/chat/completions" -s "$root/direct.lua" --timeout 10s
    run_and_keep "node_red_llm_c$connections" "http://127.0.0.1:$node_red_port/run" -s "$root/run.lua" --timeout 10s
    metrics_snapshot "c$connections"
    run_and_keep "flowgresd_llm_c$connections" "$runtime_url" -s "$root/run.lua" --timeout 10s
    waits_since "c$connections"
done
wait_for_runs_to_end
echo "executions recorded: $(executions_counts); model calls metered: $(bench_psql -c "select count(*) from flowgres.model_usage")"
not_completed_by_code
echo
for connections in 64 1000; do
    echo "c=$connections: flowgresd over the direct call $(overhead "flowgresd_llm_c$connections" "provider_direct_c$connections");" \
        "Node-RED over it $(overhead "node_red_llm_c$connections" "provider_direct_c$connections");" \
        "flowgresd / Node-RED $(ratio "flowgresd_llm_c$connections" "node_red_llm_c$connections") (requests/s)"
done
