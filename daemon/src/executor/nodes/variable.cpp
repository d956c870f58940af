// variable: sets {{vars.<name>}} for the nodes downstream; the node log records whether it
// set a new variable or updated one.
#include "executor/nodes/nodes.hpp"
#include "flowgres/errors.hpp"

namespace flowgres::executor::nodes {

std::unique_ptr<NodeTask> run_variable(NodeCall &call, NodeDone done) {
    try {
        const char *name = json_string_value(json_object_get(call.node.config.get(), "name"));
        Json value = render_config(call, "value");
        const char *op = json_object_get(call.variables, name) ? "update" : "set";
        json_object_set(call.variables, name, value ? value.get() : json_null());
        NodeOutcome outcome = NodeOutcome::success(
            Json(json_pack("{s:s, s:O}", "name", name, "value", value ? value.get() : json_null())));
        outcome.variables.reset(
            json_pack("[{s:s, s:s, s:O}]", "op", op, "name", name, "value", value ? value.get() : json_null()));
        done(std::move(outcome));
    } catch (const Error &error) {
        done(NodeOutcome::failure("NODE_FAILED", error.message()));
    }
    return nullptr;
}

}  // namespace flowgres::executor::nodes
