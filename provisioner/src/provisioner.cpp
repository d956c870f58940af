// Provisioning, repairing, rotating, migrating and re-keying workspace databases, and the
// claims all work starts with (provisioner.hpp has the steps).
#include "tenant_migrations.hpp"
#include "flowgres/crypto.hpp"
#include "work_order.hpp"

namespace flowgres::provisioner {
namespace {

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

void roll_back(const WorkOrder &order, const Keyring &keyring, const Options &options) {
    BlockingConnection admin(admin_parameters(order, keyring, options));
    admin.run("drop database if exists " + admin.quote_identifier(order.db_name) + " with (force)");
    admin.run("drop role if exists " + admin.quote_identifier(order.db_user));
    admin.run("drop role if exists " + admin.quote_identifier(order.db_name));
}

std::vector<Migration> shipped_migrations(const Options &options) {
    try {
        return load_migrations(options.migrations_dir.empty() ? default_migrations_directory() : options.migrations_dir);
    } catch (const std::invalid_argument &error) {
        throw Error(ErrorCode::INTERNAL_ERROR, error.what());
    }
}

std::string optional_number(int value) { return value >= 0 ? std::to_string(value) : "null"; }

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
