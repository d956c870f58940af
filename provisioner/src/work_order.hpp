// What the provisioner's work shares (provisioner.cpp, backups.cpp, app_roles.cpp,
// schema_changes.cpp): the work order a claim answers with, how to reach its server, retries,
// and how a claim ends. Internal to the provisioner library. Not for: the steps themselves.
#pragma once

#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blocking_connection.hpp"
#include "control_plane.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "flowgres/provisioner.hpp"
#include "flowgres/secret_box.hpp"

namespace flowgres::provisioner {

// The group every tenant role belongs to, so a DBA can match all of them in pg_hba.conf
// (`host all +flowgres_tenants … reject` after the rules that let each reach its own database).
inline constexpr const char *kTenantGroup = "flowgres_tenants";

// The schema each tenant owns; the only one its role may create objects in.
inline constexpr const char *kTenantSchema = "data";

// How long a claim holds before another provisioner may take the work over.
inline constexpr int kLeaseSeconds = 300;

// What workspace_database_claim answers: the database, its role and its server. Carries
// sealed secrets: never show it.
struct WorkOrder {
    std::string workspace_id;
    std::string previous_status;  // new, provisioning, failed, ready
    std::string db_name;
    std::string db_user;
    std::optional<std::string> secret_ref;
    std::optional<std::string> pending_secret_ref;
    std::string server_id;
    std::string server_name;
    std::string host;
    std::string port;
    std::string admin_conninfo;
    std::optional<std::string> admin_secret_ref;
};

// libpq connection parameters, in order (later ones win).
using Parameters = std::vector<std::pair<std::string, std::string>>;

// A string (or integer, as text) member of a control-plane document; INTERNAL_ERROR when absent.
std::string text_member(const json_t *object, const char *key);

std::optional<std::string> optional_member(const json_t *object, const char *key);

WorkOrder parse_work_order(const std::string &document);

// The associated data the workspace role's password is sealed with.
std::string secret_context(const std::string &workspace_id);

// How to reach the order's server as its administrator; `database` overrides the one the
// admin connection string names (the tenant's database for the steps inside it).
Parameters admin_parameters(const WorkOrder &order, const Keyring &keyring, const Options &options,
                            const std::string &database = "");

Parameters tenant_parameters(const WorkOrder &order, const std::string &password, const Options &options);

// Runs `step` until it succeeds, it fails for a reason that will not pass, or the attempts
// run out; waits 250 ms, 500 ms, 1 s … (capped, with jitter) between attempts.
void with_retries(const Options &options, int &attempts, const std::function<void()> &step);

void create_unless_exists(BlockingConnection &admin, const std::string &sql, const char *duplicate_sqlstate);

void ensure_database(BlockingConnection &admin, const WorkOrder &order);

// Logs in as the role the way tenants will (host:port, password): a provision that cannot
// be used is not ready.
void prove_login(const WorkOrder &order, const std::string &password, const Options &options);

std::string report(ControlPlane &control, const Options &options, const WorkOrder &order, const std::string &outcome);

// The claim's end after work on a ready database failed: it stays ready as it was.
void report_failure(ControlPlane &control, const Options &options, const WorkOrder &order, const std::exception &failure,
                    int attempts);

// Work under a claim failed. When the control plane itself is what failed, nothing can record
// it: the error goes on at once and the claim's lease runs out.
bool control_plane_down(const std::exception &failure);

// After the failure was recorded: a flowgres error goes on as it is (a secret that does not
// open keeps its own code); anything else becomes `code`, with `what` and the failure's text.
[[noreturn]] void rethrow_as(const std::exception &failure, ErrorCode code, const std::string &what, const std::string &details_json);

void require_keys(const Keyring &keyring);

std::string new_password();

std::string utc_timestamp(const char *format);

std::string admin_password(const WorkOrder &order, const Keyring &keyring);

// ---- backups.cpp

// pg_dump of a ready database into <backup_dir>/<workspace id>/, with the exact row count of
// each table taken in the same snapshot (exported to pg_dump), so a restore can be checked.
// Records the backup (a failed one too, its file removed) and prunes old ones; the claim
// stays with the caller. Returns the backup document.
std::string take_backup(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order,
                        const std::string &reason, int &attempts);

std::string carry_out_backup(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order,
                             const std::string &reason);

// Restores a backup into a fresh database <db_name>_restore and checks every table's rows
// against the backup's counts. Into the workspace itself, that copy then takes the
// database's place (renamed, its grants made again) and the replaced one is dropped: the
// workspace database is exactly the backup, or, when anything fails before the swap,
// untouched.
std::string carry_out_restore(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order,
                              const std::string &backup_id, bool into_copy);

// ---- schema_changes.cpp

// apply_schema_change's work under its claim (schema_change_apply_begin's work order).
std::string carry_out_schema_change(const Options &options, const Keyring &keyring, ControlPlane &control,
                                    const std::string &change_id, const std::string &order_json);

}  // namespace flowgres::provisioner
