// Shared-memory tables of counters that are loaded from the database on first use: the usage
// ledger's monthly totals (usage_ledger.cpp) and the runs at once (run_cap.cpp). Slots live in
// partitions of 64 under a spinlock each, found by a probe of 16 from the key's hash; when the
// probe run is full, the least recently used ready slot that may go (the caller says which:
// nothing in flight on it) is reused, else there is no slot. While a slot loads, other
// backends wait for it (1 ms at a time, interruptible, 30 s at most); a load that raises frees
// the slot, and so does the end of the transaction that was loading it (free_loading()).
// Nothing raises while a spinlock is held.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "flowgres/errors.hpp"
#include "guard.hpp"
#include "postgres.hpp"
#include "shared_memory.hpp"

extern "C" {
#include "access/xact.h"
#include "common/hashfn.h"
#include "storage/spin.h"
}

namespace flowgres {

// A UUID's 16 bytes (the text form, as PostgreSQL writes it); raises for another length.
inline void uuid_bytes(const std::string &uuid, uint8 out[16]) {
    if (uuid.size() != 36) throw Error(ErrorCode::INTERNAL_ERROR, "shared table: not a uuid");
    auto hex = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
    int byte = 0;
    for (size_t i = 0; i + 1 < uuid.size() && byte < 16;) {
        if (uuid[i] == '-') {
            i++;
            continue;
        }
        out[byte++] = static_cast<uint8>(hex(uuid[i]) * 16 + hex(uuid[i + 1]));
        i += 2;
    }
}

enum SlotState : int32 { kSlotFree = 0, kSlotLoading = 1, kSlotReady = 2 };

// Slot: a plain struct with `Key key; int32 state; int32 loader_pid; uint64 last_used;` and its
// counters, all zero in a fresh slot. Key: plain bytes, compared with memcmp.
template <typename Slot>
struct SlotPartition {
    static constexpr int kSize = 64;
    slock_t lock;
    uint64 clock;
    int64 evictions;
    Slot slots[kSize];
};

template <typename Slot>
class LoadedSlots {
public:
    using Partition = SlotPartition<Slot>;
    using Table = PartitionedTable<Partition>;
    using Key = decltype(Slot::key);

    static Size size_for(int slots) { return Table::size_for(Table::partitions_for(slots, Partition::kSize)); }
    static void initialise(void *memory, int slots) {
        static_cast<Table *>(memory)->initialise(Table::partitions_for(slots, Partition::kSize));
    }
    explicit LoadedSlots(const char *what) : what_(what) {}
    Table **table_address() { return &table_; }

    // Runs decide(partition, slot) under the lock of the key's ready slot, loading it first:
    // fetch() (no lock held; may raise) reads what the slot starts from, fill(slot, fetched)
    // puts it in under the lock. evictable(slot) says whether a ready slot may be reused.
    // false: no slot could be had.
    template <typename Evictable, typename Fetch, typename Fill, typename Decide>
    bool with_loaded(const Key &key, Evictable evictable, Fetch fetch, Fill fill, Decide decide) {
        if (!table_)
            throw Error(ErrorCode::INTERNAL_ERROR, std::string(what_) + ": flowgres is not in shared_preload_libraries");
        Partition &partition = partition_of(key);
        int waits = 0;
        for (;;) {
            SpinLockAcquire(&partition.lock);
            Slot *slot = find(partition, key);
            if (slot && slot->state == kSlotReady) {
                slot->last_used = ++partition.clock;
                decide(partition, *slot);
                SpinLockRelease(&partition.lock);
                return true;
            }
            if (slot) {  // another backend is loading it
                SpinLockRelease(&partition.lock);
                if (++waits > kLoadWaitLimit)
                    throw Error(ErrorCode::INTERNAL_ERROR, std::string(what_) + ": another backend's load did not finish");
                guard([] {
                    pg_usleep(kLoadWaitMicros);
                    CHECK_FOR_INTERRUPTS();
                });
                continue;
            }
            slot = claimable(partition, key, evictable);
            if (!slot) {
                SpinLockRelease(&partition.lock);
                return false;
            }
            Slot fresh{};
            fresh.key = key;
            fresh.state = kSlotLoading;
            fresh.loader_pid = MyProcPid;
            *slot = fresh;
            SpinLockRelease(&partition.lock);

            loading_ = slot;
            loading_partition_ = &partition;
            decltype(fetch()) fetched;
            try {
                fetched = fetch();
            } catch (...) {
                free_loading();
                throw;
            }
            SpinLockAcquire(&partition.lock);
            fill(*slot, fetched);
            slot->state = kSlotReady;
            SpinLockRelease(&partition.lock);
            loading_ = nullptr;
            loading_partition_ = nullptr;
        }
    }

    // Runs change(slot) on every ready slot under its partition's lock: plain memory
    // operations only. For what is rare (a TRUNCATE): it visits the whole table.
    template <typename Change>
    void for_each_ready(Change change) {
        if (!table_) return;
        for (int i = 0; i < table_->partitions; i++) {
            Partition &partition = table_->partition[i];
            SpinLockAcquire(&partition.lock);
            for (Slot &slot : partition.slots)
                if (slot.state == kSlotReady) change(slot);
            SpinLockRelease(&partition.lock);
        }
    }

    // The slot this backend was loading when its transaction ended, freed.
    void free_loading() {
        if (!loading_) return;
        SpinLockAcquire(&loading_partition_->lock);
        if (loading_->state == kSlotLoading && loading_->loader_pid == MyProcPid) loading_->state = kSlotFree;
        SpinLockRelease(&loading_partition_->lock);
        loading_ = nullptr;
        loading_partition_ = nullptr;
    }

private:
    static constexpr int kProbeLength = 16;
    static constexpr int kLoadWaitMicros = 1000;
    static constexpr int kLoadWaitLimit = 30000;  // × 1 ms: a load that takes 30 s has gone wrong

