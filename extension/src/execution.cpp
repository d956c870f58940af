// Executions (README "Workflows and executions"): created pending, moved through the state machine of
// core/execution_state under a row lock, heartbeaten, given node logs in batches, read back
// and listed. An illegal transition is STATE_CONFLICT; someone who cannot see the app is told
// the execution does not exist.
#include "actor.hpp"
#include "anomaly.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "execution_entries.hpp"
#include "flowgres/crypto.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/execution_state.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "flowgres/workflow.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "quota.hpp"
#include "rate_limiter.hpp"
#include "run_cap.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

constexpr long long kDefaultPageSize = 20;
constexpr long long kMaxPageSize = 100;
constexpr long long kMaxEventsPerRead = 500;

struct ExecutionRow {
    std::string id;
    std::string workspace_id;
    std::string app_id;
    ExecutionStatus status;
};

// The execution, checked against the actor's permission on its app; locked when `lock`.
ExecutionRow require_execution(const Actor &actor, const std::string &execution_id, std::string_view permission,
                               bool lock) {
    auto result =
        query(std::string("select workspace_id, app_id, status from flowgres.executions where id = $1::uuid") +
                  (lock ? " for update" : ""),
              {execution_id});
    if (result.rows.empty()) throw Error(ErrorCode::EXECUTION_NOT_FOUND, "execution " + execution_id + " not found");
    ExecutionRow row{execution_id, result.rows[0].text(0), result.rows[0].text(1),
                     parse_execution_status(result.rows[0].text(2)).value()};
    if (!actor.is_system()) {
        try {
            require_app_permission(actor, row.app_id, permission, WorkspaceUse::read);
        } catch (const Error &error) {
            if (error.code() == ErrorCode::APP_NOT_FOUND || error.code() == ErrorCode::WORKSPACE_NOT_FOUND)
                throw Error(ErrorCode::EXECUTION_NOT_FOUND, "execution " + execution_id + " not found");
            throw;
        }
    }
    return row;
}

void require_transition(const ExecutionRow &row, ExecutionStatus to, std::string_view action) {
    if (!execution_transition_allowed(row.status, to))
        throw Error(ErrorCode::STATE_CONFLICT,
                    "cannot " + std::string(action) + " an execution that is " + std::string(to_string(row.status)),
                    "{\"from\":" + json_quote(to_string(row.status)) + ",\"to\":" + json_quote(to_string(to)) + "}");
}

std::string execution_document(const std::string &execution_id) {
    return query_value("select to_jsonb(e) from flowgres.executions e where id = $1::uuid", {execution_id}).value();
}

std::optional<std::string> object_argument(CallArgs &args, int position, const char *name) {
    auto value = args.jsonb(position);
    if (!value) return std::nullopt;
    Json parsed = parse_json(*value, name);
    if (!json_is_object(parsed.get())) throw field_error(name, "must be a JSON object");
    return value;
}

}  // namespace

