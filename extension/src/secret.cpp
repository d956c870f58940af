// Workspace secrets (README "Secrets", seed §84, §126.2): named credentials a workflow's
// credential fields reference as {{secrets.NAME}}. The daemon seals a value with the keyring
// before calling these functions, so the database only ever holds ciphertext, and the column
// that holds it is readable by no role: members list names, previews, versions, expiry and who
// changed a secret last; only secrets_for_run (service only) hands the ciphertext back, to the
// daemon that opens it for a run. Owners and admins (secrets_manage) create, rotate, revoke and
// delete; anyone who may build apps (app_edit) may list them. Audit rows carry names and
// versions, never a value or a preview.
#include <cstring>

#include "actor.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "flowgres/secrets.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "run_preparation.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

// Status reads "expired" once expires_at has passed; the stored status is active or revoked.
constexpr const char *kSecretDocument = R"sql(
    jsonb_build_object(
        'id', s.id, 'workspace_id', s.workspace_id, 'name', s.name, 'description', s.description,
        'preview', s.value_preview, 'version', s.version,
        'status', case when s.status = 'active' and s.expires_at <= now() then 'expired' else s.status end,
        'expires_at', s.expires_at, 'created_by', s.created_by, 'created_at', s.created_at,
        'updated_by', s.updated_by, 'updated_at', s.updated_at, 'rotated_at', s.rotated_at,
        'revoked_by', s.revoked_by, 'revoked_at', s.revoked_at, 'revoked_reason', s.revoked_reason))sql";

std::string checked_name(CallArgs &args, int position) {
    std::string name = args.required_text(position, "name");
    if (!secrets::is_name(name))
        throw field_error("name", "must be a letter or _, then letters, digits and _ (at most 64)");
    return name;
}

SealedValue checked_value(CallArgs &args, int position) {
    return parse_sealed_value(args.required_jsonb(position, "value"), "value");
}

std::optional<std::string> checked_expiry(CallArgs &args, int position) {
    std::optional<std::string> expires_at = args.timestamptz(position);
    if (expires_at && query_value("select ($1::timestamptz <= now())::text", {expires_at}) == "true")
        throw field_error("expires_at", "must be in the future");
    return expires_at;
}

std::string secret_document(const std::string &secret_id) {
    return query_value(std::string("select ") + kSecretDocument + " from flowgres.workspace_secrets s where s.id = $1::uuid",
                       {secret_id})
        .value();
}

// The secret's id and stored status, locked for the change; SECRET_NOT_FOUND when absent.
std::pair<std::string, std::string> lock_secret(const std::string &workspace_id, const std::string &name) {
    auto row = query("select id, status from flowgres.workspace_secrets where workspace_id = $1::uuid and name = $2 for update",
                     {workspace_id, name});
    if (row.rows.empty())
        throw Error(ErrorCode::SECRET_NOT_FOUND, "the workspace has no secret named " + name,
                    "{\"name\":" + json_quote(name) + "}");
    return {row.rows[0].text(0), row.rows[0].text(1)};
}

std::string audit_details(const std::string &name, const std::string &secret_id) {
    return query_value("select jsonb_build_object('name', $1::text, 'version', version, 'expires_at', expires_at)::text "
                       "from flowgres.workspace_secrets where id = $2::uuid",
                       {name, secret_id})
        .value_or("{\"name\":" + json_quote(name) + "}");
}

}  // namespace

SqlValue secret_create(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string name = checked_name(args, 1);
    SealedValue value = checked_value(args, 2);
    std::optional<std::string> description = args.text(3);
    if (description) check_display_text("description", *description, 500);
    std::optional<std::string> expires_at = checked_expiry(args, 4);
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::secrets_manage, WorkspaceUse::write);
    // One workspace's secret changes queue here (spi.hpp: lock, then count).
    query("select pg_advisory_xact_lock(hashtext('flowgres.workspace_secrets:' || $1))", {workspace_id});
    if (query_value_latest_snapshot(
            "select 1 from flowgres.workspace_secrets where workspace_id = $1::uuid and name = $2", {workspace_id, name}))
        throw Error(ErrorCode::SECRET_EXISTS, "the workspace already has a secret named " + name,
                    "{\"name\":" + json_quote(name) + "}");
    auto count = query_value_latest_snapshot("select count(*) from flowgres.workspace_secrets where workspace_id = $1::uuid",
                                             {workspace_id});
    if (std::stoll(count.value_or("0")) >= static_cast<long long>(secrets::kMaxPerWorkspace))
        throw field_error("name", "a workspace holds at most " + std::to_string(secrets::kMaxPerWorkspace) +
                                      " secrets; delete one first");
    std::string secret_id = query_value(R"sql(
        insert into flowgres.workspace_secrets
            (workspace_id, name, description, sealed_value, value_preview, expires_at, created_by, updated_by)
        values ($1::uuid, $2, coalesce($3, ''), $4, $5, $6::timestamptz, $7::uuid, $7::uuid) returning id)sql",
                                        {workspace_id, name, description, value.sealed, value.preview, expires_at,
                                         actor.user_param()})
                                .value();
    write_audit(actor, workspace_id, "secret.create", "secret", secret_id, audit_details(name, secret_id));
    return SqlValue::jsonb(secret_document(secret_id));
}