    Partition &partition_of(const Key &key) {
        uint64 hash = hash_bytes_extended(reinterpret_cast<const unsigned char *>(&key), sizeof(Key), 0x736c6f74);
        return table_->partition[hash % static_cast<uint64>(table_->partitions)];
    }
    static int probe_start(const Key &key) {
        return static_cast<int>(hash_bytes(reinterpret_cast<const unsigned char *>(&key), sizeof(Key)) % Partition::kSize);
    }
    static Slot *find(Partition &partition, const Key &key) {
        int start = probe_start(key);
        for (int probe = 0; probe < kProbeLength; probe++) {
            Slot &slot = partition.slots[(start + probe) % Partition::kSize];
            if (slot.state != kSlotFree && memcmp(&slot.key, &key, sizeof(Key)) == 0) return &slot;
        }
        return nullptr;
    }
    template <typename Evictable>
    static Slot *claimable(Partition &partition, const Key &key, Evictable &evictable) {
        int start = probe_start(key);
        Slot *victim = nullptr;
        for (int probe = 0; probe < kProbeLength; probe++) {
            Slot &slot = partition.slots[(start + probe) % Partition::kSize];
            if (slot.state == kSlotFree) return &slot;
            if (slot.state == kSlotReady && evictable(slot) && (!victim || slot.last_used < victim->last_used))
                victim = &slot;
        }
        if (victim) partition.evictions++;
        return victim;
    }

    const char *what_;
    Table *table_ = nullptr;
    Slot *loading_ = nullptr;
    Partition *loading_partition_ = nullptr;
};

// What this backend's open transaction changed in such a table, by subtransaction level:
// end(change, commit) applies one (commit) or gives it back. settle() is for the transaction
// callbacks, nest() for a subtransaction's commit. Plain memory operations only.
template <typename Change>
class TransactionChanges {
public:
    using End = void (*)(const Change &, bool commit);
    explicit TransactionChanges(End end) : end_(end) {}

    // Room for one more, so that add() (under a spinlock) cannot fail.
    void make_room() { entries_.reserve(entries_.size() + 1); }
    void add(const Change &change) { entries_.push_back(Entry{change, GetCurrentTransactionNestLevel()}); }
    bool empty() const { return entries_.empty(); }

    // Ends the changes made at `min_level` and deeper (0: all of them).
    void settle(bool commit, int min_level) {
        size_t kept = 0;
        for (Entry &entry : entries_)
            if (entry.nest_level < min_level)
                entries_[kept++] = entry;
            else
                end_(entry.change, commit);
        entries_.resize(kept);
    }
    // A subtransaction at `level` committed: its changes are its parent's now.
    void nest(int level) {
        for (Entry &entry : entries_)
            if (entry.nest_level >= level) entry.nest_level = level - 1;
    }

private:
    struct Entry {
        Change change;
        int nest_level;
    };
    std::vector<Entry> entries_;
    End end_;
};

// The transaction callbacks of a table with such changes: at each end of a transaction,
// settle(commit, 0); of a subtransaction, settle(false, level) when it aborts, nest(level)
// when it commits; free_loading() at every end; PREPARE refused (cannot_prepare) while busy().
// `hooks` must live as long as the server process (a static).
// A TRUNCATE of the table such counters cache, marked by its statement trigger: it counts
// (the caller forgets what its slots counted) when the transaction that made it commits, and
// not if the transaction, or the subtransaction it was made in, aborts.
class TruncationMark {
public:
    void mark() {
        int level = GetCurrentTransactionNestLevel();
        if (level_ == 0 || level < level_) level_ = level;
    }
    bool marked() const { return level_ != 0; }
    // From the hooks' settle: true when this end is the top level's commit of a marked transaction.
    bool settle(bool commit, int min_level) {
        if (level_ == 0 || level_ < std::max(min_level, 1)) return false;
        level_ = 0;
        return commit && min_level == 0;
    }
    // From the hooks' nest: a subtransaction's commit hands the mark to its parent.
    void nest(int level) {
        if (level_ == level) level_ = level - 1;
    }

private:
    int level_ = 0;  // the (sub)transaction level it was made at; 0: none
};

struct TransactionHooks {
    void (*settle)(bool commit, int min_level);
    void (*nest)(int level);
    bool (*busy)();
    void (*free_loading)();
    const char *cannot_prepare;
};

inline void register_transaction_hooks(const TransactionHooks &hooks) {
    void *arg = const_cast<TransactionHooks *>(&hooks);
    RegisterXactCallback(
        [](XactEvent event, void *arg) {
            const auto &hooks = *static_cast<const TransactionHooks *>(arg);
            switch (event) {
                case XACT_EVENT_COMMIT:
                case XACT_EVENT_PARALLEL_COMMIT:
                case XACT_EVENT_ABORT:
                case XACT_EVENT_PARALLEL_ABORT:
                    hooks.settle(event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT, 0);
                    hooks.free_loading();
                    break;
                case XACT_EVENT_PRE_PREPARE:
                    if (hooks.busy())
                        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED), errmsg("%s", hooks.cannot_prepare)));
                    break;
                default:
                    break;
            }
        },
        arg);
    RegisterSubXactCallback(
        [](SubXactEvent event, SubTransactionId, SubTransactionId, void *arg) {
            const auto &hooks = *static_cast<const TransactionHooks *>(arg);
            int level = GetCurrentTransactionNestLevel();
            if (event == SUBXACT_EVENT_ABORT_SUB) {
                hooks.settle(false, level);
                hooks.free_loading();
            } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
                hooks.nest(level);
            }
        },
        arg);
}

}  // namespace flowgres
