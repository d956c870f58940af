// Pool and its connections. A connection is a small state machine:
//   backoff --timer--> connecting --PQconnectPoll ok--> ready --error--> backoff
// Results arrive in pipeline order: one non-NULL result per sent item (Prepare or Execute),
// each followed by a NULL, and one PGRES_PIPELINE_SYNC per job, which completes it.
#include "pool.hpp"

#include <algorithm>

namespace flowgres::pg {

namespace {
using Clock = std::chrono::steady_clock;

JobResult unavailable(const std::string &message) {
    JobResult result;
    result.outcome = JobResult::Outcome::unavailable;
    result.sqlstate = "08006";
    result.message = message;
    return result;
}
}  // namespace

class Pool::Connection {
public:
    Connection(Pool &pool) : pool_(pool) {
        uv_timer_init(pool_.loop_, &retry_timer_);
        retry_timer_.data = this;
        pool_.handles_open_++;
        backoff_ms_ = pool_.options_.reconnect_min_ms;
    }

    bool ready() const { return state_ == State::ready; }
    size_t in_flight() const { return in_flight_.size(); }

    void connect() {
        state_ = State::connecting;
        std::string timeout = "-c statement_timeout=" + std::to_string(pool_.options_.statement_timeout_ms);
        const char *keys[] = {"dbname", "application_name", "options", nullptr};
        const char *values[] = {pool_.options_.conninfo.c_str(), pool_.options_.application_name.c_str(), timeout.c_str(), nullptr};
        // expand_dbname: the URL is parsed; keywords after it override what it says.
        conn_ = PQconnectStartParams(keys, values, 1);
        if (conn_ == nullptr || PQstatus(conn_) == CONNECTION_BAD) {
            fail("could not start a database connection");
            return;
        }
        PQsetnonblocking(conn_, 1);
        watch(PQsocket(conn_), UV_WRITABLE);  // PQconnectStart: poll for writing first
    }

    void send(QueuedJob &&job) {
        // Statements new to this connection are prepared first, behind a Sync of their own:
        // a failure in the job (say, a refused API key) then cannot abort the Prepare and
        // leave later jobs naming a statement that was never made.
        InFlight preparing;
        // A statement the server refuses to prepare (a missing column, a syntax error) then
        // fails to execute as "prepared statement … does not exist": the job is told the
        // Prepare's reason instead.
        auto refused = std::make_shared<JobResult>();
        preparing.callback = [refused](JobResult &&result) {
            if (result.outcome == JobResult::Outcome::sql_error) *refused = std::move(result);
        };
        // One lookup per statement: the names found or made here are the ones executed below.
        std::vector<const std::string *> names(job.statements.size());
        for (size_t i = 0; i < job.statements.size(); i++) {
            const Statement &statement = job.statements[i];
            auto [entry, added] = prepared_.try_emplace(statement.sql);
            names[i] = &entry->second;
            if (!added) continue;
            entry->second = "s" + std::to_string(next_statement_++);
            if (!PQsendPrepare(conn_, entry->second.c_str(), statement.sql.c_str(), 0, nullptr))
                return broken_send(std::move(job));
            preparing.items.push_back(Item{true, i, statement.sql});
        }
        bool any_prepared = !preparing.items.empty();
        if (any_prepared) {
            if (!PQpipelineSync(conn_)) return broken_send(std::move(job));
            preparing.result.values.resize(job.statements.size());
            in_flight_.push_back(std::move(preparing));
        }

        InFlight flight;
        flight.callback = std::move(job.callback);
        if (any_prepared)
            flight.callback = [callback = std::move(flight.callback), refused](JobResult &&result) {
                if (result.outcome == JobResult::Outcome::sql_error && refused->outcome == JobResult::Outcome::sql_error &&
                    result.failed_statement == refused->failed_statement) {
                    result.sqlstate = refused->sqlstate;
                    result.message = refused->message;
                    result.detail = refused->detail;
                }
                callback(std::move(result));
            };
        flight.result.values.resize(job.statements.size());
        for (size_t i = 0; i < job.statements.size(); i++) {
            const Statement &statement = job.statements[i];
            std::vector<const char *> params;
            params.reserve(statement.params.size());
            for (const auto &param : statement.params) params.push_back(param ? param->c_str() : nullptr);
            if (!PQsendQueryPrepared(conn_, names[i]->c_str(), static_cast<int>(params.size()), params.data(), nullptr,
                                     nullptr, 0)) {
                flight.callback(unavailable(PQerrorMessage(conn_)));
                fail(PQerrorMessage(conn_));
                return;
            }
            flight.items.push_back(Item{false, i, {}});
        }
        if (!PQpipelineSync(conn_)) {
            flight.callback(unavailable(PQerrorMessage(conn_)));
            fail(PQerrorMessage(conn_));
            return;
        }
        in_flight_.push_back(std::move(flight));
        // Sent once per loop iteration (Pool::flush_pending): the jobs of every request read
        // in this iteration leave in one write, and the server reads them in one go.
        if (!flush_scheduled_) {
            flush_scheduled_ = true;
            pool_.flush_pending_.push_back(this);
        }
    }

