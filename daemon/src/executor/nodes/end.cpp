// end: closes a path; outputs nothing.
#include "executor/nodes/nodes.hpp"

namespace flowgres::executor::nodes {

std::unique_ptr<NodeTask> run_end(NodeCall &, NodeDone done) {
    done(NodeOutcome::success(Json(json_null())));
    return nullptr;
}

}  // namespace flowgres::executor::nodes
