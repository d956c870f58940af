// The shared-memory counts behind run_cap.hpp: a slot per workspace (loaded_slots.hpp). Nothing
// raises while a spinlock is held; the transaction callbacks run plain memory operations only.
#include "run_cap.hpp"

#include <vector>

#include "flowgres/errors.hpp"
#include "functions.hpp"
#include "loaded_slots.hpp"
#include "postgres.hpp"
#include "spi.hpp"

extern "C" {
#include "access/xact.h"
#include "commands/trigger.h"
}

namespace flowgres {
namespace {

// A workspace of this database: the table is the cluster's, and a database copied from another
// (CREATE DATABASE … TEMPLATE) holds the same workspace ids.
struct Key {
    uint8 workspace[16];
    Oid database;
};

struct Slot {
    Key key;
    int32 state;
    int32 loader_pid;
    uint64 last_used;
    int64 committed;  // runs pending or running, as committed
    int64 starting;   // reserved by transactions still open
    int64 ending;     // noted ended by transactions still open
    int64 held;       // admitted without a row, until it is written (run_cap.hpp)
};

// A slot may be reused, or forgotten after a TRUNCATE, only with nothing in flight on it.
bool idle(const Slot &slot) { return slot.starting == 0 && slot.ending == 0 && slot.held == 0; }

using Counts = LoadedSlots<Slot>;
using Partition = Counts::Partition;

int configured_slots = 16384;
int max_runs_at_once = 16;  // flowgres.max_concurrent_runs_per_workspace
Counts counts("run cap");

Size table_size() { return Counts::size_for(configured_slots); }
void initialise_table(void *memory) { Counts::initialise(memory, configured_slots); }

// What this backend's open transaction moved: a run starting (+1) or ending (-1) per slot.
struct Change {
    Slot *slot;
    Partition *partition;
    int delta;
};
TransactionChanges<Change> changes([](const Change &change, bool commit) {
    SpinLockAcquire(&change.partition->lock);
    if (change.delta > 0)
        change.slot->starting -= 1;
    else
        change.slot->ending -= 1;
    if (commit) change.slot->committed += change.delta;
    SpinLockRelease(&change.partition->lock);
});

// This transaction truncated executions.
TruncationMark truncated;

// After a TRUNCATE of executions commits (this transaction's own changes applied first), this
// database's workspaces are counted again: a slot with nothing in flight is freed, to be loaded
// from the table on its next use; a slot with runs reserved by transactions still open (blocked
// on the TRUNCATE's lock before their insert: nobody else's change can have committed, as that
// lock is held until after this callback) keeps them in flight with nothing committed. Only
// runs this transaction itself created after truncating, in such a busy slot, go uncounted.
void forget_truncated_runs() {
    counts.for_each_ready([](Slot &slot) {
        if (slot.key.database != MyDatabaseId) return;
        if (idle(slot))
            slot.state = kSlotFree;
        else
            slot.committed = 0;
    });
}

const TransactionHooks transaction_hooks{
    [](bool commit, int min_level) {
        changes.settle(commit, min_level);
        if (truncated.settle(commit, min_level)) forget_truncated_runs();
    },
    [](int level) {
        truncated.nest(level);
        changes.nest(level);
    },
    [] { return !changes.empty() || truncated.marked(); }, [] { counts.free_loading(); },
    "flowgres: a transaction that starts or ends runs, or truncates executions, cannot be prepared"};

// Runs `decide` under the lock of the workspace's loaded slot, loading it first when needed
// (counted with a snapshot taken now: every committed row). false: no slot could be had.
template <typename Decide>
bool with_loaded_slot(const std::string &workspace_id, Decide &&decide) {
    Key key{};
    uuid_bytes(workspace_id, key.workspace);
    key.database = MyDatabaseId;
    return counts.with_loaded(
        key, [](const Slot &slot) { return idle(slot); },
        [&] {
            return std::stoll(query_value_latest_snapshot(R"sql(
                select count(*) from flowgres.executions
                where workspace_id = $1::uuid and trigger <> 'runtime' and status in ('pending', 'running'))sql",
                                                          {workspace_id})
                                  .value_or("0"));
        },
        [](Slot &slot, long long running) { slot.committed = running; }, decide);
}

}  // namespace

RunCapCheck run_cap_reserve(const std::string &workspace_id, int64_t cap) {
    RunCapCheck check;
    changes.make_room();  // so recording the change below cannot fail
    bool found = with_loaded_slot(workspace_id, [&](Partition &partition, Slot &slot) {
        check.running = slot.committed + slot.starting + slot.held;
        if (check.running >= cap) return;
        slot.starting += 1;
        changes.add(Change{&slot, &partition, +1});
        check.allowed = true;
    });
    check.table_full = !found;
    return check;
}

RunCapCheck run_cap_hold(const std::string &workspace_id, int64_t cap, RunCapHeld &held) {
    RunCapCheck check;
    bool found = with_loaded_slot(workspace_id, [&](Partition &partition, Slot &slot) {
        check.running = slot.committed + slot.starting + slot.held;
        if (check.running >= cap) return;
        slot.held += 1;
        held = RunCapHeld{&slot, &partition};
        check.allowed = true;
    });
    check.table_full = !found;
    return check;
}

void run_cap_hold_end(const RunCapHeld &held, bool as_row) {
    auto *slot = static_cast<Slot *>(held.slot);
    auto *partition = static_cast<Partition *>(held.partition);
    if (!slot || !partition) return;
    SpinLockAcquire(&partition->lock);
    slot->held -= 1;
    if (as_row) slot->committed += 1;
    SpinLockRelease(&partition->lock);
}

void run_cap_note_end(const std::string &workspace_id) {
    changes.make_room();
    bool found = with_loaded_slot(workspace_id, [&](Partition &partition, Slot &slot) {
        slot.ending += 1;
        changes.add(Change{&slot, &partition, -1});
    });
    if (!found) throw Error(ErrorCode::OVERLOADED, "too many workspaces are counting their runs at once: retry");
}

// SQL: run_cap_noted(workspace_id) — from the executions trigger (revoked from public).
SqlValue run_cap_noted(CallArgs &args) {
    run_cap_note_end(args.required_uuid(0, "workspace_id"));
    return SqlValue::null();
}

int64_t run_cap_limit() { return max_runs_at_once; }

void register_run_cap() {
    DefineCustomIntVariable("flowgres.max_concurrent_runs_per_workspace",
                            "Runs a workspace may have pending or running at once outside the public runtime (trial, "
                            "api, schedule).",
                            nullptr, &max_runs_at_once, 16, 1, 100000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("flowgres.run_cap_slots",
                            "Workspaces whose runs at once are counted in shared memory at a time "
                            "(rounded up to a multiple of 64).",
                            nullptr, &configured_slots, 16384, 64, 4194304, PGC_POSTMASTER, 0, nullptr, nullptr,
                            nullptr);
    register_shared_struct("flowgres run cap", table_size, initialise_table,
                           reinterpret_cast<void **>(counts.table_address()));
    register_transaction_hooks(transaction_hooks);
}

}  // namespace flowgres

// SQL: run_cap_truncated() — the statement trigger after TRUNCATE on executions
// (flowgres--0.30--0.31.sql). Written against PostgreSQL's C API only: it cannot raise.
extern "C" {
PG_FUNCTION_INFO_V1(flowgres_run_cap_truncated);
Datum flowgres_run_cap_truncated(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo)) ereport(ERROR, (errmsg("flowgres.run_cap_truncated() is a trigger")));
    flowgres::truncated.mark();
    return PointerGetDatum(nullptr);
}
}
