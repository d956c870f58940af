// The workspace database provisioner (README "Workspace databases"; seed §11, §26, §40.1): a library the
// daemon runs on libuv's thread pool and flowgres-provision runs for DBAs. Blocking libpq.
//
// A provision, for one workspace:
//   1. claim it in the control plane (workspace_database_claim: permission, db_storage quota,
//      placement, one provisioner at a time), which answers with a work order;
//   2. stage a new password, sealed with the master key, before any role is given it;
//   3. on the chosen server, as its administrator: role wsu_<id> (LOGIN, nothing more, member
//      of flowgres_tenants), database ws_<id> with CONNECT and TEMP revoked from PUBLIC and
//      CONNECT granted to the role, PUBLIC's rights on schema public revoked, schema `data`
//      owned by the role and first on its search_path; then log in as the role to prove it;
//   4. apply the tenant migrations (migrations/) up to the latest;
//   5. report ready (with the sealed password, schema version and size) or failed.
// Every step checks what exists first, so calling provision again finishes or repairs a
// half-done provision. A step that fails for a reason that may pass (connection lost, server
// starting or shutting down, lock conflicts) is retried with exponential backoff; past the
// last attempt, or at once for any other error, a database that was never ready is rolled
// back (database and role dropped) and the failure recorded, with a db.provision.failed event.
// Not for: per-workspace connection pools (the daemon's), tenant migrations.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "flowgres/errors.hpp"
#include "flowgres/secret_box.hpp"

