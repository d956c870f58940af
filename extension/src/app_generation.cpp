// Apps generated from a prompt (README "Apps from a prompt", seed §29, §59): the extension's
// half. The daemon asks a model for seed §59's protocol (app_metadata, workflow_definition,
// ui_schema, db_schema, access_policy) and checks each answer here with the same validators a
// version goes through (app_document_problems), sending the problems back to the model for
// repair; once an answer passes, app_create_generated makes the app and its first draft
// version in one transaction, audited. A db_schema is stored with the version like any other:
// nothing reaches the workspace database before the schema-change review.
#include <cstring>

#include "actor.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/access_policy.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "flowgres/schema_plan.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "quota.hpp"
#include "spi.hpp"
#include "version.hpp"

namespace flowgres {
namespace {

const json_t *member(const json_t *document, const char *key) { return json_object_get(document, key); }

bool present(const json_t *value) { return value && !json_is_null(value); }

// Every problem of a generated document, under its protocol member's name.
void collect_problems(const json_t *document, ValidationProblems &problems) {
    if (!json_is_object(document)) {
        problems.add("document", "must be a JSON object with app_metadata, workflow_definition, ui_schema, db_schema and access_policy");
        return;
    }
    static const char *known[] = {"app_metadata", "workflow_definition", "ui_schema", "db_schema", "access_policy"};
    const char *key;
    json_t *value;
    json_object_foreach(const_cast<json_t *>(document), key, value) {
        bool ok = false;
        for (const char *name : known) ok |= std::strcmp(name, key) == 0;
        if (!ok) problems.add(key, "is not a member of the protocol");
    }
    const json_t *metadata = member(document, "app_metadata");
    if (!json_is_object(metadata)) {
        problems.add("app_metadata", "is required: {\"name\", \"slug\", \"description\"}");
    } else {
        const char *name = json_string_value(member(metadata, "name"));
        try {
            check_display_text("app_metadata.name", name ? name : "", kAppNameMaxLength);
        } catch (const Error &error) {
            problems.add("app_metadata.name", error);
        }
        if (const json_t *slug = member(metadata, "slug"); present(slug)) try {
                check_slug("app_metadata.slug", json_string_value(slug) ? json_string_value(slug) : "");
            } catch (const Error &error) {
                problems.add("app_metadata.slug", error);
            }
        if (const json_t *description = member(metadata, "description");
            present(description) && (!json_is_string(description) || json_string_length(description) > kDescriptionMaxLength))
            problems.add("app_metadata.description", "must be a string of at most 2000 characters");
    }
    const json_t *workflow = member(document, "workflow_definition");
    const json_t *ui_schema = member(document, "ui_schema");
    if (!json_is_object(workflow)) problems.add("workflow_definition", "is required: {\"nodes\", \"edges\"}");
    if (present(ui_schema) && !json_is_object(ui_schema)) problems.add("ui_schema", "must be an object");
    if (json_is_object(workflow) && (!present(ui_schema) || json_is_object(ui_schema)))
        add_document_problems(problems, dump_json(workflow), present(ui_schema) ? dump_json(ui_schema) : "{}");
    if (const json_t *db_schema = member(document, "db_schema"); present(db_schema)) {
        if (!json_is_object(db_schema))
            problems.add("db_schema", "must be null or an object with tables");
        else
            schema_plan::parse(db_schema, problems);
    }
    if (const json_t *policy = member(document, "access_policy"); present(policy)) {
        try {
            Json defaults = default_access_policy();
            merge_access_policy(defaults.get(), policy);
        } catch (const Error &error) {
            // Its problems, under access_policy.
            Json details(json_loads(error.details_json().c_str(), 0, nullptr));
            size_t index;
            json_t *problem;
            if (json_is_array(details.get()))
                json_array_foreach(details.get(), index, problem) {
                    const char *field = json_string_value(json_object_get(problem, "field"));
                    const char *message = json_string_value(json_object_get(problem, "message"));
                    problems.add(std::string("access_policy.") + (field ? field : ""), message ? message : error.message());
                }
            else
                problems.add("access_policy", error.message());
        }
    }
}

// What made a generated app or version, for the audit trail: the model and how many answers it
// took; never the prompt.
Json audit_trail(const json_t *generation) {
    Json trail(new_json_object());
    for (const char *key : {"model", "provider", "attempts", "prompt_characters", "usage"})
        if (const json_t *value = json_object_get(generation, key)) json_object_set(trail.get(), key, const_cast<json_t *>(value));
    return trail;
}

std::string problems_json(const ValidationProblems &problems) {
    try {
        problems.throw_if_any();
    } catch (const Error &error) {
        return error.details_json();
    }
    return "[]";
}

}  // namespace

SqlValue app_document_problems(CallArgs &args) {
    Json document = parse_json(args.required_jsonb(0, "document"), "document");
    ValidationProblems problems;
    collect_problems(document.get(), problems);
    return SqlValue::jsonb(std::string("{\"valid\":") + (problems.empty() ? "true" : "false") +
                           ",\"problems\":" + problems_json(problems) + "}");
}

SqlValue app_generation_begin(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::apps_create, WorkspaceUse::write);
    // A workspace whose tokens are used up is told so before any model is asked.
    QuotaUse use = reserve_quota(workspace_id, UsageAmounts{0, 0, 0}, true);
    if (use.reservation.outcome == UsageReservation::Outcome::exceeded)
        throw Error(ErrorCode::QUOTA_EXCEEDED, quota_exceeded_message(use), quota_exceeded_details(use));
    return SqlValue::jsonb(query_value("select flowgres.workspace_models($1::uuid)::text", {workspace_id}).value());
}

