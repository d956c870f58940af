// _PG_init (pg_cron's shape): refuse to load unless preloaded, define the flowgres.* settings
// and reserve the prefix, register the maintenance worker (worker_maintenance.cpp) and the
// shared memory of the rate limiter (rate_limiter.cpp), the usage ledger (usage_ledger.cpp), the
// refusal counter (refusal_counter.cpp), the runs-at-once counts (run_cap.cpp) and the catalogue
// caches' generation (catalog_cache.cpp).
#include "postgres.hpp"

extern "C" {
PG_MODULE_MAGIC;

void _PG_init(void);
}

namespace flowgres {
void register_maintenance_worker();  // worker_maintenance.cpp
void register_rate_limiter();        // rate_limiter.cpp
void register_usage_ledger();        // usage_ledger.cpp
void register_wallet_ledger();       // wallet_ledger.cpp
void register_refusal_counter();     // refusal_counter.cpp
void register_run_cap();             // run_cap.cpp
void register_cache_generations();  // catalog_cache.cpp
}

namespace {

char *actor_setting = nullptr;
int workspace_restore_days = 30;
// Custom domains (app_domain.cpp reads them with current_setting).
char *platform_hosts = nullptr;
int domain_verify_attempts = 10;
char *domain_support_url = nullptr;

}  // namespace

extern "C" void _PG_init(void) {
    if (!process_shared_preload_libraries_in_progress)
        ereport(ERROR, (errmsg("flowgres must be loaded via shared_preload_libraries"),
                        errhint("Add flowgres to shared_preload_libraries in postgresql.conf and restart.")));

    // Set per transaction by the daemon (SET LOCAL); honoured only for flowgres_service members
    // and superusers, so an ordinary role cannot act for someone else by setting it.
    DefineCustomStringVariable("flowgres.actor", "The flowgres user id the current statement acts for.",
                               "Honoured only for members of flowgres_service and superusers.",
                               &actor_setting, "", PGC_USERSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("flowgres.workspace_restore_days",
                            "Days a soft-deleted workspace can still be restored.", nullptr,
                            &workspace_restore_days, 30, 0, 3650, PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
    // Domain settings: postgresql.conf or ALTER SYSTEM; a superuser may SET them (tests do).
    DefineCustomStringVariable("flowgres.platform_hosts",
                               "The platform's own host names, comma-separated: no app may bind them or a name below "
                               "them; the first is the CNAME target of custom domains.",
                               nullptr, &platform_hosts, "localhost", PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("flowgres.domain_verify_attempts",
                            "Failed DNS checks of a custom domain after which the sweep stops and support_url shows.",
                            nullptr, &domain_verify_attempts, 10, 1, 1000, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable("flowgres.domain_support_url",
                               "Where a team whose domain keeps failing its DNS check is sent for help (empty: none).",
                               nullptr, &domain_support_url, "", PGC_SUSET, 0, nullptr, nullptr, nullptr);
    flowgres::register_maintenance_worker();
    flowgres::register_rate_limiter();
    flowgres::register_usage_ledger();
    flowgres::register_wallet_ledger();
    flowgres::register_refusal_counter();
    flowgres::register_run_cap();
    flowgres::register_cache_generations();
    MarkGUCPrefixReserved("flowgres");
}
