// The shared-memory table behind rate_limiter.hpp. Written against PostgreSQL's C API only,
// like the background worker: nothing here can raise while a spinlock is held.
#include "rate_limiter.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>

#include "actor.hpp"
#include "boundary.hpp"
#include "flowgres/errors.hpp"
#include "functions.hpp"
#include "postgres.hpp"
#include "shared_memory.hpp"

extern "C" {
#include "common/hashfn.h"
#include "utils/timestamp.h"
#include "storage/spin.h"
}

namespace flowgres {
namespace {

constexpr int kPartitionSize = 64;
constexpr int kProbeLength = 16;
constexpr int kSpillSlots = 4;  // per partition: a spilled key shares its count with a quarter of the others

struct Slot {
    uint64 key;            // 0: never used
    int64 window_start;    // epoch seconds
    int64 window_seconds;
    int64 count;
};

struct Partition {
    slock_t lock;
    int64 spills;
    // Where keys count that found no free slot in their probe run, by hash: shared, so a spilled
    // key is limited at least as strictly as on its own (never less: no count is lost).
    Slot spill[kSpillSlots];
    Slot slots[kPartitionSize];
};

using Table = PartitionedTable<Partition>;

int configured_slots = 65536;
Table *table = nullptr;

Size table_size() { return Table::size_for(Table::partitions_for(configured_slots, kPartitionSize)); }

void initialise_table(void *memory) {
    static_cast<Table *>(memory)->initialise(Table::partitions_for(configured_slots, kPartitionSize));
}

// Where a key lives: its hash (never 0, which marks an empty slot), its partition, and the
// first slot of its probe run.
struct Place {
    uint64 hash;
    Partition *partition;
    int start;
};

Place place_of(const char *key, int key_length) {
    uint64 hash = hash_bytes_extended(reinterpret_cast<const unsigned char *>(key), key_length, 0x666c6f77);
    if (hash == 0) hash = 1;
    return {hash, &table->partition[hash % static_cast<uint64>(table->partitions)],
            static_cast<int>((hash >> 32) % kPartitionSize)};
}

bool ended(const Slot &slot, int64 now) { return slot.key == 0 || now >= slot.window_start + slot.window_seconds; }

}  // namespace

RateLimitHit rate_limit_hit(const char *key, int key_length, int64_t limit, int64_t window_seconds,
                            int64_t now_seconds) {
    return rate_limit_take(key, key_length, 1, true, limit, window_seconds, now_seconds);
}

RateLimitHit rate_limit_take(const char *key, int key_length, int64_t amount, bool count_refused, int64_t limit,
                             int64_t window_seconds, int64_t now_seconds) {
    RateLimitHit hit;
    hit.limit = limit;
    if (!table || window_seconds <= 0) return hit;
    auto [hash, found_partition, start] = place_of(key, key_length);
    Partition &partition = *found_partition;
    int64 window_start = now_seconds - now_seconds % window_seconds;

    SpinLockAcquire(&partition.lock);
    Slot *chosen = nullptr;
    Slot *reusable = nullptr;  // free or expired
    for (int probe = 0; probe < kProbeLength; probe++) {
        Slot &slot = partition.slots[(start + probe) % kPartitionSize];
        if (slot.key == hash) {
            chosen = &slot;
            break;
        }
        if (!reusable && ended(slot, now_seconds)) reusable = &slot;
    }
    if (!chosen && !reusable) {
        // Every slot of the run holds an open window: evicting one would start its count over
        // (a flood of new keys would reset a victim's). The key counts in the shared spill slot.
        partition.spills++;
        Slot &spill = partition.spill[(hash >> 16) % kSpillSlots];
        if (ended(spill, now_seconds)) {
            spill.key = 1;
            spill.window_start = window_start;
            spill.window_seconds = window_seconds;
            spill.count = 0;
        }
        hit.allowed = spill.count + amount <= limit;
        if (hit.allowed || count_refused) spill.count += amount;
        hit.count = hit.allowed || count_refused ? spill.count : spill.count + amount;
        int64 spill_end = spill.window_start + spill.window_seconds;
        SpinLockRelease(&partition.lock);
        hit.remaining = hit.allowed ? limit - hit.count : 0;
        hit.reset_at = spill_end;
        hit.retry_after = hit.allowed ? 0 : std::max<int64_t>(1, hit.reset_at - now_seconds);
        return hit;
    }
    if (!chosen) {
        chosen = reusable;
        chosen->key = hash;
        chosen->window_start = window_start;
        chosen->window_seconds = window_seconds;
        chosen->count = 0;
    }
    if (chosen->window_start != window_start || chosen->window_seconds != window_seconds) {
        chosen->window_start = window_start;  // a new window (or a changed policy): start over
        chosen->window_seconds = window_seconds;
        chosen->count = 0;
    }
    hit.allowed = chosen->count + amount <= limit;
    if (hit.allowed || count_refused) chosen->count += amount;
    hit.count = hit.allowed || count_refused ? chosen->count : chosen->count + amount;
    SpinLockRelease(&partition.lock);

    hit.remaining = hit.allowed ? limit - hit.count : 0;
    hit.reset_at = window_start + window_seconds;
    hit.retry_after = hit.allowed ? 0 : std::max<int64_t>(1, hit.reset_at - now_seconds);
    return hit;
}

int64_t rate_limit_count(const char *key, int key_length, int64_t window_seconds, int64_t at_seconds) {
    if (!table || window_seconds <= 0) return 0;
    auto [hash, found_partition, start] = place_of(key, key_length);
    Partition &partition = *found_partition;
    int64 window_start = at_seconds - at_seconds % window_seconds;
    int64 count = 0;
    SpinLockAcquire(&partition.lock);
    for (int probe = 0; probe < kProbeLength; probe++) {
        const Slot &slot = partition.slots[(start + probe) % kPartitionSize];
        if (slot.key != hash) continue;
        if (slot.window_start == window_start && slot.window_seconds == window_seconds) count = slot.count;
        break;
    }
    SpinLockRelease(&partition.lock);
    return count;
}

RateLimitHit rate_limit_peek(const char *key, int key_length, int64_t limit, int64_t window_seconds,
                             int64_t now_seconds) {
    RateLimitHit hit;
    hit.limit = limit;
    if (window_seconds <= 0) return hit;
    int64 window_start = now_seconds - now_seconds % window_seconds;
    hit.count = rate_limit_count(key, key_length, window_seconds, now_seconds);
    hit.allowed = hit.count <= limit;
    hit.remaining = hit.allowed ? limit - hit.count : 0;
    hit.reset_at = window_start + window_seconds;
    hit.retry_after = hit.allowed ? 0 : std::max<int64_t>(1, hit.reset_at - now_seconds);
    return hit;
}

RateLimitStats rate_limit_stats(int64_t now_seconds) {
    RateLimitStats stats;
    if (!table) return stats;
    stats.slots = static_cast<int64_t>(table->partitions) * kPartitionSize;
    for (int i = 0; i < table->partitions; i++) {
        Partition &partition = table->partition[i];
        SpinLockAcquire(&partition.lock);
        for (const Slot &slot : partition.slots)
            if (!ended(slot, now_seconds)) stats.in_use++;
        stats.spills += partition.spills;
        SpinLockRelease(&partition.lock);
    }
    return stats;
}

int64_t epoch_seconds_now() {
    return static_cast<int64_t>(GetCurrentTimestamp() / USECS_PER_SEC) +
           (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
}

std::string transaction_start_iso() {
    int64_t micros = static_cast<int64_t>(GetCurrentTransactionStartTimestamp()) +
                     static_cast<int64_t>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC;
    time_t seconds = static_cast<time_t>(micros / USECS_PER_SEC);
    struct tm parts {};
    gmtime_r(&seconds, &parts);
    char text[48];
    size_t length = strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &parts);
    snprintf(text + length, sizeof(text) - length, ".%06lld+00:00", static_cast<long long>(micros % USECS_PER_SEC));
    return text;
}

// SQL: rate_limit_hit(key, max_requests, window_seconds, now_seconds) — the service's direct
// door to the limiter (the runtime's admission uses rate_limit_hit in C++).
SqlValue rate_limit_hit_sql(CallArgs &args) {
    std::string key = args.required_text(0, "key");
    long long limit = args.integer(1).value_or(0);
    long long window = args.integer(2).value_or(0);
    if (key.empty() || key.size() > 512) throw field_error("key", "must be 1 to 512 characters");
    if (limit < 1) throw field_error("max_requests", "must be a positive number");
    if (window < 1 || window > 86400 * 31) throw field_error("window_seconds", "must be from 1 to 2678400");
    int64_t now = args.bigint(3).value_or(epoch_seconds_now());
    require_system_actor();
    RateLimitHit hit = rate_limit_hit(key.data(), static_cast<int>(key.size()), limit, window, now);
    return SqlValue::jsonb("{\"allowed\":" + std::string(hit.allowed ? "true" : "false") +
                           ",\"count\":" + std::to_string(hit.count) + ",\"limit\":" + std::to_string(hit.limit) +
                           ",\"remaining\":" + std::to_string(hit.remaining) +
                           ",\"reset_at\":" + std::to_string(hit.reset_at) +
                           ",\"retry_after\":" + std::to_string(hit.retry_after) + "}");
}

SqlValue rate_limit_stats_sql(CallArgs &) {
    require_system_actor();
    RateLimitStats stats = rate_limit_stats(epoch_seconds_now());
    return SqlValue::jsonb("{\"slots\":" + std::to_string(stats.slots) + ",\"in_use\":" +
                           std::to_string(stats.in_use) + ",\"spills\":" + std::to_string(stats.spills) + "}");
}

void register_rate_limiter() {
    DefineCustomIntVariable("flowgres.rate_limit_slots",
                            "Rate-limit counters kept in shared memory (rounded up to a multiple of 64).", nullptr,
                            &configured_slots, 65536, 64, 16777216, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    register_shared_struct("flowgres rate limits", table_size, initialise_table, reinterpret_cast<void **>(&table));
}

}  // namespace flowgres
