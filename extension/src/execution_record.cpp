// flowgres.executions_record(runs): the outcomes of many finished runs stored in one call, so a
// daemon commits them in one transaction (README "Performance"). Each run brings what the old
// per-run statements took one call each for: its events not yet stored, its node logs, its
// model calls, whether its token hold goes, and its outcome. Whatever the batch's size, each of
// those is one set-based statement for all the runs in it.
//
// One run's problem is that run's answer, not the batch's: an execution that is not found, or
// no longer running (cancelled through the API, or failed as abandoned meanwhile), is answered
// with its error and nothing of it is stored; the others are recorded. A malformed request
// raises VALIDATION_FAILED for the whole batch (it is the daemon's bug, not a run's). A
// constraint the database enforces fails the statement, so the daemon then records each of
// that batch's runs on its own to find the one that cannot be stored.
//
// Each run is answered with its execution as the caller will show it (`"view"`): the row as
// recorded (`"row"`, the default), the row with its node logs (`"full"`: a trial run's caller
// sees them), or what a visitor of the public runtime sees (`"visitor"`: execution_id, status,
// outputs, error; built from the columns the statement that ends the run returns, so the row
// is not read again or turned into JSON whole).
//
// A run that stored none of its events and node logs while it ran (nobody streamed it) says
// `"fold": true`: they become one execution_trails row instead of a row each, and every reader
// of events and node logs reads trails too.
//
// A run admitted without its row (runtime_admit's deferred runs) brings `"admitted"`: the
// execution as admission answered it. Its row is written here, ended, with its request's usage
// row (dated when it was admitted), its trail (folded whatever `fold` says: it stored nothing
// while it ran) and its model calls, locking nothing (a visitor's runs without a statement, as
// COPY stores rows: table_rows.hpp; the others by one statement), and the
// request's hold in the usage ledger is settled by this commit (usage_ledger.hpp); were the
// hold gone (a server restart, or it expired), the request is counted anew, whatever the
// quota: the run happened and is billed. Only runs whose rows exist are locked and updated.
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include <algorithm>
#include <array>

#include "actor.hpp"
#include "anomaly.hpp"
#include "boundary.hpp"
#include "execution_entries.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "functions.hpp"
#include "jsonb_document.hpp"
#include "quota.hpp"
#include "rate_limiter.hpp"
#include "refusal_counter.hpp"
#include "run_cap.hpp"
#include "spi.hpp"
#include "table_rows.hpp"


