// App versions (seed §7.2, §23.5): immutable snapshots of workflow, UI schema, db schema and
// config under a semantic version that grows with every new version of the app.
#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/permissions.hpp"
#include "flowgres/schema_plan.hpp"
#include "flowgres/ui_schema.hpp"
#include "flowgres/workflow.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "spi.hpp"
#include "version.hpp"

namespace flowgres {
namespace {

constexpr size_t kMaxDocumentBytes = 1 << 20;  // per document; the daemon's body limit is 1 MiB too
constexpr size_t kMaxChangelogCharacters = 10000;

void check_document(ValidationProblems &problems, std::string_view field, const std::string &text) {
    // jsonb's text form of an object starts with '{'; no need to parse megabytes to know.
    if (text.empty() || text.front() != '{') problems.add(field, "must be a JSON object");
    else if (text.size() > kMaxDocumentBytes) problems.add(field, "must be at most 1 MiB");
}


}  // namespace

// The validators of core/ (README "Workflows and executions"): every problem of the workflow, each with its node id,
// under "workflow.<field>", and of the UI schema (including how its fields map onto the
// workflow's start inputs) under "ui_schema.<field>", so one VALIDATION_FAILED lists them all.
void add_document_problems(ValidationProblems &problems, const std::string &workflow_json, const std::string &ui_schema_json) {
    Json document = parse_json(workflow_json, "workflow");
    workflow::Problems found = workflow::validate_workflow(document.get());
    for (const auto &problem : found.list()) {
        std::string field = problem.field == "workflow" ? "workflow" : "workflow." + problem.field;
        problems.add(field, problem.message,
                     problem.node_id.empty() ? std::string() : "\"node_id\":" + json_quote(problem.node_id));
    }
    workflow::Problems ignored;
    std::vector<workflow::Port> start_inputs = workflow::parse_workflow(document.get(), ignored).start_inputs();
    Json ui_schema = parse_json(ui_schema_json, "ui_schema");
    for (const auto &problem : ui::validate_ui_schema(ui_schema.get(), start_inputs))
        problems.add(problem.field == "ui_schema" ? "ui_schema" : "ui_schema." + problem.field, problem.message);
}


std::optional<SemanticVersion> newest_version(const std::string &app_id, std::string *newest_id) {
    std::optional<SemanticVersion> newest;
    for (const SqlRow &row : query("select id, version from flowgres.app_versions where app_id = $1::uuid", {app_id}).rows) {
        auto version = SemanticVersion::parse(row.text(1));
        if (version && (!newest || *version > *newest)) {
            newest = version;
            if (newest_id) *newest_id = row.text(0);
        }
    }
    return newest;
}

VersionRow load_version(const std::string &version_id) {
    auto result = query("select app_id, version from flowgres.app_versions where id = $1::uuid", {version_id});
    if (result.rows.empty()) throw Error(ErrorCode::VERSION_NOT_FOUND, "version " + version_id + " not found");
    return {version_id, result.rows[0].text(0), result.rows[0].text(1)};
}

SqlValue version_create(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::string version_text = args.required_text(1, "version");
    std::string workflow = args.required_jsonb(2, "workflow");
    std::string ui_schema = args.jsonb(3).value_or("{}");
    std::string db_schema = args.jsonb(4).value_or("{}");
    std::string config = args.jsonb(5).value_or("{}");
    std::optional<std::string> changelog = args.text(6);

    SemanticVersion version = check_semantic_version("version", version_text);
    ValidationProblems problems;
    check_document(problems, "workflow", workflow);
    check_document(problems, "ui_schema", ui_schema);
    check_document(problems, "db_schema", db_schema);
    check_document(problems, "config", config);
    if (problems.empty()) add_document_problems(problems, workflow, ui_schema);
    if (problems.empty()) {
        Json schema = parse_json(db_schema, "db_schema");
        schema_plan::parse(schema.get(), problems);
    }
    if (changelog) {
        if (!is_valid_utf8(*changelog)) problems.add("changelog", "must be valid UTF-8");
        else if (utf8_length(*changelog) > kMaxChangelogCharacters) problems.add("changelog", "must be at most 10000 characters");
    }
    problems.throw_if_any();

    Actor actor = require_actor();
    AppAccess access = require_app_permission(actor, app_id, permission::app_edit, WorkspaceUse::write);
    if (access.status == "archived")
        throw Error(ErrorCode::STATE_CONFLICT, "app " + app_id + " is archived", "{\"from\":\"archived\",\"action\":\"create_version\"}");
    query("select 1 from flowgres.apps where id = $1::uuid for update", {app_id});
    if (query_value("select 1 from flowgres.app_versions where app_id = $1::uuid and version = $2", {app_id, version_text}))
        throw Error(ErrorCode::VERSION_EXISTS, "version " + version_text + " exists for this app", "{\"field\":\"version\"}");
    auto newest = newest_version(app_id);
    if (newest && version <= *newest)
        throw field_error("version", "must be greater than the newest version, " + newest->to_string());

    std::string version_id = query_value(R"sql(
        insert into flowgres.app_versions (app_id, workspace_id, version, workflow, ui_schema, db_schema, config, changelog, created_by)
        values ($1::uuid, $2::uuid, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9::uuid) returning id)sql",
                                         {app_id, access.workspace.workspace_id, version_text, workflow, ui_schema, db_schema,
                                          config, changelog, actor.user_param()})
                                 .value();
    query("update flowgres.apps set updated_at = now() where id = $1::uuid", {app_id});
    write_audit(actor, access.workspace.workspace_id, "version.create", "app_version", version_id,
                "{\"app_id\":" + json_quote(app_id) + ",\"version\":" + json_quote(version_text) + "}");
    return SqlValue::jsonb(query_value("select to_jsonb(v) from flowgres.app_versions v where id = $1::uuid", {version_id}).value());
}

