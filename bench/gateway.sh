#!/usr/bin/env bash
# The OpenAI-compatible gateway side by side (README "Performance"), on loopback, bounded:
# POST /v1/chat/completions against the test provider (tests/integration/llm_provider.py
# answering after LATENCY_MS of simulated model latency, then streaming), plain and streamed,
# at 64 and 1,000 connections, as
#   - the provider called directly (the floor: what any caller pays),
#   - flowgresd's gateway (the key checked, the wallet held before and captured after, every
#     call metered in model_usage and the wallet, durably),
#   - the Portkey gateway from npm (@portkey-ai/gateway 1.15.2, NODE_ENV=production, headless: no
#     console or UI) in front of the same provider,
#     which meters and bills nothing.
# Prints requests/s, p50 and p99, each gateway's overhead over the direct call, and flowgresd's
# throughput over Portkey's. One pair of runs on two shared cores moves by ±0.5 ms between
# repeats, more than the overhead measured: each configuration is run ROUNDS times (default 3),
# the three servers taking turns in a rotating order, and the medians of the rounds are compared.
# Settings: DURATION (s per run, default 5), ROUNDS (default 3), LATENCY_MS (default 50).
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 65536 2>/dev/null || true
latency_ms=${LATENCY_MS:-50}
DURATION=${DURATION:-5}
source bench/lib.sh
node_bin=$(bench/peers/install.sh portkey)

provider_port=$(free_port)
python3 tests/integration/llm_provider.py --port "$provider_port" --latency-ms "$latency_ms" >"$root/provider.log" 2>&1 &
cleanups+=("kill $!")
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$provider_port/v1/models" >/dev/null && break; sleep 0.1; done

start_cluster_and_daemon --egress_allow 127.0.0.1/32
curl -sf -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
    -d "{\"name\":\"bench\",\"base_url\":\"http://127.0.0.1:$provider_port/v1\",\"models\":[{\"model\":\"bench-model\",\"input_micros_per_1m\":150000,\"output_micros_per_1m\":600000}]}" \
    "$api/llm-providers" >/dev/null
curl -sf -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
    -d '{"amount":1000000000000,"reason":"bench"}' "$api/workspaces/$workspace_id/wallet/grants" >/dev/null
gateway_key=$(curl -sf -H "Authorization: Bearer $admin_key" -H 'Content-Type: application/json' \
    -d "{\"name\":\"gateway\",\"scopes\":[\"llm:execute\"],\"workspace_id\":\"$workspace_id\"}" \
    "$api/users/$user_id/api-keys" | jq -r .data.key)

portkey_port=$(free_port)
NODE_ENV=production "$node_bin/node" build/peers/portkey/node_modules/@portkey-ai/gateway/build/start-server.js \
    --port="$portkey_port" --headless \
    >"$root/portkey.log" 2>&1 &
cleanups+=("kill $!")
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$portkey_port/" && break; sleep 0.1; done

for stream in false true; do
    cat >"$root/stream_$stream.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"model":"bench-model","max_tokens":16,"stream":$stream,"messages":[{"role":"user","content":"Say hello to Ada"}]}'
wrk.headers["Content-Type"] = "application/json"
LUA
done
answer_of() { curl -sf "$@" -H 'Content-Type: application/json' \
    -d '{"model":"bench-model","max_tokens":16,"messages":[{"role":"user","content":"Say hello to Ada"}]}' | jq -r '.choices[0].message.content'; }
[ "$(answer_of -H "Authorization: Bearer $gateway_key" "http://127.0.0.1:$daemon_port/v1/chat/completions")" = "Echo: Say hello to Ada" ] ||
    { echo "flowgresd's gateway did not answer as expected"; tail -5 "$root/flowgresd.log"; exit 1; }
portkey_headers=(-H "x-portkey-provider: openai" -H "x-portkey-custom-host: http://127.0.0.1:$provider_port/v1"
                 -H "Authorization: Bearer sk-bench")
[ "$(answer_of "${portkey_headers[@]}" "http://127.0.0.1:$portkey_port/v1/chat/completions")" = "Echo: Say hello to Ada" ] ||
    { echo "Portkey did not answer as expected"; tail -20 "$root/portkey.log"; exit 1; }

overhead() {
    local s50 s99 f50 f99
    s50=$(latency_ms_of "$(awk '{print $5}' "$root/$1.line")"); s99=$(latency_ms_of "$(awk '{print $7}' "$root/$1.line")")
    f50=$(latency_ms_of "$(awk '{print $5}' "$root/$2.line")"); f99=$(latency_ms_of "$(awk '{print $7}' "$root/$2.line")")
    awk -v a="$s50" -v b="$f50" -v c="$s99" -v d="$f99" 'BEGIN { printf "p50 %+.2f ms, p99 %+.2f ms", a - b, c - d }'
}

for connections in 64 1000; do
    for stream in false true; do
        kind=$([ "$stream" = true ] && echo streamed || echo plain)
        echo "== $(nproc) cores; wrk -t$threads -c$connections -d${duration}s, $rounds rounds; $kind; the model answers after ${latency_ms} ms"
        for round in $(seq 1 "$rounds"); do
            # Each round starts with the next server (direct, Portkey, flowgresd; then Portkey,
            # flowgresd, direct; …): whatever a run leaves behind weighs on every server alike.
            order=(direct portkey flowgresd)
            for turn in 0 1 2; do
                server=${order[$(((round - 1 + turn) % 3))]}
                case $server in
                direct) run_and_keep "direct_${kind}_c${connections}_r$round" \
                            "http://127.0.0.1:$provider_port/v1/chat/completions" -s "$root/stream_$stream.lua" --timeout 10s ;;
                portkey) run_and_keep "portkey_${kind}_c${connections}_r$round" \
                             "http://127.0.0.1:$portkey_port/v1/chat/completions" -s "$root/stream_$stream.lua" \
                             "${portkey_headers[@]}" --timeout 10s ;;
                flowgresd) run_and_keep "flowgresd_${kind}_c${connections}_r$round" \
                               "http://127.0.0.1:$daemon_port/v1/chat/completions" -s "$root/stream_$stream.lua" \
                               -H "Authorization: Bearer $gateway_key" --timeout 10s ;;
                esac
            done
        done
        for server in direct portkey flowgresd; do combine_rounds "${server}_${kind}_c$connections"; done
    done
done

sleep 2  # the last records are written after their answers
echo "calls metered: $(bench_psql -c "select count(*) from flowgres.model_usage")," \
    "captured: $(bench_psql -c "select count(*) from flowgres.wallet_transactions where kind = 'capture'")," \
    "released: $(bench_psql -c "select count(*) from flowgres.wallet_transactions where kind = 'release'")," \
    "wallet: $(curl -sf -H "Authorization: Bearer $admin_key" "$api/workspaces/$workspace_id/wallet" | jq -c '.data | {balance, frozen}')"
echo
for connections in 64 1000; do
    for kind in plain streamed; do
        echo "c=$connections $kind: flowgresd over the direct call $(overhead "flowgresd_${kind}_c$connections" "direct_${kind}_c$connections");" \
            "Portkey over it $(overhead "portkey_${kind}_c$connections" "direct_${kind}_c$connections");" \
            "flowgresd / Portkey $(ratio "flowgresd_${kind}_c$connections" "portkey_${kind}_c$connections") (requests/s)"
    done
done
