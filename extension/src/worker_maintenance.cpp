// The maintenance background worker (pg_cron's launcher loop is the model): connected to the
// database named by flowgres.database, every flowgres.maintenance_interval_ms it
//   - fails running executions whose heartbeat is older than flowgres.execution_heartbeat_timeout_ms
//     (EXECUTION_ABANDONED: their daemon died or lost the database), and
//   - announces again, on channel flowgres_executions, pending executions nobody claimed within
//     that time, so a live daemon picks them up;
// and hourly it keeps the monthly partitions (runtime events past flowgres.runtime_event_retention_days
// dropped; DDL gives up after flowgres.partition_lock_timeout_ms and is retried next pass),
// deletes node events of executions ended more than flowgres.execution_event_retention_days
// ago, and deletes visitor sessions that expired more than an hour ago; every pass it writes
// the runtime refusals counted in shared memory (refusal_counter.hpp) as summary events and
// ends the usage holds (usage_ledger.hpp) of runs admitted and never recorded within
// flowgres.execution_heartbeat_timeout_ms.
// Written against PostgreSQL's C API only: no C++ object lives across a call that can
// ereport, and an error ends the worker, which the postmaster restarts after 10 s.
#include "postgres.hpp"
#include "rate_limiter.hpp"
#include "usage_ledger.hpp"
#include "wallet_ledger.hpp"

extern "C" {
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

PGDLLEXPORT void flowgres_maintenance_main(Datum argument);
}

namespace {

char *maintenance_database = nullptr;
int maintenance_interval_ms = 10000;
int heartbeat_timeout_ms = 60000;
int runtime_event_retention_days = 90;
int execution_event_retention_days = 30;
int partition_lock_timeout_ms = 100;
TimestampTz last_partition_pass = 0;
TimestampTz last_event_prune = 0;
TimestampTz last_session_purge = 0;
constexpr int kEventPruneBatch = 10000;
constexpr int kSessionPurgeBatch = 10000;
constexpr int64 kPartitionPassInterval = USECS_PER_SEC * 3600;

volatile sig_atomic_t reload_requested = false;

void on_sighup(SIGNAL_ARGS) {
    int saved_errno = errno;
    reload_requested = true;
    SetLatch(MyLatch);
    errno = saved_errno;
}

// Whether the installed extension has the function yet (the worker may run before an
// ALTER EXTENSION UPDATE brings it).
bool has_function(const char *name) {
    Oid types[1] = {TEXTOID};
    Datum values[1] = {CStringGetTextDatum(name)};
    int found = SPI_execute_with_args(
        "select 1 from pg_extension e join pg_proc p on p.pronamespace = e.extnamespace "
        "where e.extname = 'flowgres' and p.proname = $1",
        1, types, values, nullptr, true, 1);
    return found == SPI_OK_SELECT && SPI_processed > 0;
}

// The first column of the one row `sql` returns, as a 64-bit integer (0 when none or NULL).
int64 single_number(const char *sql, int count, Oid *types, Datum *values) {
    int status = SPI_execute_with_args(sql, count, types, values, nullptr, false, 1);
    if (status != SPI_OK_SELECT || SPI_processed != 1) return 0;
    bool is_null = true;
    Datum value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &is_null);
    if (is_null) return 0;
    Oid type = SPI_gettypeid(SPI_tuptable->tupdesc, 1);
    return type == INT8OID ? DatumGetInt64(value) : DatumGetInt32(value);
}

// A batched clean-up (its function deletes at most `batch` rows and says how many): hourly, and
// again on the next pass while a call still finds a full batch, so a backlog goes in steps,
// never in one long transaction.
void run_batched(const char *function, const char *sql, int count, Oid *types, Datum *values, int batch,
                 TimestampTz now, TimestampTz &last_run) {
    if (!has_function(function) || (last_run != 0 && now - last_run < kPartitionPassInterval)) return;
    if (single_number(sql, count, types, values) < batch) last_run = now;
}

