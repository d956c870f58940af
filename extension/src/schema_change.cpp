// Schema changes in the control plane (README "Workspace databases", seed §70, §114): an app version's db_schema
// submitted for a workspace database, its plan recorded, reviewed (approve, with
// allow_destructive when the plan deletes or narrows data, or reject), and the claim a
// provisioner holds while it applies it. The plan itself is made outside (schema_plan.hpp,
// against the tenant's catalog, which this database cannot see); the apply is the
// provisioner's. The states are in sql/flowgres--0.7--0.8.sql.
#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "flowgres/schema_plan.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "spi.hpp"
#include "workspace_database.hpp"

namespace flowgres {
namespace {

constexpr const char *kChangeDocumentSql = R"sql(
    select jsonb_build_object(
        'id', c.id, 'workspace_id', c.workspace_id, 'app_id', c.app_id, 'version_id', c.version_id, 'version', v.version,
        'status', c.status, 'db_schema', c.desired, 'plan', c.plan, 'destructive', c.destructive, 'allow_destructive', c.allow_destructive,
        'error_code', c.error_code, 'error', c.error, 'backup_id', c.backup_id, 'submitted_by', c.submitted_by,
        'submitted_at', c.submitted_at, 'reviewed_by', c.reviewed_by, 'reviewed_at', c.reviewed_at,
        'review_comment', c.review_comment, 'applied_by', c.applied_by, 'applied_at', c.applied_at, 'updated_at', c.updated_at)
    from flowgres.schema_changes c join flowgres.app_versions v on v.id = c.version_id)sql";

std::string change_document(const std::string &change_id) {
    return query_value(std::string(kChangeDocumentSql) + " where c.id = $1::uuid", {change_id}).value();
}

struct ChangeRow {
    std::string id;
    std::string workspace_id;
    std::string app_id;
    std::string status;
    bool destructive = false;
};

// The change under lock, when the actor may see its app (else SCHEMA_CHANGE_NOT_FOUND, as for
// a change that does not exist), with `permission` in its workspace.
ChangeRow require_change(const Actor &actor, const std::string &change_id, std::string_view permission, WorkspaceUse use) {
    auto rows = query("select workspace_id::text, app_id::text, status, destructive from flowgres.schema_changes "
                      "where id = $1::uuid for update",
                      {change_id});
    Error not_found(ErrorCode::SCHEMA_CHANGE_NOT_FOUND, "no schema change " + change_id, "{\"change_id\":" + json_quote(change_id) + "}");
    if (rows.rows.empty()) throw not_found;
    ChangeRow change{change_id, rows.rows[0].text(0), rows.rows[0].text(1), rows.rows[0].text(2), rows.rows[0][3] == "t"};
    try {
        require_app_permission(actor, change.app_id, "", WorkspaceUse::read);
    } catch (const Error &error) {
        if (error.code() == ErrorCode::APP_NOT_FOUND) throw not_found;
        throw;
    }
    if (!permission.empty() || use != WorkspaceUse::read) require_app_permission(actor, change.app_id, permission, use);
    return change;
}

[[noreturn]] void wrong_state(const ChangeRow &change, std::string_view action) {
    throw Error(ErrorCode::STATE_CONFLICT, "schema change " + change.id + " is " + change.status,
                "{\"from\":" + json_quote(change.status) + ",\"action\":" + json_quote(action) + "}");
}

std::optional<std::string> checked_comment(const std::optional<std::string> &comment) {
    if (comment && (!is_valid_utf8(*comment) || utf8_length(*comment) > 2000))
        throw field_error("comment", "must be at most 2000 characters of UTF-8");
    return comment;
}

void record_event(const ChangeRow &change, const char *event_type, const char *severity, const std::string &details) {
    query(R"sql(
        insert into flowgres.runtime_events (workspace_id, app_id, event_type, severity, details)
        values ($1::uuid, $2::uuid, $3, $4, jsonb_build_object('change_id', $5::text) || $6::jsonb))sql",
          {change.workspace_id, change.app_id, event_type, severity, change.id, details});
}

}  // namespace