SqlValue version_list(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    Actor actor = require_actor();
    require_app_permission(actor, app_id, permission::app_view_metrics, WorkspaceUse::read);
    auto list = query_value(R"sql(
        select coalesce(jsonb_agg(jsonb_build_object('id', v.id, 'app_id', v.app_id, 'version', v.version,
                                                     'changelog', v.changelog, 'created_by', v.created_by,
                                                     'created_at', v.created_at, 'is_current', v.id = a.current_version_id)
                                  order by v.sequence desc), '[]')
        from flowgres.app_versions v join flowgres.apps a on a.id = v.app_id
        where v.app_id = $1::uuid)sql",
                            {app_id});
    return SqlValue::jsonb(list.value_or("[]"));
}

SqlValue version_get(CallArgs &args) {
    std::string version_id = args.required_uuid(0, "version_id");
    Actor actor = require_actor();
    VersionRow version = load_version(version_id);
    try {
        require_app_permission(actor, version.app_id, permission::app_view_metrics, WorkspaceUse::read);
    } catch (const Error &error) {
        if (error.code() == ErrorCode::APP_NOT_FOUND)
            throw Error(ErrorCode::VERSION_NOT_FOUND, "version " + version_id + " not found");
        throw;
    }
    return SqlValue::jsonb(query_value("select to_jsonb(v) from flowgres.app_versions v where id = $1::uuid", {version_id}).value());
}

SqlValue version_diff(CallArgs &args) {
    std::string from_id = args.required_uuid(0, "from_version_id");
    std::string to_id = args.required_uuid(1, "to_version_id");
    Actor actor = require_actor();
    VersionRow from = load_version(from_id);
    VersionRow to = load_version(to_id);
    try {
        require_app_permission(actor, from.app_id, permission::app_view_metrics, WorkspaceUse::read);
    } catch (const Error &error) {
        if (error.code() == ErrorCode::APP_NOT_FOUND)
            throw Error(ErrorCode::VERSION_NOT_FOUND, "version " + from_id + " not found");
        throw;
    }
    if (to.app_id != from.app_id) throw field_error("to_version_id", "must be a version of the same app");

    // Workflow nodes are matched by id (seed §52): added, removed, or changed in any field.
    auto diff = query_value(R"sql(
        with a as (select * from flowgres.app_versions where id = $1::uuid),
             b as (select * from flowgres.app_versions where id = $2::uuid),
             fields as (
                select f.name, f.changed from a, b, lateral (values
                    ('workflow', a.workflow is distinct from b.workflow),
                    ('ui_schema', a.ui_schema is distinct from b.ui_schema),
                    ('db_schema', a.db_schema is distinct from b.db_schema),
                    ('config', a.config is distinct from b.config),
                    ('changelog', a.changelog is distinct from b.changelog)) as f(name, changed)),
             nodes_a as (select n ->> 'id' as id, n from a, jsonb_array_elements(
                            case when jsonb_typeof(a.workflow -> 'nodes') = 'array' then a.workflow -> 'nodes' else '[]' end) n),
             nodes_b as (select n ->> 'id' as id, n from b, jsonb_array_elements(
                            case when jsonb_typeof(b.workflow -> 'nodes') = 'array' then b.workflow -> 'nodes' else '[]' end) n)
        select jsonb_build_object(
            'from', (select jsonb_build_object('id', id, 'version', version) from a),
            'to', (select jsonb_build_object('id', id, 'version', version) from b),
            'changed_fields', coalesce((select jsonb_agg(name) from fields where changed), '[]'),
            'unchanged_fields', coalesce((select jsonb_agg(name) from fields where not changed), '[]'),
            'workflow_nodes', jsonb_build_object(
                'added', coalesce((select jsonb_agg(id order by id) from nodes_b where id not in (select id from nodes_a where id is not null)), '[]'),
                'removed', coalesce((select jsonb_agg(id order by id) from nodes_a where id not in (select id from nodes_b where id is not null)), '[]'),
                'changed', coalesce((select jsonb_agg(nodes_a.id order by nodes_a.id) from nodes_a join nodes_b using (id)
                                     where nodes_a.n is distinct from nodes_b.n), '[]'))))sql",
                            {from_id, to_id});
    return SqlValue::jsonb(diff.value());
}

}  // namespace flowgres