namespace flowgres {
namespace {

constexpr size_t kMaxRunsPerRecord = 200;

// How a run's answer shows its execution (the run's "view").
enum class RunView { row, full, visitor };

struct RunOutcome {
    std::string execution_id;
    std::string status;  // completed, failed; cancelled: ended through the API, its logs only
    JsonbRef item;
    RunView view = RunView::row;
    bool fold = false;                 // events and logs as one trail row (execution_trails)
    JsonbRef admitted;                 // a deferred run: its row as admission made it, not yet written
    long long last_sequence = 0;       // the highest sequence among its events (0: none)
    std::string workspace_id, app_id;  // read when locked
    std::string error;                 // its error object, once refused
};

bool is_count(JsonbRef value) { return !value.present() || value.integer().value_or(-1) >= 0; }

bool is_id(JsonbRef value) { return value.is_string() && is_uuid(value.string()); }

// A deferred run's admitted row: what its insert takes from it, of the types the row has.
void check_admitted(JsonbRef admitted, std::string_view execution_id, std::string_view status, const std::string &at,
                    ValidationProblems &problems) {
    if (!admitted.is_object()) return problems.add(at, "must be the execution as admitted");
    JsonbRef id = admitted.get("id");
    if (!id.is_string() || id.string() != execution_id) problems.add(at + ".id", "must be the run's execution_id");
    for (const char *member : {"workspace_id", "app_id", "version_id"})
        if (!is_id(admitted.get(member))) problems.add(at + "." + member, "must be an id");
    JsonbRef session = admitted.get("session_id");
    if (session.present() && !session.is_null() && !is_id(session))
        problems.add(at + ".session_id", "must be an id or null");
    if (!admitted.get("inputs").is_object()) problems.add(at + ".inputs", "must be a JSON object");
    JsonbRef started = admitted.get("started_at");
    if (!started.is_string() || !is_iso8601_timestamp(started.string()))
        problems.add(at + ".started_at", "must be an ISO 8601 timestamp");
    JsonbRef claimed = admitted.get("claimed_by");
    if (claimed.present() && !claimed.is_null() && !(claimed.is_string() && utf8_length(claimed.string()) <= 200))
        problems.add(at + ".claimed_by", "must be text of at most 200 characters");
    JsonbRef trigger = admitted.get("trigger");
    if (trigger.present() && trigger.string() != "runtime" && trigger.string() != "trial")
        problems.add(at + ".trigger", "must be runtime or trial");
    JsonbRef triggered_by = admitted.get("triggered_by");
    if (triggered_by.present() && !triggered_by.is_null() && !is_id(triggered_by))
        problems.add(at + ".triggered_by", "must be a user id or null");
    if (trigger.string() == "trial" && session.present() && !session.is_null())
        problems.add(at + ".session_id", "a trial run has no visitor's session");
    if (status == "cancelled") problems.add(at, "a run admitted without its row cannot have been cancelled");
}

std::vector<RunOutcome> parse_runs(JsonbRef runs) {
    ValidationProblems problems;
    std::vector<RunOutcome> outcomes;
    std::set<std::string, std::less<>> seen;
    for (size_t index = 0, size = runs.size(); index < size; index++) {
        JsonbRef item = runs[index];
        std::string at = "runs[" + std::to_string(index) + "]";
        if (!item.is_object()) {
            problems.add(at, "must be an object");
            continue;
        }
        JsonbRef id = item.get("execution_id");
        if (!is_id(id)) {
            problems.add(at + ".execution_id", "must be an execution id");
            continue;
        }
        if (!seen.emplace(id.string()).second) problems.add(at + ".execution_id", "names a run already in this batch");
        std::string_view status = item.get("status").string();
        if (status != "completed" && status != "failed" && status != "cancelled")
            problems.add(at + ".status", "must be completed, failed or cancelled");
        JsonbRef error = item.get("error");
        if (error.present() && !error.is_null() && !error.is_object()) problems.add(at + ".error", "must be a JSON object");
        if (status == "failed" && !error.is_object()) problems.add(at + ".error", "is required when the run failed");
        for (const char *count : {"prompt_tokens", "completion_tokens"})
            if (!is_count(item.get(count))) problems.add(at + "." + count, "must be a non-negative integer");
        long long last_sequence = 0;
        if (JsonbRef events = item.get("events"); events.present())
            last_sequence = check_run_events(events, at + ".events", problems);
        if (JsonbRef logs = item.get("logs"); logs.present()) check_node_logs(logs, at + ".logs", problems);
        if (JsonbRef calls = item.get("model_calls"); calls.present()) check_model_calls(calls, at + ".model_calls", problems);
        for (const char *flag : {"release_tokens", "fold"}) {
            JsonbRef value = item.get(flag);
            if (value.present() && !value.is_boolean()) problems.add(at + "." + flag, "must be true or false");
        }
        JsonbRef admitted = item.get("admitted");
        if (admitted.present() && !admitted.is_null()) check_admitted(admitted, id.string(), status, at + ".admitted", problems);
        JsonbRef view_member = item.get("view");
        std::string_view view = view_member.string();
        if (view_member.present() && view != "row" && view != "full" && view != "visitor")
            problems.add(at + ".view", "must be row, full or visitor");
        outcomes.push_back(RunOutcome{std::string(id.string()), std::string(status), item,
                                      view == "full" ? RunView::full : view == "visitor" ? RunView::visitor : RunView::row,
                                      item.get("fold").is_true(), admitted.is_object() ? admitted : JsonbRef(),
                                      last_sequence, {}, {}, {}});
    }
    problems.throw_if_any();
    return outcomes;
}

// A run's refusal: {error_code, sqlstate, message}.
std::string run_error(ErrorCode code, const std::string &message) {
    const ErrorInfo &info = error_info(code);
    return "{\"error_code\":" + json_quote(std::string(info.name)) + ",\"sqlstate\":" +
           json_quote(std::string(info.sqlstate)) + ",\"message\":" + json_quote(message) + "}";
}

std::string uuid_array(const std::vector<const RunOutcome *> &runs) {
    std::string out = "{";
    for (const RunOutcome *run : runs) out += (out.size() > 1 ? "," : "") + run->execution_id;
    return out + "}";
}

// The runs' entries under `member` as a batch of execution_entries.hpp; "" when none has any.
std::string entries_batch(const std::vector<const RunOutcome *> &runs, const char *member, const char *as) {
    std::string batch;
    for (const RunOutcome *run : runs) {
        JsonbRef entries = run->item.get(member);
        if (!entries.is_array() || entries.size() == 0) continue;
        batch += (batch.empty() ? "[" : ",");
        batch += "{\"workspace_id\":" + json_quote(run->workspace_id) + ",\"app_id\":" + json_quote(run->app_id) +
                 ",\"execution_id\":" + json_quote(run->execution_id) + ",\"" + as + "\":" + entries.json() + "}";
    }
    return batch.empty() ? batch : batch + "]";
}

// The members of `item` that are there, as JSON object members (",\"name\":value" each).
std::string members_given(JsonbRef item, std::initializer_list<const char *> names) {
    std::string out;
    for (const char *name : names)
        if (JsonbRef value = item.get(name); value.present()) out += ",\"" + std::string(name) + "\":" + value.json();
    return out;
}

// Whether this backend is inside executions_record's outcome statement: the executions
// trigger's WHEN asks (executions_recording()), so the statement's rows get their
// execution_finished from the statement itself. Unset again however the statement ends.
bool recording_outcomes = false;

struct RecordingOutcomes {
    RecordingOutcomes() { recording_outcomes = true; }
    ~RecordingOutcomes() { recording_outcomes = false; }
    void end() { recording_outcomes = false; }
};

// The trails of runs that fold (stored no events or logs while they ran), written before
// their rows end: their events and logs as sent (checked by check_run_events and
// check_node_logs, so readers' casts cannot fail), and their execution_finished, numbered after
// the events, with the outcome as sent and the transaction's time, which is the finished_at
// its row gets. One statement whose plan is kept.
void insert_fold_trails(const std::vector<const RunOutcome *> &runs) {
    std::string batch;
    for (const RunOutcome *run : runs)
        batch += (batch.empty() ? "[" : ",") + std::string("{\"workspace_id\":") + json_quote(run->workspace_id) +
                 ",\"execution_id\":" + json_quote(run->execution_id) + ",\"status\":" + json_quote(run->status) +
                 ",\"finished_sequence\":" + std::to_string(run->last_sequence + 1) +
                 members_given(run->item, {"events", "logs", "outputs", "error"}) + "}";
    query(R"sql(
        insert into flowgres.execution_trails (execution_id, workspace_id, events, node_logs, finished_sequence,
                                               finished_data)
        select (run.item ->> 'execution_id')::uuid, (run.item ->> 'workspace_id')::uuid,
               coalesce(run.item -> 'events', '[]'), coalesce(run.item -> 'logs', '[]'),
               (run.item ->> 'finished_sequence')::integer,
               jsonb_strip_nulls(jsonb_build_object('status', run.item ->> 'status', 'outputs', run.item -> 'outputs',
                                                    'error', run.item -> 'error', 'finished_at', now()))
        from jsonb_array_elements($1::jsonb) as run(item))sql",
          {batch + "]"});
}

// A deferred run's request, whose usage row this transaction writes: its hold moves to the
// committed totals with this commit (and a trial run's place in the run cap goes, or, stored
// `running`, is counted as the row it now is); were the hold gone, the request is counted anew,
// whatever the limits (it was served), and so is a trial run stored running.
void count_admitted_request(const std::string &workspace_id, const std::string &execution_id, bool trial,
                            bool running) {
    if (usage_hold_settle(execution_id, trial && running)) return;
    if (reserve_quota(workspace_id, UsageAmounts{1, 0, 0}, false).reservation.outcome != UsageReservation::Outcome::reserved)
        throw Error(ErrorCode::OVERLOADED, "too many workspaces are metering usage at once: retry");
    if (trial && running && !run_cap_reserve(workspace_id, INT64_MAX).allowed)
        throw Error(ErrorCode::OVERLOADED, "too many workspaces are counting their runs at once: retry");
}

// The ends of `runs` as record_existing takes them (jsonb_to_recordset's rows).
std::string end_documents(const std::vector<const RunOutcome *> &runs) {
    std::string ends;
    for (const RunOutcome *run : runs)
        // A run that stored nothing while it ran has its execution_finished in its trail.
        ends += (ends.empty() ? "[" : ",") + std::string("{\"id\":") + json_quote(run->execution_id) +
                ",\"status\":" + json_quote(run->status) +
                members_given(run->item, {"outputs", "error", "prompt_tokens", "completion_tokens"}) +
                (run->fold ? ",\"fold\":true}" : "}");
    return ends + "]";
}

// The columns the outcome statements answer with, per run ended.
constexpr const char *kOutcomeColumns = R"sql(
    (f.row).id::text, (f.row).workspace_id::text, (f.row).app_id::text, (f.row).trigger, (f.row).status,
    ((f.row).prompt_tokens + (f.row).completion_tokens)::text,
    (case when (f.row).trigger = 'runtime' then coalesce(octet_length((f.row).outputs::text), 0) else 0 end)::text,
    coalesce((f.row).outputs::text, 'null'), coalesce((f.row).error::text, 'null')
)sql";

