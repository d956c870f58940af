// transform: builds an object from its template; every {{path}} keeps its value's type when
// it stands alone.
#include "executor/nodes/nodes.hpp"
#include "flowgres/errors.hpp"

namespace flowgres::executor::nodes {

std::unique_ptr<NodeTask> run_transform(NodeCall &call, NodeDone done) {
    try {
        Json output = render_config(call, "template");
        if (!output) output = render_config(call, "mapping");
        done(NodeOutcome::success(std::move(output)));
    } catch (const Error &error) {
        done(NodeOutcome::failure("NODE_FAILED", error.message()));
    }
    return nullptr;
}

}  // namespace flowgres::executor::nodes
