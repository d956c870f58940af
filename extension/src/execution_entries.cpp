// The checks and inserts of execution_entries.hpp.
#include "execution_entries.hpp"

#include <algorithm>

#include "flowgres/fields.hpp"
#include "flowgres/llm_catalog.hpp"
#include "spi.hpp"

namespace flowgres {

namespace {

// Each entry of `array` (at most `max`), an object, through `check` under "field[i]".
template <typename Check>
void check_entries(JsonbRef array, const std::string &field, size_t max, const char *noun,
                   ValidationProblems &problems, Check check) {
    if (!array.is_array() || array.size() > max)
        return problems.add(field, "must be an array of at most " + std::to_string(max) + " " + noun);
    for (size_t index = 0, size = array.size(); index < size; index++) {
        JsonbRef entry = array[index];
        std::string at = field + "[" + std::to_string(index) + "]";
        if (!entry.is_object())
            problems.add(at, "must be an object");
        else
            check(entry, at);
    }
}

// A member that, when given and not null, passes `test`.
template <typename Test>
bool null_or(JsonbRef value, Test test) {
    return !value.present() || value.is_null() || test(value);
}

}  // namespace

void check_node_logs(JsonbRef logs, const std::string &field, ValidationProblems &problems) {
    check_entries(logs, field, kMaxLogsPerAppend, "entries", problems, [&](JsonbRef entry, const std::string &at) {
        std::string_view status = entry.get("status").string();
        if (!entry.get("node_id").is_string())
            problems.add(at + ".node_id", "is required");
        else if (!entry.get("node_type").is_string())
            problems.add(at + ".node_type", "is required");
        else if (status != "running" && status != "completed" && status != "failed" && status != "skipped")
            problems.add(at + ".status", "must be running, completed, failed or skipped");
        // What node_logs' constraints say, checked here too: a trail's logs are no rows of it.
        if (!null_or(entry.get("attempt"), [](JsonbRef v) {
                auto attempt = v.integer();
                return attempt && *attempt >= 1 && *attempt <= 2147483647;
            }))
            problems.add(at + ".attempt", "must be a positive integer");
        if (!null_or(entry.get("duration_ms"), [](JsonbRef v) {
                auto duration = v.integer();
                return duration && *duration >= 0;
            }))
            problems.add(at + ".duration_ms", "must be a non-negative integer");
        if (!null_or(entry.get("variables"), [](JsonbRef v) { return v.is_array(); }))
            problems.add(at + ".variables", "must be an array");
        for (const char *time : {"started_at", "finished_at"})
            if (!null_or(entry.get(time), [](JsonbRef v) { return v.is_string() && is_iso8601_timestamp(v.string()); }))
                problems.add(at + "." + time, "must be an ISO 8601 timestamp");
    });
}

long long check_run_events(JsonbRef events, const std::string &field, ValidationProblems &problems) {
    long long last = 0;
    check_entries(events, field, kMaxEventsPerAppend, "entries", problems, [&](JsonbRef entry, const std::string &at) {
        std::optional<long long> sequence = entry.get("sequence").integer();
        std::string_view event = entry.get("event").string();
        if (!sequence || *sequence < 1 || *sequence > 2147483647)
            problems.add(at + ".sequence", "must be a positive integer");
        else if (event != "node_started" && event != "node_finished" && event != "node_delta")
            problems.add(at + ".event",
                         "must be node_started, node_finished or node_delta (execution_finished is recorded by the database)");
        else if (!entry.get("data").is_object())
            problems.add(at + ".data", "must be an object");
        else
            last = std::max(last, *sequence);
    });
    return last;
}

void check_model_calls(JsonbRef calls, const std::string &field, ValidationProblems &problems) {
    check_entries(calls, field, kMaxModelCallsPerRecord, "calls", problems, [&](JsonbRef call, const std::string &at) {
        JsonbRef provider = call.get("provider");
        JsonbRef model = call.get("model");
        if (!provider.is_string() || !llm::is_provider_name(provider.string()))
            return problems.add(at + ".provider", "must be a provider's name");
        if (!model.is_string() || !llm::is_model_id(model.string())) return problems.add(at + ".model", "must be a model id");
        for (const char *key : {"prompt_tokens", "completion_tokens", "cost_micros", "latency_ms"}) {
            JsonbRef value = call.get(key);
            if (value.present() && !(value.integer().value_or(-1) >= 0))
                problems.add(at + "." + key, "must be a non-negative integer");
        }
        // What the insert casts, checked here: a value of the wrong type is the caller's
        // VALIDATION_FAILED, not a cast error of the whole record.
        for (const char *key : {"ok", "usage_reported"})
            if (!null_or(call.get(key), [](JsonbRef v) { return v.is_boolean(); }))
                problems.add(at + "." + key, "must be true or false");
        for (const char *key : {"node_id", "error_code"})
            if (!null_or(call.get(key), [](JsonbRef v) { return v.is_string(); })) problems.add(at + "." + key, "must be text");
    });
}

uint64_t insert_node_logs(const std::string &batch) {
    // Planned per call: a plan kept from when node_logs was small would scan it for every entry.
    return query_planned_each_call(R"sql(
        with run as (
            select (item ->> 'workspace_id')::uuid as workspace_id, (item ->> 'execution_id')::uuid as execution_id,
                   item -> 'logs' as logs
            from jsonb_array_elements($1::jsonb) as batch(item))
        insert into flowgres.node_logs (workspace_id, execution_id, sequence, node_id, node_type, status, attempt,
                                        started_at, finished_at, duration_ms, input, output, error, variables)
        select run.workspace_id, run.execution_id,
               greatest(coalesce((select max(l.sequence) + 1 from flowgres.node_logs l
                                  where l.workspace_id = run.workspace_id and l.execution_id = run.execution_id), 0),
                        coalesce((select jsonb_array_length(t.node_logs) from flowgres.execution_trails t
                                  where t.execution_id = run.execution_id), 0))
                   + entry.ordinality - 1,
               entry.value ->> 'node_id', entry.value ->> 'node_type', entry.value ->> 'status',
               coalesce((entry.value ->> 'attempt')::integer, 1),
               (entry.value ->> 'started_at')::timestamptz, (entry.value ->> 'finished_at')::timestamptz,
               (entry.value ->> 'duration_ms')::bigint,
               nullif(entry.value -> 'input', 'null'), nullif(entry.value -> 'output', 'null'),
               nullif(entry.value -> 'error', 'null'), nullif(entry.value -> 'variables', 'null')
        from run cross join lateral jsonb_array_elements(run.logs) with ordinality as entry(value, ordinality))sql",
                 {batch})
        .processed;
}

