// Workspace databases as one worker sees them: the provisioner's routes (databases.cpp), run
// on threads of their own because they block; worker 0's sweeps (scheduled backups, expired
// app roles); and this worker's pools of the workspaces' databases, which database steps use
// (run_database.cpp).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "blocking_pool.hpp"
#include "executor/engine.hpp"
#include "flowgres/provisioner.hpp"
#include "pg/workspace_pools.hpp"
#include "worker_context.hpp"

namespace flowgres::daemon {

class Databases {
public:
    explicit Databases(WorkerContext &worker);
    ~Databases();

    // The pools' idle sweep and, on worker 0, the backup and expiry sweeps' timers.
    void start();
    // Work waiting is cancelled; what runs finishes (its claim's lease covers it). Then `done`.
    void stop(std::function<void()> done);

    // POST …/database and its actions, the app-role routes, the schema-change submit and apply
    // routes: the route's SQL arguments name what to do.
    void run_operation(std::shared_ptr<Call> call);
    // NOTIFY flowgres_workspace_databases: a rotated password or a restore drops this worker's
    // pool of that workspace's database.
    void recheck(const std::string &workspace_id);
    // What a run's database steps see: this worker's pool of the workspace's database.
    // `stored_first(then)` calls `then` once the run's row exists (a run admitted without it is
    // stored first): its data_written events name it.
    using StoredFirst = std::function<void(std::function<void()> then)>;
    std::shared_ptr<executor::WorkspaceDatabase> for_run(const std::string &workspace_id,
                                                         const std::string &execution_id, StoredFirst stored_first);

private:
    struct Work;
    class RunDatabase;
    // A background sweep: the ids a query answers, worked through one at a time.
    struct Sweep {
        bool running = false;
        std::deque<std::string> pending;
    };

    void queue(std::unique_ptr<Work> work);
    void done(std::unique_ptr<Work> work, int status);
    static void carry_out(Work *work);  // on a thread of database_work_pool_
    provisioner::Options provisioner_options() const;
    std::unique_ptr<Work> operator_work();
    void start_sweep(Sweep &sweep, pg::Statement query, void (Databases::*next)());
    std::optional<std::string> next_in_sweep(Sweep &sweep);
    void back_up_due_databases();
    void back_up_next();
    void revoke_expired_roles();
    void revoke_next_expired();
    // How a pool reaches a workspace's database: its sealed password, opened with the keyring.
    void connect_workspace(const std::string &workspace_id, std::function<void(pg::WorkspaceTarget)> done);

    static constexpr size_t kMaxWorkspacesKeptColumns = 4096;  // past it, all are forgotten at once

    WorkerContext &worker_;
    std::unique_ptr<pg::WorkspacePools> workspace_pools_;
    // By workspace: its tables' columns as this worker's runs last looked them up.
    std::map<std::string, std::shared_ptr<executor::KeptColumns>> kept_columns_;
    std::unique_ptr<BlockingPool> work_pool_;  // the provisioner's, apart from libuv's (DNS)
    Sweep backup_sweep_;
    Sweep expiry_sweep_;
    uv_timer_t backup_timer_{};
    uv_timer_t expiry_timer_{};
    bool started_ = false;
};

}  // namespace flowgres::daemon
