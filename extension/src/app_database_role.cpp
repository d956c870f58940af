// Per-app database roles in the control plane (README "Workspace databases", seed §113): the row of each role,
// the claim the provisioner holds while it makes or drops the role on the server, its report,
// what members may read, and which roles have expired. The role itself (grants, password,
// VALID UNTIL) is the provisioner's work; this file never sees a password.
#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "spi.hpp"
#include "workspace_database.hpp"

namespace flowgres {
namespace {

constexpr const char *kRoleDocumentSql = R"sql(
    select jsonb_build_object(
        'id', r.id, 'workspace_id', r.workspace_id, 'app_id', r.app_id, 'role_type', r.role_type, 'role_name', r.role_name,
        'status', r.status, 'expires_at', r.expires_at, 'error', r.error, 'created_by', r.created_by,
        'created_at', r.created_at, 'last_rotated_at', r.last_rotated_at, 'revoked_at', r.revoked_at,
        'revoked_reason', r.revoked_reason)
    from flowgres.app_database_roles r)sql";

std::string role_document(const std::string &role_id) {
    return query_value(std::string(kRoleDocumentSql) + " where r.id = $1::uuid", {role_id}).value();
}

// The claim's work order with the role added under "role".
std::string order_with_role(const std::string &order, const std::string &role_id) {
    return query_value("select ($1::jsonb || jsonb_build_object('role', $2::jsonb))::text", {order, role_document(role_id)}).value();
}

}  // namespace

SqlValue app_database_role_begin(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::string role_type = args.required_text(1, "role_type");
    std::optional<std::string> expires_at = args.timestamptz(2);
    std::string claimant = args.required_text(3, "claimant");
    if (role_type != "read" && role_type != "write" && role_type != "admin") throw field_error("role_type", "must be read, write or admin");
    if (expires_at && query_value("select $1::timestamptz <= now()", {*expires_at}) == "t")
        throw field_error("expires_at", "must be in the future");
    check_claimant(claimant);
    Actor actor = require_actor();
    AppAccess access = require_app_permission(actor, app_id, permission::workspace_admin, WorkspaceUse::write);
    const std::string &workspace_id = access.workspace.workspace_id;
    std::string order = claim_database(actor, workspace_id, "app_role", claimant, std::nullopt, 120);
    auto role_id = query_value(R"sql(
        insert into flowgres.app_database_roles (id, workspace_id, app_id, role_type, role_name, expires_at, created_by)
        select fresh.id, $1::uuid, $2::uuid, $3, 'wsr_' || replace(fresh.id::text, '-', ''), $4::timestamptz, $5::uuid
        from (select gen_random_uuid() as id) fresh
        returning id::text)sql",
                               {workspace_id, app_id, role_type, expires_at, actor.user_param()});
    write_audit(actor, workspace_id, "database.app_role_create", "app", app_id,
                "{\"role_id\":" + json_quote(*role_id) + ",\"role_type\":" + json_quote(role_type) + "}");
    return SqlValue::jsonb(order_with_role(order, *role_id));
}

SqlValue app_database_role_revoke_begin(CallArgs &args) {
    std::string role_id = args.required_uuid(0, "role_id");
    std::optional<std::string> reason = args.text(1);
    std::string claimant = args.required_text(2, "claimant");
    if (reason && utf8_length(*reason) > 500) throw field_error("reason", "must be at most 500 characters");
    check_claimant(claimant);
    Actor actor = require_actor();
    auto row = query("select app_id::text, status from flowgres.app_database_roles where id = $1::uuid", {role_id});
    if (row.rows.empty())
        throw Error(ErrorCode::DATABASE_ROLE_NOT_FOUND, "no database role " + role_id, "{\"role_id\":" + json_quote(role_id) + "}");
    // Not found for those who may not see the app, as for the app itself.
    AppAccess access = require_app_permission(actor, row.rows[0].text(0), permission::workspace_admin, WorkspaceUse::write);
    std::string status = row.rows[0].text(1);
    if (status != "active" && status != "failed")
        throw Error(ErrorCode::STATE_CONFLICT, "database role " + role_id + " is " + status,
                    "{\"from\":" + json_quote(status) + ",\"action\":\"revoke\"}");
    std::string order = claim_database(actor, access.workspace.workspace_id, "app_role", claimant, std::nullopt, 120);
    query("update flowgres.app_database_roles set status = 'revoking', revoked_reason = $2 where id = $1::uuid",
          {role_id, reason.value_or(actor.is_system() ? "expired" : "revoked")});
    write_audit(actor, access.workspace.workspace_id, "database.app_role_revoke", "app", row.rows[0].text(0),
                "{\"role_id\":" + json_quote(role_id) + ",\"reason\":" + json_quote(reason.value_or("")) + "}");
    return SqlValue::jsonb(order_with_role(order, role_id));
}