uint64_t insert_run_events(const std::string &batch) {
    return query(R"sql(
        insert into flowgres.execution_events (workspace_id, execution_id, sequence, event, data)
        select (run.item ->> 'workspace_id')::uuid, (run.item ->> 'execution_id')::uuid, (entry ->> 'sequence')::integer,
               entry ->> 'event', entry -> 'data'
        from jsonb_array_elements($1::jsonb) as run(item)
             cross join lateral jsonb_array_elements(run.item -> 'events') as entry
        on conflict do nothing)sql",
                 {batch})
        .processed;
}

uint64_t insert_model_calls(const std::string &batch) {
    return query(R"sql(
        insert into flowgres.model_usage (workspace_id, app_id, execution_id, node_id, provider, model, prompt_tokens,
                                          completion_tokens, cost_micros, latency_ms, ok, error_code, usage_reported)
        select (run.item ->> 'workspace_id')::uuid, (run.item ->> 'app_id')::uuid, (run.item ->> 'execution_id')::uuid,
               left(c.node_id, 200), c.provider, c.model, coalesce(c.prompt_tokens, 0),
               coalesce(c.completion_tokens, 0), coalesce(c.cost_micros, 0), coalesce(c.latency_ms, 0),
               coalesce(c.ok, false), left(c.error_code, 100), coalesce(c.usage_reported, true)
        from jsonb_array_elements($1::jsonb) as run(item)
             cross join lateral jsonb_to_recordset(run.item -> 'calls')
                 as c(node_id text, provider text, model text, prompt_tokens bigint, completion_tokens bigint,
                      cost_micros bigint, latency_ms bigint, ok boolean, error_code text, usage_reported boolean))sql",
                 {batch})
        .processed;
}

