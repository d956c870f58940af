// Provisioning, repairing and re-keying workspace databases (provisioner.hpp has the steps).
#include "flowgres/provisioner.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>
#include <thread>

#include "blocking_connection.hpp"
#include "control_plane.hpp"
#include "dump_tools.hpp"
#include "tenant_migrations.hpp"
#include "flowgres/crypto.hpp"
#include "flowgres/json.hpp"
#include "flowgres/schema_plan.hpp"

namespace flowgres::provisioner {
namespace {

// The group every tenant role belongs to, so a DBA can match all of them in pg_hba.conf
// (`host all +flowgres_tenants … reject` after the rules that let each reach its own database).
constexpr const char *kTenantGroup = "flowgres_tenants";
// The schema each tenant owns; the only one its role may create objects in.
constexpr const char *kTenantSchema = "data";
constexpr int kLeaseSeconds = 300;

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

std::string text_member(const json_t *object, const char *key) {
    const json_t *value = json_object_get(object, key);
    if (json_is_string(value)) return json_string_value(value);
    if (json_is_integer(value)) return std::to_string(json_integer_value(value));
    throw Error(ErrorCode::INTERNAL_ERROR, std::string("the control plane's document lacks ") + key);
}

std::optional<std::string> optional_member(const json_t *object, const char *key) {
    const json_t *value = json_object_get(object, key);
    return json_is_string(value) ? std::optional<std::string>(json_string_value(value)) : std::nullopt;
}

WorkOrder parse_work_order(const std::string &document) {
    Json order = parse_json(document, "work order");
    const json_t *server = json_object_get(order.get(), "server");
    return WorkOrder{text_member(order.get(), "workspace_id"), text_member(order.get(), "previous_status"),
                     text_member(order.get(), "db_name"),      text_member(order.get(), "db_user"),
                     optional_member(order.get(), "secret_ref"), optional_member(order.get(), "pending_secret_ref"),
                     text_member(server, "id"),                text_member(server, "name"),
                     text_member(server, "host"),              text_member(server, "port"),
                     text_member(server, "admin_conninfo"),    optional_member(server, "admin_secret_ref")};
}

std::string secret_context(const std::string &workspace_id) { return "workspace_database:" + workspace_id; }

using Parameters = std::vector<std::pair<std::string, std::string>>;

// How to reach the order's server as its administrator; `database` overrides the one the
// admin connection string names (the tenant's database for the steps inside it).
Parameters admin_parameters(const WorkOrder &order, const Keyring &keyring, const Options &options,
                            const std::string &database = "") {
    Parameters parameters{{"dbname", order.admin_conninfo},
                          {"connect_timeout", std::to_string(options.connect_timeout_seconds)},
                          {"application_name", "flowgres-provision"}};
    if (order.admin_secret_ref)
        parameters.push_back({"password", keyring.open(*order.admin_secret_ref, "database_server:" + order.server_id)});
    if (!database.empty()) parameters.push_back({"dbname", database});
    return parameters;
}

// Runs `step` until it succeeds, it fails for a reason that will not pass, or the attempts
// run out; waits 250 ms, 500 ms, 1 s … (capped, with jitter) between attempts.
void with_retries(const Options &options, int &attempts, const std::function<void()> &step) {
    std::chrono::milliseconds backoff = options.first_backoff;
    std::minstd_rand jitter(std::random_device{}());
    for (;;) {
        attempts++;
        try {
            step();
            return;
        } catch (const DatabaseError &error) {
            if (!error.may_pass() || attempts >= options.max_attempts) throw;
            if (options.on_retry) options.on_retry(attempts, error.what());
            auto wait = backoff + std::chrono::milliseconds(jitter() % (backoff.count() / 4 + 1));
            std::this_thread::sleep_for(wait);
            backoff = std::min(backoff * 2, options.max_backoff);
        }
    }
}

void create_unless_exists(BlockingConnection &admin, const std::string &sql, const char *duplicate_sqlstate) {
    try {
        admin.run(sql);
    } catch (const DatabaseError &error) {
        if (error.sqlstate() != duplicate_sqlstate) throw;  // another provisioner made it first
    }
}

void ensure_tenant_group(BlockingConnection &admin) {
    if (!admin.value("select 1 from pg_roles where rolname = $1", {kTenantGroup}))
        create_unless_exists(admin, std::string("create role ") + kTenantGroup + " nologin", "42710");
}

// The role can log in and do nothing else on the server; its password is whatever `password`
// is now (a repair sets it again, which is how a half-done provision is finished).
void ensure_role(BlockingConnection &admin, const WorkOrder &order, const std::string &password, const Options &options) {
    std::string role = admin.quote_identifier(order.db_user);
    std::string attributes = " with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls inherit connection limit " +
                             std::to_string(options.tenant_connection_limit) + " password " +
                             admin.quote_literal(admin.scram_verifier(password, order.db_user));
    if (!admin.value("select 1 from pg_roles where rolname = $1", {order.db_user}))
        create_unless_exists(admin, "create role " + role + " nologin", "42710");
    admin.run("alter role " + role + attributes);
    admin.run(std::string("grant ") + kTenantGroup + " to " + role);
    // A role named like the database, holding only the tenant role: pg_hba.conf's `samerole`
    // then lets each tenant reach its own database and no other (README, "Database servers").
    std::string database_role = admin.quote_identifier(order.db_name);
    if (!admin.value("select 1 from pg_roles where rolname = $1", {order.db_name}))
        create_unless_exists(admin, "create role " + database_role + " nologin", "42710");
    admin.run("grant " + database_role + " to " + role);
}

void ensure_database(BlockingConnection &admin, const WorkOrder &order) {
    std::string database = admin.quote_identifier(order.db_name);
    std::string role = admin.quote_identifier(order.db_user);
    if (!admin.value("select 1 from pg_database where datname = $1", {order.db_name}))
        create_unless_exists(admin, "create database " + database, "42P04");
    admin.run("revoke connect, temporary on database " + database + " from public");
    admin.run("grant connect on database " + database + " to " + role);
    admin.run("alter role " + role + " in database " + database + " set search_path = " + kTenantSchema);
}

// Inside the tenant's database: PUBLIC keeps nothing of schema public, and the role owns
// its schema (CREATE, ALTER, INDEX, DROP and the DML of seed §11.2 come with owning it).
void secure_database(BlockingConnection &tenant_admin, const WorkOrder &order) {
    std::string role = tenant_admin.quote_identifier(order.db_user);
    tenant_admin.run("revoke all on schema public from public");
    auto owner = tenant_admin.value(
        "select r.rolname from pg_namespace n join pg_roles r on r.oid = n.nspowner where n.nspname = $1", {kTenantSchema});
    if (!owner)
        create_unless_exists(tenant_admin, std::string("create schema ") + kTenantSchema + " authorization " + role, "42P06");
    else if (*owner != order.db_user)
        tenant_admin.run(std::string("alter schema ") + kTenantSchema + " owner to " + role);
}

Parameters tenant_parameters(const WorkOrder &order, const std::string &password, const Options &options) {
    return {{"host", order.host},         {"port", order.port},
            {"dbname", order.db_name},    {"user", order.db_user},
            {"password", password},       {"connect_timeout", std::to_string(options.connect_timeout_seconds)},
            {"application_name", "flowgres-provision"}};
}

// Logs in as the role the way tenants will (host:port, password): a provision that cannot
// be used is not ready.
void prove_login(const WorkOrder &order, const std::string &password, const Options &options) {
    BlockingConnection tenant(tenant_parameters(order, password, options));
    if (tenant.value("select current_user") != order.db_user)
        throw DatabaseError("the tenant login did not act as " + order.db_user, "XX000");
}

void roll_back(const WorkOrder &order, const Keyring &keyring, const Options &options) {
    BlockingConnection admin(admin_parameters(order, keyring, options));
    admin.run("drop database if exists " + admin.quote_identifier(order.db_name) + " with (force)");
    admin.run("drop role if exists " + admin.quote_identifier(order.db_user));
    admin.run("drop role if exists " + admin.quote_identifier(order.db_name));
}

std::string report(ControlPlane &control, const Options &options, const WorkOrder &order, const std::string &outcome) {
    return control.call("select flowgres.workspace_database_report($1::uuid, $2, $3::jsonb)::text",
                        {order.workspace_id, options.claimant, outcome});
}

std::string new_password() { return random_token(32); }

std::vector<Migration> shipped_migrations(const Options &options) {
    try {
        return load_migrations(options.migrations_dir.empty() ? default_migrations_directory() : options.migrations_dir);
    } catch (const std::invalid_argument &error) {
        throw Error(ErrorCode::INTERNAL_ERROR, error.what());
    }
}

std::string optional_number(int value) { return value >= 0 ? std::to_string(value) : "null"; }

// The claim's end after work on a ready database failed: it stays ready as it was.
void report_failure(ControlPlane &control, const Options &options, const WorkOrder &order, const std::exception &failure,
                    int attempts) {
    report(control, options, order,
           "{\"status\":\"failed\",\"error\":" + json_quote(failure.what()) + ",\"attempts\":" + std::to_string(std::max(attempts, 1)) + "}");
}

// Work under a claim failed. When the control plane itself is what failed, nothing can record
// it: the error goes on at once and the claim's lease runs out.
bool control_plane_down(const std::exception &failure) {
    auto *error = dynamic_cast<const Error *>(&failure);
    return error && error->code() == ErrorCode::DB_UNAVAILABLE;
}

// After the failure was recorded: a flowgres error goes on as it is (a secret that does not
// open keeps its own code); anything else becomes `code`, with `what` and the failure's text.
[[noreturn]] void rethrow_as(const std::exception &failure, ErrorCode code, const std::string &what, const std::string &details_json) {
    if (auto *error = dynamic_cast<const Error *>(&failure)) throw *error;
    throw Error(code, what + ": " + failure.what(), details_json);
}

void require_keys(const Keyring &keyring) { keyring.sealing_key_id(); }

std::string carry_out_provision(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order) {
    const std::string &workspace_id = order.workspace_id;
    bool was_ready = order.previous_status == "ready";
    std::string password, sealed;
    int attempts = 0;
    int schema_version = -1;  // unknown until the migrations ran
    std::vector<Migration> migrations = shipped_migrations(options);
    try {
        if (was_ready) {
            // A repair keeps the password in use (a staged one wins: a rotation may have
            // given it to the role before it stopped).
            sealed = order.pending_secret_ref.value_or(order.secret_ref.value_or(""));
            password = keyring.open(sealed, secret_context(workspace_id));
        } else {
            password = new_password();
            sealed = keyring.seal(password, secret_context(workspace_id));
            control.call("select flowgres.workspace_database_stage_secret($1::uuid, $2, $3)::text",
                         {workspace_id, options.claimant, sealed});
        }
        std::string size;
        with_retries(options, attempts, [&] {
            BlockingConnection admin(admin_parameters(order, keyring, options));
            admin.run("set statement_timeout = '120s'");
            admin.run("set lock_timeout = '10s'");
            ensure_tenant_group(admin);
            ensure_role(admin, order, password, options);
            ensure_database(admin, order);
            {
                BlockingConnection tenant_admin(admin_parameters(order, keyring, options, order.db_name));
                secure_database(tenant_admin, order);
            }
            prove_login(order, password, options);
            {
                BlockingConnection tenant_admin(admin_parameters(order, keyring, options, order.db_name));
                migrate_to(tenant_admin, migrations, static_cast<int>(migrations.size()), order.db_user, schema_version);
            }
            size = admin.value("select pg_database_size($1)", {order.db_name}).value_or("0");
        });
        return report(control, options, order,
                      "{\"status\":\"ready\",\"secret_ref\":" + json_quote(sealed) + ",\"size_bytes\":" + size +
                          ",\"schema_version\":" + optional_number(schema_version) + ",\"attempts\":" + std::to_string(attempts) + "}");
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        std::string message = failure.what();
        bool rolled_back = false;
        if (!was_ready) {
            int rollback_attempts = 0;
            Options once = options;
            once.max_attempts = 2;
            try {
                with_retries(once, rollback_attempts, [&] { roll_back(order, keyring, options); });
                rolled_back = true;
            } catch (const std::exception &rollback_failure) {
                message += " (and the rollback failed: " + std::string(rollback_failure.what()) + ")";
            }
        }
        report(control, options, order,
               "{\"status\":\"failed\",\"error\":" + json_quote(message) + ",\"rolled_back\":" + (rolled_back ? "true" : "false") +
                   ",\"schema_version\":" + optional_number(rolled_back ? 0 : schema_version) +
                   ",\"attempts\":" + std::to_string(std::max(attempts, 1)) + "}");
        if (auto *error = dynamic_cast<const Error *>(&failure)) throw *error;
        throw Error(ErrorCode::PROVISION_FAILED, "workspace " + workspace_id + "'s database could not be provisioned: " + message,
                    "{\"error\":" + json_quote(message) + ",\"attempts\":" + std::to_string(attempts) +
                        ",\"rolled_back\":" + (rolled_back ? "true" : "false") + ",\"server\":" + json_quote(order.server_name) + "}");
    }
}

std::string carry_out_rotation(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order) {
    const std::string &workspace_id = order.workspace_id;
    int attempts = 0;
    try {
        std::string password = new_password();
        std::string sealed = keyring.seal(password, secret_context(workspace_id));
        control.call("select flowgres.workspace_database_stage_secret($1::uuid, $2, $3)::text", {workspace_id, options.claimant, sealed});
        with_retries(options, attempts, [&] {
            BlockingConnection admin(admin_parameters(order, keyring, options));
            ensure_role(admin, order, password, options);
            // New logins need the new password at once; sessions opened with the old one end.
            admin.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = $1 and pid <> pg_backend_pid()",
                        {order.db_user});
            prove_login(order, password, options);
        });
        return report(control, options, order,
                      "{\"status\":\"ready\",\"secret_ref\":" + json_quote(sealed) + ",\"attempts\":" + std::to_string(attempts) + "}");
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        report_failure(control, options, order, failure, attempts);
        rethrow_as(failure, ErrorCode::PROVISION_FAILED, "workspace " + workspace_id + "'s password could not be rotated",
                   "{\"error\":" + json_quote(failure.what()) + ",\"attempts\":" + std::to_string(attempts) + "}");
    }
}

// Migrates a ready database up or down (operation migrate or rollback). Nothing is rolled
// back beyond the failing migration itself: the database is ready at the version it reached.
std::string carry_out_migration(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order,
                                const std::string &operation, std::optional<int> target) {
    std::vector<Migration> migrations = shipped_migrations(options);
    int version = -1;
    int attempts = 0;
    try {
        int goal = target.value_or(static_cast<int>(migrations.size()));
        with_retries(options, attempts, [&] {
            BlockingConnection tenant_admin(admin_parameters(order, keyring, options, order.db_name));
            int current = current_version(tenant_admin);
            if (operation == "rollback" && goal > current)
                throw field_error("target_version", "must not be above the current version, " + std::to_string(current));
            if (operation == "migrate" && goal < current)
                throw field_error("target_version", "must not be below the current version, " + std::to_string(current) +
                                                        " (that is a rollback)");
            migrate_to(tenant_admin, migrations, goal, order.db_user, version);
        });
        return report(control, options, order,
                      "{\"status\":\"ready\",\"schema_version\":" + optional_number(version) + ",\"attempts\":" +
                          std::to_string(attempts) + "}");
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        report(control, options, order,
               "{\"status\":\"failed\",\"error\":" + json_quote(failure.what()) + ",\"schema_version\":" +
                   optional_number(version) + ",\"attempts\":" + std::to_string(std::max(attempts, 1)) + "}");
        rethrow_as(failure, ErrorCode::MIGRATION_FAILED, "workspace " + order.workspace_id + "'s database could not be migrated",
                   "{\"version\":" + optional_number(version) + ",\"error\":" + json_quote(failure.what()) + "}");
    }
}

std::string utc_timestamp(const char *format) {
    std::time_t now = std::time(nullptr);
    std::tm parts{};
    gmtime_r(&now, &parts);
    char text[40];
    std::strftime(text, sizeof text, format, &parts);
    return text;
}

std::string admin_password(const WorkOrder &order, const Keyring &keyring) {
    return order.admin_secret_ref ? keyring.open(*order.admin_secret_ref, "database_server:" + order.server_id) : "";
}


// pg_dump of a ready database into <backup_dir>/<workspace id>/, with the exact row count of
// each table taken in the same snapshot (exported to pg_dump), so a restore can be checked.
// Records the backup (a failed one too, its file removed) and prunes old ones; the claim
// stays with the caller. Returns the backup document.
std::string take_backup(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order,
                        const std::string &reason, int &attempts) {
    std::string started_at = utc_timestamp("%Y-%m-%dT%H:%M:%SZ");
    std::string path;
    try {
        if (options.backup_dir.empty())
            throw Error(ErrorCode::BACKUP_FAILED, "no backup directory is configured (backup_dir, --backup-dir)");
        std::string directory = options.backup_dir + "/" + order.workspace_id;
        mkdir(options.backup_dir.c_str(), 0700);
        if (mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST)
            throw std::runtime_error("cannot create " + directory + ": " + std::strerror(errno));
        path = directory + "/" + utc_timestamp("%Y%m%dT%H%M%SZ") + "_" + random_token(6) + ".dump";
        std::string counts;
        int version = 0;
        with_retries(options, attempts, [&] {
            BlockingConnection snapshot(admin_parameters(order, keyring, options, order.db_name));
            snapshot.run("begin isolation level repeatable read read only");
            std::string snapshot_id = snapshot.value("select pg_export_snapshot()").value_or("");
            counts = table_row_counts(snapshot);
            version = current_version(snapshot);
            ToolConnection tool = tool_connection(order.admin_conninfo, order.db_name, admin_password(order, keyring));
            dump_database(tool, path, snapshot_id);
            snapshot.run("commit");
        });
        struct stat file {};
        stat(path.c_str(), &file);
        std::string backup = control.call(
            "select flowgres.workspace_database_backup_record($1::uuid, $2, $3::jsonb)::text",
            {order.workspace_id, options.claimant,
             "{\"status\":\"completed\",\"reason\":" + json_quote(reason) + ",\"location\":" + json_quote(path) +
                 ",\"size_bytes\":" + std::to_string(file.st_size) + ",\"sha256\":" + json_quote(file_sha256(path)) +
                 ",\"schema_version\":" + std::to_string(version) + ",\"row_counts\":" + counts +
                 ",\"started_at\":" + json_quote(started_at) + "}"});
        // Old dumps beyond the number kept: their rows say pruned, their files go.
        Json pruned = parse_json(control.call("select flowgres.workspace_database_backup_prune($1::uuid, $2::integer)::text",
                                              {order.workspace_id, std::to_string(options.backup_keep)}),
                                 "pruned");
        size_t index;
        json_t *location;
        json_array_foreach(pruned.get(), index, location) if (json_is_string(location)) unlink(json_string_value(location));
        return backup;
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        if (!path.empty()) unlink(path.c_str());
        control.call("select flowgres.workspace_database_backup_record($1::uuid, $2, $3::jsonb)::text",
                     {order.workspace_id, options.claimant,
                      "{\"status\":\"failed\",\"reason\":" + json_quote(reason) + ",\"error\":" + json_quote(failure.what()) +
                          ",\"started_at\":" + json_quote(started_at) + "}"});
        throw;
    }
}

std::string carry_out_backup(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order,
                             const std::string &reason) {
    int attempts = 0;
    try {
        std::string backup = take_backup(options, keyring, control, order, reason, attempts);
        Json document = parse_json(backup, "backup");
        report(control, options, order,
               "{\"status\":\"ready\",\"schema_version\":" + dump_json(json_object_get(document.get(), "schema_version")) +
                   ",\"attempts\":" + std::to_string(attempts) + "}");
        return backup;
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        report_failure(control, options, order, failure, attempts);
        rethrow_as(failure, ErrorCode::BACKUP_FAILED, "workspace " + order.workspace_id + "'s database could not be backed up",
                   "{\"error\":" + json_quote(failure.what()) + "}");
    }
}

// Restores a backup into a fresh database <db_name>_restore and checks every table's rows
// against the backup's counts. Into the workspace itself, that copy then takes the
// database's place (renamed, its grants made again) and the replaced one is dropped: the
// workspace database is exactly the backup, or, when anything fails before the swap,
// untouched.
std::string carry_out_restore(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order,
                              const std::string &backup_id, bool into_copy) {
    int attempts = 0;
    try {
        Json backup = parse_json(control.call("select flowgres.workspace_database_backup_get($1::uuid, $2::uuid)::text",
                                              {order.workspace_id, backup_id}),
                                 "backup");
        std::string path = text_member(backup.get(), "location");
        if (access(path.c_str(), R_OK) != 0)
            throw Error(ErrorCode::BACKUP_FAILED, "the backup file of " + backup_id + " is gone from " + path);
        if (file_sha256(path) != text_member(backup.get(), "sha256"))
            throw Error(ErrorCode::BACKUP_FAILED, "the backup file of " + backup_id + " was altered (its SHA-256 differs)");
        std::string expected = dump_json(json_object_get(backup.get(), "row_counts"));
        std::string copy = order.db_name + "_restore";
        std::string password = admin_password(order, keyring);
        std::string restored_counts;
        with_retries(options, attempts, [&] {
            BlockingConnection admin(admin_parameters(order, keyring, options));
            std::string copy_name = admin.quote_identifier(copy);
            admin.run("drop database if exists " + copy_name + " with (force)");
            // From template0: a restore recreates everything the dump holds, which must not
            // meet what a DBA put into template1.
            admin.run("create database " + copy_name + " template template0");
            admin.run("revoke connect, temporary on database " + copy_name + " from public");
            restore_database(tool_connection(order.admin_conninfo, copy, password), path, false);
            BlockingConnection check(admin_parameters(order, keyring, options, copy));
            restored_counts = table_row_counts(check);
        });
        Json restored = parse_json(restored_counts, "row counts");
        if (!json_equal(restored.get(), json_object_get(backup.get(), "row_counts")))
            throw Error(ErrorCode::BACKUP_FAILED, "the restored rows differ from the backup's",
                        "{\"expected\":" + expected + ",\"restored\":" + restored_counts + "}");
        std::string restored_into = copy;
        if (!into_copy) {
            BlockingConnection admin(admin_parameters(order, keyring, options));
            std::string database = admin.quote_identifier(order.db_name);
            std::string replaced = admin.quote_identifier(order.db_name + "_replaced");
            admin.run("drop database if exists " + replaced + " with (force)");
            admin.run("alter database " + database + " allow_connections false");
            admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
                        {order.db_name});
            admin.run("alter database " + database + " rename to " + replaced);
            try {
                admin.run("alter database " + admin.quote_identifier(copy) + " rename to " + database);
            } catch (const DatabaseError &) {
                admin.run("alter database " + replaced + " rename to " + database);
                admin.run("alter database " + database + " allow_connections true");
                throw;
            }
            ensure_database(admin, order);
            admin.run("drop database " + replaced + " with (force)");
            restored_into = order.db_name;
        }
        const json_t *version = json_object_get(backup.get(), "schema_version");
        report(control, options, order,
               "{\"status\":\"ready\",\"attempts\":" + std::to_string(std::max(attempts, 1)) +
                   (into_copy || !json_is_integer(version) ? std::string()
                                                           : ",\"schema_version\":" + std::to_string(json_integer_value(version))) +
                   "}");
        return "{\"backup_id\":" + json_quote(backup_id) + ",\"restored_into\":" + json_quote(restored_into) +
               ",\"verified\":true,\"row_counts\":" + restored_counts + "}";
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        report_failure(control, options, order, failure, attempts);
        rethrow_as(failure, ErrorCode::BACKUP_FAILED, "backup " + backup_id + " could not be restored",
                   "{\"error\":" + json_quote(failure.what()) + "}");
    }
}

