#!/usr/bin/env bash
# Workflow runs side by side with Node-RED (README "Performance"), on loopback, bounded:
#   POST /api/v1/apps/{id}/runs, synchronous, of a 5-node workflow
#       start → transform → condition → transform → output
#   vs Node-RED 5 running the same steps: http in → function → switch → function → http response
# Each flowgresd run is durable: the execution is created, claimed, and finished with its node
# logs and events, each step a committed transaction; Node-RED keeps nothing. Prints runs/s,
# p50 and p99 for both and the ratio. Peers come from npm (bench/peers/install.sh, cached in
# build/peers). Settings: DURATION (s, default 10), CONNECTIONS (wrk, default 64).
set -euo pipefail
cd "$(dirname "$0")/.."

source bench/lib.sh
node_bin=$(bench/peers/install.sh)
start_cluster_and_daemon --run_wait_ms 30000
bench_psql -c "update flowgres.workspaces set plan = 'enterprise' where id = '$workspace_id'"
raise_concurrent_run_cap

workflow='{"nodes": [
  {"id": "start", "type": "start", "data": {"inputs": [{"name": "name", "required": true}]}},
  {"id": "greet", "type": "transform", "config": {"template": {"greeting": "hello {{name}}"}}},
  {"id": "named", "type": "condition", "config": {"left": "{{name}}", "operator": "not_empty"}},
  {"id": "shout", "type": "transform", "config": {"template": {"message": "{{greet.greeting}}!"}}},
  {"id": "out", "type": "output", "config": {"value": "{{shout}}"}}],
 "edges": [{"source": "start", "target": "greet"}, {"source": "greet", "target": "named"},
           {"source": "named", "sourceHandle": "true", "target": "shout"}, {"source": "shout", "target": "out"}]}'
app_id=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' -d '{"name":"bench"}' \
    "$api/workspaces/$workspace_id/apps" | jq -r .data.id)
curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d "{\"version\":\"1.0.0\",\"workflow\":$workflow}" "$api/apps/$app_id/versions" >/dev/null
answer=$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"inputs":{"name":"Ada"}}' "$api/apps/$app_id/runs")
[ "$(echo "$answer" | jq -c .data.outputs)" = '{"out":{"message":"hello Ada!"}}' ] ||
    { echo "the workflow did not answer as expected: $answer"; exit 1; }

start_node_red "$node_bin" bench/peers/node-red-flows.json
[ "$(jq -c .out "$root/node-red.answer")" = '{"message":"hello Ada!"}' ] ||
    { echo "Node-RED did not answer as expected:"; tail -20 "$root/node-red.log"; exit 1; }

cat >"$root/run.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"inputs":{"name":"Ada"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $key"
LUA

echo "== $(nproc) cores; wrk -t$threads -c$connections -d${duration}s"
run_wrk node_red_flow "http://127.0.0.1:$node_red_port/run" -s "$root/run.lua"
run_wrk flowgresd_trial_run "$api/apps/$app_id/runs" -s "$root/run.lua"
echo "executions recorded: $(executions_counts)"
echo
echo "ratio flowgresd runs / Node-RED:               $(ratio flowgresd_trial_run node_red_flow)"