// A run an outcome statement (or record_deferred_directly) ended, as the counting after it
// reads it.
struct EndedRun {
    std::string id, workspace_id, app_id, trigger, status;
    long long tokens = 0, egress_bytes = 0;
    std::string outputs, error;  // as jsonb prints them; "null" for none
};

EndedRun ended_run(const SqlRow &row) {
    return EndedRun{row.text(0), row.text(1), row.text(2), row.text(3), row.text(4), std::stoll(row.text(5)),
                    std::stoll(row.text(6)), row.text(7), row.text(8)};
}

std::vector<EndedRun> ended_runs(const SqlResult &finished) {
    std::vector<EndedRun> ended;
    ended.reserve(finished.rows.size());
    for (const SqlRow &row : finished.rows) ended.push_back(ended_run(row));
    return ended;
}

// The visitor's view of a run ended.
std::string visitor_view(const EndedRun &run) {
    return "{\"execution_id\":" + json_quote(run.id) + ",\"status\":" + json_quote(run.status) +
           ",\"outputs\":" + run.outputs + ",\"error\":" + run.error + "}";
}

// What every way of ending runs does with the runs it ended: the request of a deferred run
// settled, a visitor's outcome counted (and a failure noted for anomalies), the tokens and
// output bytes consumed recorded, the visitor's view kept for the run's answer (the other
// views read the row again).
void count_outcomes(const std::vector<EndedRun> &finished, bool deferred, std::map<std::string, std::string> &recorded) {
    int64_t now = epoch_seconds_now();
    std::vector<ConsumedUsage> consumed;
    for (const EndedRun &run : finished) {
        if (deferred) count_admitted_request(run.workspace_id, run.id, run.trigger == "trial", false);
        if (run.trigger == "runtime") count_runtime_outcome(run.workspace_id, run.app_id, run.status);
        if (run.status == "failed" && run.trigger == "runtime") note_runtime_failure(run.app_id, now);
        consumed.push_back(ConsumedUsage{run.workspace_id, run.app_id, run.id, UsageAmounts{0, run.tokens, run.egress_bytes}});
        recorded[run.id] = visitor_view(run);
    }
    // Usage already consumed is recorded whatever the limits (the next request is refused);
    // the rows of deferred runs were written with them.
    record_consumed_usage(consumed, deferred);
}

