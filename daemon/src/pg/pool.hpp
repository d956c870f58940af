// The asynchronous PostgreSQL pool of one worker, on the worker's event loop: non-blocking
// libpq in pipeline mode, no thread per query. A Job is a list of statements sent as one
// pipeline ending in one Sync: one round trip and one implicit transaction, so a
// `set_config(…, true)` in its first statement holds for the function called in its last
// (PostgREST's shape). Several jobs ride one connection at once, each its own transaction.
// Not for: blocking start-up checks. Workspace databases have a pool each (workspace_pools.hpp).
#pragma once

#include <libpq-fe.h>
#include <uv.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace flowgres::pg {

struct Statement {
    std::string sql;                                 // prepared once per connection, named by the pool
    std::vector<std::optional<std::string>> params;  // text; nullopt binds NULL
};

struct JobResult {
    enum class Outcome { ok, sql_error, unavailable };
    Outcome outcome = Outcome::ok;
    // Per statement: the first column of the first row (nullopt for NULL or no row).
    std::vector<std::optional<std::string>> values;
    // sql_error: the first failing statement's index and PostgreSQL's error fields.
    size_t failed_statement = 0;
    std::string sqlstate;
    std::string message;
    std::string detail;
};

using JobCallback = std::function<void(JobResult &&)>;

struct PoolOptions {
    std::string conninfo;              // a libpq URL or key=value string
    size_t size = 4;                   // connections
    size_t pipeline_depth = 16;        // jobs in flight per connection
    uint64_t queue_timeout_ms = 5000;  // a job waiting longer fails as unavailable
    uint64_t statement_timeout_ms = 30000;
    uint64_t reconnect_min_ms = 100;
    uint64_t reconnect_max_ms = 5000;
    std::string application_name = "flowgresd";
};

struct PoolStats {
    size_t size = 0;       // connections configured
    size_t connected = 0;  // ready to take jobs
    size_t in_use = 0;     // with at least one job in flight
    size_t waiting = 0;    // jobs queued for a connection
};

class Pool {
public:
    Pool(uv_loop_t *loop, PoolOptions options);
    ~Pool();
    Pool(const Pool &) = delete;
    Pool &operator=(const Pool &) = delete;

    void start();
    void run(std::vector<Statement> statements, JobCallback callback);
    // Fails queued jobs, closes every connection; `closed` runs once all handles are closed.
    void close(std::function<void()> closed);
    PoolStats stats() const;

private:
    class Connection;
    struct QueuedJob {
        std::vector<Statement> statements;
        JobCallback callback;
        std::chrono::steady_clock::time_point queued_at;
    };

    void dispatch();
    void flush_pending();
    void expire_queued();
    void connection_closed();

    uv_loop_t *loop_;
    PoolOptions options_;
    std::vector<std::unique_ptr<Connection>> connections_;
    std::deque<QueuedJob> queue_;
    uv_timer_t queue_timer_{};
    uv_prepare_t flush_prepare_{};
    std::vector<Connection *> flush_pending_;
    bool closing_ = false;
    size_t handles_open_ = 0;
    std::function<void()> closed_;
};

}  // namespace flowgres::pg
