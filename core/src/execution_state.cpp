// The execution transition table.
#include "flowgres/execution_state.hpp"

namespace flowgres {

std::optional<ExecutionStatus> parse_execution_status(std::string_view text) {
    if (text == "pending") return ExecutionStatus::pending;
    if (text == "running") return ExecutionStatus::running;
    if (text == "completed") return ExecutionStatus::completed;
    if (text == "failed") return ExecutionStatus::failed;
    if (text == "cancelled") return ExecutionStatus::cancelled;
    return std::nullopt;
}

std::string_view to_string(ExecutionStatus status) {
    switch (status) {
        case ExecutionStatus::pending:
            return "pending";
        case ExecutionStatus::running:
            return "running";
        case ExecutionStatus::completed:
            return "completed";
        case ExecutionStatus::failed:
            return "failed";
        case ExecutionStatus::cancelled:
            return "cancelled";
    }
    return "pending";
}

bool is_finished(ExecutionStatus status) {
    return status == ExecutionStatus::completed || status == ExecutionStatus::failed ||
           status == ExecutionStatus::cancelled;
}

bool execution_transition_allowed(ExecutionStatus from, ExecutionStatus to) {
    switch (from) {
        case ExecutionStatus::pending:
            return to == ExecutionStatus::running || to == ExecutionStatus::cancelled || to == ExecutionStatus::failed;
        case ExecutionStatus::running:
            return to == ExecutionStatus::completed || to == ExecutionStatus::failed ||
                   to == ExecutionStatus::cancelled;
        default:
            return false;
    }
}

}  // namespace flowgres
