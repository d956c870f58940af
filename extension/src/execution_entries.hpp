// What an executor reports about its runs (node log entries, events, model calls): the checks
// and the set-based inserts shared by node_logs_append, execution_events_append,
// model_usage_record (one run) and executions_record (a batch of finished runs).
//
// A batch is a JSON array of {"workspace_id", "app_id", "execution_id", "<member>": [entries]}:
// one INSERT stores the entries of every run in it. The caller has checked the entries, locked
// the executions and read their workspace and app (so the inserts join nothing: a plan that
// joined the batch to executions would be planned once per backend and might scan them all).
#pragma once

#include <string>
#include <string_view>

#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "jsonb_document.hpp"

namespace flowgres {

inline constexpr size_t kMaxLogsPerAppend = 1000;
inline constexpr size_t kMaxEventsPerAppend = 2000;
inline constexpr size_t kMaxModelCallsPerRecord = 10000;

// Problems are added under `field` ("logs", "runs[3].events", …). An absent or empty array is
// the caller's to refuse or accept. check_run_events answers the highest sequence among the
// events that passed (0: none).
void check_node_logs(JsonbRef logs, const std::string &field, ValidationProblems &problems);
long long check_run_events(JsonbRef events, const std::string &field, ValidationProblems &problems);
void check_model_calls(JsonbRef calls, const std::string &field, ValidationProblems &problems);

// Node logs numbered after what each execution has stored; returns the rows added.
uint64_t insert_node_logs(const std::string &batch);
// Events by their sequence numbers; ones already stored are skipped. Returns the rows added.
uint64_t insert_run_events(const std::string &batch);
// Model calls (member "calls"), one model_usage row each; returns the rows added.
uint64_t insert_model_calls(const std::string &batch);

// The node logs of a trail as node_logs rows show them, one jsonb_build_object per element of
// a jsonb array of the trail's logs: a SQL expression over `entry(value, ordinality)` (from
// jsonb_array_elements … with ordinality), given the SQL of the trail's execution id and time.
#define FLOWGRES_TRAIL_NODE_LOG(execution_id, created_at)                                                              \
    "jsonb_build_object('execution_id', " execution_id ", 'sequence', entry.ordinality - 1, "                             \
    "'node_id', entry.value -> 'node_id', 'node_type', entry.value -> 'node_type', 'status', entry.value -> 'status', " \
    "'attempt', coalesce(nullif(entry.value -> 'attempt', 'null'), '1'), "                                               \
    "'started_at', to_jsonb((entry.value ->> 'started_at')::timestamptz), "                                             \
    "'finished_at', to_jsonb((entry.value ->> 'finished_at')::timestamptz), "                                           \
    "'duration_ms', entry.value -> 'duration_ms', 'input', entry.value -> 'input', 'output', entry.value -> 'output', " \
    "'error', entry.value -> 'error', 'variables', entry.value -> 'variables', "                                        \
    "'created_at', coalesce(entry.value -> 'created_at', to_jsonb(" created_at ")))"

// The same, built without a statement, for the node logs a statement has just written to a
// trail (`logs`, as checked by check_node_logs) of the execution `execution_id`, created
// `created_at` (as to_jsonb writes a time): a JSON array, byte for byte as PostgreSQL prints
// the jsonb FLOWGRES_TRAIL_NODE_LOG builds (same members, same order, same escaping, times
// through the same cast). Building it in SQL cost a trial run a third of PostgreSQL's CPU.
// The pgTAP tests compare the two for logs of every shape.
std::string trail_node_logs_json(const std::string &execution_id, JsonbRef logs, const std::string &created_at);

// `row`, an object as jsonb prints it, with the member node_logs (`node_logs`, JSON text)
// where jsonb would have put it: the execution_get document of a row whose node logs are
// known, as kExecutionWithNodeLogs prints it.
std::string with_node_logs(std::string_view row, std::string_view node_logs);

// An execution `e` as execution_get shows it: its row and its node logs in order, rows of
// node_logs and its trail's alike (a SQL expression over `flowgres.executions e`).
inline constexpr const char *kExecutionWithNodeLogs =
    "(to_jsonb(e) || jsonb_build_object('node_logs', (select coalesce(jsonb_agg(log order by (log ->> 'sequence')::integer), '[]') "
    "from (select to_jsonb(l) - 'workspace_id' as log from flowgres.node_logs l where l.execution_id = e.id "
    "union all "
    "select " FLOWGRES_TRAIL_NODE_LOG("t.execution_id", "t.created_at") " "
    "from flowgres.execution_trails t cross join lateral jsonb_array_elements(t.node_logs) with ordinality as entry(value, ordinality) "
    "where t.execution_id = e.id) logs)))";

// A batch of one run.
std::string single_run_batch(const std::string &workspace_id, const std::string &app_id, const std::string &execution_id,
                             const char *member, const std::string &entries);

}  // namespace flowgres
