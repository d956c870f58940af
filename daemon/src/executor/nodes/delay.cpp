// delay: waits on a loop timer (nothing blocks); cancelling stops the timer.
#include "executor/nodes/nodes.hpp"

namespace flowgres::executor::nodes {
namespace {

class DelayTask : public NodeTask {
public:
    DelayTask(uv_loop_t *loop, long long milliseconds, NodeDone done)
        : state_(new State{{}, std::move(done), milliseconds}) {
        uv_timer_init(loop, &state_->timer);
        state_->timer.data = state_;
        uv_timer_start(
            &state_->timer,
            [](uv_timer_t *timer) {
                auto *state = static_cast<State *>(timer->data);
                NodeDone done = std::move(state->done);
                long long waited = state->milliseconds;
                close(state);
                if (done)
                    done(NodeOutcome::success(Json(json_pack("{s:I}", "waited_ms", static_cast<json_int_t>(waited)))));
            },
            static_cast<uint64_t>(milliseconds), 0);
    }
    ~DelayTask() override { cancel(); }
    void cancel() override {
        if (!state_) return;
        state_->done = nullptr;
        if (!uv_is_closing(reinterpret_cast<uv_handle_t *>(&state_->timer))) close(state_);
        state_ = nullptr;
    }

private:
    struct State {
        uv_timer_t timer;
        NodeDone done;
        long long milliseconds;
    };
    static void close(State *state) {
        uv_timer_stop(&state->timer);
        if (!uv_is_closing(reinterpret_cast<uv_handle_t *>(&state->timer)))
            uv_close(reinterpret_cast<uv_handle_t *>(&state->timer),
                     [](uv_handle_t *handle) { delete static_cast<State *>(handle->data); });
    }
    State *state_;
};

}  // namespace

std::unique_ptr<NodeTask> run_delay(NodeCall &call, NodeDone done) {
    const json_t *duration = json_object_get(call.node.config.get(), "duration_ms");
    if (!duration) duration = json_object_get(call.node.config.get(), "duration");
    return std::make_unique<DelayTask>(call.loop, json_integer_value(duration), std::move(done));
}

}  // namespace flowgres::executor::nodes