// Deferred runs (the batch's members at `positions`, 1-based, as sent in `runs`): everything
// each one leaves is inserted by one statement whose plan is kept (nothing in it depends on
// the tables' sizes): the execution ended, its usage rows (the request dated when it was
// admitted, its tokens and its outputs' bytes), its trail with its execution_finished
// (`finished_sequences`: each one's number, after its events, by position; execution_events
// reads trails and rows alike: one row fewer per run), its model calls, and a trial run's audit
// row (execution.create, as its caller; `actor_role`: the daemon's role). No NOTIFY: nobody
// can be reading the events of a run that had no row. A run whose row exists (stored while it
// ran, or this record sent again) is left for record_existing: the insert does nothing for
// it. Ids are inserted in order, so two batches with a run in common queue, not deadlock.
// The conflict names no index: executions has two unique ones, (workspace_id, id) and (id),
// and a run inserted by two sessions at the same instant can meet the other's uncommitted
// entry in either. Only the insert's arbiters are checked speculatively; any other unique
// index waits for the other session and then fails with a duplicate key, the whole batch with
// it (tests/integration/run_recording_test.py races batches to show it does not).
// Fills `recorded` (id → the run's view) with the runs it wrote, and `shown` with those whose
// view is not a visitor's (the answer needs no second read of them).
void record_deferred(const JsonbDocument &runs, const std::vector<RunOutcome> &outcomes, const std::string &positions,
                     const std::string &finished_sequences, const std::string &actor_role,
                     std::map<std::string, std::string> &recorded, std::set<std::string> &shown) {
    RecordingOutcomes recording;
    SqlResult finished = query_over_document(std::string(R"sql(
        with ends as (
            select r.execution_id as id, r.status, r.outputs, r.error, r.prompt_tokens, r.completion_tokens, r.events,
                   r.logs, r.model_calls, coalesce(r.view, 'row') as view, a.workspace_id, a.app_id, a.version_id,
                   a.session_id, a.inputs,
                   a.claimed_by, a.started_at, coalesce(a.trigger, 'runtime') as trigger, a.triggered_by,
                   deferred.finished_sequence
            from jsonb_array_elements($1::jsonb) with ordinality as run(item, position)
                 join unnest($2::bigint[], $3::integer[]) as deferred(position, finished_sequence)
                     on deferred.position = run.position
                 cross join lateral jsonb_to_record(run.item)
                     as r(execution_id uuid, status text, outputs jsonb, error jsonb, prompt_tokens bigint,
                          completion_tokens bigint, events jsonb, logs jsonb, model_calls jsonb, admitted jsonb,
                          view text)
                 cross join lateral jsonb_to_record(r.admitted)
                     as a(workspace_id uuid, app_id uuid, version_id uuid, session_id uuid, inputs jsonb,
                          claimed_by text, started_at timestamptz, trigger text, triggered_by uuid)),
        created as (
            insert into flowgres.executions as e
                (id, workspace_id, app_id, version_id, status, trigger, triggered_by, session_id, inputs, outputs,
                 error, prompt_tokens, completion_tokens, claimed_by, created_at, started_at, heartbeat_at, finished_at)
            select r.id, r.workspace_id, r.app_id, r.version_id, r.status, r.trigger, r.triggered_by, r.session_id,
                   r.inputs, r.outputs, r.error, coalesce(r.prompt_tokens, 0), coalesce(r.completion_tokens, 0),
                   r.claimed_by, r.started_at, r.started_at, now(), now()
            from ends r
            order by r.id
            on conflict do nothing
            returning e as row),
        finished as (
            select c.row, r.events, r.logs, r.model_calls, r.finished_sequence, r.view
            from created c join ends r on r.id = (c.row).id),
        billed as (
            insert into flowgres.usage_events (workspace_id, app_id, execution_id, dimension, quantity, created_at)
            select (f.row).workspace_id, (f.row).app_id, (f.row).id, u.dimension, u.quantity, u.at
            from finished f
                 cross join lateral (values ('requests', 1::bigint, (f.row).created_at),
                                            ('tokens', (f.row).prompt_tokens + (f.row).completion_tokens, now()),
                                            ('egress', case when (f.row).trigger = 'runtime'  -- a visitor's answer
                                                            then coalesce(octet_length((f.row).outputs::text), 0)
                                                            else 0 end::bigint, now()))
                     as u(dimension, quantity, at)
            where u.quantity > 0),
        trailed as (  -- with its execution_finished, numbered after its events
            insert into flowgres.execution_trails (execution_id, workspace_id, events, node_logs, finished_sequence,
                                                   finished_data)
            select (f.row).id, (f.row).workspace_id, coalesce(f.events, '[]'), coalesce(f.logs, '[]'), f.finished_sequence,
                   jsonb_strip_nulls(jsonb_build_object('status', (f.row).status, 'outputs', (f.row).outputs,
                                                        'error', (f.row).error, 'finished_at', (f.row).finished_at))
            from finished f),
        audited as (  -- a trial run's execution.create, as its caller: runtime runs are counted, not audited
            insert into flowgres.audit_logs (workspace_id, actor_user_id, actor_role, action, target_type, target_id,
                                             metadata)
            select (f.row).workspace_id, (f.row).triggered_by, $4, 'execution.create', 'execution', (f.row).id::text,
                   jsonb_build_object('app_id', (f.row).app_id, 'trigger', (f.row).trigger)
            from finished f where (f.row).trigger <> 'runtime'),
        called as (
            insert into flowgres.model_usage (workspace_id, app_id, execution_id, node_id, provider, model, prompt_tokens,
                                              completion_tokens, cost_micros, latency_ms, ok, error_code, usage_reported)
            select (f.row).workspace_id, (f.row).app_id, (f.row).id, left(c.node_id, 200), c.provider, c.model,
                   coalesce(c.prompt_tokens, 0), coalesce(c.completion_tokens, 0), coalesce(c.cost_micros, 0),
                   coalesce(c.latency_ms, 0), coalesce(c.ok, false), left(c.error_code, 100),
                   coalesce(c.usage_reported, true)
            from finished f
                 cross join lateral jsonb_to_recordset(coalesce(f.model_calls, '[]'))
                     as c(node_id text, provider text, model text, prompt_tokens bigint, completion_tokens bigint,
                          cost_micros bigint, latency_ms bigint, ok boolean, error_code text, usage_reported boolean))
        select )sql") + kOutcomeColumns + R"sql(,
            -- The row (a visitor's view is built from the columns above; the full view is the
            -- row with the node logs this statement wrote to its trail, added below).
            case f.view when 'visitor' then null else to_jsonb(f.row)::text end, f.view = 'full'
        from finished f)sql",
                                             runs, {positions, finished_sequences, actor_role});
    recording.end();
    count_outcomes(ended_runs(finished), true, recorded);
    std::unordered_map<std::string, JsonbRef> logs_of;  // runs to show with their node logs
    for (const RunOutcome &run : outcomes)
        if (run.view == RunView::full) logs_of.emplace(run.execution_id, run.item.get("logs"));
    std::string now;  // the trail's created_at, as its node logs show it
    for (const SqlRow &row : finished.rows) {
        if (!row[9]) continue;
        std::string id = row.text(0);
        if (row.text(10) == "t") {
            if (now.empty()) now = transaction_start_jsonb_text();
            auto logs = logs_of.find(id);
            if (logs == logs_of.end()) throw Error(ErrorCode::INTERNAL_ERROR, "a run shown in full was not sent so");
            recorded[id] = with_node_logs(*row[9], trail_node_logs_json(id, logs->second, now));
        } else {
            recorded[id] = *row[9];
        }
        shown.insert(id);
    }
}

