// Threads for blocking work of the daemon's own (the provisioner's libpq sessions, pg_dump and
// pg_restore), apart from libuv's thread pool, which resolves the host names of every http step
// and CAPTCHA check: a long dump never holds a DNS lookup. Bounded: a full queue refuses.
// Not for: anything that touches the loop or a concern (Databases, …) from the worker thread.
#pragma once

#include <uv.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace flowgres::daemon {

class BlockingPool {
public:
    BlockingPool(uv_loop_t *loop, size_t threads, size_t max_queued);
    ~BlockingPool();
    BlockingPool(const BlockingPool &) = delete;
    BlockingPool &operator=(const BlockingPool &) = delete;

    // `work` runs on a pool thread, then `done` on the loop (cancelled: stopped before it ran).
    // False, and nothing runs, when max_queued tasks already wait or the pool is stopping.
    bool submit(std::function<void()> work, std::function<void(bool cancelled)> done);
    // Cancels what waits, lets what runs finish, then calls `stopped` on the loop.
    void stop(std::function<void()> stopped);
    size_t waiting() const;

private:
    struct Task {
        std::function<void()> work;
        std::function<void(bool cancelled)> done;
        bool cancelled = false;
    };
    void run_thread();
    static void on_finished(uv_async_t *handle);
    void deliver();

    uv_loop_t *loop_;
    size_t max_queued_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Task> queued_;    // waiting for a thread
    std::deque<Task> finished_;  // done, for the loop
    size_t running_ = 0;
    bool stopping_ = false;
    bool closed_ = false;
    std::function<void()> stopped_;
    uv_async_t async_{};
    std::vector<std::thread> threads_;
};

}  // namespace flowgres::daemon
