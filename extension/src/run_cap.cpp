// The shared-memory counts behind run_cap.hpp: a slot per workspace, in partitions of 64 under
// their own spinlock. Nothing raises while a spinlock is held; the transaction callbacks run
// plain memory operations only.
#include "run_cap.hpp"

#include <cstring>
#include <vector>

#include "flowgres/errors.hpp"
#include "functions.hpp"
#include "guard.hpp"
#include "postgres.hpp"
#include "shared_memory.hpp"
#include "spi.hpp"

extern "C" {
#include "access/xact.h"
#include "common/hashfn.h"
#include "storage/spin.h"
}

namespace flowgres {
namespace {

constexpr int kPartitionSize = 64;
constexpr int kProbeLength = 16;
constexpr int kLoadWaitMicros = 1000;
constexpr int kLoadWaitLimit = 30000;  // × 1 ms

enum SlotState : int32 { kFree = 0, kLoading = 1, kReady = 2 };

struct Slot {
    uint8 workspace[16];
    int32 state;
    int32 loader_pid;
    int64 committed;  // runs pending or running, as committed
    int64 starting;   // reserved by transactions still open
    int64 ending;     // noted ended by transactions still open
    uint64 last_used;
};

struct Partition {
    slock_t lock;
    uint64 clock;
    Slot slots[kPartitionSize];
};

using Table = PartitionedTable<Partition>;

int configured_slots = 16384;
Table *table = nullptr;

Size table_size() { return Table::size_for(Table::partitions_for(configured_slots, kPartitionSize)); }
void initialise_table(void *memory) {
    static_cast<Table *>(memory)->initialise(Table::partitions_for(configured_slots, kPartitionSize));
}

// What this backend's open transaction moved: a run starting (+1) or ending (-1) per slot.
struct Change {
    Slot *slot;
    Partition *partition;
    int nest_level;
    int delta;
};
std::vector<Change> changes;
Slot *loading_slot = nullptr;
Partition *loading_partition = nullptr;

int hex_value(char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }

void workspace_bytes(const std::string &workspace_id, uint8 out[16]) {
    if (workspace_id.size() != 36) throw Error(ErrorCode::INTERNAL_ERROR, "run cap: not a uuid");
    int byte = 0;
    for (size_t i = 0; i + 1 < workspace_id.size() && byte < 16;) {
        if (workspace_id[i] == '-') {
            i++;
            continue;
        }
        out[byte++] = static_cast<uint8>(hex_value(workspace_id[i]) * 16 + hex_value(workspace_id[i + 1]));
        i += 2;
    }
}

Partition &partition_of(const uint8 key[16]) {
    uint64 hash = hash_bytes_extended(key, 16, 0x72756e73);
    return table->partition[hash % static_cast<uint64>(table->partitions)];
}

int probe_start(const uint8 key[16]) { return static_cast<int>(hash_bytes(key, 16) % kPartitionSize); }

Slot *find_slot(Partition &partition, const uint8 key[16]) {
    int start = probe_start(key);
    for (int probe = 0; probe < kProbeLength; probe++) {
        Slot &slot = partition.slots[(start + probe) % kPartitionSize];
        if (slot.state != kFree && memcmp(slot.workspace, key, 16) == 0) return &slot;
    }
    return nullptr;
}

Slot *claimable_slot(Partition &partition, const uint8 key[16]) {
    int start = probe_start(key);
    Slot *victim = nullptr;
    for (int probe = 0; probe < kProbeLength; probe++) {
        Slot &slot = partition.slots[(start + probe) % kPartitionSize];
        if (slot.state == kFree) return &slot;
        if (slot.state == kReady && slot.starting == 0 && slot.ending == 0 &&
            (!victim || slot.last_used < victim->last_used))
            victim = &slot;
    }
    return victim;
}

void free_loading_slot() {
    if (!loading_slot) return;
    SpinLockAcquire(&loading_partition->lock);
    if (loading_slot->state == kLoading && loading_slot->loader_pid == MyProcPid) loading_slot->state = kFree;
    SpinLockRelease(&loading_partition->lock);
    loading_slot = nullptr;
    loading_partition = nullptr;
}

// Applies (commit) or gives back the changes at `min_level` and deeper.
void settle(bool commit, int min_level) {
    size_t kept = 0;
    for (Change &change : changes) {
        if (change.nest_level < min_level) {
            changes[kept++] = change;
            continue;
        }
        SpinLockAcquire(&change.partition->lock);
        if (change.delta > 0)
            change.slot->starting -= 1;
        else
            change.slot->ending -= 1;
        if (commit) change.slot->committed += change.delta;
        SpinLockRelease(&change.partition->lock);
    }
    changes.resize(kept);
}

void on_transaction_event(XactEvent event, void *) {
    switch (event) {
        case XACT_EVENT_COMMIT:
        case XACT_EVENT_PARALLEL_COMMIT:
            settle(true, 0);
            free_loading_slot();
            break;
        case XACT_EVENT_ABORT:
        case XACT_EVENT_PARALLEL_ABORT:
            settle(false, 0);
            free_loading_slot();
            break;
        case XACT_EVENT_PRE_PREPARE:
            if (!changes.empty())
                ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                                errmsg("flowgres: a transaction that starts or ends runs cannot be prepared")));
            break;
        default:
            break;
    }
}

