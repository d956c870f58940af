// A LISTEN connection on the event loop: one libpq connection outside the pool, subscribed to
// one channel, reporting each notification's payload. It reconnects after a failure and then
// reports an empty payload, since notifications sent meanwhile were lost: "look again".
#pragma once

#include <libpq-fe.h>
#include <uv.h>

#include <functional>
#include <string>

namespace flowgres::pg {

class Listener {
public:
    Listener(uv_loop_t *loop, std::string conninfo, std::string channel,
             std::function<void(const std::string &)> on_notify);
    ~Listener();
    Listener(const Listener &) = delete;
    Listener &operator=(const Listener &) = delete;

    void start();
    // Closes the connection and the loop handles; `closed` runs once they are gone.
    void close(std::function<void()> closed);

private:
    void connect();
    void fail();
    void watch(int events);
    void stop_watching();
    static void on_poll(uv_poll_t *handle, int status, int events);

    uv_loop_t *loop_;
    std::string conninfo_;
    std::string channel_;
    std::function<void(const std::string &)> on_notify_;
    PGconn *conn_ = nullptr;
    uv_poll_t *poll_ = nullptr;
    uv_timer_t retry_{};
    enum class State { idle, connecting, subscribing, listening, closed } state_ = State::idle;
    bool lost_ = false;  // a connection was lost: tell the owner to look again once back
    int open_handles_ = 0;
    std::function<void()> closed_;
};

}  // namespace flowgres::pg