std::string single_run_batch(const std::string &workspace_id, const std::string &app_id, const std::string &execution_id,
                             const char *member, const std::string &entries) {
    return "[{\"workspace_id\":" + json_quote(workspace_id) + ",\"app_id\":" + json_quote(app_id) +
           ",\"execution_id\":" + json_quote(execution_id) + ",\"" + member + "\":" + entries + "}]";
}

namespace {
// A member of a trail's log entry that FLOWGRES_TRAIL_NODE_LOG casts to timestamptz (->> then
// ::timestamptz): null when absent or null, else the cast's jsonb.
std::string trail_log_time(JsonbRef value) {
    if (!value.present() || value.is_null()) return "null";
    return timestamptz_jsonb_text(value.is_string() ? std::string(value.string()) : value.jsonb_text());
}
}  // namespace

std::string trail_node_logs_json(const std::string &execution_id, JsonbRef logs, const std::string &created_at) {
    std::string id = json_quote(execution_id);  // a uuid: nothing to escape
    std::string out = "[";
    for (size_t i = 0; i < logs.size(); i++) {
        JsonbRef entry = logs[i];
        JsonbRef attempt = entry.get("attempt"), created = entry.get("created_at");
        // jsonb's order of members: shorter names first, then bytewise.
        out += (i ? ", {" : "{");
        out += "\"error\": " + entry.get("error").jsonb_text();
        out += ", \"input\": " + entry.get("input").jsonb_text();
        out += ", \"output\": " + entry.get("output").jsonb_text();
        out += ", \"status\": " + entry.get("status").jsonb_text();
        out += ", \"attempt\": " + (attempt.present() && !attempt.is_null() ? attempt.jsonb_text() : std::string("1"));
        out += ", \"node_id\": " + entry.get("node_id").jsonb_text();
        out += ", \"sequence\": " + std::to_string(i);
        out += ", \"node_type\": " + entry.get("node_type").jsonb_text();
        out += ", \"variables\": " + entry.get("variables").jsonb_text();
        out += ", \"created_at\": " + (created.present() ? created.jsonb_text() : created_at);
        out += ", \"started_at\": " + trail_log_time(entry.get("started_at"));
        out += ", \"duration_ms\": " + entry.get("duration_ms").jsonb_text();
        out += ", \"finished_at\": " + trail_log_time(entry.get("finished_at"));
        out += ", \"execution_id\": " + id + "}";
    }
    return out + "]";
}

std::string with_node_logs(std::string_view row, std::string_view node_logs) {
    constexpr std::string_view kName = "node_logs";
    // Each top-level member of the object as jsonb prints it ({"name": value, ...}): the new
    // member goes before the first name that jsonb orders after it, or last.
    size_t at = row.size() - 1;  // the closing brace
    int depth = 0;
    bool in_string = false;
    size_t name_start = std::string_view::npos;
    for (size_t i = 0; i < row.size(); i++) {
        char c = row[i];
        if (in_string) {
            if (c == '\\') {
                i++;
            } else if (c == '"') {
                in_string = false;
                if (depth == 1 && name_start != std::string_view::npos) {
                    std::string_view name = row.substr(name_start + 1, i - name_start - 1);
                    if (name.size() > kName.size() || (name.size() == kName.size() && name > kName)) {
                        at = name_start;
                        break;
                    }
                    name_start = std::string_view::npos;
                }
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
            // A name starts a member: after the opening brace or a comma at the top level.
            size_t before = row.find_last_not_of(' ', i - 1);
            if (depth == 1 && (row[before] == '{' || row[before] == ',')) name_start = i;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    bool empty = row.find_first_not_of(" ", 1) == row.size() - 1;  // {}
    std::string out(row.substr(0, at));
    if (at == row.size() - 1) {
        out += empty ? "" : ", ";
        out += "\"node_logs\": ";
        out += node_logs;
        out += "}";
    } else {
        out += "\"node_logs\": ";
        out += node_logs;
        out += ", ";
        out += row.substr(at);
    }
    return out;
}

}  // namespace flowgres
