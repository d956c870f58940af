// Schema changes from apps' db_schema (README "Workspace databases", schema_plan.hpp): planned against the
// tenant's catalog, applied after review in one transaction (provisioner.hpp).
#include "flowgres/schema_plan.hpp"
#include "work_order.hpp"

namespace flowgres::provisioner {
namespace {


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

}  // namespace

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

}  // namespace flowgres::provisioner
