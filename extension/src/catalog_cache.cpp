// The generation counters behind catalog_cache.hpp and the triggers that move them. Written
// against PostgreSQL's C API only: the triggers and the transaction callback cannot raise
// except where a PREPARE is refused.
#include "catalog_cache.hpp"

#include <cstdlib>

#include "postgres.hpp"
#include "shared_memory.hpp"

extern "C" {
#include "commands/trigger.h"
#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "utils/timestamp.h"
}

namespace flowgres {
namespace {

constexpr size_t kCounters = 2;  // one per CachedTables

struct Generations {
    pg_atomic_uint64 values[kCounters];
};

Generations *shared = nullptr;
// This transaction wrote tables of these kinds: move their counters when it commits.
bool changed_in_transaction[kCounters] = {false, false};

size_t index_of(CachedTables tables) { return static_cast<size_t>(tables); }

Size generations_size() { return sizeof(Generations); }
void initialise_generations(void *memory) {
    for (pg_atomic_uint64 &value : static_cast<Generations *>(memory)->values) pg_atomic_init_u64(&value, 1);
}

void on_transaction_event(XactEvent event, void *) {
    bool any = false;
    for (bool changed : changed_in_transaction) any = any || changed;
    if (!any) return;
    switch (event) {
    case XACT_EVENT_PRE_PREPARE:
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("flowgres: a transaction that changes workspaces, apps, policies, plans, quotas, "
                               "budgets or visitors' sessions cannot be prepared")));
        break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
        // Called after the commit is visible to new snapshots (ProcArrayEndTransaction).
        for (size_t i = 0; i < kCounters; i++) {
            if (shared && changed_in_transaction[i]) pg_atomic_fetch_add_u64(&shared->values[i], 1);
            changed_in_transaction[i] = false;
        }
        break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
        for (bool &changed : changed_in_transaction) changed = false;
        break;
    default:
        break;
    }
}

}  // namespace

std::optional<uint64_t> cache_generation(CachedTables tables) {
    size_t index = index_of(tables);
    if (changed_in_transaction[index] || !shared) return std::nullopt;
    return pg_atomic_read_u64(&shared->values[index]);
}

bool written_by_this_transaction(const std::string &xmin) {
    char *end = nullptr;
    unsigned long long value = strtoull(xmin.c_str(), &end, 10);
    if (xmin.empty() || *end != '\0' || value > UINT32_MAX) return true;  // unknown: do not keep
    return TransactionIdIsCurrentTransactionId(static_cast<TransactionId>(value));
}

int64_t transaction_start_micros() {
    return static_cast<int64_t>(GetCurrentTransactionStartTimestamp()) +
           static_cast<int64_t>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC;
}

void register_cache_generations() {
    register_shared_struct("flowgres cache generations", generations_size, initialise_generations,
                           reinterpret_cast<void **>(&shared));
    RegisterXactCallback(on_transaction_event, nullptr);
}

}  // namespace flowgres

// SQL: the statement triggers on the catalogue tables (flowgres--0.16--0.17.sql, 0.20--0.21,
// 0.34--0.35 with a row trigger on api_keys whose WHEN leaves out last_used_at), and the
// triggers on app_sessions (flowgres--0.29--0.30.sql: a row trigger whose WHEN names the
// changes that count, and a statement trigger for deletes and TRUNCATE). AFTER triggers: what
// they return is ignored.
extern "C" {
PG_FUNCTION_INFO_V1(flowgres_catalog_changed);
Datum flowgres_catalog_changed(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo)) ereport(ERROR, (errmsg("flowgres.catalog_changed() is a trigger")));
    flowgres::changed_in_transaction[flowgres::index_of(flowgres::CachedTables::catalog)] = true;
    return PointerGetDatum(nullptr);
}

PG_FUNCTION_INFO_V1(flowgres_sessions_changed);
Datum flowgres_sessions_changed(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo)) ereport(ERROR, (errmsg("flowgres.sessions_changed() is a trigger")));
    flowgres::changed_in_transaction[flowgres::index_of(flowgres::CachedTables::sessions)] = true;
    return PointerGetDatum(nullptr);
}
}