// The role of an app role's work order ("role" beside the database's).
struct AppRole {
    std::string id;
    std::string name;
    std::string type;
    std::optional<std::string> expires_at;
};

AppRole app_role_of(const std::string &order_json) {
    Json order = parse_json(order_json, "work order");
    const json_t *role = json_object_get(order.get(), "role");
    return AppRole{text_member(role, "id"), text_member(role, "role_name"), text_member(role, "role_type"),
                   optional_member(role, "expires_at")};
}

std::string report_app_role(ControlPlane &control, const Options &options, const AppRole &role, const std::string &outcome) {
    return control.call("select flowgres.app_database_role_report($1::uuid, $2, $3::jsonb)::text", {role.id, options.claimant, outcome});
}

void grant_app_role(BlockingConnection &admin, BlockingConnection &tenant_admin, const WorkOrder &order, const AppRole &role,
                    const std::string &password) {
    std::string name = admin.quote_identifier(role.name);
    std::string owner = admin.quote_identifier(order.db_user);
    std::string database = admin.quote_identifier(order.db_name);
    if (!admin.value("select 1 from pg_roles where rolname = $1", {role.name}))
        create_unless_exists(admin, "create role " + name + " nologin", "42710");
    admin.run("alter role " + name + " with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls inherit " +
              "connection limit 20 password " + admin.quote_literal(admin.scram_verifier(password, role.name)) +
              " valid until " + admin.quote_literal(role.expires_at.value_or("infinity")));
    admin.run(std::string("grant ") + kTenantGroup + ", " + database + " to " + name);  // pg_hba: samerole
    admin.run("grant connect on database " + database + " to " + name);
    admin.run("alter role " + name + " in database " + database + " set search_path = " + kTenantSchema);
    if (role.type == "admin") admin.run("grant " + owner + " to " + name);
    std::string schema = kTenantSchema;
    tenant_admin.run("grant usage on schema " + schema + " to " + name);
    std::string table_rights = role.type == "read" ? "select" : "select, insert, update, delete";
    tenant_admin.run("grant " + table_rights + " on all tables in schema " + schema + " to " + name);
    tenant_admin.run("alter default privileges for role " + owner + " in schema " + schema + " grant " + table_rights +
                     " on tables to " + name);
    if (role.type != "read") {
        tenant_admin.run("grant usage, select on all sequences in schema " + schema + " to " + name);
        tenant_admin.run("alter default privileges for role " + owner + " in schema " + schema +
                         " grant usage, select on sequences to " + name);
    }
}

