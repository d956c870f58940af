// The execution state machine (README "Lifecycle", seed §53.2) as one table.
// Not for: writing rows; the extension asks this table and raises STATE_CONFLICT on "no".
#pragma once

#include <optional>
#include <string_view>

namespace flowgres {

enum class ExecutionStatus { pending, running, completed, failed, cancelled };

std::optional<ExecutionStatus> parse_execution_status(std::string_view text);
std::string_view to_string(ExecutionStatus status);

// Whether `from` → `to` is allowed:
//   pending → running | cancelled | failed (abandoned before any daemon claimed it)
//   running → completed | failed | cancelled
// Finished executions (completed, failed, cancelled) never move again.
bool execution_transition_allowed(ExecutionStatus from, ExecutionStatus to);
bool is_finished(ExecutionStatus status);

}  // namespace flowgres
