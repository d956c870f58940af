// Per-workspace pools under per-workspace and global limits (workspace_pools.hpp).
#include "pg/workspace_pools.hpp"

#include <algorithm>

#include "flowgres/crypto.hpp"

namespace flowgres::pg {
namespace {

JobResult unavailable(const std::string &message) {
    JobResult result;
    result.outcome = JobResult::Outcome::unavailable;
    result.message = message;
    return result;
}

}  // namespace

WorkspacePools::WorkspacePools(uv_loop_t *loop, WorkspacePoolLimits limits, WorkspaceConnector connector)
    : loop_(loop), limits_(limits), connector_(std::move(connector)) {}

WorkspacePools::~WorkspacePools() = default;

void WorkspacePools::start() {
    uv_timer_init(loop_, &sweep_timer_);
    sweep_timer_.data = this;
    uint64_t every = std::max<uint64_t>(100, std::min(limits_.idle_timeout_ms, limits_.lifetime_ms) / 4);
    uv_timer_start(&sweep_timer_, [](uv_timer_t *timer) { static_cast<WorkspacePools *>(timer->data)->sweep(); }, every, every);
}

void WorkspacePools::run(const std::string &workspace_id, std::vector<Statement> statements, JobCallback callback) {
    if (stopping_) return callback(unavailable("the server is shutting down"));
    auto found = pools_.find(workspace_id);
    if (found == pools_.end()) {
        // Every pool may open max_open connections: the cap counts what they may hold.
        size_t open = pools_.size() * limits_.max_open;
        if (open + limits_.max_open > limits_.global_cap && !make_room())
            return callback(unavailable("every workspace database connection of this worker is in use"));
        Entry &entry = pools_[workspace_id];
        entry.generation = next_generation_++;
        entry.created = entry.last_used = std::chrono::steady_clock::now();
        entry.waiting.emplace_back(std::move(statements), std::move(callback));
        uint64_t generation = entry.generation;
        connector_(workspace_id, [this, workspace_id, generation](WorkspaceTarget target) {
            connected(workspace_id, generation, std::move(target));
        });
        return;
    }
    Entry &entry = found->second;
    if (!entry.pool) {
        entry.waiting.emplace_back(std::move(statements), std::move(callback));
        return;
    }
    submit(workspace_id, entry, std::move(statements), std::move(callback));
}

void WorkspacePools::connected(const std::string &workspace_id, uint64_t generation, WorkspaceTarget target) {
    auto found = pools_.find(workspace_id);
    if (found == pools_.end() || found->second.generation != generation) return;  // closed meanwhile
    Entry &entry = found->second;
    auto waiting = std::move(entry.waiting);
    entry.waiting.clear();
    if (!target.ok || stopping_) {
        pools_.erase(found);  // the next job asks again
        for (auto &[statements, callback] : waiting) {
            JobResult result = unavailable(target.message);
            result.sqlstate = target.error_code;  // a flowgres code, for the caller's message
            callback(std::move(result));
        }
        return;
    }
    entry.conninfo_digest = sha256_hex(target.conninfo);
    PoolOptions options;
    options.conninfo = std::move(target.conninfo);
    options.size = limits_.max_open;
    options.pipeline_depth = 4;
    options.queue_timeout_ms = limits_.queue_timeout_ms;
    options.statement_timeout_ms = limits_.statement_timeout_ms;
    options.application_name = "flowgresd-workspace";
    entry.pool = std::make_unique<Pool>(loop_, std::move(options));
    entry.pool->start();
    for (auto &[statements, callback] : waiting) submit(workspace_id, entry, std::move(statements), std::move(callback));
}

void WorkspacePools::submit(const std::string &workspace_id, Entry &entry, std::vector<Statement> statements, JobCallback callback) {
    entry.last_used = std::chrono::steady_clock::now();
    entry.in_flight++;
    uint64_t generation = entry.generation;
    entry.pool->run(std::move(statements), [this, workspace_id, generation, callback = std::move(callback)](JobResult &&result) {
        auto found = pools_.find(workspace_id);
        if (found != pools_.end() && found->second.generation == generation && found->second.in_flight > 0) found->second.in_flight--;
        callback(std::move(result));
    });
}

// Closes the least recently used pool with nothing in flight; false when every pool is busy.
bool WorkspacePools::make_room() {
    auto victim = pools_.end();
    for (auto it = pools_.begin(); it != pools_.end(); ++it)
        if (it->second.pool && it->second.in_flight == 0 && it->second.waiting.empty() &&
            (victim == pools_.end() || it->second.last_used < victim->second.last_used))
            victim = it;
    if (victim == pools_.end()) return false;
    retire(std::move(victim->second.pool));
    pools_.erase(victim);
    return true;
}

void WorkspacePools::close_workspace(const std::string &workspace_id) {
    auto found = pools_.find(workspace_id);
    if (found == pools_.end()) return;
    auto waiting = std::move(found->second.waiting);
    if (found->second.pool) retire(std::move(found->second.pool));
    pools_.erase(found);
    for (auto &[statements, callback] : waiting) callback(unavailable("the workspace database's connections were reset"));
}

void WorkspacePools::recheck_workspace(const std::string &workspace_id) {
    auto found = pools_.find(workspace_id);
    if (found == pools_.end() || !found->second.pool || found->second.rechecking) return;
    found->second.rechecking = true;  // a burst of notifications costs one look
    uint64_t generation = found->second.generation;
    connector_(workspace_id, [this, workspace_id, generation](WorkspaceTarget target) {
        auto entry = pools_.find(workspace_id);
        if (entry == pools_.end() || entry->second.generation != generation) return;  // gone meanwhile
        entry->second.rechecking = false;
        if (target.ok && sha256_hex(target.conninfo) == entry->second.conninfo_digest) return;  // nothing changed
        close_workspace(workspace_id);
    });
}

void WorkspacePools::retire(std::unique_ptr<Pool> pool) {
    auto retiring = std::make_unique<Retiring>();
    Retiring *entry = retiring.get();
    entry->pool = std::move(pool);
    closing_.push_back(std::move(retiring));
    entry->pool->close([entry] { entry->closed = true; });
}

void WorkspacePools::forget_closed() {
    closing_.erase(std::remove_if(closing_.begin(), closing_.end(), [](const auto &entry) { return entry->closed; }), closing_.end());
}

void WorkspacePools::sweep() {
    forget_closed();
    auto now = std::chrono::steady_clock::now();
    for (auto it = pools_.begin(); it != pools_.end();) {
        Entry &entry = it->second;
        bool idle = entry.pool && entry.in_flight == 0 && entry.waiting.empty();
        bool unused = now - entry.last_used > std::chrono::milliseconds(limits_.idle_timeout_ms);
        bool old = now - entry.created > std::chrono::milliseconds(limits_.lifetime_ms);
        if (idle && (unused || old)) {
            retire(std::move(entry.pool));
            it = pools_.erase(it);
        } else {
            ++it;
        }
    }
}

void WorkspacePools::close(std::function<void()> closed) {
    stopping_ = true;
    closed_ = std::move(closed);
    uv_timer_stop(&sweep_timer_);
    uv_close(reinterpret_cast<uv_handle_t *>(&sweep_timer_), nullptr);
    std::vector<std::string> ids;
    for (const auto &[id, entry] : pools_) ids.push_back(id);
    for (const auto &id : ids) close_workspace(id);
    // Retiring pools finish through their own close callbacks: look every 10 ms until all
    // have, then say so.
    uv_timer_init(loop_, &close_timer_);
    close_timer_.data = this;
    uv_timer_start(
        &close_timer_,
        [](uv_timer_t *timer) {
            auto *self = static_cast<WorkspacePools *>(timer->data);
            self->forget_closed();
            if (!self->closing_.empty()) return;
            uv_timer_stop(timer);
            uv_close(reinterpret_cast<uv_handle_t *>(timer), [](uv_handle_t *handle) {
                auto *pools = static_cast<WorkspacePools *>(handle->data);
                if (auto closed = std::move(pools->closed_)) closed();
            });
        },
        0, 10);
}

WorkspacePoolStats WorkspacePools::stats() const {
    WorkspacePoolStats stats;
    for (const auto &[id, entry] : pools_)
        if (entry.pool) {
            stats.pools++;
            stats.connections += entry.pool->stats().connected;
        }
    return stats;
}

}  // namespace flowgres::pg
