// The execution state machine: the full 5 × 5 table.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "flowgres/execution_state.hpp"

using namespace flowgres;

TEST(ExecutionState, FullTransitionTable) {
    const ExecutionStatus all[] = {ExecutionStatus::pending, ExecutionStatus::running, ExecutionStatus::completed,
                                   ExecutionStatus::failed, ExecutionStatus::cancelled};
    const std::set<std::string> allowed = {"pending>running",  "pending>cancelled", "pending>failed",
                                           "running>completed", "running>failed",   "running>cancelled"};
    for (auto from : all)
        for (auto to : all) {
            std::string name = std::string(to_string(from)) + ">" + std::string(to_string(to));
            EXPECT_EQ(execution_transition_allowed(from, to), allowed.count(name) > 0) << name;
        }
    EXPECT_TRUE(is_finished(ExecutionStatus::cancelled));
    EXPECT_FALSE(is_finished(ExecutionStatus::running));
    EXPECT_EQ(parse_execution_status("failed"), ExecutionStatus::failed);
    EXPECT_FALSE(parse_execution_status("done"));
}