// Deferred runs a visitor is answered for (the public runtime's, the hot path): the rows
// record_deferred's statement writes for them (tests/pgtap/direct_recording.sql holds the
// two to the same rows), stored by TableRows without a statement, each table opened once for
// the batch. A run whose row is there already (this record sent again) is left for
// record_existing. Ids are inserted in order, as record_deferred does. Fills `recorded`.
// The tables record_deferred_directly writes: while any of them has what an INSERT would honour
// and TableRows does not (an insert trigger, row-level security: table_rows.hpp), a visitor's
// runs go through record_deferred's statement like the others.
constexpr std::array<const char *, 4> kDirectTables = {"executions", "usage_events", "execution_trails", "model_usage"};

void record_deferred_directly(std::vector<const RunOutcome *> runs, std::map<std::string, std::string> &recorded) {
    std::vector<std::string> ids;
    for (const RunOutcome *run : runs) ids.push_back(run->execution_id);
    std::set<std::string, std::less<>> existing = uuids_indexed("flowgres", "executions_id_key", ids);
    std::erase_if(runs, [&](const RunOutcome *run) { return existing.count(run->execution_id) > 0; });
    if (runs.empty()) return;
    std::sort(runs.begin(), runs.end(),
              [](const RunOutcome *a, const RunOutcome *b) { return a->execution_id < b->execution_id; });

    auto present = [](JsonbRef value) { return value.present() && !value.is_null(); };
    auto uuid_or_null = [&](TableRows &rows, const char *column, JsonbRef value) {
        if (present(value)) rows.uuid(column, value.string());
        else rows.null(column);
    };
    auto jsonb_or_null = [&](TableRows &rows, const char *column, JsonbRef value) {
        if (present(value)) rows.jsonb(column, value);
        else rows.null(column);
    };
    auto count = [&](JsonbRef value) { return present(value) ? value.integer().value_or(0) : 0; };
    std::string finished_at = transaction_start_jsonb_text();

    std::vector<EndedRun> ended;
    TableRows executions("flowgres", "executions");
    for (const RunOutcome *run : runs) {
        JsonbRef admitted = run->admitted, item = run->item;
        JsonbRef outputs_given = item.get("outputs"), error_given = item.get("error");
        std::string started_at(admitted.get("started_at").string());
        executions.uuid("id", run->execution_id);
        for (const char *column : {"workspace_id", "app_id", "version_id"}) executions.uuid(column, admitted.get(column).string());
        executions.text("status", run->status);
        executions.text("trigger", "runtime");
        uuid_or_null(executions, "triggered_by", admitted.get("triggered_by"));
        uuid_or_null(executions, "session_id", admitted.get("session_id"));
        executions.jsonb("inputs", admitted.get("inputs"));
        jsonb_or_null(executions, "outputs", outputs_given);
        jsonb_or_null(executions, "error", error_given);
        long long prompt = count(item.get("prompt_tokens")), completion = count(item.get("completion_tokens"));
        executions.bigint("prompt_tokens", prompt);
        executions.bigint("completion_tokens", completion);
        if (JsonbRef claimed = admitted.get("claimed_by"); present(claimed)) executions.text("claimed_by", claimed.string());
        else executions.null("claimed_by");
        executions.timestamptz_text("created_at", started_at);
        executions.timestamptz_text("started_at", started_at);
        executions.transaction_start("heartbeat_at");
        executions.transaction_start("finished_at");
        executions.insert();
        std::string outputs = present(outputs_given) ? outputs_given.jsonb_text() : "null";
        std::string error = present(error_given) ? error_given.jsonb_text() : "null";
        ended.push_back(EndedRun{run->execution_id, std::string(admitted.get("workspace_id").string()),
                                 std::string(admitted.get("app_id").string()), "runtime", run->status, prompt + completion,
                                 outputs == "null" ? 0 : static_cast<long long>(outputs.size()), outputs, error});
    }
    executions.close();

    TableRows usage("flowgres", "usage_events");
    for (size_t i = 0; i < runs.size(); i++) {
        const EndedRun &run = ended[i];
        auto bill = [&](const char *dimension, long long quantity, const std::string *at) {
            if (quantity <= 0) return;
            usage.uuid("workspace_id", run.workspace_id);
            usage.uuid("app_id", run.app_id);
            usage.uuid("execution_id", run.id);
            usage.text("dimension", dimension);
            usage.bigint("quantity", quantity);
            if (at) usage.timestamptz_text("created_at", *at);
            else usage.transaction_start("created_at");
            usage.insert();
        };
        std::string admitted_at(runs[i]->admitted.get("started_at").string());
        bill("requests", 1, &admitted_at);
        bill("tokens", run.tokens, nullptr);
        bill("egress", run.egress_bytes, nullptr);
    }
    usage.close();

    TableRows trails("flowgres", "execution_trails");
    for (size_t i = 0; i < runs.size(); i++) {
        const RunOutcome &run = *runs[i];
        trails.uuid("execution_id", run.execution_id);
        trails.uuid("workspace_id", ended[i].workspace_id);
        for (auto [column, member] : {std::pair{"events", "events"}, std::pair{"node_logs", "logs"}}) {
            JsonbRef entries = run.item.get(member);
            if (present(entries)) trails.jsonb(column, entries);
            else trails.jsonb_text(column, "[]");
        }
        trails.integer("finished_sequence", static_cast<int>(run.last_sequence + 1));
        trails.jsonb_text("finished_data",
                          "{\"status\":" + json_quote(run.status) + ",\"outputs\":" + ended[i].outputs +
                              ",\"error\":" + ended[i].error + ",\"finished_at\":" + finished_at + "}",
                          true);
        trails.insert();
    }
    trails.close();

    bool calls = std::any_of(runs.begin(), runs.end(), [](const RunOutcome *run) {
        return run->item.get("model_calls").size() > 0;
    });
    if (calls) {
        TableRows model_usage("flowgres", "model_usage");
        for (size_t i = 0; i < runs.size(); i++) {
            JsonbRef list = runs[i]->item.get("model_calls");
            for (size_t c = 0, size = list.size(); c < size; c++) {
                JsonbRef call = list[c];
                model_usage.uuid("workspace_id", ended[i].workspace_id);
                model_usage.uuid("app_id", ended[i].app_id);
                model_usage.uuid("execution_id", ended[i].id);
                for (auto [column, limit] : {std::pair{"node_id", 200}, std::pair{"error_code", 100}}) {
                    JsonbRef value = call.get(column);
                    if (present(value)) model_usage.text(column, utf8_prefix(value.string(), limit));
                    else model_usage.null(column);
                }
                model_usage.text("provider", call.get("provider").string());
                model_usage.text("model", call.get("model").string());
                for (const char *column : {"prompt_tokens", "completion_tokens", "cost_micros", "latency_ms"})
                    model_usage.bigint(column, count(call.get(column)));
                model_usage.boolean("ok", call.get("ok").is_true());
                JsonbRef reported = call.get("usage_reported");
                model_usage.boolean("usage_reported", present(reported) ? reported.is_true() : true);
                model_usage.insert();
            }
        }
        model_usage.close();
    }
    count_outcomes(ended, true, recorded);
}

