// The shared-memory table behind refusal_counter.hpp. Written against PostgreSQL's C API
// only: nothing here can raise while a spinlock is held.
#include "refusal_counter.hpp"

#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "postgres.hpp"
#include "shared_memory.hpp"

extern "C" {
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/spin.h"
}

namespace flowgres {
namespace {

constexpr int kPartitionSize = 64;
constexpr int kSlots = 16384;
constexpr size_t kIdLength = 36;
constexpr size_t kTypeLength = 48;

struct Slot {
    Oid database;  // InvalidOid: free
    char workspace_id[kIdLength + 1];
    char app_id[kIdLength + 1];  // "" when the refusal named no app
    char event_type[kTypeLength + 1];
    int64 minute;  // epoch seconds of the minute's start
    int64 count;
};

struct Partition {
    slock_t lock;
    int64 lost;
    Slot slots[kPartitionSize];
};

using Table = PartitionedTable<Partition>;
Table *table = nullptr;

Size table_size() { return Table::size_for(Table::partitions_for(kSlots, kPartitionSize)); }
void initialise_table(void *memory) { static_cast<Table *>(memory)->initialise(Table::partitions_for(kSlots, kPartitionSize)); }

bool same(const Slot &slot, Oid database, const std::string &workspace_id, const std::string &app_id,
          const std::string &event_type, int64 minute) {
    return slot.database == database && slot.minute == minute && workspace_id == slot.workspace_id &&
           app_id == slot.app_id && event_type == slot.event_type;
}

void copy_text(char *into, size_t capacity, const std::string &text) {
    size_t length = std::min(text.size(), capacity);
    std::memcpy(into, text.data(), length);
    into[length] = '\0';
}

}  // namespace

void count_refusal(const std::string &workspace_id, const std::string &app_id, const std::string &event_type,
                   int64_t now_seconds) {
    if (!table || workspace_id.size() > kIdLength || app_id.size() > kIdLength || event_type.size() > kTypeLength)
        return;
    int64 minute = now_seconds - now_seconds % 60;
    std::string key = workspace_id + app_id + event_type + std::to_string(minute);
    uint64 hash = hash_bytes_extended(reinterpret_cast<const unsigned char *>(key.data()), static_cast<int>(key.size()), 7);
    Partition &partition = table->partition[hash % static_cast<uint64>(table->partitions)];
    int start = static_cast<int>((hash >> 32) % kPartitionSize);
    SpinLockAcquire(&partition.lock);
    Slot *free_slot = nullptr;
    bool counted = false;
    for (int probe = 0; probe < kPartitionSize; probe++) {
        Slot &slot = partition.slots[(start + probe) % kPartitionSize];
        if (slot.database == InvalidOid) {
            if (!free_slot) free_slot = &slot;
            continue;
        }
        if (same(slot, MyDatabaseId, workspace_id, app_id, event_type, minute)) {
            slot.count++;
            counted = true;
            break;
        }
    }
    if (!counted && free_slot) {
        free_slot->database = MyDatabaseId;
        copy_text(free_slot->workspace_id, kIdLength, workspace_id);
        copy_text(free_slot->app_id, kIdLength, app_id);
        copy_text(free_slot->event_type, kTypeLength, event_type);
        free_slot->minute = minute;
        free_slot->count = 1;
        counted = true;
    }
    if (!counted) partition.lost++;
    SpinLockRelease(&partition.lock);
}

std::vector<RefusalCount> drain_refusal_counts(int64_t &lost) {
    std::vector<RefusalCount> drained;
    lost = 0;
    if (!table) return drained;
    for (int i = 0; i < table->partitions; i++) {
        Partition &partition = table->partition[i];
        SpinLockAcquire(&partition.lock);
        for (Slot &slot : partition.slots) {
            if (slot.database != MyDatabaseId || slot.count == 0) continue;
            drained.push_back({slot.workspace_id, slot.app_id, slot.event_type, slot.minute, slot.count});
            slot.database = InvalidOid;
            slot.count = 0;
        }
        lost += partition.lost;
        partition.lost = 0;
        SpinLockRelease(&partition.lock);
    }
    return drained;
}

namespace {

// Counts this backend's open transaction asked for, with the nesting level that asked.
struct PendingCount {
    std::string workspace_id, app_id, event_type;
    int nest_level;
};
std::vector<PendingCount> pending_counts;

void on_transaction_event(XactEvent event, void *) {
    if (pending_counts.empty()) return;
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT) {
        int64_t now = static_cast<int64_t>(time(nullptr));
        for (const auto &count : pending_counts) count_refusal(count.workspace_id, count.app_id, count.event_type, now);
        pending_counts.clear();
    } else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
        pending_counts.clear();
    }
}

void on_subtransaction_event(SubXactEvent event, SubTransactionId, SubTransactionId, void *) {
    if (event != SUBXACT_EVENT_ABORT_SUB || pending_counts.empty()) return;
    int level = GetCurrentTransactionNestLevel();
    std::erase_if(pending_counts, [level](const PendingCount &count) { return count.nest_level >= level; });
}

}  // namespace

void count_event_at_commit(const std::string &workspace_id, const std::string &app_id, const std::string &event_type) {
    pending_counts.push_back({workspace_id, app_id, event_type, GetCurrentTransactionNestLevel()});
}

void register_refusal_counter() {
    register_shared_struct("flowgres refusal counts", table_size, initialise_table, reinterpret_cast<void **>(&table));
    RegisterXactCallback(on_transaction_event, nullptr);
    RegisterSubXactCallback(on_subtransaction_event, nullptr);
}

bool count_runtime_outcome(const std::string &workspace_id, const std::string &app_id, const std::string &status) {
    const char *event_type = status == "completed"   ? "runtime.execute_succeeded"
                             : status == "failed"    ? "runtime.execute_failed"
                             : status == "cancelled" ? "runtime.execute_cancelled"
                                                     : nullptr;
    if (!event_type) return false;
    count_event_at_commit(workspace_id, app_id, event_type);
    return true;
}

}  // namespace flowgres
