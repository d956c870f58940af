// The built-in node runners, one file each. Each renders its config's templates against the
// run's values and reports one NodeOutcome.
#pragma once

#include "executor/engine.hpp"

namespace flowgres::executor::nodes {

std::unique_ptr<NodeTask> run_start(NodeCall &call, NodeDone done);
std::unique_ptr<NodeTask> run_input(NodeCall &call, NodeDone done);
std::unique_ptr<NodeTask> run_transform(NodeCall &call, NodeDone done);
std::unique_ptr<NodeTask> run_condition(NodeCall &call, NodeDone done);
std::unique_ptr<NodeTask> run_variable(NodeCall &call, NodeDone done);
std::unique_ptr<NodeTask> run_http(NodeCall &call, NodeDone done);
std::unique_ptr<NodeTask> run_delay(NodeCall &call, NodeDone done);
std::unique_ptr<NodeTask> run_output(NodeCall &call, NodeDone done);
std::unique_ptr<NodeTask> run_end(NodeCall &call, NodeDone done);
std::unique_ptr<NodeTask> run_database_step(NodeCall &call, NodeDone done);
std::unique_ptr<NodeTask> run_llm(NodeCall &call, NodeDone done);

// Renders a config value (json_value context); a template naming nothing becomes a failed
// outcome through the exception's message.
Json render_config(const NodeCall &call, const char *key);

}  // namespace flowgres::executor::nodes
