// Shared memory for the extension's tables (rate limits, usage totals): each module names a
// struct, its size and how to initialise it, and gets a pointer to it once the server starts.
// One pair of shmem_request / shmem_startup hooks serves them all. Call from _PG_init only.
#pragma once

#include "postgres.hpp"

extern "C" {
#include "storage/spin.h"
}

namespace flowgres {

// Reserves size() bytes named `name`; at start-up, *address points at them, zeroed and passed
// to initialise() the first time (not when a backend attaches to an existing segment).
void register_shared_struct(const char *name, Size (*size)(), void (*initialise)(void *memory), void **address);

// A table split into partitions, each under its own spinlock (Partition has `slock_t lock`).
template <typename Partition>
struct PartitionedTable {
    int partitions;
    Partition partition[FLEXIBLE_ARRAY_MEMBER];

    static int partitions_for(int slots, int slots_per_partition) {
        return (slots + slots_per_partition - 1) / slots_per_partition;
    }
    static Size size_for(int partitions) {
        return add_size(offsetof(PartitionedTable, partition), mul_size(partitions, sizeof(Partition)));
    }
    void initialise(int count) {
        partitions = count;
        for (int i = 0; i < count; i++) SpinLockInit(&partition[i].lock);
    }
};

}  // namespace flowgres
