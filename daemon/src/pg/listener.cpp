// The LISTEN connection's states: connecting → subscribing (LISTEN sent) → listening.
#include "pg/listener.hpp"

namespace flowgres::pg {

Listener::Listener(uv_loop_t *loop, std::string conninfo, std::vector<std::string> channels, Notified on_notify)
    : loop_(loop), conninfo_(std::move(conninfo)), channels_(std::move(channels)), on_notify_(std::move(on_notify)) {}

Listener::~Listener() {
    if (conn_) PQfinish(conn_);
}

void Listener::start() {
    uv_timer_init(loop_, &retry_);
    retry_.data = this;
    open_handles_++;
    connect();
}

void Listener::watch(int events) {
    if (!poll_) {
        poll_ = new uv_poll_t;
        uv_poll_init(loop_, poll_, PQsocket(conn_));
        poll_->data = this;
        open_handles_++;
    }
    uv_poll_start(poll_, events, on_poll);
}

void Listener::stop_watching() {
    if (!poll_) return;
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t *>(poll_), [](uv_handle_t *handle) {
        auto *self = static_cast<Listener *>(handle->data);
        delete reinterpret_cast<uv_poll_t *>(handle);
        if (--self->open_handles_ == 0 && self->closed_) self->closed_();
    });
    poll_ = nullptr;
}

void Listener::connect() {
    state_ = State::connecting;
    const char *keys[] = {"dbname", "application_name", nullptr};
    const char *values[] = {conninfo_.c_str(), "flowgresd listener", nullptr};
    conn_ = PQconnectStartParams(keys, values, 1);
    if (!conn_ || PQstatus(conn_) == CONNECTION_BAD) return fail();
    PQsetnonblocking(conn_, 1);
    watch(UV_WRITABLE);
}

void Listener::fail() {
    if (state_ == State::closed) return;
    stop_watching();
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    lost_ = true;
    state_ = State::idle;
    uv_timer_start(
        &retry_, [](uv_timer_t *timer) { static_cast<Listener *>(timer->data)->connect(); }, 1000, 0);
}

void Listener::on_poll(uv_poll_t *handle, int status, int) {
    auto *self = static_cast<Listener *>(handle->data);
    if (status < 0) return self->fail();
    if (self->state_ == State::connecting) {
        switch (PQconnectPoll(self->conn_)) {
            case PGRES_POLLING_READING:
                self->watch(UV_READABLE);
                return;
            case PGRES_POLLING_WRITING:
                self->watch(UV_WRITABLE);
                return;
            case PGRES_POLLING_OK: {
                // The channel names are ours (constants), quoted anyway. One query, a LISTEN each.
                std::string sql;
                for (const auto &channel : self->channels_) {
                    char *quoted = PQescapeIdentifier(self->conn_, channel.c_str(), channel.size());
                    sql += std::string("LISTEN ") + (quoted ? quoted : "x") + ";";
                    PQfreemem(quoted);
                }
                if (!PQsendQuery(self->conn_, sql.c_str())) return self->fail();
                PQflush(self->conn_);
                self->state_ = State::subscribing;
                self->watch(UV_READABLE);
                return;
            }
            default:
                return self->fail();
        }
    }
    if (!PQconsumeInput(self->conn_)) return self->fail();
    if (self->state_ == State::subscribing) {
        while (!PQisBusy(self->conn_)) {
            PGresult *result = PQgetResult(self->conn_);
            if (!result) {
                self->state_ = State::listening;
                if (self->lost_) {
                    self->lost_ = false;
                    // Back after a loss: what was announced meanwhile is unknown.
                    for (const auto &channel : self->channels_) {
                        self->on_notify_(channel, "");
                        if (self->state_ == State::closed) return;
                    }
                }
                break;
            }
            bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
            PQclear(result);
            if (!ok) return self->fail();
        }
    }
    while (PGnotify *notify = PQnotifies(self->conn_)) {
        std::string channel = notify->relname ? notify->relname : "";
        std::string payload = notify->extra ? notify->extra : "";
        PQfreemem(notify);
        self->on_notify_(channel, payload);
        if (self->state_ == State::closed) return;
    }
    if (PQstatus(self->conn_) == CONNECTION_BAD) self->fail();
}

void Listener::close(std::function<void()> closed) {
    state_ = State::closed;
    closed_ = std::move(closed);
    uv_timer_stop(&retry_);
    stop_watching();
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    uv_close(reinterpret_cast<uv_handle_t *>(&retry_), [](uv_handle_t *handle) {
        auto *self = static_cast<Listener *>(handle->data);
        if (--self->open_handles_ == 0 && self->closed_) self->closed_();
    });
}

}  // namespace flowgres::pg
