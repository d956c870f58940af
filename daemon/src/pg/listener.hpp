// A LISTEN connection on the event loop: one libpq connection outside the pool, subscribed to
// a few channels, reporting each notification's channel and payload. It reconnects after a
// failure and then reports an empty payload on every channel, since notifications sent
// meanwhile were lost: "look again".
#pragma once

#include <libpq-fe.h>
#include <uv.h>

#include <functional>
#include <string>
#include <vector>

namespace flowgres::pg {

class Listener {
public:
    using Notified = std::function<void(const std::string &channel, const std::string &payload)>;
    Listener(uv_loop_t *loop, std::string conninfo, std::vector<std::string> channels, Notified on_notify);
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
    std::vector<std::string> channels_;
    Notified on_notify_;
    PGconn *conn_ = nullptr;
    uv_poll_t *poll_ = nullptr;
    uv_timer_t retry_{};
    enum class State { idle, connecting, subscribing, listening, closed } state_ = State::idle;
    bool lost_ = false;  // a connection was lost: tell the owner to look again once back
    int open_handles_ = 0;
    std::function<void()> closed_;
};

}  // namespace flowgres::pg