void drop_app_role(BlockingConnection &admin, BlockingConnection &tenant_admin, const WorkOrder &order, const AppRole &role) {
    if (!admin.value("select 1 from pg_roles where rolname = $1", {role.name})) return;
    std::string name = admin.quote_identifier(role.name);
    admin.run("alter role " + name + " nologin");
    admin.query("select pg_terminate_backend(pid) from pg_stat_activity where usename = $1", {role.name});
    // What an admin role made stays, owned by the workspace role; its grants go.
    tenant_admin.run("reassign owned by " + name + " to " + tenant_admin.quote_identifier(order.db_user));
    tenant_admin.run("drop owned by " + name);
    admin.run("drop role " + name);
}

// ---- Schema changes (schema_plan.hpp) --------------------------------------------------

// How to reach a ready workspace database as its own role, from workspace_database_secret.
Parameters tenant_parameters_from_secret(const Keyring &keyring, const std::string &secret_document, const Options &options) {
    Json document = parse_json(secret_document, "workspace database");
    std::string workspace_id = text_member(document.get(), "workspace_id");
    return {{"host", text_member(document.get(), "host")},
            {"port", text_member(document.get(), "port")},
            {"dbname", text_member(document.get(), "db_name")},
            {"user", text_member(document.get(), "db_user")},
            {"password", keyring.open(text_member(document.get(), "secret_ref"), secret_context(workspace_id))},
            {"connect_timeout", std::to_string(options.connect_timeout_seconds)},
            {"application_name", "flowgres-provision"}};
}