SqlValue schema_change_submit(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::string version_id = args.required_uuid(1, "version_id");
    Actor actor = require_actor();
    AppAccess access = require_app_permission(actor, app_id, permission::app_edit, WorkspaceUse::write);
    auto db_schema = query_value("select db_schema::text from flowgres.app_versions where id = $1::uuid and app_id = $2::uuid",
                                 {version_id, app_id});
    if (!db_schema) throw Error(ErrorCode::VERSION_NOT_FOUND, "version " + version_id + " not found", "{\"field\":\"version_id\"}");
    // Versions made before 0.8 were not checked against these rules.
    Json document = parse_json(*db_schema, "db_schema");
    ValidationProblems problems;
    schema_plan::parse(document.get(), problems);
    problems.throw_if_any();
    const std::string &workspace_id = access.workspace.workspace_id;
    auto database = query_value("select status from flowgres.workspace_databases where workspace_id = $1::uuid", {workspace_id});
    if (!database) throw Error(ErrorCode::WORKSPACE_DATABASE_NOT_FOUND, "workspace " + workspace_id + " has no database");
    if (*database != "ready")
        throw Error(ErrorCode::STATE_CONFLICT, "workspace " + workspace_id + "'s database is " + *database + ", not ready",
                    "{\"from\":" + json_quote(*database) + ",\"action\":\"submit_schema_change\"}");
    std::string change_id = query_value(R"sql(
        insert into flowgres.schema_changes (workspace_id, app_id, version_id, desired, submitted_by)
        values ($1::uuid, $2::uuid, $3::uuid, $4::jsonb, $5::uuid) returning id::text)sql",
                                        {workspace_id, app_id, version_id, *db_schema, actor.user_param()})
                                .value();
    write_audit(actor, workspace_id, "schema_change.submit", "app", app_id,
                "{\"change_id\":" + json_quote(change_id) + ",\"version_id\":" + json_quote(version_id) + "}");
    return SqlValue::jsonb(change_document(change_id));
}

SqlValue schema_change_record_plan(CallArgs &args) {
    std::string change_id = args.required_uuid(0, "change_id");
    Json outcome = parse_object_argument(args.required_jsonb(1, "outcome"), "outcome");
    Actor actor = require_actor();
    ChangeRow change = require_change(actor, change_id, "", WorkspaceUse::read);
    if (change.status != "planning") wrong_state(change, "record_plan");
    const json_t *error = json_object_get(outcome.get(), "error");
    if (json_is_string(error)) {
        query("update flowgres.schema_changes set status = 'failed', error_code = 'plan_failed', error = $2, updated_at = now() "
              "where id = $1::uuid",
              {change_id, utf8_prefix(json_string_value(error), 2000)});
        return SqlValue::jsonb(change_document(change_id));
    }
    const json_t *plan = json_object_get(outcome.get(), "plan");
    const json_t *fingerprint = json_object_get(outcome.get(), "catalog_fingerprint");
    if (!json_is_object(plan) || !json_is_array(json_object_get(plan, "steps"))) throw field_error("plan", "must be a plan with steps");
    if (!json_is_string(fingerprint) || std::string_view(json_string_value(fingerprint)).size() != 64)
        throw field_error("catalog_fingerprint", "must be a SHA-256 in hex");
    bool unchanged = json_array_size(json_object_get(plan, "steps")) == 0;
    query(R"sql(
        update flowgres.schema_changes
        set status = $2, plan = $3::jsonb, destructive = $4::boolean, catalog_fingerprint = $5, updated_at = now()
        where id = $1::uuid)sql",
          {change_id, unchanged ? "unchanged" : "planned", dump_json(plan),
           json_is_true(json_object_get(plan, "destructive")) ? "true" : "false", std::string(json_string_value(fingerprint))});
    return SqlValue::jsonb(change_document(change_id));
}

SqlValue schema_change_get(CallArgs &args) {
    std::string change_id = args.required_uuid(0, "change_id");
    Actor actor = require_actor();
    require_change(actor, change_id, "", WorkspaceUse::read);
    return SqlValue::jsonb(change_document(change_id));
}

SqlValue schema_change_list(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    Actor actor = require_actor();
    require_app_permission(actor, app_id, "", WorkspaceUse::read);
    return SqlValue::jsonb(document_list(kChangeDocumentSql, "c.app_id = $1::uuid", "doc->>'submitted_at' desc", app_id));
}

SqlValue schema_change_approve(CallArgs &args) {
    std::string change_id = args.required_uuid(0, "change_id");
    bool allow_destructive = args.boolean(1).value_or(false);
    std::optional<std::string> comment = checked_comment(args.text(2));
    Actor actor = require_actor();
    ChangeRow change = require_change(actor, change_id, permission::workspace_admin, WorkspaceUse::write);
    if (change.status != "planned") wrong_state(change, "approve");
    if (change.destructive && !allow_destructive) {
        auto risks = query_value("select coalesce(plan->'risks', '[]')::text from flowgres.schema_changes where id = $1::uuid", {change_id});
        throw Error(ErrorCode::SCHEMA_CHANGE_DESTRUCTIVE,
                    "schema change " + change_id + " deletes or narrows data; approve it with allow_destructive",
                    "{\"risks\":" + risks.value_or("[]") + "}");
    }
    query(R"sql(
        update flowgres.schema_changes
        set status = 'approved', allow_destructive = $2::boolean, reviewed_by = $3::uuid, reviewed_at = now(),
            review_comment = $4, updated_at = now()
        where id = $1::uuid)sql",
          {change_id, allow_destructive ? "true" : "false", actor.user_param(), comment});
    write_audit(actor, change.workspace_id, "schema_change.approve", "app", change.app_id,
                "{\"change_id\":" + json_quote(change_id) + ",\"allow_destructive\":" + (allow_destructive ? "true" : "false") + "}");
    return SqlValue::jsonb(change_document(change_id));
}