namespace {

// The version a run of the app runs: the one asked for (of this app), else the app's current
// one, else its latest.
std::string version_to_run(const AppAccess &access, const std::string &app_id,
                           const std::optional<std::string> &version_id) {
    if (version_id) {
        if (!query_value("select 1 from flowgres.app_versions where id = $1::uuid and app_id = $2::uuid",
                         {*version_id, app_id}))
            throw Error(ErrorCode::VERSION_NOT_FOUND, "version " + *version_id + " is not a version of this app");
        return *version_id;
    }
    if (!access.version_to_run) throw Error(ErrorCode::VERSION_NOT_FOUND, "app " + app_id + " has no version to run");
    return *access.version_to_run;
}

// A run the cap on runs at once refuses (run_cap.hpp).
[[noreturn]] void refuse_run_cap(const RunCapCheck &check, int64_t cap) {
    if (check.table_full)
        throw Error(ErrorCode::OVERLOADED, "too many workspaces are counting their runs at once: retry",
                    "{\"retry_after_seconds\":1}");
    throw Error(ErrorCode::QUOTA_EXCEEDED,
                "the workspace already has " + std::to_string(check.running) + " runs pending or running (at most " +
                    std::to_string(cap) + " at once): wait for one to end",
                "{\"exceeded\":\"concurrent_runs\",\"quota\":" + std::to_string(cap) +
                    ",\"used\":" + std::to_string(check.running) + ",\"retry_after_seconds\":1}");
}

// A request the month's quota or budget refuses, or the ledger has no room for.
void require_quota_reserved(const QuotaUse &quota) {
    if (quota.reservation.outcome == UsageReservation::Outcome::exceeded)
        throw Error(ErrorCode::QUOTA_EXCEEDED, quota_exceeded_message(quota), quota_exceeded_details(quota));
    if (quota.reservation.outcome == UsageReservation::Outcome::ledger_full)
        throw Error(ErrorCode::OVERLOADED, "too many workspaces are metering usage at once: retry",
                    "{\"retry_after_seconds\":1}");
}

// An execution created by `actor` (app_edit on the app; the run cap, the request quota, an
// audit row): pending, or (`claimed_by` set) already running there, claimed by the daemon
// that runs it, so that the row is written once rather than inserted and then updated. The
// row as JSON, with its version's workflow when it is created running (what the runner needs).
std::string create_execution(const Actor &actor, const std::string &app_id, const std::string &inputs,
                             std::optional<std::string> version_id, const std::string &trigger, bool queued,
                             const std::optional<std::string> &claimed_by) {
    AppAccess access = require_app_permission(actor, app_id, permission::app_edit, WorkspaceUse::write);
    version_id = version_to_run(access, app_id, version_id);
    const std::string &workspace_id = access.workspace.workspace_id;
    // Runs started here (trial, api, schedule) are capped in number at once per workspace
    // (run_cap.hpp: counted in shared memory, reserved before the row is written), and are
    // requests like the runtime's: metered against the month's quota and budget.
    if (trigger != "runtime") {
        int64_t cap = run_cap_limit();
        RunCapCheck check = run_cap_reserve(workspace_id, cap);
        if (!check.allowed) refuse_run_cap(check, cap);
    }
    QuotaUse quota = reserve_quota(workspace_id, UsageAmounts{1, 0, 0}, true);
    require_quota_reserved(quota);
    // The row as inserted is the answer (with its version's workflow for a run that starts
    // here): nothing below changes it.
    SqlResult created = query(R"sql(
        insert into flowgres.executions as e (workspace_id, app_id, version_id, trigger, triggered_by, inputs, queued,
                                              status, claimed_by, started_at, heartbeat_at)
        select $1::uuid, $2::uuid, $3::uuid, $4, $5::uuid, $6::jsonb, $7::boolean,
               case when $8::text is null then 'pending' else 'running' end, $8::text,
               case when $8::text is null then null else now() end, case when $8::text is null then null else now() end
        returning e.id::text,
                  case when $8::text is null then to_jsonb(e)
                       else to_jsonb(e) || jsonb_build_object('workflow', (select v.workflow from flowgres.app_versions v
                                                                           where v.id = e.version_id)) end::text)sql",
                              {workspace_id, app_id, version_id, trigger, actor.user_param(), inputs,
                               std::string(queued ? "true" : "false"), claimed_by});
    std::string execution_id = created.rows.at(0).text(0);
    record_usage(workspace_id, app_id, execution_id, quota);
    // Delivered at commit: a daemon listening on the channel claims it (execution_claim).
    if (queued) query("select pg_notify('flowgres_executions', $1)", {execution_id});
    write_audit(actor, access.workspace.workspace_id, "execution.create", "execution", execution_id,
                "{\"app_id\":" + json_quote(app_id) + ",\"trigger\":" + json_quote(trigger) + "}");
    return created.rows.at(0).text(1);
}

// The execution with its version's workflow: what the runner needs to run it.
std::string execution_with_workflow(const std::string &execution_id) {
    return query_value(R"sql(
        select to_jsonb(e) || jsonb_build_object('workflow', v.workflow)
        from flowgres.executions e join flowgres.app_versions v on v.id = e.version_id where e.id = $1::uuid)sql",
                       {execution_id})
        .value();
}

}  // namespace

SqlValue execution_create(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::string inputs = object_argument(args, 1, "inputs").value_or("{}");
    std::optional<std::string> version_id = args.uuid(2);
    std::string trigger = args.text(3).value_or("trial");
    bool queued = args.boolean(4).value_or(false);
    if (trigger != "trial" && trigger != "api" && trigger != "runtime" && trigger != "schedule")
        throw field_error("trigger", "must be trial, api, runtime or schedule");
    Actor actor = require_actor();
    return SqlValue::jsonb(create_execution(actor, app_id, inputs, version_id, trigger, queued, std::nullopt));
}

