// input: one named input of the run (null when the visitor left it out).
#include "executor/nodes/nodes.hpp"

namespace flowgres::executor::nodes {

std::unique_ptr<NodeTask> run_input(NodeCall &call, NodeDone done) {
    const char *name = json_string_value(json_object_get(call.node.config.get(), "name"));
    const json_t *value = name ? json_object_get(call.roots("inputs"), name) : nullptr;
    done(NodeOutcome::success(Json(value ? json_deep_copy(value) : json_null())));
    return nullptr;
}

}  // namespace flowgres::executor::nodes