void on_subtransaction_event(SubXactEvent event, SubTransactionId, SubTransactionId, void *) {
    int level = GetCurrentTransactionNestLevel();
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        settle(false, level);
        free_loading_slot();
    } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
        for (Change &change : changes)
            if (change.nest_level >= level) change.nest_level = level - 1;
    }
}

// Runs `decide` under the lock of the workspace's loaded slot, loading it first when needed
// (counted with a snapshot taken now: every committed row). false: no slot could be had.
template <typename Decide>
bool with_loaded_slot(const std::string &workspace_id, Decide &&decide) {
    if (!table) throw Error(ErrorCode::INTERNAL_ERROR, "run cap: flowgres is not in shared_preload_libraries");
    uint8 key[16];
    workspace_bytes(workspace_id, key);
    Partition &partition = partition_of(key);
    int waits = 0;
    for (;;) {
        SpinLockAcquire(&partition.lock);
        Slot *slot = find_slot(partition, key);
        if (slot && slot->state == kReady) {
            slot->last_used = ++partition.clock;
            decide(partition, *slot);
            SpinLockRelease(&partition.lock);
            return true;
        }
        if (slot) {  // another backend is loading it
            SpinLockRelease(&partition.lock);
            if (++waits > kLoadWaitLimit)
                throw Error(ErrorCode::INTERNAL_ERROR, "run cap: another backend's count of this workspace did not finish");
            guard([] {
                pg_usleep(kLoadWaitMicros);
                CHECK_FOR_INTERRUPTS();
            });
            continue;
        }
        slot = claimable_slot(partition, key);
        if (!slot) {
            SpinLockRelease(&partition.lock);
            return false;
        }
        memcpy(slot->workspace, key, 16);
        slot->state = kLoading;
        slot->loader_pid = MyProcPid;
        slot->committed = slot->starting = slot->ending = 0;
        SpinLockRelease(&partition.lock);

        loading_slot = slot;
        loading_partition = &partition;
        int64_t running;
        try {
            running = std::stoll(query_value_latest_snapshot(R"sql(
                select count(*) from flowgres.executions
                where workspace_id = $1::uuid and trigger <> 'runtime' and status in ('pending', 'running'))sql",
                                                             {workspace_id})
                                     .value_or("0"));
        } catch (...) {
            free_loading_slot();
            throw;
        }
        SpinLockAcquire(&partition.lock);
        slot->committed = running;
        slot->state = kReady;
        SpinLockRelease(&partition.lock);
        loading_slot = nullptr;
        loading_partition = nullptr;
    }
}

}  // namespace

RunCapCheck run_cap_reserve(const std::string &workspace_id, int64_t cap) {
    RunCapCheck check;
    changes.reserve(changes.size() + 1);  // so recording the change below cannot fail
    int nest_level = GetCurrentTransactionNestLevel();
    bool found = with_loaded_slot(workspace_id, [&](Partition &partition, Slot &slot) {
        check.running = slot.committed + slot.starting;
        if (check.running >= cap) return;
        slot.starting += 1;
        changes.push_back(Change{&slot, &partition, nest_level, +1});
        check.allowed = true;
    });
    check.table_full = !found;
    return check;
}

void run_cap_note_end(const std::string &workspace_id) {
    changes.reserve(changes.size() + 1);
    int nest_level = GetCurrentTransactionNestLevel();
    bool found = with_loaded_slot(workspace_id, [&](Partition &partition, Slot &slot) {
        slot.ending += 1;
        changes.push_back(Change{&slot, &partition, nest_level, -1});
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
    register_shared_struct("flowgres run cap", table_size, initialise_table, reinterpret_cast<void **>(&table));
    RegisterXactCallback(on_transaction_event, nullptr);
    RegisterSubXactCallback(on_subtransaction_event, nullptr);
}

}  // namespace flowgres
