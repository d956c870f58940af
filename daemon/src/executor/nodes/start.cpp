// start: its output is the run's inputs, so {{start.name}} and {{name}} agree.
#include "executor/nodes/nodes.hpp"

namespace flowgres::executor::nodes {

Json render_config(const NodeCall &call, const char *key) {
    const json_t *value = json_object_get(call.node.config.get(), key);
    if (!value) return Json();
    return Json(render_json_templates(value, call.roots));
}

std::unique_ptr<NodeTask> run_start(NodeCall &call, NodeDone done) {
    const json_t *inputs = call.roots("inputs");
    done(NodeOutcome::success(Json(inputs ? json_deep_copy(inputs) : new_json_object())));
    return nullptr;
}

}  // namespace flowgres::executor::nodes