SqlValue schema_change_reject(CallArgs &args) {
    std::string change_id = args.required_uuid(0, "change_id");
    std::optional<std::string> comment = checked_comment(args.text(1));
    Actor actor = require_actor();
    ChangeRow change = require_change(actor, change_id, permission::workspace_admin, WorkspaceUse::write);
    if (change.status != "planned" && change.status != "approved") wrong_state(change, "reject");
    query(R"sql(
        update flowgres.schema_changes
        set status = 'rejected', reviewed_by = $2::uuid, reviewed_at = now(), review_comment = $3, updated_at = now()
        where id = $1::uuid)sql",
          {change_id, actor.user_param(), comment});
    write_audit(actor, change.workspace_id, "schema_change.reject", "app", change.app_id, "{\"change_id\":" + json_quote(change_id) + "}");
    return SqlValue::jsonb(change_document(change_id));
}

SqlValue schema_change_apply_begin(CallArgs &args) {
    std::string change_id = args.required_uuid(0, "change_id");
    std::string claimant = args.required_text(1, "claimant");
    check_claimant(claimant);
    Actor actor = require_actor();
    ChangeRow change = require_change(actor, change_id, permission::workspace_admin, WorkspaceUse::write);
    // An apply whose provisioner stopped is taken up again once its claim has lapsed
    // (claim_database refuses while it holds); the provisioner finds out whether it committed.
    if (change.status != "approved" && change.status != "applying") wrong_state(change, "apply");
    std::string order = claim_database(actor, change.workspace_id, "schema_change", claimant, std::nullopt, 900);
    query("update flowgres.schema_changes set status = 'applying', applied_by = $2::uuid, updated_at = now() where id = $1::uuid",
          {change_id, actor.user_param()});
    auto with_change = query_value(R"sql(
        select ($2::jsonb || jsonb_build_object('change', jsonb_build_object(
                   'id', c.id, 'desired', c.desired, 'plan', c.plan, 'catalog_fingerprint', c.catalog_fingerprint)))::text
        from flowgres.schema_changes c where c.id = $1::uuid)sql",
                                   {change_id, order});
    return SqlValue::jsonb(*with_change);
}

SqlValue schema_change_report(CallArgs &args) {
    std::string change_id = args.required_uuid(0, "change_id");
    std::string claimant = args.required_text(1, "claimant");
    Json outcome = parse_object_argument(args.required_jsonb(2, "outcome"), "outcome");
    check_claimant(claimant);
    Actor actor = require_actor();
    ChangeRow change = require_change(actor, change_id, "", WorkspaceUse::read);
    if (change.status != "applying") wrong_state(change, "report");
    release_claim(change.workspace_id, claimant);
    const json_t *status = json_object_get(outcome.get(), "status");
    std::string reported = json_is_string(status) ? json_string_value(status) : "";
    const json_t *backup = json_object_get(outcome.get(), "backup_id");
    SqlParam backup_id = json_is_string(backup) ? SqlParam(json_string_value(backup)) : SqlParam();
    if (backup_id && !is_uuid(*backup_id)) throw field_error("backup_id", "must be a uuid");
    if (reported == "applied") {
        query(R"sql(
            update flowgres.schema_changes
            set status = 'applied', applied_at = now(), backup_id = $2::uuid, error_code = null, error = null, updated_at = now()
            where id = $1::uuid)sql",
              {change_id, backup_id});
        record_event(change, "db.schema.applied", "info", "{}");
    } else if (reported == "failed") {
        const json_t *code = json_object_get(outcome.get(), "error_code");
        std::string error_code = json_is_string(code) ? json_string_value(code) : "apply_failed";
        if (error_code != "stale" && error_code != "apply_failed" && error_code != "verify_failed" && error_code != "backup_failed")
            throw field_error("error_code", "must be stale, apply_failed, verify_failed or backup_failed");
        const json_t *error = json_object_get(outcome.get(), "error");
        std::string message = json_is_string(error) ? json_string_value(error) : "the provisioner reported no reason";
        message = utf8_prefix(message, 2000);
        query(R"sql(
            update flowgres.schema_changes
            set status = 'failed', error_code = $2, error = $3, backup_id = coalesce($4::uuid, backup_id), updated_at = now()
            where id = $1::uuid)sql",
              {change_id, error_code, message, backup_id});
        record_event(change, "db.schema.apply_failed", "error",
                     "{\"error_code\":" + json_quote(error_code) + ",\"error\":" + json_quote(message) + "}");
    } else {
        throw field_error("status", "must be applied or failed");
    }
    return SqlValue::jsonb(change_document(change_id));
}

}  // namespace flowgres