SqlValue app_create_generated(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Json document = parse_json(args.required_jsonb(1, "document"), "document");
    Json generation = parse_object_argument(args.jsonb(2).value_or("{}"), "generation");
    ValidationProblems problems;
    collect_problems(document.get(), problems);
    problems.throw_if_any();
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::apps_create, WorkspaceUse::write);
    const json_t *metadata = member(document.get(), "app_metadata");
    const char *slug = json_string_value(member(metadata, "slug"));
    // A proposed slug already in use is dropped: the name gives another.
    if (slug && query_value("select 1 from flowgres.apps where workspace_id = $1::uuid and slug = $2", {workspace_id, std::string(slug)}))
        slug = nullptr;
    std::string app = query_value("select flowgres.app_create($1::uuid, $2, $3, $4)::text",
                                  {workspace_id, std::string(json_string_value(member(metadata, "name"))),
                                   slug ? SqlParam(slug) : SqlParam(),
                                   json_string_value(member(metadata, "description"))
                                       ? SqlParam(json_string_value(member(metadata, "description")))
                                       : SqlParam()})
                          .value();
    std::string app_id = json_string_value(json_object_get(Json(parse_json(app, "app")).get(), "id"));
    const json_t *ui_schema = member(document.get(), "ui_schema");
    const json_t *db_schema = member(document.get(), "db_schema");
    std::string version = query_value("select flowgres.version_create($1::uuid, '0.1.0', $2::jsonb, $3::jsonb, $4::jsonb, "
                                      "'{}'::jsonb, 'Generated from a prompt')::text",
                                      {app_id, dump_json(member(document.get(), "workflow_definition")),
                                       present(ui_schema) ? dump_json(ui_schema) : "{}",
                                       present(db_schema) ? dump_json(db_schema) : "{}"})
                              .value();
    if (const json_t *policy = member(document.get(), "access_policy"); present(policy))
        query("select flowgres.access_policy_update($1::uuid, $2::jsonb)", {app_id, dump_json(policy)});
    Json trail = audit_trail(generation.get());
    write_audit(actor, workspace_id, "app.generate", "app", app_id, dump_json(trail.get()));
    return SqlValue::jsonb("{\"app\":" + query_value("select flowgres.app_get($1::uuid)::text", {app_id}).value() +
                           ",\"version\":" + version + "}");
}