// One pass, in its own transaction. Returns quietly when the extension is not installed in
// this database (yet): the worker keeps waiting for it.
void run_maintenance_pass() {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "flowgres maintenance");

    if (has_function("execution_create")) {
        Oid types[1] = {INT4OID};
        Datum values[1] = {Int32GetDatum(heartbeat_timeout_ms)};
        SPI_execute_with_args(
            "update flowgres.executions set status = 'failed', finished_at = now(), "
            "  error = jsonb_build_object('error_code', 'EXECUTION_ABANDONED', 'message', "
            "    'no heartbeat for ' || $1 || ' ms: the daemon running it stopped or lost the database') "
            "where status = 'running' and heartbeat_at < now() - make_interval(secs => $1 / 1000.0)",
            1, types, values, nullptr, false, 0);
        uint64 abandoned = SPI_processed;
        SPI_execute_with_args(
            "select pg_notify('flowgres_executions', id::text) from flowgres.executions "
            "where status = 'pending' and queued and created_at < now() - make_interval(secs => $1 / 1000.0)",
            1, types, values, nullptr, false, 0);
        uint64 requeued = SPI_processed;
        TimestampTz now = GetCurrentTimestamp();
        if (has_function("partitions_maintain") &&
            (last_partition_pass == 0 || now - last_partition_pass >= kPartitionPassInterval)) {
            last_partition_pass = now;
            Datum retention[1] = {Int32GetDatum(runtime_event_retention_days)};
            // DDL that met a lock past flowgres.partition_lock_timeout_ms is tried again next pass.
            int64 skipped = single_number("select coalesce((flowgres.partitions_maintain($1) ->> 'skipped')::integer, 0)",
                                          1, types, retention);
            if (skipped > 0) {
                last_partition_pass = 0;
                elog(LOG, "flowgres maintenance: %lld partition step(s) met a lock and wait for the next pass",
                     (long long)skipped);
            }
        }
        // Execution events past retention, and expired visitor sessions.
        Oid prune_types[2] = {INT4OID, INT4OID};
        Datum prune_values[2] = {Int32GetDatum(execution_event_retention_days), Int32GetDatum(kEventPruneBatch)};
        run_batched("execution_events_prune", "select flowgres.execution_events_prune($1, $2)", 2, prune_types,
                    prune_values, kEventPruneBatch, now, last_event_prune);
        Datum purge_values[1] = {Int32GetDatum(kSessionPurgeBatch)};
        run_batched("app_sessions_purge", "select flowgres.app_sessions_purge($1)", 1, prune_types, purge_values,
                    kSessionPurgeBatch, now, last_session_purge);
        // Refusals counted in shared memory since the last pass become summary events.
        if (has_function("runtime_refusals_flush")) {
            int64 lost = single_number("select (flowgres.runtime_refusals_flush() ->> 'lost')::bigint", 0, nullptr, nullptr);
            if (lost > 0)
                elog(LOG, "flowgres maintenance: %lld refusal(s) were not counted: the counter table was full", (long long)lost);
        }
        // Usage held for runs that were admitted and never recorded (usage_ledger.hpp): their
        // daemon stopped recording without ending its connections.
        if (int64_t expired = flowgres::usage_holds_expire(flowgres::epoch_seconds_now()); expired > 0)
            elog(LOG, "flowgres maintenance: %lld usage hold(s) of unrecorded runs expired", (long long)expired);
        // Wallet holds of model calls never settled (wallet_ledger.hpp): released, nothing charged.
        if (int64_t expired = flowgres::expire_wallet_holds(flowgres::epoch_seconds_now()); expired > 0)
            elog(LOG, "flowgres maintenance: %lld wallet hold(s) of unsettled calls expired", (long long)expired);
        if (abandoned > 0 || requeued > 0)
            elog(LOG, "flowgres maintenance: %llu abandoned execution(s) failed, %llu pending re-announced",
                 (unsigned long long)abandoned, (unsigned long long)requeued);
    }

    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_stat(false);
    pgstat_report_activity(STATE_IDLE, nullptr);
}

}  // namespace

extern "C" void flowgres_maintenance_main(Datum) {
    pqsignal(SIGHUP, on_sighup);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    BackgroundWorkerInitializeConnection(maintenance_database, nullptr, 0);
    elog(LOG, "flowgres maintenance worker started in database \"%s\"", maintenance_database);

    for (;;) {
        int events = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, maintenance_interval_ms,
                               PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (reload_requested) {
            reload_requested = false;
            ProcessConfigFile(PGC_SIGHUP);
            // New retention settings apply on the next pass, not an hour later.
            last_partition_pass = 0;
            last_event_prune = 0;
            last_session_purge = 0;
        }
        if (events & WL_TIMEOUT) run_maintenance_pass();
    }
}

namespace flowgres {

int execution_heartbeat_timeout_ms() { return heartbeat_timeout_ms; }

// Called from _PG_init: the worker's settings and its registration.
void register_maintenance_worker() {
    DefineCustomStringVariable("flowgres.database", "The database the flowgres maintenance worker connects to.",
                               nullptr, &maintenance_database, "flowgres", PGC_POSTMASTER, 0, nullptr, nullptr,
                               nullptr);
    DefineCustomIntVariable("flowgres.maintenance_interval_ms", "How often the maintenance worker runs.", nullptr,
                            &maintenance_interval_ms, 10000, 100, 3600000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("flowgres.execution_heartbeat_timeout_ms",
                            "A running execution without a heartbeat for this long is failed as abandoned.", nullptr,
                            &heartbeat_timeout_ms, 60000, 100, 86400000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr,
                            nullptr);

    DefineCustomIntVariable("flowgres.runtime_event_retention_days",
                            "Days runtime events are kept; older months are dropped by the maintenance worker.",
                            nullptr, &runtime_event_retention_days, 90, 1, 36500, PGC_SIGHUP, 0, nullptr, nullptr,
                            nullptr);

    DefineCustomIntVariable("flowgres.execution_event_retention_days",
                            "Days the node events of ended executions are kept; their execution_finished stays.",
                            nullptr, &execution_event_retention_days, 30, 1, 36500, PGC_SIGHUP, 0, nullptr, nullptr,
                            nullptr);

    DefineCustomIntVariable("flowgres.partition_lock_timeout_ms",
                            "How long partition DDL waits for a lock before it gives up until the next pass.", nullptr,
                            &partition_lock_timeout_ms, 100, 1, 600000, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);

    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = 10;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "flowgres");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "flowgres_maintenance_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "flowgres maintenance");
    snprintf(worker.bgw_type, BGW_MAXLEN, "flowgres maintenance");
    RegisterBackgroundWorker(&worker);
}

}  // namespace flowgres