SqlValue secret_list(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::app_edit, WorkspaceUse::read);
    return SqlValue::jsonb(query_value(std::string("select jsonb_build_object('items', coalesce(jsonb_agg(") +
                                           kSecretDocument +
                                           " order by s.name), '[]')) from flowgres.workspace_secrets s "
                                           "where s.workspace_id = $1::uuid",
                                       {workspace_id})
                               .value());
}

SqlValue secret_get(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string name = checked_name(args, 1);
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::app_edit, WorkspaceUse::read);
    auto id = query_value("select id from flowgres.workspace_secrets where workspace_id = $1::uuid and name = $2",
                          {workspace_id, name});
    if (!id)
        throw Error(ErrorCode::SECRET_NOT_FOUND, "the workspace has no secret named " + name,
                    "{\"name\":" + json_quote(name) + "}");
    return SqlValue::jsonb(secret_document(*id));
}

SqlValue secret_rotate(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string name = checked_name(args, 1);
    SealedValue value = checked_value(args, 2);
    std::optional<std::string> expires_at = checked_expiry(args, 3);
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::secrets_manage, WorkspaceUse::write);
    auto [secret_id, status] = lock_secret(workspace_id, name);
    if (status == "revoked")
        throw Error(ErrorCode::STATE_CONFLICT, "a revoked secret cannot be rotated; delete it and create it again",
                    "{\"status\":\"revoked\"}");
    // A rotation replaces the value and its lifetime: without expires_at the new value has none.
    query(R"sql(
        update flowgres.workspace_secrets
        set sealed_value = $2, value_preview = $3, expires_at = $4::timestamptz, version = version + 1,
            rotated_at = now(), updated_at = now(), updated_by = $5::uuid
        where id = $1::uuid)sql",
          {secret_id, value.sealed, value.preview, expires_at, actor.user_param()});
    write_audit(actor, workspace_id, "secret.rotate", "secret", secret_id, audit_details(name, secret_id));
    return SqlValue::jsonb(secret_document(secret_id));
}

SqlValue secret_revoke(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string name = checked_name(args, 1);
    std::optional<std::string> reason = args.text(2);
    if (reason) check_display_text("reason", *reason, 500);
    Actor actor = require_actor();
    // Revoking a leaked credential must work even while the workspace is suspended.
    require_workspace_permission(actor, workspace_id, permission::secrets_manage, WorkspaceUse::read);
    auto [secret_id, status] = lock_secret(workspace_id, name);
    if (status == "revoked")
        throw Error(ErrorCode::STATE_CONFLICT, "the secret is already revoked", "{\"status\":\"revoked\"}");
    query(R"sql(
        update flowgres.workspace_secrets
        set status = 'revoked', revoked_at = now(), revoked_by = $2::uuid, revoked_reason = $3,
            updated_at = now(), updated_by = $2::uuid
        where id = $1::uuid)sql",
          {secret_id, actor.user_param(), reason});
    write_audit(actor, workspace_id, "secret.revoke", "secret", secret_id, audit_details(name, secret_id));
    return SqlValue::jsonb(secret_document(secret_id));
}

SqlValue secret_delete(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string name = checked_name(args, 1);
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::secrets_manage, WorkspaceUse::read);
    auto [secret_id, status] = lock_secret(workspace_id, name);
    std::string document = secret_document(secret_id);
    std::string details = audit_details(name, secret_id);
    query("delete from flowgres.workspace_secrets where id = $1::uuid", {secret_id});
    write_audit(actor, workspace_id, "secret.delete", "secret", secret_id, details);
    return SqlValue::jsonb(document);
}

SqlValue secrets_for_run(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Json names = parse_json(args.required_jsonb(1, "names"), "names");
    if (!json_is_array(names.get()) || json_array_size(names.get()) > secrets::kMaxPerWorkspace)
        throw field_error("names", "must be an array of at most " + std::to_string(secrets::kMaxPerWorkspace) + " names");
    require_system_actor();
    return SqlValue::jsonb(run_secrets_document(workspace_id, dump_json(names.get())));
}

std::string run_secrets_document(const std::string &workspace_id, const std::string &names_json) {
    // {"NAME": {"status": "active", "sealed": "enc:v1:…", "version": n} | {"status": "revoked" | "expired"}};
    // a name the workspace lacks is absent.
    return query_value(R"sql(
        select coalesce(jsonb_object_agg(s.name, case
                   when s.status = 'revoked' then jsonb_build_object('status', 'revoked')
                   when s.expires_at <= now() then jsonb_build_object('status', 'expired')
                   else jsonb_build_object('status', 'active', 'sealed', s.sealed_value, 'version', s.version) end), '{}')
        from flowgres.workspace_secrets s
        where s.workspace_id = $1::uuid and s.name in (select jsonb_array_elements_text($2::jsonb)))sql",
                       {workspace_id, names_json})
        .value_or("{}");
}

}  // namespace flowgres
