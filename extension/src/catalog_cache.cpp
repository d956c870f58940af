// The generation counter behind catalog_cache.hpp and the trigger that moves it. Written
// against PostgreSQL's C API only: the trigger and the transaction callback cannot raise
// except where a PREPARE is refused.
#include "catalog_cache.hpp"

#include "postgres.hpp"
#include "shared_memory.hpp"

extern "C" {
#include "commands/trigger.h"
#include "port/atomics.h"
}

namespace flowgres {
namespace {

struct Generation {
    pg_atomic_uint64 value;
};

Generation *shared = nullptr;
// This transaction wrote a catalogue table: move the counter when it commits.
bool changed_in_transaction = false;

Size generation_size() { return sizeof(Generation); }
void initialise_generation(void *memory) { pg_atomic_init_u64(&static_cast<Generation *>(memory)->value, 1); }

void on_transaction_event(XactEvent event, void *) {
    if (!changed_in_transaction) return;
    switch (event) {
    case XACT_EVENT_PRE_PREPARE:
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("flowgres: a transaction that changes workspaces, apps, policies, plans, quotas or "
                               "budgets cannot be prepared")));
        break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
        // Called after the commit is visible to new snapshots (ProcArrayEndTransaction).
        if (shared) pg_atomic_fetch_add_u64(&shared->value, 1);
        changed_in_transaction = false;
        break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
        changed_in_transaction = false;
        break;
    default:
        break;
    }
}

}  // namespace

std::optional<uint64_t> catalog_generation() {
    if (changed_in_transaction || !shared) return std::nullopt;
    return pg_atomic_read_u64(&shared->value);
}

void register_catalog_generation() {
    register_shared_struct("flowgres catalog generation", generation_size, initialise_generation,
                           reinterpret_cast<void **>(&shared));
    RegisterXactCallback(on_transaction_event, nullptr);
}

}  // namespace flowgres

// SQL: the statement trigger on the catalogue tables (flowgres--0.16--0.17.sql).
extern "C" {
PG_FUNCTION_INFO_V1(flowgres_catalog_changed);
Datum flowgres_catalog_changed(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo)) ereport(ERROR, (errmsg("flowgres.catalog_changed() is a trigger")));
    flowgres::changed_in_transaction = true;
    return PointerGetDatum(nullptr);
}
}