SqlValue execution_create_running(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::string inputs = object_argument(args, 1, "inputs").value_or("{}");
    std::optional<std::string> version_id = args.uuid(2);
    std::string claimed_by = args.required_text(3, "claimed_by");
    check_display_text("claimed_by", claimed_by, 200);
    // Created as the caller (their permission, cap, quota and audit row); saying that it runs,
    // and where, is the executor's alone: the daemon's role acting for the caller.
    if (!caller_runs_executions())
        throw Error(ErrorCode::PERMISSION_DENIED, "only the platform's daemon creates runs it runs itself");
    Actor actor = require_actor();
    return SqlValue::jsonb(create_execution(actor, app_id, inputs, version_id, "trial", false, claimed_by));
}

// SQL: execution_admit_trial(app_id, inputs, version_id, claimed_by, have_version) — a
// synchronous trial run of the daemon `claimed_by`, admitted as the caller (app_edit, the run
// cap, the request quota and budget) without writing anything: the row it will be, with
// "deferred": true and its version's workflow (unless it is `have_version`, which the daemon
// holds already: versions never change). Its request is held in the usage ledger and its run
// in the run cap (both in shared memory, across transactions: usage_ledger.hpp, run_cap.hpp)
// until executions_record writes its row ended, with its usage row and its audit row
// (execution.create), or execution_store_admitted writes it running. A run whose model calls
// must hold tokens first (a tokens quota or an enforced budget, and an llm step) has its row
// written now, as execution_create_running does: the token holds name it.
SqlValue execution_admit_trial(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::string inputs = object_argument(args, 1, "inputs").value_or("{}");
    std::optional<std::string> version_id = args.uuid(2);
    std::string claimed_by = args.required_text(3, "claimed_by");
    std::optional<std::string> have_version = args.uuid(4);
    check_display_text("claimed_by", claimed_by, 200);
    if (!caller_runs_executions())
        throw Error(ErrorCode::PERMISSION_DENIED, "only the platform's daemon creates runs it runs itself");
    Actor actor = require_actor();
    AppAccess access = require_app_permission(actor, app_id, permission::app_edit, WorkspaceUse::write);
    std::string version = version_to_run(access, app_id, version_id);
    const std::string &workspace_id = access.workspace.workspace_id;
    WorkspaceLimits limits = workspace_limits(workspace_id);
    bool token_holds = limits.usage.quota[kUsageTokens] >= 0 || limits.usage.spend_limit >= 0;
    std::optional<std::string> workflow_text;
    if (token_holds || have_version != version)
        workflow_text =
            query_value("select workflow::text from flowgres.app_versions where id = $1::uuid", {version}).value();
    if (token_holds) {
        Json document = parse_json(*workflow_text, "workflow");
        workflow::Problems ignored;
        if (!workflow::referenced_models(workflow::parse_workflow(document.get(), ignored)).empty()) {
            // Committed without waiting for the disk: the outcome's durable commit makes it so.
            set_transaction_setting("synchronous_commit", "off");
            return SqlValue::jsonb(create_execution(actor, app_id, inputs, version, "trial", false, claimed_by));
        }
    }
    // The request first: were the cap to refuse, this transaction aborts and its hold goes.
    std::string execution_id = random_uuid();
    QuotaUse quota = hold_quota(workspace_id, execution_id, UsageAmounts{1, 0, 0}, &limits);
    require_quota_reserved(quota);
    int64_t cap = run_cap_limit();
    RunCapHeld run;
    RunCapCheck check = run_cap_hold(workspace_id, cap, run);
    if (!check.allowed) refuse_run_cap(check, cap);
    if (!usage_hold_attach_run(execution_id, run)) {
        run_cap_hold_end(run, false);
        throw Error(ErrorCode::INTERNAL_ERROR, "the run's hold went before its run could join it");
    }
    raise_budget_alerts(workspace_id, app_id, quota);
    return SqlValue::jsonb(
        "{\"id\":" + json_quote(execution_id) + ",\"workspace_id\":" + json_quote(workspace_id) +
        ",\"app_id\":" + json_quote(app_id) + ",\"version_id\":" + json_quote(version) +
        ",\"status\":\"running\",\"trigger\":\"trial\",\"triggered_by\":" +
        (actor.is_system() ? std::string("null") : json_quote(actor.user_id)) +
        ",\"inputs\":" + inputs + ",\"claimed_by\":" + json_quote(claimed_by) +
        ",\"started_at\":" + json_quote(transaction_start_iso()) +
        ",\"deferred\":true,\"token_holds\":false" +
        (have_version == version ? std::string() : ",\"workflow\":" + *workflow_text) + "}");
}