    void flush_if_scheduled() {
        if (!flush_scheduled_) return;
        flush_scheduled_ = false;
        if (state_ == State::ready) flush();
    }

    void shut() {
        state_ = State::closed;
        uv_timer_stop(&retry_timer_);
        fail_in_flight("the server is shutting down");
        stop_watching();
        if (conn_) PQfinish(conn_);
        conn_ = nullptr;
        uv_close(reinterpret_cast<uv_handle_t *>(&retry_timer_),
                 [](uv_handle_t *handle) { static_cast<Connection *>(handle->data)->pool_.connection_closed(); });
    }

private:
    enum class State { backoff, connecting, ready, closed };
    struct Item {
        bool is_prepare;
        size_t statement;
        std::string sql;  // for a Prepare: forgotten again if it fails
    };
    struct InFlight {
        JobCallback callback;
        std::vector<Item> items;
        size_t next_item = 0;
        bool failed = false;
        JobResult result;
    };

    void watch(int fd, int events) {
        if (poll_ && poll_fd_ == fd && poll_events_ == events) return;  // no epoll_ctl for nothing
        if (poll_ && poll_fd_ != fd) stop_watching();
        if (!poll_) {
            poll_ = new uv_poll_t;  // closed and freed in stop_watching's close callback
            uv_poll_init(pool_.loop_, poll_, fd);
            poll_->data = this;
            poll_fd_ = fd;
        }
        uv_poll_start(poll_, events, on_poll);
        poll_events_ = events;
    }

    void stop_watching() {
        if (!poll_) return;
        uv_poll_stop(poll_);
        uv_close(reinterpret_cast<uv_handle_t *>(poll_),
                 [](uv_handle_t *handle) { delete reinterpret_cast<uv_poll_t *>(handle); });
        poll_ = nullptr;
        poll_fd_ = -1;
        poll_events_ = 0;
    }

    static void on_poll(uv_poll_t *handle, int status, int events) {
        auto *self = static_cast<Connection *>(handle->data);
        if (status < 0) {
            self->fail("database socket error");
            return;
        }
        if (self->state_ == State::connecting) {
            self->continue_connect();
            return;
        }
        if (events & UV_READABLE) self->read();
        if (self->state_ == State::ready && (events & UV_WRITABLE)) self->flush();
    }

    void continue_connect() {
        switch (PQconnectPoll(conn_)) {
            case PGRES_POLLING_READING:
                watch(PQsocket(conn_), UV_READABLE);
                break;
            case PGRES_POLLING_WRITING:
                watch(PQsocket(conn_), UV_WRITABLE);
                break;
            case PGRES_POLLING_OK:
                if (!PQenterPipelineMode(conn_)) {
                    fail("could not enter pipeline mode");
                    return;
                }
                state_ = State::ready;
                backoff_ms_ = pool_.options_.reconnect_min_ms;
                watch(PQsocket(conn_), UV_READABLE);
                pool_.dispatch();
                break;
            default:
                fail(PQerrorMessage(conn_));
                break;
        }
    }

