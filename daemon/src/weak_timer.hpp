// A one-shot loop timer that reaches its owner weakly: it fires only while the owner lives, and
// closing it (from anywhere, its own callback included) frees it once libuv is done with the
// handle. The executor's runs and the LLM client's calls time out with it.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>

namespace flowgres::daemon {

template <class Owner>
struct WeakTimer {
    uv_timer_t handle;
    std::weak_ptr<Owner> owner;
    std::function<void(Owner &)> fire;

    static WeakTimer *start(uv_loop_t *loop, std::weak_ptr<Owner> owner, uint64_t milliseconds,
                            std::function<void(Owner &)> fire) {
        auto *timer = new WeakTimer{{}, std::move(owner), std::move(fire)};
        uv_timer_init(loop, &timer->handle);
        timer->handle.data = timer;
        uv_timer_start(
            &timer->handle,
            [](uv_timer_t *handle) {
                auto *self = static_cast<WeakTimer *>(handle->data);
                if (auto owner = self->owner.lock()) self->fire(*owner);
            },
            milliseconds, 0);
        return timer;
    }

    // Stops and frees `timer` (null afterwards); a null timer is left alone.
    static void close(WeakTimer *&timer) {
        if (!timer) return;
        uv_timer_stop(&timer->handle);
        uv_close(reinterpret_cast<uv_handle_t *>(&timer->handle),
                 [](uv_handle_t *handle) { delete static_cast<WeakTimer *>(handle->data); });
        timer = nullptr;
    }
};

}  // namespace flowgres::daemon