// Ends running rows (`ids`, locked) in one statement with their execution_finished events and
// the NOTIFY to their streams (a run that folds has its execution_finished in its trail,
// written by insert_fold_trails); the executions trigger that does the same for other ends
// (and counts a visitor's outcome, done here) leaves these rows alone while
// executions_recording() says so. Planned for each batch's ids. Fills `recorded` (id → the
// visitor's view).
void record_existing(const std::string &ends, const std::string &ids, std::map<std::string, std::string> &recorded) {
    RecordingOutcomes recording;
    SqlResult finished = query_planned_each_call(std::string(R"sql(
        with finished as (
            update flowgres.executions e
            set status = r.status, outputs = r.outputs, error = r.error,
                prompt_tokens = coalesce(r.prompt_tokens, 0), completion_tokens = coalesce(r.completion_tokens, 0),
                finished_at = now(), heartbeat_at = now()
            from jsonb_to_recordset($1::jsonb)
                 as r(id uuid, status text, outputs jsonb, error jsonb, prompt_tokens bigint, completion_tokens bigint,
                      fold boolean)
            where e.id = any($2::uuid[]) and e.id = r.id and e.status = 'running'
            returning e as row, coalesce(r.fold, false) as fold),
        announced as (
            insert into flowgres.execution_events (workspace_id, execution_id, sequence, event, data)
            select (f.row).workspace_id, (f.row).id,
                   coalesce((select max(v.sequence) from flowgres.execution_events v
                             where v.workspace_id = (f.row).workspace_id and v.execution_id = (f.row).id), 0) + 1,
                   'execution_finished',
                   jsonb_strip_nulls(jsonb_build_object('status', (f.row).status, 'outputs', (f.row).outputs,
                                                        'error', (f.row).error, 'finished_at', (f.row).finished_at))
            from finished f where not f.fold)
        select )sql") + kOutcomeColumns + R"sql(,
            pg_notify('flowgres_execution_events', (f.row).id::text)  -- its streams read on
        from finished f)sql",
                                                         {ends, ids});
    recording.end();
    count_outcomes(ended_runs(finished), false, recorded);
}

// What executions_record answers for one run: its execution as its view shows it, or why it
// was not recorded.
struct RecordedRun {
    std::string execution_id;
    bool recorded;
    std::string document;  // the execution, or the error object
};