SqlValue execution_start(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    std::optional<std::string> claimed_by = args.text(1);
    if (claimed_by) check_display_text("claimed_by", *claimed_by, 200);
    // What a run did is the executor's to say (the daemon, acting as the service).
    Actor actor = require_system_actor();
    ExecutionRow row = require_execution(actor, execution_id, permission::app_edit, true);
    require_transition(row, ExecutionStatus::running, "start");
    query(
        "update flowgres.executions set status = 'running', started_at = now(), heartbeat_at = now(), claimed_by = $2 "
        "where id = $1::uuid",
        {execution_id, claimed_by});
    // The runner gets what it needs to run in the same answer: the version's workflow.
    return SqlValue::jsonb(execution_with_workflow(execution_id));
}

SqlValue execution_claim(CallArgs &args) {
    std::string claimed_by = args.required_text(0, "claimed_by");
    check_display_text("claimed_by", claimed_by, 200);
    require_system_actor();
    auto claimed = query_value(R"sql(
        with next as (
            select id from flowgres.executions
            where status = 'pending' and queued
            order by created_at
            for update skip locked
            limit 1)
        update flowgres.executions e
        set status = 'running', started_at = now(), heartbeat_at = now(), claimed_by = $1
        from next where e.id = next.id
        returning e.id)sql",
                               {claimed_by});
    if (!claimed) return SqlValue::null();
    return SqlValue::jsonb(execution_with_workflow(*claimed));
}

SqlValue execution_finish(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    std::string status_text = args.required_text(1, "status");
    std::optional<std::string> outputs = args.jsonb(2);
    std::optional<std::string> error = object_argument(args, 3, "error");
    long long prompt_tokens = args.bigint(4).value_or(0), completion_tokens = args.bigint(5).value_or(0);
    auto status = parse_execution_status(status_text);
    if (!status || (*status != ExecutionStatus::completed && *status != ExecutionStatus::failed))
        throw field_error("status", "must be completed or failed (cancel with execution_cancel)");
    if (*status == ExecutionStatus::failed && !error)
        throw field_error("error", "is required when the execution failed");
    if (prompt_tokens < 0 || completion_tokens < 0)
        throw field_error("prompt_tokens", "token counts cannot be negative");
    // What a run did is the executor's to say (the daemon, acting as the service).
    Actor actor = require_system_actor();
    ExecutionRow row = require_execution(actor, execution_id, permission::app_edit, true);
    require_transition(row, *status, status_text == "completed" ? "complete" : "fail");
    auto finished = query(
        R"sql(
        update flowgres.executions set status = $2, outputs = $3::jsonb, error = $4::jsonb, prompt_tokens = $5::bigint,
               completion_tokens = $6::bigint, finished_at = now(), heartbeat_at = now()
        where id = $1::uuid
        returning case when trigger = 'runtime' then coalesce(octet_length(outputs::text), 0) else 0 end, trigger)sql",
        {execution_id, status_text, outputs, error, std::to_string(prompt_tokens), std::to_string(completion_tokens)});
    if (*status == ExecutionStatus::failed && finished.rows.at(0).text(1) == "runtime")
        note_runtime_failure(row.app_id, epoch_seconds_now());
    // Usage already consumed is recorded whatever the limits (the next request is refused).
    record_consumed_usage(row.workspace_id, row.app_id, execution_id,
                          UsageAmounts{0, prompt_tokens + completion_tokens, std::stoll(finished.rows.at(0).text(0))});
    return SqlValue::jsonb(execution_document(execution_id));
}

SqlValue execution_cancel(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    Actor actor = require_actor();
    ExecutionRow row = require_execution(actor, execution_id, permission::app_edit, true);
    require_transition(row, ExecutionStatus::cancelled, "cancel");
    query("update flowgres.executions set status = 'cancelled', finished_at = now() where id = $1::uuid",
          {execution_id});
    write_audit(actor, row.workspace_id, "execution.cancel", "execution", execution_id,
                "{\"from\":" + json_quote(to_string(row.status)) + "}");
    return SqlValue::jsonb(execution_document(execution_id));
}