SqlValue app_database_role_report(CallArgs &args) {
    std::string role_id = args.required_uuid(0, "role_id");
    std::string claimant = args.required_text(1, "claimant");
    Json outcome = parse_object_argument(args.required_jsonb(2, "outcome"), "outcome");
    check_claimant(claimant);
    require_actor();
    auto row = query("select workspace_id::text, status, app_id::text from flowgres.app_database_roles where id = $1::uuid for update",
                     {role_id});
    if (row.rows.empty()) throw Error(ErrorCode::DATABASE_ROLE_NOT_FOUND, "no database role " + role_id);
    std::string workspace_id = row.rows[0].text(0);
    std::string previous = row.rows[0].text(1);
    release_claim(workspace_id, claimant);
    const char *status = json_string_value(json_object_get(outcome.get(), "status"));
    std::string reported = status ? status : "";
    std::string event;
    if (reported == "active" && previous == "creating") {
        const char *secret = json_string_value(json_object_get(outcome.get(), "secret_ref"));
        if (!secret || std::string_view(secret).rfind("enc:v1:", 0) != 0) throw field_error("secret_ref", "is required: a sealed secret");
        query("update flowgres.app_database_roles set status = 'active', secret_ref = $2, last_rotated_at = now(), error = null where id = $1::uuid",
              {role_id, std::string(secret)});
        event = "db.app_role.created";
    } else if (reported == "revoked" && previous == "revoking") {
        query("update flowgres.app_database_roles set status = 'revoked', secret_ref = null, revoked_at = now() where id = $1::uuid", {role_id});
        event = "db.app_role.revoked";
    } else if (reported == "failed") {
        const char *error = json_string_value(json_object_get(outcome.get(), "error"));
        // A role that failed to be made is failed; one that failed to be dropped still exists.
        query("update flowgres.app_database_roles set status = case when status = 'creating' then 'failed' else 'active' end, "
              "error = $2 where id = $1::uuid",
              {role_id, utf8_prefix(error ? error : "the provisioner reported no reason", 2000)});
        event = "db.app_role.failed";
    } else {
        throw Error(ErrorCode::STATE_CONFLICT, "database role " + role_id + " is " + previous + "; cannot report " + reported,
                    "{\"from\":" + json_quote(previous) + ",\"action\":" + json_quote(reported) + "}");
    }
    query(R"sql(
        insert into flowgres.runtime_events (workspace_id, app_id, event_type, severity, details)
        values ($1::uuid, $2::uuid, $3, case when $3 = 'db.app_role.failed' then 'error' else 'info' end,
                jsonb_build_object('role_id', $4::text)))sql",
          {workspace_id, row.rows[0].text(2), event, role_id});
    return SqlValue::jsonb(role_document(role_id));
}

SqlValue app_database_role_list(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    Actor actor = require_actor();
    require_app_permission(actor, app_id, "", WorkspaceUse::read);
    return SqlValue::jsonb(document_list(kRoleDocumentSql, "r.app_id = $1::uuid", "doc->>'created_at' desc", app_id));
}

SqlValue app_database_roles_expired(CallArgs &) {
    require_system_actor();
    auto document = query_value(R"sql(
        select coalesce(jsonb_agg(r.id order by r.expires_at), '[]')::text
        from flowgres.app_database_roles r
        join flowgres.workspace_databases d on d.workspace_id = r.workspace_id
        where r.status = 'active' and r.expires_at <= now() and (d.claimed_until is null or d.claimed_until < now()))sql");
    return SqlValue::jsonb(document.value_or("[]"));
}

}  // namespace flowgres
