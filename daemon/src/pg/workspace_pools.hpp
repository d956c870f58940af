// One small connection pool per workspace database, per worker, on the worker's loop (README "Workspace databases"
// §7, seed §34.3). Each workspace gets at most `max_open` connections, so one busy workspace
// queues behind its own limit and never takes another's; all of a worker's workspace pools
// together stay under `global_cap`, closing the least recently used idle pool to make room.
// A pool unused for `idle_timeout_ms` is closed, one older than `lifetime_ms` is replaced
// when next idle (its prepared statements go with it), and close_workspace() drops a pool at
// once (its password rotated, its database restored). Not for: the control-plane pool.
#pragma once

#include <uv.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pg/pool.hpp"

namespace flowgres::pg {

struct WorkspacePoolLimits {
    size_t max_open = 2;
    uint64_t idle_timeout_ms = 60000;
    uint64_t lifetime_ms = 1800000;
    size_t global_cap = 32;
    uint64_t statement_timeout_ms = 5000;
    uint64_t queue_timeout_ms = 5000;
};

// How to reach a workspace's database: a libpq string with the password, or a failure
// (an error code of core/errors and a message).
struct WorkspaceTarget {
    bool ok = false;
    std::string conninfo;
    std::string error_code;
    std::string message;
};
using WorkspaceConnector = std::function<void(const std::string &workspace_id, std::function<void(WorkspaceTarget)> done)>;

struct WorkspacePoolStats {
    size_t pools = 0;
    size_t connections = 0;
};

class WorkspacePools {
public:
    WorkspacePools(uv_loop_t *loop, WorkspacePoolLimits limits, WorkspaceConnector connector);
    ~WorkspacePools();
    WorkspacePools(const WorkspacePools &) = delete;
    WorkspacePools &operator=(const WorkspacePools &) = delete;

    void start();
    // One job on the workspace's pool, made (connector first) when there is none. A failure
    // to reach it answers the job as unavailable with the connector's message.
    void run(const std::string &workspace_id, std::vector<Statement> statements, JobCallback callback);
    void close_workspace(const std::string &workspace_id);
    // A notification that the workspace's password or database changed: only a hint (any role
    // that can connect may send one), so the connector is asked again and the pool dropped only
    // when what it connects with is no longer what the control plane says.
    void recheck_workspace(const std::string &workspace_id);
    void close(std::function<void()> closed);
    WorkspacePoolStats stats() const;

private:
    struct Entry {
        std::unique_ptr<Pool> pool;  // null while the connector works
        std::vector<std::pair<std::vector<Statement>, JobCallback>> waiting;
        std::chrono::steady_clock::time_point created;
        std::chrono::steady_clock::time_point last_used;
        size_t in_flight = 0;
        uint64_t generation = 0;
        std::string conninfo_digest;  // of what the pool connects with
        bool rechecking = false;
    };
    void connected(const std::string &workspace_id, uint64_t generation, WorkspaceTarget target);
    void submit(const std::string &workspace_id, Entry &entry, std::vector<Statement> statements, JobCallback callback);
    bool make_room();
    void retire(std::unique_ptr<Pool> pool);
    void sweep();
    void forget_closed();

    uv_loop_t *loop_;
    WorkspacePoolLimits limits_;
    WorkspaceConnector connector_;
    std::map<std::string, Entry> pools_;
    // Pools closing: kept until their close callback has run, then dropped by the next sweep
    // (never from inside that callback, which runs on the pool's own stack).
    struct Retiring {
        std::unique_ptr<Pool> pool;
        bool closed = false;
    };
    std::vector<std::unique_ptr<Retiring>> closing_;
    uv_timer_t sweep_timer_{};
    uv_timer_t close_timer_{};
    std::function<void()> closed_;
    uint64_t next_generation_ = 1;
    bool stopping_ = false;
};

}  // namespace flowgres::pg
