// The cap on a workspace's runs at once outside the public runtime
// (flowgres.max_concurrent_runs_per_workspace: trial, api and schedule runs pending or running),
// counted in shared memory so that creating a run takes no row lock (README "Workflow runs").
//
// The truth is the executions table; the count is a cache of it that stays exact, as the usage
// ledger's totals are (usage_ledger.hpp):
//   - execution_create reserves one run before it inserts the row: refused at the cap, else in
//     flight until its transaction ends, then counted (commit) or given back (abort).
//   - A run that leaves pending/running (or is deleted while in it) is noted by a BEFORE trigger
//     on executions (run_cap_noted): one fewer in flight, counted when that transaction commits.
//     Checks ignore ends not yet committed, so an end that aborts never let a run too many in.
//   - A workspace's count is loaded from the table (executions_in_flight_idx) when first needed
//     after the server starts, and again after eviction; a slot with anything in flight is never
//     evicted, and both paths above load it first (before their own row changes), so the load
//     sees every committed row and nothing is counted twice.
//   - A TRUNCATE of executions (a statement trigger, run_cap_truncated) sets this database's
//     committed counts to zero when it commits.
//   - A trial run admitted without its row (execution_admit_trial) is *held*: counted from its
//     admission, across transactions, until the transaction that writes its row commits. The
//     hold rides on the run's usage hold (usage_ledger.hpp), which says when it ends: settled
//     by the record that writes the row ended (the run goes), or by the store that writes it
//     running (the run is then counted as a committed row); released when the admitting
//     transaction aborts, the admitting backend ends or the hold expires. A slot with runs
//     held is never evicted, and the load does not count them: they have no row.
// Rows written around execution_create (by hand) are not counted until the server restarts.
#pragma once

#include <cstdint>
#include <string>

namespace flowgres {

struct RunCapCheck {
    bool allowed = false;
    bool table_full = false;  // no slot for this workspace: refuse with OVERLOADED
    int64_t running = 0;      // the workspace's runs at once, before this one
};

// The cap: flowgres.max_concurrent_runs_per_workspace (a server setting, reloaded).
int64_t run_cap_limit();

// One more run for `workspace_id` in this transaction, unless it already has `cap`.
RunCapCheck run_cap_reserve(const std::string &workspace_id, int64_t cap);

// A run held for `workspace_id` (see above): where it is counted, to end it by. Shared memory:
// valid in every backend while the run is held.
struct RunCapHeld {
    void *slot = nullptr;
    void *partition = nullptr;
};

// One more run for `workspace_id`, held at once (beyond this transaction), unless it already
// has `cap`; `held` says where. Whoever holds it must end it with run_cap_hold_end().
RunCapCheck run_cap_hold(const std::string &workspace_id, int64_t cap, RunCapHeld &held);

// The held run ends; `as_row`: the transaction ending it committed its row, pending or
// running, which counts it from now on. Plain memory operations: cannot raise.
void run_cap_hold_end(const RunCapHeld &held, bool as_row);

// From the executions trigger: one of the workspace's runs ends with this transaction.
void run_cap_note_end(const std::string &workspace_id);

// From _PG_init: shared memory and the transaction callbacks.
void register_run_cap();

}  // namespace flowgres
