#!/usr/bin/env bash
# The demo's AI app, for `make run` (and its test). Registers a platform model provider through
# the running daemon (which seals its key): the one FLOWGRES_LLM_BASE_URL, FLOWGRES_LLM_API_KEY
# and FLOWGRES_LLM_MODELS (comma-separated model ids) name, or, without them, the bundled test
# provider (tests/integration/llm_provider.py, started here on LLM_PORT), which is not a model:
# it answers under the model id local-echo-not-a-model by echoing the prompt (as JSON fitting
# the requested schema). Then the demo app "ask" (seed §52's example: start → llm → output,
# with the provider's first model), published for anonymous visitors, and a key for the
# OpenAI-compatible gateway (scope llm:execute, paid by the demo workspace, whose wallet gets a
# grant), kept in STATE_DIR/gateway_key. Running it again changes nothing but the provider's
# settings.
#   demo_llm.sh CONTROL_URL API_BASE ADMIN_KEY STATE_DIR LLM_PORT
set -euo pipefail
cd "$(dirname "$0")/.."
control=$1 api=$2 admin_key=$3 state_dir=$4 llm_port=$5
mkdir -p "$state_dir"

sql_value() { psql "$control" -Atqc "$1"; }
# api METHOD PATH [BODY]: the answer's data; fails on anything but 2xx.
api() {
    local answer
    answer=$(curl -sS -X "$1" -H "Authorization: Bearer $admin_key" -H "Content-Type: application/json" \
        ${3:+--data "$3"} -w '\n%{http_code}' "$api$2")
    local status=${answer##*$'\n'}
    if [ "${status:0:1}" != 2 ]; then echo "demo_llm: $1 $2 answered $status: ${answer%$'\n'*}" >&2; return 1; fi
    printf '%s' "${answer%$'\n'*}"
}

if [ -n "${FLOWGRES_LLM_BASE_URL:-}" ]; then
    provider=configured
    base_url=$FLOWGRES_LLM_BASE_URL
    IFS=, read -r -a model_ids <<<"${FLOWGRES_LLM_MODELS:-gpt-4o-mini}"
    key=${FLOWGRES_LLM_API_KEY:-}
else
    provider=bundled-test
    base_url=http://127.0.0.1:$llm_port/v1
    model_ids=(local-echo-not-a-model)
    key=
    pid_file=$state_dir/llm_provider.pid
    if ! { [ -s "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; }; then
        nohup python3 tests/integration/llm_provider.py --port "$llm_port" >>"$state_dir/llm_provider.log" 2>&1 &
        echo $! >"$pid_file"
        for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$llm_port/v1/models" >/dev/null 2>&1 && break; sleep 0.1; done
        echo "bundled test provider (not a model: it echoes) on http://127.0.0.1:$llm_port/v1"
    fi
fi
models=$(printf '%s\n' "${model_ids[@]}" | jq -Rn '[inputs | select(length > 0) | {model: ., quality: 5}]')
settings=$(jq -n --arg base "$base_url" --argjson models "$models" '{base_url: $base, models: $models}')
if [ "$(sql_value "select count(*) from flowgres.llm_providers where workspace_id is null and name = '$provider'")" = 0 ]; then
    api POST /api/v1/llm-providers "$(jq -n --arg name "$provider" --arg key "$key" --argjson s "$settings" \
        '$s + {name: $name} + (if $key == "" then {} else {api_key: $key} end)')" >/dev/null
    echo "model provider '$provider' registered ($base_url: ${model_ids[*]})"
else
    api PATCH "/api/v1/llm-providers/$provider" "$settings" >/dev/null
    if [ -n "$key" ]; then api POST "/api/v1/llm-providers/$provider/rotate-key" "$(jq -n --arg key "$key" '{api_key: $key}')" >/dev/null; fi
fi

workspace=$(sql_value "select id from flowgres.workspaces where slug = 'demo'")
if [ "$(sql_value "select count(*) from flowgres.apps where workspace_id = '$workspace' and slug = 'ask'")" = 0 ]; then
    app=$(api POST "/api/v1/workspaces/$workspace/apps" \
        '{"name": "Ask", "slug": "ask", "description": "Summarises a text with a model (seed §52 example)."}' | jq -r .data.id)
    workflow=$(jq -n --arg model "${model_ids[0]}" '{
      version: "1.0.0",
      nodes: [
        {id: "start", type: "start", data: {inputs: [{id: "prompt", name: "prompt", label: "Text", type: "string", required: true}]}},
        {id: "llm", type: "llm", config: {model: $model, systemPrompt: "You summarise texts in one sentence.",
          userPrompt: "Return JSON {\"summary\": \"...\"}. The text: {{prompt}}", temperature: 0.3, max_tokens: 300,
          output_schema: {type: "object", properties: {summary: {type: "string"}}, required: ["summary"]}}},
        {id: "output", type: "output", config: {value: "{{llm.parsed.summary}}"}}],
      edges: [{source: "start", target: "llm"}, {source: "llm", target: "output"}]}')
    ui='{"schema_version": "1.0.0", "layout": "single_column",
         "blocks": [{"id": "main_form", "type": "form", "children": [{"id": "prompt", "type": "input", "input_key": "prompt",
                     "label": "Text to summarise", "validation": {"required": true, "max": 4000}}]}],
         "actions": [{"id": "submit", "type": "submit", "label": "Summarise"}], "result_view": {"type": "text"}}'
    api POST "/api/v1/apps/$app/versions" "$(jq -n --argjson w "$workflow" --argjson u "$ui" \
        '{version: "1.0.0", workflow: $w, ui_schema: $u, changelog: "First version"}')" >/dev/null
    api POST "/api/v1/apps/$app/publish" '{"access_policy": {"access_mode": "public_anonymous"}}' >/dev/null
    echo "demo AI app 'ask' published (model ${model_ids[0]})"
fi

# The gateway (README "Gateway"): a key the demo workspace pays for, made once.
key_file=$state_dir/gateway_key
if [ ! -s "$key_file" ]; then
    owner=$(sql_value "select owner_user_id from flowgres.workspaces where id = '$workspace'")
    gateway_key=$(api POST "/api/v1/users/$owner/api-keys" \
        "$(jq -n --arg ws "$workspace" '{name: "demo gateway", scopes: ["llm:execute"], workspace_id: $ws}')" | jq -r .data.key)
    (umask 077 && printf '%s\n' "$gateway_key" >"$key_file")
    api POST "/api/v1/workspaces/$workspace/wallet/grants" \
        '{"amount": 10000000, "reason": "demo", "billing_ref_id": "demo-grant"}' >/dev/null
    echo "gateway key for workspace 'demo' in $key_file (OpenAI's protocol at /v1; its wallet holds 10 units)"
fi
