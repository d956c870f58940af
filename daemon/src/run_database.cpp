// A run's workspace database for its database steps (executor/workspace_database.hpp): the
// statements go to this worker's pool of the workspace's database; writes are reported to the
// control plane as data_written runtime events. How a pool reaches the database: the sealed
// password from workspace_database_secret, opened with the master keys.
#include "databases.hpp"
#include "flowgres/provisioner.hpp"
#include "log.hpp"

namespace flowgres::daemon {

class Databases::RunDatabase : public executor::WorkspaceDatabase {
public:
    RunDatabase(WorkerContext &worker, pg::WorkspacePools &pools, std::string workspace_id, std::string execution_id,
                StoredFirst stored_first, std::shared_ptr<executor::KeptColumns> kept)
        : WorkspaceDatabase(std::move(kept)),
          worker_(worker),
          pools_(pools),
          workspace_id_(std::move(workspace_id)),
          execution_id_(std::move(execution_id)),
          stored_first_(std::move(stored_first)) {
        max_rows = static_cast<size_t>(worker.config.db_step_max_rows);
    }

    void query(std::string sql, std::vector<std::optional<std::string>> params, std::function<void(executor::DatabaseAnswer)> done) override {
        std::vector<pg::Statement> statements;
        statements.push_back(pg::Statement{std::move(sql), std::move(params)});
        pools_.run(workspace_id_, std::move(statements), [done = std::move(done)](pg::JobResult &&result) {
            executor::DatabaseAnswer answer;
            if (result.outcome == pg::JobResult::Outcome::ok) {
                answer.value = result.values.at(0).value_or("null");
                return done(std::move(answer));
            }
            answer.ok = false;
            answer.message = result.message;
            if (result.outcome == pg::JobResult::Outcome::sql_error) answer.sqlstate = result.sqlstate;
            if (result.outcome == pg::JobResult::Outcome::unavailable)
                // A connector's refusal carries its flowgres code (no database yet, …).
                answer.error_code = result.sqlstate.empty() ? "DB_UNAVAILABLE" : result.sqlstate;
            else
                answer.error_code = result.sqlstate == "57014" ? "NODE_TIMEOUT" : "NODE_FAILED";  // 57014: statement_timeout
            done(std::move(answer));
        });
    }

    void data_written(const std::string &node_id, const std::string &table, long long rows) override {
        std::string details = "{\"table\":" + (table.empty() ? std::string("null") : json_quote(table)) +
                              ",\"rows\":" + std::to_string(rows) + ",\"node\":" + json_quote(node_id) + "}";
        stored_first_([&worker = worker_, execution_id = execution_id_, details = std::move(details)] {
            std::vector<pg::Statement> statements;
            statements.push_back(pg::Statement{kOperatorNoDiskWait, {}});
            statements.push_back(pg::Statement{"select flowgres.execution_data_written($1::uuid, $2::jsonb)::text",
                                               {execution_id, details}});
            worker.pool.run(std::move(statements), [execution_id](pg::JobResult &&result) {
                if (result.outcome != pg::JobResult::Outcome::ok)
                    log_line(LogLevel::warn, "data_written event not recorded",
                             {{"execution_id", execution_id}, {"error", result.message}});
            });
        });
    }

private:
    WorkerContext &worker_;
    pg::WorkspacePools &pools_;
    std::string workspace_id_;
    std::string execution_id_;
    StoredFirst stored_first_;
};

std::shared_ptr<executor::WorkspaceDatabase> Databases::for_run(const std::string &workspace_id,
                                                                const std::string &execution_id,
                                                                StoredFirst stored_first) {
    // The workspace's tables' columns, kept for this worker's runs of it (a step that finds
    // them out of date looks again; a restore or a new password forgets them, in recheck).
    std::shared_ptr<executor::KeptColumns> &kept = kept_columns_[workspace_id];
    if (!kept) {
        if (kept_columns_.size() > kMaxWorkspacesKeptColumns) {
            kept_columns_.clear();
            return for_run(workspace_id, execution_id, std::move(stored_first));
        }
        kept = std::make_shared<executor::KeptColumns>();
    }
    return std::make_shared<RunDatabase>(worker_, *workspace_pools_, workspace_id, execution_id,
                                         std::move(stored_first), kept);
}

void Databases::connect_workspace(const std::string &workspace_id, std::function<void(pg::WorkspaceTarget)> done) {
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(pg::Statement{"select flowgres.workspace_database_secret($1::uuid)::text", {workspace_id}});
    worker_.pool.run(std::move(statements), [this, done = std::move(done)](pg::JobResult &&result) {
        pg::WorkspaceTarget target;
        if (result.outcome != pg::JobResult::Outcome::ok) {
            auto code = error_code_from_sqlstate(result.sqlstate);
            target.error_code = code ? std::string(error_info(*code).name) : "DB_UNAVAILABLE";
            target.message = code == ErrorCode::WORKSPACE_DATABASE_NOT_FOUND ? "the workspace has no database yet"
                             : code == ErrorCode::STATE_CONFLICT               ? "the workspace database is not ready"
                                                                               : result.message;
            return done(std::move(target));
        }
        try {
            target.conninfo = provisioner::tenant_connection(*worker_.environment.keyring, result.values[1].value_or("{}")).conninfo;
            target.ok = true;
        } catch (const Error &error) {
            target.error_code = std::string(error_info(error.code()).name);
            target.message = error.message();
        }
        done(std::move(target));
    });
}

}  // namespace flowgres::daemon
