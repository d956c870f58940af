// POST /api/v1/workspaces/{id}/database and …/database/{rotate-secret,migrate,rollback,backup,restore},
// the app-role routes and the schema-change submit and apply routes: work the provisioner
// does (provisioner/) with blocking libpq and seconds of retries, so it runs on libuv's thread
// pool and never on the event loop. Two steps, each a thread-pool job: the claim (permission,
// quota, placement, one provisioner at a time; its refusals answer the request), then the
// work itself. With ?async=true the request is answered 202 after the claim and the work goes
// on here; if this daemon dies meanwhile the claim's lease runs out and the next call
// (provisioning is idempotent) finishes it. Not for: the SQL-only database routes (router.cpp).
#include <algorithm>
#include <optional>

#include "flowgres/json.hpp"

#include "databases.hpp"
#include "flowgres/provisioner.hpp"
#include "http/request.hpp"
#include "log.hpp"

namespace flowgres::daemon {

struct Databases::Work {
    std::shared_ptr<Call> call;  // null once an async request has been answered
    provisioner::Options options;
    std::shared_ptr<const Keyring> keyring;
    std::string workspace_id;
    std::string operation;
    std::string server;
    std::optional<int> target_version;
    std::string reason = "manual";  // backup
    std::string backup_id;          // restore
    std::string app_id;             // app_role_create
    std::string role_id;            // app_role_revoke
    std::string role_type;
    std::string expires_at;
    std::string reason_text;
    std::string version_id;         // schema_change_submit
    std::string change_id;          // schema_change_apply
    bool into_copy = false;         // restore
    bool async = false;
    // Background work has no caller; the next of its kind follows it.
    enum class Background { none, backup, expiry } background = Background::none;
    bool carrying_out = false;  // false: the claim step
    std::optional<provisioner::Claim> claimed;
    std::string document;
    std::optional<Error> error;
};

// On a work_pool_ thread: nothing here touches the loop or the Databases.
void Databases::carry_out(Work *work) {
    try {
        // App roles and schema-change submissions claim and work in one go (the claim names
        // the app or the role, not the workspace).
        const std::string &operation = work->operation;
        if (operation == "app_role_create" || operation == "app_role_revoke" || operation == "schema_change_submit") {
            work->carrying_out = true;
            const provisioner::Options &options = work->options;
            const Keyring &keyring = *work->keyring;
            if (operation == "app_role_create")
                work->document = provisioner::create_app_role(options, keyring, work->app_id, work->role_type, work->expires_at);
            else if (operation == "app_role_revoke")
                work->document = provisioner::revoke_app_role(options, keyring, work->role_id, work->reason_text);
            else
                work->document = provisioner::submit_schema_change(options, keyring, work->app_id, work->version_id);
            return;
        }
        if (!work->carrying_out && operation == "schema_change_apply") {
            work->claimed = provisioner::claim_schema_change(work->options, *work->keyring, work->change_id);
            work->workspace_id = work->claimed->workspace_id;
            work->document = work->claimed->status_document;
        } else if (!work->carrying_out) {
            work->claimed = provisioner::claim(work->options, *work->keyring, work->workspace_id, work->operation, work->server,
                                               work->target_version);
            work->claimed->reason = work->reason;
            work->claimed->backup_id = work->backup_id;
            work->claimed->into_copy = work->into_copy;
            work->document = work->claimed->status_document;
        } else {
            work->document = provisioner::carry_out(work->options, *work->keyring, *work->claimed);
        }
    } catch (const Error &error) {
        work->error = error;
    } catch (const std::exception &error) {
        work->error = Error(ErrorCode::INTERNAL_ERROR, error.what());
    }
}

Databases::Databases(WorkerContext &worker) : worker_(worker) {
    const Config &config = worker.config;
    pg::WorkspacePoolLimits limits;
    limits.max_open = static_cast<size_t>(config.workspace_pool_size);
    limits.global_cap = static_cast<size_t>(config.workspace_pool_global_cap);
    limits.idle_timeout_ms = static_cast<uint64_t>(config.workspace_pool_idle_ms);
    limits.lifetime_ms = static_cast<uint64_t>(config.workspace_pool_lifetime_ms);
    limits.statement_timeout_ms = static_cast<uint64_t>(config.db_step_timeout_ms);
    limits.queue_timeout_ms = static_cast<uint64_t>(config.db_queue_timeout_ms);
    workspace_pools_ = std::make_unique<pg::WorkspacePools>(
        worker.loop, limits, [this](const std::string &workspace_id, std::function<void(pg::WorkspaceTarget)> done) {
            connect_workspace(workspace_id, std::move(done));
        });
    work_pool_ = std::make_unique<BlockingPool>(worker.loop, static_cast<size_t>(config.database_work_threads),
                                                static_cast<size_t>(config.database_work_queue));
}

Databases::~Databases() = default;

void Databases::start() {
    started_ = true;
    workspace_pools_->start();
    const Config &config = worker_.config;
    uv_timer_init(worker_.loop, &backup_timer_);
    backup_timer_.data = this;
    if (worker_.worker_index == 0 && config.backup_interval_s > 0) {
        auto check_every = static_cast<uint64_t>(std::min<int64_t>(config.backup_interval_s, 60)) * 1000;
        uv_timer_start(
            &backup_timer_, [](uv_timer_t *timer) { static_cast<Databases *>(timer->data)->back_up_due_databases(); },
            1000, check_every);  // soon after start-up too: a restart does not postpone what is due
    }
    uv_timer_init(worker_.loop, &expiry_timer_);
    expiry_timer_.data = this;
    if (worker_.worker_index == 0) {
        auto sweep_every = static_cast<uint64_t>(config.app_role_sweep_ms);
        uv_timer_start(
            &expiry_timer_, [](uv_timer_t *timer) { static_cast<Databases *>(timer->data)->revoke_expired_roles(); },
            sweep_every, sweep_every);
    }
}

void Databases::stop(std::function<void()> done) {
    if (!started_) return done();
    started_ = false;  // sweeps take no next one
    uv_close(reinterpret_cast<uv_handle_t *>(&backup_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t *>(&expiry_timer_), nullptr);
    workspace_pools_->close([this, done = std::move(done)]() mutable { work_pool_->stop(std::move(done)); });
}

void Databases::recheck(const std::string &workspace_id) {
    workspace_pools_->recheck_workspace(workspace_id);
    kept_columns_.erase(workspace_id);  // a restored database may have other tables (runs under way keep theirs)
}

void Databases::run_operation(std::shared_ptr<Call> call) {
    auto work = std::make_unique<Work>();
    work->call = call;
    work->keyring = worker_.environment.keyring;
    // App-role routes name their operation by their SQL function.
    std::string_view function = call->route->function;
    if (function == "app_database_role_begin") work->operation = "app_role_create";
    if (function == "app_database_role_revoke_begin") work->operation = "app_role_revoke";
    if (function == "schema_change_submit") work->operation = "schema_change_submit";
    if (function == "schema_change_apply_begin") work->operation = "schema_change_apply";
    // The route's SQL arguments, by name (router.cpp lists which each route has).
    size_t position = 0;
    for (const Argument &argument : call->route->arguments) {
        if (!passed_to_sql(argument)) continue;
        const std::optional<std::string> &value = call->arguments.at(position++);
        std::string_view name = argument.name;
        if (name == "workspace_id") work->workspace_id = value.value_or("");
        if (name == "operation") work->operation = value.value_or("");
        if (name == "server") work->server = value.value_or("");
        if (name == "backup_id") work->backup_id = value.value_or("");
        if (name == "app_id") work->app_id = value.value_or("");
        if (name == "role_id") work->role_id = value.value_or("");
        if (name == "role_type") work->role_type = value.value_or("");
        if (name == "expires_at") work->expires_at = value.value_or("");
        if (name == "reason") work->reason_text = value.value_or("");
        if (name == "version_id") work->version_id = value.value_or("");
        if (name == "change_id") work->change_id = value.value_or("");
        if (name == "into" && value) {
            if (*value != "workspace" && *value != "copy")
                return worker_.finish_error(call, ErrorCode::VALIDATION_FAILED, "into: must be workspace or copy",
                                            "[{\"field\":\"into\",\"message\":\"must be workspace or copy\"}]");
            work->into_copy = *value == "copy";
        }
        if (name == "target_version" && value) {
            try {
                work->target_version = std::stoi(*value);
            } catch (const std::exception &) {
                return worker_.finish_error(call, ErrorCode::VALIDATION_FAILED, "target_version: must be a number from 0",
                                            "[{\"field\":\"target_version\",\"message\":\"must be a number from 0\"}]");
            }
        }
    }
    work->async = http::asks_async(call->request);
    work->options = provisioner_options();

    // Who is asking (the key's user, or the operator), for the provisioner's own connection
    // to act as; the key's scope is checked here too.
    std::vector<pg::Statement> statements;
    statements.push_back(worker_.actor_statement(*call));
    statements.push_back(pg::Statement{"select coalesce(flowgres.current_actor()::text, 'operator')", {}});
    Work *pending = work.release();
    worker_.pool.run(std::move(statements), [this, pending](pg::JobResult &&result) {
        std::unique_ptr<Work> work(pending);
        if (result.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(work->call, result);
        worker_.note_key_use(*work->call, result.values[0]);
        work->options.actor = work->call->operator_key ? "operator" : result.values[1].value_or("operator");
        queue(std::move(work));
    });
}

provisioner::Options Databases::provisioner_options() const {
    provisioner::Options options;
    options.control_conninfo = worker_.config.database_url;
    options.claimant = daemon_name();
    options.connect_timeout_seconds = 5;
    options.tool_timeout_seconds = static_cast<int>(worker_.config.database_tool_timeout_s);
    options.lock_timeout_ms = static_cast<int>(worker_.config.database_lock_timeout_ms);
    options.backup_dir = worker_.config.backup_dir;
    options.backup_keep = static_cast<int>(worker_.config.backup_keep);
    return options;
}

// A background sweep (worker 0's timers): the ids `query` answers are worked through one after
// another, as the operator; `next` is called for the first and after each one ends.
void Databases::start_sweep(Sweep &sweep, pg::Statement query, void (Databases::*next)()) {
    if (sweep.running || !started_) return;
    sweep.running = true;
    worker_.pool.run({pg::Statement{kActAsOperator, {}}, std::move(query)}, [this, &sweep, next](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok) {
            sweep.running = false;
            return;
        }
        Json ids = parse_json(result.values[1].value_or("[]"), "sweep");
        size_t index;
        json_t *id;
        json_array_foreach(ids.get(), index, id) {
            if (json_is_string(id)) sweep.pending.push_back(json_string_value(id));
        }
        (this->*next)();
    });
}

std::optional<std::string> Databases::next_in_sweep(Sweep &sweep) {
    if (sweep.pending.empty() || !started_) {
        sweep.pending.clear();
        sweep.running = false;
        return std::nullopt;
    }
    std::string id = sweep.pending.front();
    sweep.pending.pop_front();
    return id;
}

std::unique_ptr<Databases::Work> Databases::operator_work() {
    auto work = std::make_unique<Work>();
    work->keyring = worker_.environment.keyring;
    work->options = provisioner_options();
    work->options.actor = "operator";
    return work;
}

// Worker 0's timer (backup_interval_s): the ready databases whose newest backup is older than
// the interval are backed up, reason "scheduled". Any number of daemons may do this at once:
// each backup claims its database first.
void Databases::back_up_due_databases() {
    start_sweep(backup_sweep_,
                pg::Statement{"select flowgres.workspace_databases_due_for_backup($1::integer)::text",
                              {std::to_string(worker_.config.backup_interval_s)}},
                &Databases::back_up_next);
}

void Databases::back_up_next() {
    auto workspace_id = next_in_sweep(backup_sweep_);
    if (!workspace_id) return;
    auto work = operator_work();
    work->workspace_id = *workspace_id;
    work->operation = "backup";
    work->reason = "scheduled";
    work->background = Work::Background::backup;
    queue(std::move(work));
}

// Worker 0's timer (app_role_sweep_ms): active app roles past their expiry are revoked. Their
// passwords stopped at expiry already (VALID UNTIL); this drops the roles and ends any
// session they still hold.
void Databases::revoke_expired_roles() {
    start_sweep(expiry_sweep_, pg::Statement{"select flowgres.app_database_roles_expired()::text", {}},
                &Databases::revoke_next_expired);
}

void Databases::revoke_next_expired() {
    auto role_id = next_in_sweep(expiry_sweep_);
    if (!role_id) return;
    auto work = operator_work();
    work->role_id = *role_id;
    work->operation = "app_role_revoke";
    work->reason_text = "expired";
    work->background = Work::Background::expiry;
    queue(std::move(work));
}

void Databases::queue(std::unique_ptr<Work> work) {
    auto shared = std::shared_ptr<Work>(work.release());
    bool queued = work_pool_->submit([shared] { carry_out(shared.get()); },
                                              [this, shared](bool cancelled) {
                                                  std::unique_ptr<Work> finished(new Work(std::move(*shared)));
                                                  done(std::move(finished), cancelled ? UV_ECANCELED : 0);
                                              });
    if (!queued) {
        shared->error = Error(ErrorCode::OVERLOADED, "too much database work is waiting: retry later",
                              "{\"retry_after_seconds\":5}");
        std::unique_ptr<Work> refused(new Work(std::move(*shared)));
        done(std::move(refused), 0);
    }
}

void Databases::done(std::unique_ptr<Work> work, int status) {
    if (status == UV_ECANCELED) work->error = Error(ErrorCode::SHUTTING_DOWN, "the server is shutting down");
    if (!work->carrying_out) {
        if (work->error && work->background == Work::Background::backup) {
            // Another daemon is backing it up, or it changed state meanwhile: nothing to do.
            log_line(LogLevel::debug, "scheduled backup skipped", {{"workspace_id", work->workspace_id}, {"error", work->error->message()}});
            return back_up_next();
        }
        if (work->error) return worker_.finish_error(work->call, work->error->code(), work->error->message(), work->error->details_json());
        work->carrying_out = true;
        if (work->async) {
            worker_.finish(work->call, success_response(202, work->document, work->call->trace));
            work->call.reset();
        }
        return queue(std::move(work));
    }
    if (work->error)
        log_line(LogLevel::warn, "workspace database work failed",
                 {{"workspace_id", work->workspace_id}, {"operation", work->operation},
                  {"error_code", std::string(error_info(work->error->code()).name)}, {"error", work->error->message()}});
    else
        log_line(LogLevel::info, "workspace database work done", {{"workspace_id", work->workspace_id}, {"operation", work->operation}});
    if (work->background == Work::Background::backup) return back_up_next();
    if (work->background == Work::Background::expiry) return revoke_next_expired();
    if (!work->call) return;  // answered 202 already
    if (work->error) return worker_.finish_error(work->call, work->error->code(), work->error->message(), work->error->details_json());
    worker_.finish(work->call, success_response(work->call->route->success_status, work->document, work->call->trace));
}

}  // namespace flowgres::daemon