SqlValue generation_usage_record(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Json calls = parse_json(args.required_jsonb(1, "calls"), "calls");
    if (!json_is_array(calls.get()) || json_array_size(calls.get()) > 100)
        throw field_error("calls", "must be an array of at most 100 calls");
    require_system_actor();
    long long tokens = 0;
    size_t index;
    json_t *call;
    json_array_foreach(calls.get(), index, call) {
        for (const char *key : {"prompt_tokens", "completion_tokens", "cost_micros", "latency_ms"}) {
            const json_t *value = json_object_get(call, key);
            if (value && (!json_is_integer(value) || json_integer_value(value) < 0))
                throw field_error("calls[" + std::to_string(index) + "]." + key, "must be a non-negative integer");
        }
        tokens += json_integer_value(json_object_get(call, "prompt_tokens")) +
                  json_integer_value(json_object_get(call, "completion_tokens"));
    }
    query(R"sql(
        insert into flowgres.model_usage (workspace_id, node_id, provider, model, prompt_tokens, completion_tokens,
                                          cost_micros, latency_ms, ok, error_code, usage_reported)
        select $1::uuid, 'app_generation', c.provider, c.model, coalesce(c.prompt_tokens, 0), coalesce(c.completion_tokens, 0),
               coalesce(c.cost_micros, 0), coalesce(c.latency_ms, 0), coalesce(c.ok, false), left(c.error_code, 100),
               coalesce(c.usage_reported, true)
        from jsonb_to_recordset($2::jsonb) as c(provider text, model text, prompt_tokens bigint, completion_tokens bigint,
                                                cost_micros bigint, latency_ms bigint, ok boolean, error_code text,
                                                usage_reported boolean))sql",
          {workspace_id, dump_json(calls.get())});
    // Tokens a generation used count like a run's: consumed whatever the limits (the next call is refused).
    if (tokens > 0) {
        QuotaUse use = reserve_quota(workspace_id, UsageAmounts{0, tokens, 0}, false);
        if (use.reservation.outcome != UsageReservation::Outcome::reserved)
            throw Error(ErrorCode::OVERLOADED, "too many workspaces are metering usage at once: retry");
        record_usage(workspace_id, std::nullopt, std::nullopt, use);
    }
    return SqlValue::integer(tokens);
}

}  // namespace flowgres

namespace flowgres {

SqlValue version_generation_begin(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    Actor actor = require_actor();
    AppAccess access = require_app_permission(actor, app_id, permission::app_edit, WorkspaceUse::write);
    QuotaUse use = reserve_quota(access.workspace.workspace_id, UsageAmounts{0, 0, 0}, true);
    if (use.reservation.outcome == UsageReservation::Outcome::exceeded)
        throw Error(ErrorCode::QUOTA_EXCEEDED, quota_exceeded_message(use), quota_exceeded_details(use));
    std::string newest_id;
    if (!newest_version(app_id, &newest_id))
        throw Error(ErrorCode::VERSION_NOT_FOUND, "the app has no version to change yet: create one first");
    std::string version_id = access.current_version_id.value_or(newest_id);
    // The version the model changes, in the protocol's own shape.
    return SqlValue::jsonb(query_value(R"sql(
        select jsonb_build_object(
            'workspace_id', a.workspace_id, 'version', v.version,
            'current', jsonb_build_object(
                'app_metadata', jsonb_build_object('name', a.name, 'slug', a.slug, 'description', a.description),
                'workflow_definition', v.workflow, 'ui_schema', v.ui_schema,
                'db_schema', case when v.db_schema = '{}'::jsonb then null else v.db_schema end),
            'models', flowgres.workspace_models(a.workspace_id) -> 'items')
        from flowgres.apps a join flowgres.app_versions v on v.app_id = a.id
        where a.id = $1::uuid and v.id = $2::uuid)sql",
                                       {app_id, version_id})
                               .value());
}

SqlValue version_create_generated(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    Json document = parse_json(args.required_jsonb(1, "document"), "document");
    Json generation = parse_object_argument(args.jsonb(2).value_or("{}"), "generation");
    std::optional<std::string> instruction = args.text(3);
    ValidationProblems problems;
    collect_problems(document.get(), problems);
    problems.throw_if_any();
    Actor actor = require_actor();
    AppAccess access = require_app_permission(actor, app_id, permission::app_edit, WorkspaceUse::write);
    // The next minor version: versions stay immutable, a new one is added.
    auto newest = newest_version(app_id);
    SemanticVersion next = newest.value_or(SemanticVersion{});
    next.minor++;
    next.patch = 0;
    next.prerelease.clear();
    next.build.clear();
    const json_t *ui_schema = member(document.get(), "ui_schema");
    const json_t *db_schema = member(document.get(), "db_schema");
    std::string changelog = "Generated: " + utf8_prefix(instruction.value_or(""), 200);
    std::string version = query_value("select flowgres.version_create($1::uuid, $2, $3::jsonb, $4::jsonb, $5::jsonb, "
                                      "'{}'::jsonb, $6)::text",
                                      {app_id, next.to_string(), dump_json(member(document.get(), "workflow_definition")),
                                       present(ui_schema) ? dump_json(ui_schema) : "{}",
                                       present(db_schema) ? dump_json(db_schema) : "{}", changelog})
                              .value();
    std::string version_id = json_string_value(json_object_get(Json(parse_json(version, "version")).get(), "id"));
    Json trail = audit_trail(generation.get());
    write_audit(actor, access.workspace.workspace_id, "version.generate", "app_version", version_id, dump_json(trail.get()));
    return SqlValue::jsonb("{\"version\":" + version + "}");
}

}  // namespace flowgres