SqlValue execution_heartbeat(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    // What a run did is the executor's to say (the daemon, acting as the service).
    Actor actor = require_system_actor();
    ExecutionRow row = require_execution(actor, execution_id, permission::app_edit, false);
    // Only a running execution lives: a cancelled one answers STATE_CONFLICT, which is how its
    // executor learns to stop.
    auto updated =
        query("update flowgres.executions set heartbeat_at = now() where id = $1::uuid and status = 'running'",
              {execution_id});
    if (updated.processed == 0)
        throw Error(ErrorCode::STATE_CONFLICT,
                    "execution " + execution_id + " is " + std::string(to_string(row.status)),
                    "{\"status\":" + json_quote(to_string(row.status)) + "}");
    return SqlValue::jsonb("{\"id\":" + json_quote(execution_id) + ",\"status\":\"running\"}");
}

SqlValue node_logs_append(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    std::string logs = args.required_jsonb(1, "logs");
    JsonbRef parsed = JsonbDocument::parse(logs, "logs").root();
    if (!parsed.is_array() || parsed.size() == 0 || parsed.size() > kMaxLogsPerAppend)
        throw field_error("logs", "must be an array of 1 to " + std::to_string(kMaxLogsPerAppend) + " entries");
    ValidationProblems problems;
    check_node_logs(parsed, "logs", problems);
    problems.throw_if_any();
    // What a run did is the executor's to say (the daemon, acting as the service).
    Actor actor = require_system_actor();
    // Locked: appends of one execution are numbered one after the other.
    ExecutionRow row = require_execution(actor, execution_id, permission::app_edit, true);
    // Nodes log while running and may finish logging after a cancel or failure; an execution
    // no daemon has started has nothing to log.
    if (row.status == ExecutionStatus::pending)
        throw Error(ErrorCode::STATE_CONFLICT, "execution " + execution_id + " has not started",
                    "{\"status\":\"pending\"}");
    // Sequence numbers continue after what is stored; one INSERT for the whole batch.
    return SqlValue::integer(static_cast<long long>(insert_node_logs(single_run_batch(row.workspace_id, row.app_id, execution_id, "logs", logs))));
}

SqlValue execution_events_append(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    std::string events = args.required_jsonb(1, "events");
    JsonbRef parsed = JsonbDocument::parse(events, "events").root();
    if (!parsed.is_array() || parsed.size() == 0 || parsed.size() > kMaxEventsPerAppend)
        throw field_error("events", "must be an array of 1 to " + std::to_string(kMaxEventsPerAppend) + " entries");
    ValidationProblems problems;
    check_run_events(parsed, "events", problems);
    problems.throw_if_any();
    // What a run did is the executor's to say (the daemon, acting as the service).
    Actor actor = require_system_actor();
    // Locked: a batch lands whole before or after the execution ends, never around its end.
    ExecutionRow row = require_execution(actor, execution_id, permission::app_edit, true);
    if (row.status != ExecutionStatus::running) return SqlValue::integer(0);
    uint64_t inserted = insert_run_events(single_run_batch(row.workspace_id, row.app_id, execution_id, "events", events));
    if (inserted > 0) query("select pg_notify('flowgres_execution_events', $1)", {execution_id});
    return SqlValue::integer(static_cast<long long>(inserted));
}

SqlValue execution_events(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    long long after = args.integer(1).value_or(0);
    long long max_events = args.integer(2).value_or(kMaxEventsPerRead);
    if (after < 0 || after > 2147483647) throw field_error("after", "must be an event id (0 or more)");
    if (max_events < 1 || max_events > kMaxEventsPerRead)
        throw field_error("max_events", "must be from 1 to " + std::to_string(kMaxEventsPerRead));
    Actor actor = require_actor();
    ExecutionRow row = require_execution(actor, execution_id, permission::logs_view, false);
    return SqlValue::jsonb(query_value(R"sql(
        with stored as (  -- rows, and the trail of a run that ended before any was stored
            select sequence, event, data from flowgres.execution_events
            where workspace_id = $1::uuid and execution_id = $2::uuid and sequence > $3::integer
            union all
            select (entry ->> 'sequence')::integer, entry ->> 'event', entry -> 'data'
            from flowgres.execution_trails t cross join lateral jsonb_array_elements(t.events) as entry
            where t.execution_id = $2::uuid and (entry ->> 'sequence')::integer > $3::integer
            union all  -- the trail's execution_finished
            select t.finished_sequence, 'execution_finished', t.finished_data
            from flowgres.execution_trails t
            where t.execution_id = $2::uuid and t.finished_sequence > $3::integer),
        page as (select sequence, event, data from stored order by sequence limit $4::integer)
        select jsonb_build_object(
            'execution_id', $2::uuid,
            'status', (select status from flowgres.executions where id = $2::uuid),
            'events', (select coalesce(jsonb_agg(jsonb_build_object('id', sequence, 'event', event, 'data', data)
                                                 order by sequence), '[]') from page),
            -- Complete: nothing will follow this page (an ended execution's last event is in it or before it).
            'complete', (select status from flowgres.executions where id = $2::uuid) in ('completed', 'failed', 'cancelled')
                        and not exists (select 1 from stored
                                        where sequence > coalesce((select max(sequence) from page), $3::integer))))sql",
                                       {row.workspace_id, execution_id, std::to_string(after),
                                        std::to_string(max_events)})
                               .value());
}

