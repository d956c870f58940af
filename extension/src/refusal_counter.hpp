// Runtime events that are not written as rows: runtime_admit.cpp writes the first
// kRefusalEventsPerMinute refusals of each app and kind a minute and counts the rest here, and
// admitted executes and visitors' run outcomes are only counted here (count_event_at_commit),
// in shared memory, per (database, workspace, app, event type, minute). runtime_refusals_flush() (the
// maintenance worker calls it every pass) writes each count as one runtime event whose details
// say how many refusals it stands for, so a flood of refused requests costs a few rows a minute
// and every refusal is still counted (app_access_stats sums them).
//
// Locking: the table is split into partitions of 64 slots, each under its own spinlock, held
// only for plain memory reads and writes. A full partition counts into its `lost` counter,
// which the next flush logs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace flowgres {

void count_refusal(const std::string &workspace_id, const std::string &app_id, const std::string &event_type,
                   int64_t now_seconds);

struct RefusalCount {
    std::string workspace_id, app_id, event_type;  // app_id "" when none
    int64_t minute = 0;                              // epoch seconds of the minute's start
    int64_t count = 0;
};

// The same count, taken when the calling transaction commits and dropped when it (or the
// subtransaction that asked) aborts: for events that stand for what the transaction does and
// happen once per request (runtime.execute at admission, runtime.execute_succeeded / _failed /
// _cancelled when a visitor's run ends), which would otherwise be a row each.
void count_event_at_commit(const std::string &workspace_id, const std::string &app_id, const std::string &event_type);

// A visitor's run ended with `status` (completed, failed, cancelled): runtime.execute_succeeded,
// _failed or _cancelled, counted at commit. False for another status (nothing counted).
bool count_runtime_outcome(const std::string &workspace_id, const std::string &app_id, const std::string &status);

// Takes this database's counts out of the table (runtime_refusals_flush writes them); `lost`
// is how many refusals a full partition could not count since the last call.
std::vector<RefusalCount> drain_refusal_counts(int64_t &lost);

// From _PG_init: the shared-memory request.
void register_refusal_counter();

}  // namespace flowgres