    void flush() {
        int pending = PQflush(conn_);
        if (pending < 0) {
            fail("could not send to the database");
            return;
        }
        watch(PQsocket(conn_), pending == 1 ? (UV_READABLE | UV_WRITABLE) : UV_READABLE);
    }

    void read() {
        if (!PQconsumeInput(conn_)) {
            fail(PQerrorMessage(conn_));
            return;
        }
        while (!in_flight_.empty() && !PQisBusy(conn_)) {
            PGresult *result = PQgetResult(conn_);
            if (result == nullptr) continue;  // the end of one item's results
            ExecStatusType status = PQresultStatus(result);
            if (status == PGRES_PIPELINE_SYNC) {
                PQclear(result);
                InFlight done = std::move(in_flight_.front());
                in_flight_.pop_front();
                if (done.failed) done.result.outcome = JobResult::Outcome::sql_error;
                done.callback(std::move(done.result));
                if (state_ != State::ready) return;  // the callback may have shut us
                pool_.dispatch();
                continue;
            }
            record(in_flight_.front(), result, status);
            PQclear(result);
        }
        if (PQstatus(conn_) == CONNECTION_BAD) fail(PQerrorMessage(conn_));
    }

    void record(InFlight &flight, PGresult *result, ExecStatusType status) {
        if (flight.next_item >= flight.items.size()) return;
        const Item &item = flight.items[flight.next_item++];
        if (status == PGRES_PIPELINE_ABORTED) return;
        if (status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR || status == PGRES_BAD_RESPONSE) {
            if (item.is_prepare) prepared_.erase(item.sql);
            if (!flight.failed) {
                flight.failed = true;
                auto field = [&](int code) {
                    const char *value = PQresultErrorField(result, code);
                    return std::string(value ? value : "");
                };
                flight.result.failed_statement = item.statement;
                flight.result.sqlstate = field(PG_DIAG_SQLSTATE);
                flight.result.message = field(PG_DIAG_MESSAGE_PRIMARY);
                flight.result.detail = field(PG_DIAG_MESSAGE_DETAIL);
            }
            return;
        }
        if (!item.is_prepare && status == PGRES_TUPLES_OK && PQntuples(result) > 0 && PQnfields(result) > 0 &&
            !PQgetisnull(result, 0, 0))
            flight.result.values[item.statement] = std::string(PQgetvalue(result, 0, 0), PQgetlength(result, 0, 0));
    }

    void broken_send(QueuedJob &&job) {
        std::string message = PQerrorMessage(conn_);
        job.callback(unavailable(message));
        fail(message);
    }

    void fail_in_flight(const std::string &message) {
        auto failed = std::move(in_flight_);
        in_flight_.clear();
        for (auto &flight : failed) flight.callback(unavailable(message));
    }

    // The connection is lost or never came up: fail what rode on it, retry with backoff.
    void fail(const std::string &message) {
        if (state_ == State::closed) return;
        state_ = State::backoff;
        stop_watching();
        if (conn_) PQfinish(conn_);
        conn_ = nullptr;
        prepared_.clear();
        next_statement_ = 0;
        fail_in_flight("database connection lost: " + message);
        uv_timer_start(&retry_timer_, on_retry, backoff_ms_, 0);
        backoff_ms_ = std::min(backoff_ms_ * 2, pool_.options_.reconnect_max_ms);
    }

    static void on_retry(uv_timer_t *timer) {
        auto *self = static_cast<Connection *>(timer->data);
        if (self->state_ == State::backoff) self->connect();
    }