SqlValue execution_get(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    Actor actor = require_actor();
    require_execution(actor, execution_id, permission::logs_view, false);
    return SqlValue::jsonb(
        query_value(std::string("select ") + kExecutionWithNodeLogs + " from flowgres.executions e where e.id = $1::uuid",
                    {execution_id})
            .value());
}

SqlValue execution_list(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    Json filters = parse_json(args.jsonb(1).value_or("{}"), "filters");
    if (!json_is_object(filters.get())) throw field_error("filters", "must be an object");
    ValidationProblems problems;
    std::optional<std::string> status, trigger, node_type, from, to;
    long long page = 1, page_size = kDefaultPageSize;
    const char *key;
    json_t *value;
    json_object_foreach(filters.get(), key, value) {
        std::string name = key;
        const char *text = json_string_value(value);
        if (name == "status") {
            if (!text || !parse_execution_status(text))
                problems.add(name, "must be pending, running, completed, failed or cancelled");
            else
                status = text;
        } else if (name == "trigger") {
            if (!text || json_string_length(value) > 20)
                problems.add(name, "must be trial, api, runtime or schedule");
            else
                trigger = text;
        } else if (name == "node_type") {
            if (!text || json_string_length(value) > 64)
                problems.add(name, "must be a node type name");
            else
                node_type = text;
        } else if (name == "from" || name == "to") {
            if (!text || !is_iso8601_timestamp(text))
                problems.add(name, "must be an ISO 8601 timestamp");
            else
                (name == "from" ? from : to) = text;
        } else if (name == "page" || name == "page_size") {
            long long high = name == "page" ? 1000000 : kMaxPageSize;
            if (!json_is_integer(value) || json_integer_value(value) < 1 || json_integer_value(value) > high)
                problems.add(name, "must be an integer from 1 to " + std::to_string(high));
            else
                (name == "page" ? page : page_size) = json_integer_value(value);
        } else {
            problems.add(name, "is not a known filter (status, trigger, node_type, from, to, page, page_size)");
        }
    }
    problems.throw_if_any();
    Actor actor = require_actor();
    require_app_permission(actor, app_id, permission::logs_view, WorkspaceUse::read);
    return SqlValue::jsonb(query_value(R"sql(
        with matching as (
            select * from flowgres.executions e
            where e.app_id = $1::uuid
              and ($2::text is null or e.status = $2)
              and ($3::text is null or e.trigger = $3)
              and ($4::text is null or exists (select 1 from flowgres.node_logs l where l.execution_id = e.id and l.node_type = $4)
                   or exists (select 1 from flowgres.execution_trails t where t.execution_id = e.id
                                and t.node_logs @> jsonb_build_array(jsonb_build_object('node_type', $4::text))))
              and ($5::timestamptz is null or e.created_at >= $5::timestamptz)
              and ($6::timestamptz is null or e.created_at < $6::timestamptz))
        select jsonb_build_object(
            'items', (select coalesce(jsonb_agg(to_jsonb(page_rows) order by created_at desc, id desc), '[]')
                      from (select * from matching order by created_at desc, id desc limit $7::bigint offset $8::bigint) page_rows),
            'meta', jsonb_build_object('page', $9::bigint, 'page_size', $7::bigint, 'total', (select count(*) from matching),
                                       'total_pages', ceil((select count(*) from matching)::numeric / $7::bigint)::bigint)))sql",
                                       {app_id, status, trigger, node_type, from, to, std::to_string(page_size),
                                        std::to_string((page - 1) * page_size), std::to_string(page)})
                               .value());
}

}  // namespace flowgres