std::vector<RecordedRun> record_runs(CallArgs &args) {
    // Parsed once: read where it lies to be checked, then bound to the statement that writes
    // deferred runs.
    JsonbDocument runs = JsonbDocument::parse(args.required_text(0, "runs"), "runs");  // json: its text as sent
    if (!runs.root().is_array() || runs.root().size() == 0 || runs.root().size() > kMaxRunsPerRecord)
        throw field_error("runs", "must be an array of 1 to " + std::to_string(kMaxRunsPerRecord) + " finished runs");
    std::vector<RunOutcome> outcomes = parse_runs(runs.root());
    // What a run did is the executor's to say (the daemon, acting as the service).
    Actor actor = require_system_actor();

    // Deferred runs first, locking nothing: their rows are new. The statement takes them from
    // the document as sent, not rebuilt.
    std::map<std::string, std::string> recorded;  // id → the row as recorded
    std::set<std::string> shown;                  // deferred runs recorded with their row or full view
    std::string positions, finished_sequences;
    std::vector<const RunOutcome *> direct;  // a visitor's runs: stored without a statement
    auto visitors = [](const RunOutcome &run) {
        return run.admitted.present() && run.view == RunView::visitor && run.admitted.get("trigger").string() != "trial";
    };
    bool direct_possible = std::any_of(outcomes.begin(), outcomes.end(), visitors) &&
                           std::all_of(kDirectTables.begin(), kDirectTables.end(),
                                       [](const char *table) { return TableRows::can_store("flowgres", table); });
    for (size_t i = 0; i < outcomes.size(); i++) {
        if (!outcomes[i].admitted.present()) continue;
        if (direct_possible && visitors(outcomes[i])) {
            direct.push_back(&outcomes[i]);
            continue;
        }
        positions += (positions.empty() ? "" : ",") + std::to_string(i + 1);
        finished_sequences += (finished_sequences.empty() ? "" : ",") + std::to_string(outcomes[i].last_sequence + 1);
    }
    if (!positions.empty())
        record_deferred(runs, outcomes, "{" + positions + "}", "{" + finished_sequences + "}", actor.role_name, recorded,
                        shown);
    if (!direct.empty()) record_deferred_directly(direct, recorded);

    // The others, and deferred runs whose row was there already (stored while they ran, or
    // this record sent again), end rows that exist. Locked in id order, so that two batches
    // (and a cancel) queue rather than deadlock.
    std::vector<RunOutcome *> rest;
    std::vector<const RunOutcome *> written;  // by record_deferred
    for (RunOutcome &run : outcomes) {
        if (recorded.count(run.execution_id))
            written.push_back(&run);
        else
            rest.push_back(&run);
    }
    std::map<std::string, SqlRow> locked;  // id → workspace_id, app_id, status
    if (!rest.empty())
        for (SqlRow &row :
             query_planned_each_call("select id::text, workspace_id::text, app_id::text, status "
                                     "from flowgres.executions where id = any($1::uuid[]) order by 1 for update",
                                     {uuid_array({rest.begin(), rest.end()})})
                 .rows)
            locked[row.text(0)] = std::move(row);

    std::vector<const RunOutcome *> finishing, logging;  // logging: finishing, and cancelled runs' logs
    for (RunOutcome *pointer : rest) {
        RunOutcome &run = *pointer;
        auto found = locked.find(run.execution_id);
        if (found == locked.end()) {
            run.error = run_error(ErrorCode::EXECUTION_NOT_FOUND, "execution " + run.execution_id + " not found");
            continue;
        }
        const std::string &status = found->second.text(3);
        run.workspace_id = found->second.text(1);
        run.app_id = found->second.text(2);
        if (run.status != "cancelled" && status != "running") {
            run.error = run_error(ErrorCode::STATE_CONFLICT, "cannot record the end of an execution that is " + status);
        } else if (status == "pending") {
            run.error = run_error(ErrorCode::STATE_CONFLICT, "execution " + run.execution_id + " has not started");
        } else {
            if (run.status != "cancelled") finishing.push_back(&run);
            logging.push_back(&run);
        }
    }

    // Events first: execution_finished numbers after them. A finishing run that stored none of
    // its events and logs yet folds them into one trail, with its execution_finished.
    std::vector<const RunOutcome *> folding, row_events, row_logs;
    for (const RunOutcome *run : logging) {
        bool folds = run->fold && run->status != "cancelled";
        (folds ? folding : row_logs).push_back(run);
        if (!folds && run->status != "cancelled") row_events.push_back(run);
    }
    if (!folding.empty()) insert_fold_trails(folding);
    if (std::string events = entries_batch(row_events, "events", "events"); !events.empty()) insert_run_events(events);
    if (std::string logs = entries_batch(row_logs, "logs", "logs"); !logs.empty()) insert_node_logs(logs);
    if (std::string calls = entries_batch(logging, "model_calls", "calls"); !calls.empty()) insert_model_calls(calls);
    std::vector<const RunOutcome *> releasing;
    for (const auto *runs_of : {&written, &logging})
        for (const RunOutcome *run : *runs_of)
            if (run->item.get("release_tokens").is_true()) releasing.push_back(run);
    if (!releasing.empty())
        query_planned_each_call("delete from flowgres.token_holds where execution_id = any($1::uuid[])",
                                {uuid_array(releasing)});
    if (!finishing.empty()) record_existing(end_documents(finishing), uuid_array(finishing), recorded);

    // The row, or the full view (node logs included), for the runs that ask for it and for
    // cancelled runs (which no outcome statement ended), read again now that they are written
    // (deferred runs' statement answered with them).
    std::vector<const RunOutcome *> reread_full, reread_row, reread_visitor;
    for (const auto *runs_of : {&written, &logging})
        for (const RunOutcome *run : *runs_of) {
            if (shown.count(run->execution_id)) continue;
            bool cancelled = run->status == "cancelled";
            if (run->view == RunView::full || (cancelled && run->view == RunView::row)) reread_full.push_back(run);
            else if (run->view == RunView::row) reread_row.push_back(run);
            else if (cancelled) reread_visitor.push_back(run);
        }
    auto reread = [&](const std::vector<const RunOutcome *> &runs, const std::string &columns) {
        if (runs.empty()) return;
        for (const SqlRow &row : query_planned_each_call("select e.id::text, " + columns +
                                                             "::text from flowgres.executions e where e.id = any($1::uuid[])",
                                                         {uuid_array(runs)})
                                     .rows)
            recorded[row.text(0)] = row.text(1);
    };
    reread(reread_full, kExecutionWithNodeLogs);
    reread(reread_row, "to_jsonb(e)");
    reread(reread_visitor,
           "json_build_object('execution_id', e.id, 'status', e.status, 'outputs', e.outputs, 'error', e.error)");

    std::vector<RecordedRun> answers;
    answers.reserve(outcomes.size());
    for (RunOutcome &run : outcomes) {
        auto found = recorded.find(run.execution_id);
        if (!run.error.empty())
            answers.push_back(RecordedRun{run.execution_id, false, std::move(run.error)});
        else if (found == recorded.end())
            answers.push_back(RecordedRun{run.execution_id, false,
                                          run_error(ErrorCode::STATE_CONFLICT, "the execution ended meanwhile")});
        else
            answers.push_back(RecordedRun{run.execution_id, true, std::move(found->second)});
    }
    return answers;
}

}  // namespace