    Pool &pool_;
    State state_ = State::backoff;
    PGconn *conn_ = nullptr;
    uv_poll_t *poll_ = nullptr;
    int poll_fd_ = -1;
    int poll_events_ = 0;
    bool flush_scheduled_ = false;
    uv_timer_t retry_timer_{};
    uint64_t backoff_ms_;
    std::unordered_map<std::string, std::string> prepared_;
    uint64_t next_statement_ = 0;
    std::deque<InFlight> in_flight_;
};

Pool::Pool(uv_loop_t *loop, PoolOptions options) : loop_(loop), options_(std::move(options)) {}

Pool::~Pool() = default;

void Pool::start() {
    uv_prepare_init(loop_, &flush_prepare_);
    flush_prepare_.data = this;
    handles_open_++;
    uv_prepare_start(&flush_prepare_,
                     [](uv_prepare_t *prepare) { static_cast<Pool *>(prepare->data)->flush_pending(); });
    uv_timer_init(loop_, &queue_timer_);
    queue_timer_.data = this;
    handles_open_++;
    uv_timer_start(
        &queue_timer_, [](uv_timer_t *timer) { static_cast<Pool *>(timer->data)->expire_queued(); }, 50, 50);
    for (size_t i = 0; i < options_.size; i++) {
        connections_.push_back(std::make_unique<Connection>(*this));
        connections_.back()->connect();
    }
}

void Pool::run(std::vector<Statement> statements, JobCallback callback) {
    if (closing_) {
        callback(unavailable("the server is shutting down"));
        return;
    }
    queue_.push_back(QueuedJob{std::move(statements), std::move(callback), Clock::now()});
    dispatch();
}

void Pool::flush_pending() {
    auto pending = std::move(flush_pending_);
    flush_pending_.clear();
    for (Connection *connection : pending) connection->flush_if_scheduled();
}

void Pool::dispatch() {
    while (!queue_.empty() && !closing_) {
        Connection *best = nullptr;
        for (auto &connection : connections_)
            if (connection->ready() && connection->in_flight() < options_.pipeline_depth &&
                (!best || connection->in_flight() < best->in_flight()))
                best = connection.get();
        if (!best) return;
        QueuedJob job = std::move(queue_.front());
        queue_.pop_front();
        best->send(std::move(job));
    }
}

void Pool::expire_queued() {
    auto deadline = Clock::now() - std::chrono::milliseconds(options_.queue_timeout_ms);
    while (!queue_.empty() && queue_.front().queued_at <= deadline) {
        QueuedJob job = std::move(queue_.front());
        queue_.pop_front();
        job.callback(unavailable("no database connection became free within " +
                                 std::to_string(options_.queue_timeout_ms) + " ms"));
    }
}

void Pool::close(std::function<void()> closed) {
    closing_ = true;
    closed_ = std::move(closed);
    auto queued = std::move(queue_);
    queue_.clear();
    for (auto &job : queued) job.callback(unavailable("the server is shutting down"));
    uv_timer_stop(&queue_timer_);
    uv_close(reinterpret_cast<uv_handle_t *>(&queue_timer_),
             [](uv_handle_t *handle) { static_cast<Pool *>(handle->data)->connection_closed(); });
    flush_pending();
    uv_prepare_stop(&flush_prepare_);
    uv_close(reinterpret_cast<uv_handle_t *>(&flush_prepare_),
             [](uv_handle_t *handle) { static_cast<Pool *>(handle->data)->connection_closed(); });
    for (auto &connection : connections_) connection->shut();
}

void Pool::connection_closed() {
    if (--handles_open_ == 0 && closed_) {
        auto closed = std::move(closed_);
        closed_ = nullptr;
        closed();
    }
}

PoolStats Pool::stats() const {
    PoolStats stats;
    stats.size = connections_.size();
    for (const auto &connection : connections_) {
        if (connection->ready()) stats.connected++;
        if (connection->in_flight() > 0) stats.in_use++;
    }
    stats.waiting = queue_.size();
    return stats;
}

}  // namespace flowgres::pg