namespace flowgres::provisioner {

struct Options {
    std::string control_conninfo;  // the control-plane database
    // Who the control plane sees acting: a user id, "operator", or "" for the connecting
    // role's own identity (a DBA's psql role: the system actor).
    std::string actor;
    std::string claimant;  // names this provisioner in claims ("host:pid")
    int max_attempts = 5;
    std::chrono::milliseconds first_backoff{250};
    std::chrono::milliseconds max_backoff{4000};
    int connect_timeout_seconds = 5;
    int tool_timeout_seconds = 3600;   // pg_dump or pg_restore running longer is killed (a failure)
    int lock_timeout_ms = 30000;       // the provisioner's sessions and pg_dump wait no longer for a lock
    int tenant_connection_limit = 50;  // CONNECTION LIMIT of each tenant role
    std::string migrations_dir;        // tenant migrations; "" → the ones flowgres ships
    std::string backup_dir;            // where dumps are written; "" → backups refused
    int backup_keep = 7;               // completed backups kept per workspace; older files deleted
    // Called between attempts with the attempt that failed and its error (logging, tests).
    std::function<void(int attempt, const std::string &error)> on_retry;
};

// A claim on a workspace's database, taken and not yet carried out: the first half of
// provision() and rotate_secret(), for callers that answer before the work is done (the
// daemon's ?async=true). Holds the work order, which carries sealed secrets: never show it.
struct Claim {
    std::string workspace_id;
    std::string operation;        // provision, rotate_secret, migrate, rollback, backup, restore or schema_change
    std::optional<int> target_version;  // migrate (default: the latest) and rollback
    std::string reason = "manual";      // backup: manual, scheduled or pre_change
    std::string backup_id;              // restore
    std::string change_id;              // schema_change
    bool into_copy = false;             // restore into <db_name>_restore, leaving the database as it is
    std::string work_order;       // workspace_database_claim's document
    std::string status_document;  // workspace_database_get's, for the caller
};
Claim claim(const Options &options, const Keyring &keyring, const std::string &workspace_id, const std::string &operation,
            const std::string &server = "", std::optional<int> target_version = std::nullopt);
// Does the claimed work and reports it; returns the workspace_database document. Throws as
// provision() does.
std::string carry_out(const Options &options, const Keyring &keyring, const Claim &claim);

// Provisions (or repairs) the workspace's database; `server` pins a server (operator only).
// Returns the workspace_database document. Throws Error: the control plane's refusals
// (PERMISSION_DENIED, QUOTA_EXCEEDED, PROVISION_IN_PROGRESS, NO_DATABASE_SERVER, …),
// PROVISION_FAILED after the failure is recorded, DB_UNAVAILABLE when the control plane
// cannot be reached, SECRET_* when a stored secret does not open.
std::string provision(const Options &options, const Keyring &keyring, const std::string &workspace_id,
                      const std::string &server = "");

// Gives the workspace's role a new password: staged sealed first, then set on the server,
// then the role's open sessions ended, so the old password stops working at once.
std::string rotate_secret(const Options &options, const Keyring &keyring, const std::string &workspace_id);

// Tenant migrations (migrations/, tenant_migrations.hpp) of a ready database: to the latest
// or `target_version`, up or down (provision() migrates to the latest by itself). Throws
// MIGRATION_FAILED, with the database left at the last version that completed.
std::string migrate(const Options &options, const Keyring &keyring, const std::string &workspace_id,
                    std::optional<int> target_version = std::nullopt);

// Backup (pg_dump custom format into options.backup_dir; returns the backup document) and
// restore (checked against the backup's row counts; returns {backup_id, restored_into,
// verified, row_counts}). Throw BACKUP_FAILED, BACKUP_NOT_FOUND.
std::string backup(const Options &options, const Keyring &keyring, const std::string &workspace_id,
                   const std::string &reason = "manual");
std::string restore(const Options &options, const Keyring &keyring, const std::string &workspace_id,
                    const std::string &backup_id, bool into_copy);

// Per-app database roles (seed §113): a login role on the workspace database bound to one
// app, read (SELECT), write (SELECT, INSERT, UPDATE, DELETE and sequences) or admin (the
// workspace role's rights), on tables there now and made later; VALID UNTIL its expiry.
// create returns the role document (never the password); revoke ends its sessions, hands
// what it owns to the workspace role, and drops it. Both throw PROVISION_FAILED with the
// failure recorded.
std::string create_app_role(const Options &options, const Keyring &keyring, const std::string &app_id, const std::string &role_type,
                            const std::string &expires_at = "");
std::string revoke_app_role(const Options &options, const Keyring &keyring, const std::string &role_id, const std::string &reason = "");

// Schema changes (README "Workspace databases", schema_plan.hpp). submit records the version's db_schema as a
// change and plans it against the tenant's catalog, read as the tenant's role; returns the
// change (planned, or unchanged when there is nothing to do). apply carries out an approved
// change under the database's claim: a pre_change backup, then, in one transaction as the
// tenant's role, the approved statements between two checks (the catalog is the one planned
// against — else SCHEMA_CHANGE_STALE — and afterwards matches the db_schema), recorded in the
// tenant's flowgres_meta.schema_changes. Any failure rolls the whole change back and is
// reported (SCHEMA_CHANGE_FAILED, BACKUP_FAILED). The server's administrator must be able to
// SET ROLE to the tenant's role (a superuser, or a member of it).
std::string submit_schema_change(const Options &options, const Keyring &keyring, const std::string &app_id,
                                 const std::string &version_id);
std::string apply_schema_change(const Options &options, const Keyring &keyring, const std::string &change_id);
// The first half of apply_schema_change (the claim; status_document is the change, applying),
// for callers that answer before the work is done; carry_out() does the rest.
Claim claim_schema_change(const Options &options, const Keyring &keyring, const std::string &change_id);

// Re-seals every stored secret not sealed with the keyring's first key (after a master key
// rotation). Returns how many were re-sealed.
int reseal_secrets(const Options &options, const Keyring &keyring);

// The libpq connection string for the workspace's database as its own role (the password
// included), from workspace_database_secret's document: for the daemon's pools and tests.
struct TenantConnection {
    std::string conninfo;
    std::string db_user;
};
TenantConnection tenant_connection(const Keyring &keyring, const std::string &secret_document);

}  // namespace flowgres::provisioner
