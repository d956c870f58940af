// The checks and inserts of execution_entries.hpp.
#include "execution_entries.hpp"

#include "flowgres/fields.hpp"
#include "flowgres/llm_catalog.hpp"
#include "spi.hpp"

namespace flowgres {

namespace {

// Each entry of `array` (at most `max`), an object, through `check` under "field[i]".
template <typename Check>
void check_entries(const json_t *array, const std::string &field, size_t max, const char *noun,
                   ValidationProblems &problems, Check check) {
    if (!json_is_array(array) || json_array_size(array) > max)
        return problems.add(field, "must be an array of at most " + std::to_string(max) + " " + noun);
    size_t index;
    const json_t *entry;
    json_array_foreach(array, index, entry) {
        std::string at = field + "[" + std::to_string(index) + "]";
        if (!json_is_object(entry))
            problems.add(at, "must be an object");
        else
            check(entry, at);
    }
}

}  // namespace

void check_node_logs(const json_t *logs, const std::string &field, ValidationProblems &problems) {
    check_entries(logs, field, kMaxLogsPerAppend, "entries", problems, [&](const json_t *entry, const std::string &at) {
        std::string_view status = json_string_value(json_object_get(entry, "status"))
                                      ? json_string_value(json_object_get(entry, "status"))
                                      : "";
        if (!json_is_string(json_object_get(entry, "node_id")))
            problems.add(at + ".node_id", "is required");
        else if (!json_is_string(json_object_get(entry, "node_type")))
            problems.add(at + ".node_type", "is required");
        else if (status != "running" && status != "completed" && status != "failed" && status != "skipped")
            problems.add(at + ".status", "must be running, completed, failed or skipped");
        // What node_logs' constraints say, checked here too: a trail's logs are no rows of it.
        const json_t *attempt = json_object_get(entry, "attempt");
        if (attempt && !json_is_null(attempt) && (!json_is_integer(attempt) || json_integer_value(attempt) < 1 ||
                                                  json_integer_value(attempt) > 2147483647))
            problems.add(at + ".attempt", "must be a positive integer");
        const json_t *duration = json_object_get(entry, "duration_ms");
        if (duration && !json_is_null(duration) && (!json_is_integer(duration) || json_integer_value(duration) < 0))
            problems.add(at + ".duration_ms", "must be a non-negative integer");
        const json_t *variables = json_object_get(entry, "variables");
        if (variables && !json_is_null(variables) && !json_is_array(variables))
            problems.add(at + ".variables", "must be an array");
        for (const char *time : {"started_at", "finished_at"}) {
            const json_t *value = json_object_get(entry, time);
            if (value && !json_is_null(value) &&
                (!json_is_string(value) || !is_iso8601_timestamp(json_string_value(value))))
                problems.add(at + "." + time, "must be an ISO 8601 timestamp");
        }
    });
}

void check_run_events(const json_t *events, const std::string &field, ValidationProblems &problems) {
    check_entries(events, field, kMaxEventsPerAppend, "entries", problems, [&](const json_t *entry, const std::string &at) {
        const json_t *sequence = json_object_get(entry, "sequence");
        std::string_view event = json_string_value(json_object_get(entry, "event"))
                                     ? json_string_value(json_object_get(entry, "event"))
                                     : "";
        if (!json_is_integer(sequence) || json_integer_value(sequence) < 1 || json_integer_value(sequence) > 2147483647)
            problems.add(at + ".sequence", "must be a positive integer");
        else if (event != "node_started" && event != "node_finished" && event != "node_delta")
            problems.add(at + ".event",
                         "must be node_started, node_finished or node_delta (execution_finished is recorded by the database)");
        else if (!json_is_object(json_object_get(entry, "data")))
            problems.add(at + ".data", "must be an object");
    });
}

void check_model_calls(const json_t *calls, const std::string &field, ValidationProblems &problems) {
    check_entries(calls, field, kMaxModelCallsPerRecord, "calls", problems, [&](const json_t *call, const std::string &at) {
        const char *provider = json_string_value(json_object_get(call, "provider"));
        const char *model = json_string_value(json_object_get(call, "model"));
        if (!provider || !llm::is_provider_name(provider))
            return problems.add(at + ".provider", "must be a provider's name");
        if (!model || !llm::is_model_id(model)) return problems.add(at + ".model", "must be a model id");
        for (const char *key : {"prompt_tokens", "completion_tokens", "cost_micros", "latency_ms"}) {
            const json_t *value = json_object_get(call, key);
            if (value && (!json_is_integer(value) || json_integer_value(value) < 0))
                problems.add(at + "." + key, "must be a non-negative integer");
        }
        // What the insert casts, checked here: a value of the wrong type is the caller's
        // VALIDATION_FAILED, not a cast error of the whole record.
        for (const char *key : {"ok", "usage_reported"}) {
            const json_t *value = json_object_get(call, key);
            if (value && !json_is_null(value) && !json_is_boolean(value)) problems.add(at + "." + key, "must be true or false");
        }
        for (const char *key : {"node_id", "error_code"}) {
            const json_t *value = json_object_get(call, key);
            if (value && !json_is_null(value) && !json_is_string(value)) problems.add(at + "." + key, "must be text");
        }
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

}  // namespace flowgres