SqlValue executions_record(CallArgs &args) {
    std::string result = "{\"runs\":[";
    bool first = true;
    for (const RecordedRun &run : record_runs(args)) {
        result += (first ? "{\"execution_id\":" : ",{\"execution_id\":") + json_quote(run.execution_id) +
                  (run.recorded ? ",\"execution\":" : ",\"error\":") + run.document + "}";
        first = false;
    }
    return SqlValue::json(result + "]}");
}

// The daemon's form (README "SQL API"): each run's document as it is, framed, so that the
// daemon hands each caller its own without parsing the batch's answer: per run, in order,
// "E" (its execution) or "X" (its error object), the document's length in bytes, ":", the
// document.
SqlValue executions_record_framed(CallArgs &args) {
    std::string result;
    for (const RecordedRun &run : record_runs(args))
        result += (run.recorded ? "E" : "X") + std::to_string(run.document.size()) + ":" + run.document;
    return SqlValue::text_value(result);
}

SqlValue executions_recording(CallArgs &) { return SqlValue::boolean(recording_outcomes); }

// SQL: execution_store_admitted(admitted json) — a deferred run that outlives its first
// heartbeat (or is answered 202) is stored as it runs: its row, running, and its request's
// usage row; its hold settles with this commit. From then on it is recorded as any run.
// {"stored": false} when its row is there already (sent again).
SqlValue execution_store_admitted(CallArgs &args) {
    JsonbRef admitted = JsonbDocument::parse(args.required_text(0, "admitted"), "admitted").root();
    ValidationProblems problems;
    JsonbRef id = admitted.get("id");
    if (!is_id(id)) problems.add("admitted.id", "must be an execution id");
    else check_admitted(admitted, id.string(), "running", "admitted", problems);
    problems.throw_if_any();
    Actor actor = require_system_actor();
    auto text = [&](const char *member) -> SqlParam {
        JsonbRef value = admitted.get(member);
        return value.is_string() ? SqlParam(std::string(value.string())) : SqlParam();
    };
    bool trial = admitted.get("trigger").string() == "trial";
    auto stored = query_planned_each_call(R"sql(
        with created as (
            insert into flowgres.executions as e
                (id, workspace_id, app_id, version_id, status, trigger, triggered_by, session_id, inputs, claimed_by,
                 created_at, started_at, heartbeat_at)
            values ($1::uuid, $2::uuid, $3::uuid, $4::uuid, 'running', coalesce($9, 'runtime'), $10::uuid, $5::uuid,
                    $6::jsonb, $7, $8::timestamptz, $8::timestamptz, now())
            on conflict do nothing  -- any unique index: see record_deferred
            returning e.id, e.workspace_id, e.app_id, e.created_at, e.trigger, e.triggered_by),
        billed as (
            insert into flowgres.usage_events (workspace_id, app_id, execution_id, dimension, quantity, created_at)
            select workspace_id, app_id, id, 'requests', 1, created_at from created),
        audited as (  -- a trial run's execution.create, as its caller
            insert into flowgres.audit_logs (workspace_id, actor_user_id, actor_role, action, target_type, target_id,
                                             metadata)
            select workspace_id, triggered_by, $11, 'execution.create', 'execution', id::text,
                   jsonb_build_object('app_id', app_id, 'trigger', trigger)
            from created where trigger <> 'runtime')
        select workspace_id::text from created)sql",
                                          {std::string(id.string()), text("workspace_id"), text("app_id"),
                                           text("version_id"), text("session_id"), admitted.get("inputs").json(),
                                           text("claimed_by"), text("started_at"), text("trigger"), text("triggered_by"),
                                           actor.role_name});
    if (stored.rows.empty()) return SqlValue::jsonb("{\"stored\":false}");
    count_admitted_request(stored.rows[0].text(0), std::string(id.string()), trial, true);
    return SqlValue::jsonb("{\"stored\":true}");
}

}  // namespace flowgres
