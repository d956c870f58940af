// Per-app database roles (README "Workspace databases", seed §113): made, granted and dropped on the server
// (provisioner.hpp).
#include "work_order.hpp"

namespace flowgres::provisioner {
namespace {

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

}  // namespace

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

}  // namespace flowgres::provisioner
