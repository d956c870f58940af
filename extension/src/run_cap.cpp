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
}

namespace flowgres {
namespace {

struct Key {
    uint8 workspace[16];
};

struct Slot {
    Key key;
    int32 state;
    int32 loader_pid;
    uint64 last_used;
    int64 committed;  // runs pending or running, as committed
    int64 starting;   // reserved by transactions still open
    int64 ending;     // noted ended by transactions still open
};

using Counts = LoadedSlots<Slot>;
using Partition = Counts::Partition;

int configured_slots = 16384;
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

const TransactionHooks transaction_hooks{
    [](bool commit, int min_level) { changes.settle(commit, min_level); }, [](int level) { changes.nest(level); },
    [] { return !changes.empty(); }, [] { counts.free_loading(); },
    "flowgres: a transaction that starts or ends runs cannot be prepared"};

// Runs `decide` under the lock of the workspace's loaded slot, loading it first when needed
// (counted with a snapshot taken now: every committed row). false: no slot could be had.
template <typename Decide>
bool with_loaded_slot(const std::string &workspace_id, Decide &&decide) {
    Key key{};
    uuid_bytes(workspace_id, key.workspace);
    return counts.with_loaded(
        key, [](const Slot &slot) { return slot.starting == 0 && slot.ending == 0; },
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
        check.running = slot.committed + slot.starting;
        if (check.running >= cap) return;
        slot.starting += 1;
        changes.add(Change{&slot, &partition, +1});
        check.allowed = true;
    });
    check.table_full = !found;
    return check;
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

void register_run_cap() {
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
