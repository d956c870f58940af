// Holds in shared memory that outlive the transaction that took them: the usage ledger's held
// requests (usage_ledger.cpp) and the wallets' held costs (wallet_ledger.cpp). Entries are
// keyed by a uuid, in partitions of 64 under a spinlock each, found by the id's hash; each
// belongs to the backend that took it, which keeps a list of them to release when it ends.
// Hold: a plain struct starting with `uint8 id[16]; int32 state; int32 owner_pid;`, state 0
// meaning free. Nothing raises while a spinlock is held.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "flowgres/errors.hpp"
#include "loaded_slots.hpp"
#include "postgres.hpp"
#include "shared_memory.hpp"

extern "C" {
#include "common/hashfn.h"
#include "storage/spin.h"
}

namespace flowgres {

using HoldId = std::array<uint8, 16>;

inline HoldId hold_id_of(const std::string &uuid) {
    HoldId id;
    uuid_bytes(uuid, id.data());
    return id;
}

template <typename Hold>
struct HoldPartition {
    static constexpr int kSize = 64;
    slock_t lock;
    Hold holds[kSize];
};

template <typename Hold>
class HoldTable {
public:
    using Partition = HoldPartition<Hold>;
    using Table = PartitionedTable<Partition>;

    // `seed` spreads ids over partitions differently for each table.
    HoldTable(const char *what, uint64 seed) : what_(what), seed_(seed) {}

    static Size size_for(int holds) { return Table::size_for(Table::partitions_for(holds, Partition::kSize)); }
    static void initialise(void *memory, int holds) {
        static_cast<Table *>(memory)->initialise(Table::partitions_for(holds, Partition::kSize));
    }
    Table **table_address() { return &table_; }
    bool ready() const { return table_ != nullptr; }
    void require() const {
        if (!table_)
            throw Error(ErrorCode::INTERNAL_ERROR, std::string(what_) + ": flowgres is not in shared_preload_libraries");
    }

    Partition &partition_of(const HoldId &id) {
        uint64 hash = hash_bytes_extended(id.data(), static_cast<int>(id.size()), seed_);
        return table_->partition[hash % static_cast<uint64>(table_->partitions)];
    }
    // Caller holds the partition's lock.
    static Hold *find(Partition &partition, const HoldId &id) {
        for (Hold &hold : partition.holds)
            if (hold.state != 0 && memcmp(hold.id, id.data(), id.size()) == 0) return &hold;
        return nullptr;
    }
    static Hold *free_entry(Partition &partition) {
        for (Hold &hold : partition.holds)
            if (hold.state == 0) return &hold;
        return nullptr;
    }

    // The hold `id`, when it is in state `from` and `who` (a pid member) is this backend, put
    // in state `to`. Returns whether it was.
    bool move(const HoldId &id, int32 from, int32 to, int32 Hold::*who) {
        Partition &partition = partition_of(id);
        SpinLockAcquire(&partition.lock);
        Hold *hold = find(partition, id);
        bool moved = hold && hold->state == from && hold->*who == MyProcPid;
        if (moved) hold->state = to;
        SpinLockRelease(&partition.lock);
        return moved;
    }

    // The ids of the holds for which `due(hold)` is true, partition by partition, each passed to
    // end(id) with no lock held. Returns how many end() ended.
    template <typename Due, typename End>
    int64 end_each(Due due, End end) {
        if (!table_) return 0;
        int64 ended = 0;
        std::vector<HoldId> found;
        for (int p = 0; p < table_->partitions; p++) {
            Partition &partition = table_->partition[p];
            found.clear();
            SpinLockAcquire(&partition.lock);
            for (Hold &hold : partition.holds)
                if (hold.state != 0 && due(hold)) {
                    HoldId id;
                    memcpy(id.data(), hold.id, id.size());
                    found.push_back(id);
                }
            SpinLockRelease(&partition.lock);
            for (const HoldId &id : found)
                if (end(id)) ended++;
        }
        return ended;
    }

    // Copies of the holds for which `wanted(hold)` is true (it visits the whole table).
    template <typename Wanted>
    std::vector<Hold> copies(Wanted wanted) {
        std::vector<Hold> out;
        for (int p = 0; p < table_->partitions; p++) {
            Partition &partition = table_->partition[p];
            SpinLockAcquire(&partition.lock);
            for (Hold &hold : partition.holds)
                if (hold.state != 0 && wanted(hold)) out.push_back(hold);
            SpinLockRelease(&partition.lock);
        }
        return out;
    }

    // This backend's holds. Before a take, make_room_to_own() (grown geometrically), so that
    // own() after it cannot fail; own() keeps the list to the holds still this backend's
    // (`mine(hold)`) once it grows past 4096, as holds settled by other backends stay listed.
    void make_room_to_own() {
        if (owned_.size() == owned_.capacity()) owned_.reserve(std::max<size_t>(64, 2 * owned_.capacity()));
    }
    template <typename Mine>
    void own(const HoldId &id, Mine mine) {
        owned_.push_back(id);
        if (owned_.size() <= 4096) return;
        size_t kept = 0;
        for (const HoldId &owned : owned_) {
            Partition &partition = partition_of(owned);
            SpinLockAcquire(&partition.lock);
            Hold *still = find(partition, owned);
            bool keep = still && still->owner_pid == MyProcPid && mine(*still);
            SpinLockRelease(&partition.lock);
            if (keep) owned_[kept++] = owned;
        }
        owned_.resize(kept);
    }
    // From the backend's exit callback: the list, emptied.
    std::vector<HoldId> take_owned() { return std::move(owned_); }

private:
    const char *what_;
    uint64 seed_;
    Table *table_ = nullptr;
    std::vector<HoldId> owned_;
};

}  // namespace flowgres