schema_plan::Schema desired_schema(const json_t *db_schema) {
    ValidationProblems problems;
    schema_plan::Schema schema = schema_plan::parse(db_schema, problems);
    problems.throw_if_any();  // the control plane checked it; an older document may still fail
    return schema;
}

Json read_catalog(BlockingConnection &connection) {
    return parse_json(connection.value(schema_plan::catalog_query()).value_or("{}"), "catalog");
}

// A text[] literal: {"a","b \"quoted\""}.
std::string text_array_literal(const std::vector<std::string> &items) {
    std::string out = "{";
    for (size_t i = 0; i < items.size(); i++) {
        out += i ? ",\"" : "\"";
        for (char c : items[i]) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

struct SchemaChangeFailure {
    std::string code = "apply_failed";  // what schema_change_report is told
};

// Inside one transaction, as the workspace's role (so what it makes, it owns): checks the
// catalog is the one the plan was made against, runs the approved statements, checks the
// schema now matches the version's db_schema, and records the change in flowgres_meta. Any
// failure ends the connection, and with it the transaction: nothing of the change stays.
void apply_in_transaction(BlockingConnection &tenant_admin, const WorkOrder &order, const std::string &change_id,
                          const std::vector<std::string> &statements, const std::string &fingerprint,
                          const schema_plan::Schema &desired, SchemaChangeFailure &failure) {
    tenant_admin.run("begin");
    tenant_admin.run("set local lock_timeout = '10s'");
    tenant_admin.run("set local statement_timeout = '600s'");
    tenant_admin.run("set local role " + tenant_admin.quote_identifier(order.db_user));
    Json before = read_catalog(tenant_admin);
    if (schema_plan::catalog_fingerprint(before.get()) != fingerprint) {
        failure.code = "stale";
        throw Error(ErrorCode::SCHEMA_CHANGE_STALE,
                    "schema data of workspace " + order.workspace_id + "'s database changed since change " + change_id +
                        " was planned; submit the version again");
    }
    for (size_t i = 0; i < statements.size(); i++) {
        try {
            tenant_admin.run(statements[i]);
        } catch (const DatabaseError &error) {
            if (error.may_pass()) throw;  // a lock held by someone else: the whole transaction is tried again
            throw Error(ErrorCode::SCHEMA_CHANGE_FAILED, "step " + std::to_string(i + 1) + " failed: " + error.what(),
                        "{\"step\":" + std::to_string(i + 1) + ",\"sql\":" + json_quote(statements[i]) + ",\"error\":" +
                            json_quote(error.what()) + ",\"sqlstate\":" + json_quote(error.sqlstate()) + "}");
        }
    }
    Json after = read_catalog(tenant_admin);
    schema_plan::Plan left = schema_plan::plan(desired, after.get());
    if (!left.steps.empty()) {
        failure.code = "verify_failed";
        throw Error(ErrorCode::SCHEMA_CHANGE_FAILED, "after the change the schema still differs from the version's db_schema",
                    "{\"remaining\":" + left.to_json() + "}");
    }
    tenant_admin.run("reset role");
    tenant_admin.query("insert into flowgres_meta.schema_changes (change_id, statements) values ($1::uuid, $2::text[])",
                       {change_id, text_array_literal(statements)});
    tenant_admin.run("commit");
}

// apply_schema_change's work under its claim (schema_change_apply_begin's work order).
std::string carry_out_schema_change(const Options &options, const Keyring &keyring, ControlPlane &control,
                                    const std::string &change_id, const std::string &order_json) {
    WorkOrder order = parse_work_order(order_json);
    Json document = parse_json(order_json, "work order");
    const json_t *change = json_object_get(document.get(), "change");
    auto report_change = [&](const std::string &outcome) {
        return control.call("select flowgres.schema_change_report($1::uuid, $2, $3::jsonb)::text", {change_id, options.claimant, outcome});
    };
    SchemaChangeFailure failure;
    std::string backup_id;
    int attempts = 0;
    try {
        schema_plan::Schema desired = desired_schema(json_object_get(change, "desired"));
        std::string fingerprint = text_member(change, "catalog_fingerprint");
        std::vector<std::string> statements;
        size_t index;
        const json_t *step;
        json_array_foreach(json_object_get(json_object_get(change, "plan"), "steps"), index, step)
            statements.push_back(text_member(step, "sql"));
        bool committed_before = false;
        with_retries(options, attempts, [&] {
            BlockingConnection tenant_admin(admin_parameters(order, keyring, options, order.db_name));
            if (tenant_admin.value("select to_regclass('flowgres_meta.schema_changes') is null") == "t")
                throw Error(ErrorCode::SCHEMA_CHANGE_FAILED, "workspace " + order.workspace_id +
                                                                 "'s database is below tenant migration 2; migrate it first");
            // An apply taken up again after its provisioner stopped may have committed already.
            committed_before =
                tenant_admin.value("select 1 from flowgres_meta.schema_changes where change_id = $1::uuid", {change_id}).has_value();
        });
        if (committed_before) return report_change("{\"status\":\"applied\"}");
        failure.code = "backup_failed";
        Json backup = parse_json(take_backup(options, keyring, control, order, "pre_change", attempts), "backup");
        backup_id = text_member(backup.get(), "id");
        failure.code = "apply_failed";
        with_retries(options, attempts, [&] {
            BlockingConnection tenant_admin(admin_parameters(order, keyring, options, order.db_name));
            apply_in_transaction(tenant_admin, order, change_id, statements, fingerprint, desired, failure);
        });
        return report_change("{\"status\":\"applied\",\"backup_id\":" + json_quote(backup_id) + "}");
    } catch (const std::exception &error) {
        if (control_plane_down(error)) throw;
        report_change("{\"status\":\"failed\",\"error_code\":" + json_quote(failure.code) + ",\"error\":" + json_quote(error.what()) +
                      (backup_id.empty() ? "" : ",\"backup_id\":" + json_quote(backup_id)) + "}");
        rethrow_as(error, failure.code == "backup_failed" ? ErrorCode::BACKUP_FAILED : ErrorCode::SCHEMA_CHANGE_FAILED,
                   "schema change " + change_id + " could not be applied", "{\"error\":" + json_quote(error.what()) + "}");
    }
}

}  // namespace

Claim claim(const Options &options, const Keyring &keyring, const std::string &workspace_id, const std::string &operation,
            const std::string &server, std::optional<int> target_version) {
    require_keys(keyring);
    if (operation == "rollback" && !target_version) throw field_error("target_version", "is required");
    if (target_version) {
        int latest = static_cast<int>(shipped_migrations(options).size());
        if (*target_version < 0 || *target_version > latest)
            throw field_error("target_version", "must be from 0 to " + std::to_string(latest));
    }
    ControlPlane control(options);
    Claim claimed;
    claimed.workspace_id = workspace_id;
    claimed.operation = operation;
    claimed.target_version = target_version;
    claimed.work_order =
        control.call("select flowgres.workspace_database_claim($1::uuid, $2, $3, $4, $5::integer)::text",
                     {workspace_id, operation, options.claimant,
                      server.empty() ? std::nullopt : std::optional<std::string>(server), std::to_string(kLeaseSeconds)});
    claimed.status_document = control.call("select flowgres.workspace_database_get($1::uuid)::text", {workspace_id});
    return claimed;
}

std::string carry_out(const Options &options, const Keyring &keyring, const Claim &claimed) {
    ControlPlane control(options);
    WorkOrder order = parse_work_order(claimed.work_order);
    if (claimed.operation == "schema_change") return carry_out_schema_change(options, keyring, control, claimed.change_id, claimed.work_order);
    if (claimed.operation == "rotate_secret") return carry_out_rotation(options, keyring, control, order);
    if (claimed.operation == "backup") return carry_out_backup(options, keyring, control, order, claimed.reason);
    if (claimed.operation == "restore") return carry_out_restore(options, keyring, control, order, claimed.backup_id, claimed.into_copy);
    if (claimed.operation == "migrate" || claimed.operation == "rollback")
        return carry_out_migration(options, keyring, control, order, claimed.operation, claimed.target_version);
    return carry_out_provision(options, keyring, control, order);
}

std::string provision(const Options &options, const Keyring &keyring, const std::string &workspace_id, const std::string &server) {
    return carry_out(options, keyring, claim(options, keyring, workspace_id, "provision", server));
}

std::string rotate_secret(const Options &options, const Keyring &keyring, const std::string &workspace_id) {
    return carry_out(options, keyring, claim(options, keyring, workspace_id, "rotate_secret"));
}

std::string migrate(const Options &options, const Keyring &keyring, const std::string &workspace_id,
                    std::optional<int> target_version) {
    return carry_out(options, keyring, claim(options, keyring, workspace_id, "migrate", "", target_version));
}

std::string backup(const Options &options, const Keyring &keyring, const std::string &workspace_id, const std::string &reason) {
    Claim claimed = claim(options, keyring, workspace_id, "backup");
    claimed.reason = reason;
    return carry_out(options, keyring, claimed);
}

std::string restore(const Options &options, const Keyring &keyring, const std::string &workspace_id, const std::string &backup_id,
                    bool into_copy) {
    Claim claimed = claim(options, keyring, workspace_id, "restore");
    claimed.backup_id = backup_id;
    claimed.into_copy = into_copy;
    return carry_out(options, keyring, claimed);
}

std::string create_app_role(const Options &options, const Keyring &keyring, const std::string &app_id, const std::string &role_type,
                            const std::string &expires_at) {
    require_keys(keyring);
    ControlPlane control(options);
    std::string order_json =
        control.call("select flowgres.app_database_role_begin($1::uuid, $2, $3::timestamptz, $4)::text",
                     {app_id, role_type, expires_at.empty() ? std::nullopt : std::optional<std::string>(expires_at), options.claimant});
    WorkOrder order = parse_work_order(order_json);
    AppRole role = app_role_of(order_json);
    int attempts = 0;
    try {
        std::string password = new_password();
        std::string sealed = keyring.seal(password, "app_database_role:" + role.id);
        with_retries(options, attempts, [&] {
            BlockingConnection admin(admin_parameters(order, keyring, options));
            BlockingConnection tenant_admin(admin_parameters(order, keyring, options, order.db_name));
            grant_app_role(admin, tenant_admin, order, role, password);
            WorkOrder as_role = order;
            as_role.db_user = role.name;
            prove_login(as_role, password, options);
        });
        return report_app_role(control, options, role, "{\"status\":\"active\",\"secret_ref\":" + json_quote(sealed) + "}");
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        try {
            BlockingConnection admin(admin_parameters(order, keyring, options));
            BlockingConnection tenant_admin(admin_parameters(order, keyring, options, order.db_name));
            drop_app_role(admin, tenant_admin, order, role);
        } catch (const std::exception &) {  // the server is unreachable: revoking later cleans up
        }
        report_app_role(control, options, role, "{\"status\":\"failed\",\"error\":" + json_quote(failure.what()) + "}");
        rethrow_as(failure, ErrorCode::PROVISION_FAILED, "the database role could not be made",
                   "{\"error\":" + json_quote(failure.what()) + ",\"attempts\":" + std::to_string(attempts) + "}");
    }
}

std::string revoke_app_role(const Options &options, const Keyring &keyring, const std::string &role_id, const std::string &reason) {
    require_keys(keyring);
    ControlPlane control(options);
    std::string order_json = control.call("select flowgres.app_database_role_revoke_begin($1::uuid, $2, $3)::text",
                                          {role_id, reason.empty() ? std::nullopt : std::optional<std::string>(reason), options.claimant});
    WorkOrder order = parse_work_order(order_json);
    AppRole role = app_role_of(order_json);
    int attempts = 0;
    try {
        with_retries(options, attempts, [&] {
            BlockingConnection admin(admin_parameters(order, keyring, options));
            BlockingConnection tenant_admin(admin_parameters(order, keyring, options, order.db_name));
            drop_app_role(admin, tenant_admin, order, role);
        });
        return report_app_role(control, options, role, "{\"status\":\"revoked\"}");
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        report_app_role(control, options, role, "{\"status\":\"failed\",\"error\":" + json_quote(failure.what()) + "}");
        rethrow_as(failure, ErrorCode::PROVISION_FAILED, "the database role could not be revoked",
                   "{\"error\":" + json_quote(failure.what()) + ",\"attempts\":" + std::to_string(attempts) + "}");
    }
}

std::string submit_schema_change(const Options &options, const Keyring &keyring, const std::string &app_id, const std::string &version_id) {
    require_keys(keyring);
    ControlPlane control(options);
    Json change = parse_json(control.call("select flowgres.schema_change_submit($1::uuid, $2::uuid)::text", {app_id, version_id}),
                             "schema change");
    std::string change_id = text_member(change.get(), "id");
    std::string workspace_id = text_member(change.get(), "workspace_id");
    int attempts = 0;
    try {
        schema_plan::Schema desired = desired_schema(json_object_get(change.get(), "db_schema"));
        std::string secret = control.call("select flowgres.workspace_database_secret($1::uuid)::text", {workspace_id});
        Json catalog(nullptr);
        with_retries(options, attempts, [&] {
            BlockingConnection tenant(tenant_parameters_from_secret(keyring, secret, options));
            catalog = read_catalog(tenant);
        });
        schema_plan::Plan plan = schema_plan::plan(desired, catalog.get());
        return control.call("select flowgres.schema_change_record_plan($1::uuid, $2::jsonb)::text",
                            {change_id, "{\"plan\":" + plan.to_json() + ",\"catalog_fingerprint\":" +
                                            json_quote(schema_plan::catalog_fingerprint(catalog.get())) + "}"});
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        control.call("select flowgres.schema_change_record_plan($1::uuid, $2::jsonb)::text",
                     {change_id, "{\"error\":" + json_quote(failure.what()) + "}"});
        rethrow_as(failure, ErrorCode::SCHEMA_CHANGE_FAILED, "the schema of workspace " + workspace_id + "'s database could not be read",
                   "{\"change_id\":" + json_quote(change_id) + ",\"error\":" + json_quote(failure.what()) + "}");
    }
}

Claim claim_schema_change(const Options &options, const Keyring &keyring, const std::string &change_id) {
    require_keys(keyring);
    ControlPlane control(options);
    Claim claimed;
    claimed.operation = "schema_change";
    claimed.change_id = change_id;
    claimed.work_order = control.call("select flowgres.schema_change_apply_begin($1::uuid, $2)::text", {change_id, options.claimant});
    claimed.workspace_id = text_member(parse_json(claimed.work_order, "work order").get(), "workspace_id");
    claimed.status_document = control.call("select flowgres.schema_change_get($1::uuid)::text", {change_id});
    return claimed;
}

std::string apply_schema_change(const Options &options, const Keyring &keyring, const std::string &change_id) {
    return carry_out(options, keyring, claim_schema_change(options, keyring, change_id));
}

int reseal_secrets(const Options &options, const Keyring &keyring) {
    const std::string &key_id = keyring.sealing_key_id();
    ControlPlane control(options);
    Json secrets = parse_json(control.call("select flowgres.secret_refs_sealed_with_other_keys($1)::text", {key_id}), "secrets");
    int resealed = 0;
    size_t index;
    json_t *secret;
    json_array_foreach(secrets.get(), index, secret) {
        std::string context = text_member(secret, "context");
        std::string old_ref = text_member(secret, "secret_ref");
        std::string new_ref = keyring.seal(keyring.open(old_ref, context), context);
        if (control.call("select flowgres.secret_ref_reseal($1, $2::uuid, $3, $4)::text",
                         {text_member(secret, "kind"), text_member(secret, "id"), old_ref, new_ref}) == "true")
            resealed++;
    }
    return resealed;
}

TenantConnection tenant_connection(const Keyring &keyring, const std::string &secret_document) {
    Json document = parse_json(secret_document, "workspace database");
    std::string workspace_id = text_member(document.get(), "workspace_id");
    std::string password = keyring.open(text_member(document.get(), "secret_ref"), secret_context(workspace_id));
    auto quoted = [](const std::string &value) {
        std::string out = "'";
        for (char c : value) {
            if (c == '\'' || c == '\\') out += '\\';
            out += c;
        }
        return out + "'";
    };
    std::string user = text_member(document.get(), "db_user");
    return {"host=" + quoted(text_member(document.get(), "host")) + " port=" + quoted(text_member(document.get(), "port")) +
                " dbname=" + quoted(text_member(document.get(), "db_name")) + " user=" + quoted(user) +
                " password=" + quoted(password),
            user};
}

}  // namespace flowgres::provisioner
