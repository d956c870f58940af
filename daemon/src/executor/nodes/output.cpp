// output: its rendered `value`, or without one what flows into it (the one upstream output,
// or all of them in an array).
#include "executor/nodes/nodes.hpp"
#include "flowgres/errors.hpp"

namespace flowgres::executor::nodes {

std::unique_ptr<NodeTask> run_output(NodeCall &call, NodeDone done) {
    try {
        Json value = render_config(call, "value");
        if (!value) {
            if (call.upstream_outputs.size() == 1) {
                value.reset(call.upstream_outputs[0] ? json_deep_copy(call.upstream_outputs[0]) : json_null());
            } else {
                value.reset(json_array());
                for (const json_t *output : call.upstream_outputs)
                    json_array_append_new(value.get(), output ? json_deep_copy(output) : json_null());
            }
        }
        done(NodeOutcome::success(std::move(value)));
    } catch (const Error &error) {
        done(NodeOutcome::failure("NODE_FAILED", error.message()));
    }
    return nullptr;
}

}  // namespace flowgres::executor::nodes
