// Output safety rules (README "Output safety", seed §47): the platform's (operator) and each
// workspace's (owners and admins: app_publish), phrases or RE2 patterns by category. Rules are
// checked here when added (a pattern must compile) and read by the daemon for each run whose
// workflow asks a model (safety_rules_for_run, service only).
#include "actor.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "flowgres/output_safety.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "run_preparation.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

constexpr long long kMaxRulesPerScope = 500;

constexpr const char *kRuleDocument = R"sql(
    jsonb_build_object('id', r.id, 'scope', case when r.workspace_id is null then 'platform' else 'workspace' end,
                       'workspace_id', r.workspace_id, 'category', r.category, 'kind', r.kind, 'text', r.text,
                       'created_by', r.created_by, 'created_at', r.created_at))sql";


}  // namespace

SqlValue safety_rule_add(CallArgs &args) {
    safety::Rule rule{args.required_text(0, "category"), args.text(2).value_or("phrase"), args.required_text(1, "text")};
    std::optional<std::string> workspace_id = args.uuid(3);
    if (std::string problem = safety::rule_problem(rule); !problem.empty()) {
        std::string field = problem.rfind("category", 0) == 0 ? "category" : problem.rfind("kind", 0) == 0 ? "kind" : "text";
        throw field_error(field, problem);
    }
    Actor actor = require_scope_permission(workspace_id, permission::app_publish, WorkspaceUse::write);
    query("select pg_advisory_xact_lock(hashtext('flowgres.safety_rules:' || coalesce($1, 'platform')))", {workspace_id});
    auto count = query_value_latest_snapshot(
        "select count(*) from flowgres.safety_rules where workspace_id is not distinct from $1::uuid", {workspace_id});
    if (std::stoll(count.value_or("0")) >= kMaxRulesPerScope)
        throw field_error("text", "at most " + std::to_string(kMaxRulesPerScope) + " rules; delete one first");
    auto id = query_value(R"sql(
        insert into flowgres.safety_rules (workspace_id, category, kind, text, created_by)
        values ($1::uuid, $2, $3, $4, $5::uuid)
        on conflict do nothing returning id)sql",
                          {workspace_id, rule.category, rule.kind, rule.text, actor.user_param()});
    if (!id)  // the same rule exists: adding it again changes nothing
        id = query_value("select id from flowgres.safety_rules where workspace_id is not distinct from $1::uuid "
                         "and category = $2 and kind = $3 and text = $4",
                         {workspace_id, rule.category, rule.kind, rule.text});
    write_audit(actor, workspace_id.value_or(kPlatformWorkspaceId), "safety_rule.add", "safety_rule", *id,
                "{\"category\":" + json_quote(rule.category) + ",\"kind\":" + json_quote(rule.kind) + "}");
    return SqlValue::jsonb(
        query_value(std::string("select ") + kRuleDocument + " from flowgres.safety_rules r where r.id = $1::uuid", {*id})
            .value());
}

SqlValue safety_rule_list(CallArgs &args) {
    std::optional<std::string> workspace_id = args.uuid(0);
    require_scope_permission(workspace_id, permission::app_edit, WorkspaceUse::read);
    return SqlValue::jsonb(query_value(std::string("select jsonb_build_object('items', coalesce(jsonb_agg(") + kRuleDocument +
                                           " order by r.workspace_id is null, r.category, r.kind, r.text), '[]')) "
                                           "from flowgres.safety_rules r where r.workspace_id is null "
                                           "or r.workspace_id = $1::uuid",
                                       {workspace_id})
                               .value());
}

SqlValue safety_rule_delete(CallArgs &args) {
    std::string rule_id = args.required_uuid(0, "rule_id");
    auto workspace = query("select workspace_id from flowgres.safety_rules where id = $1::uuid", {rule_id});
    auto not_found = [&] { return Error(ErrorCode::SAFETY_RULE_NOT_FOUND, "safety rule " + rule_id + " not found"); };
    if (workspace.rows.empty()) {
        require_actor();
        throw not_found();
    }
    std::optional<std::string> workspace_id = workspace.rows[0][0];
    Actor actor = [&] {
        try {
            return require_scope_permission(workspace_id, permission::app_publish, WorkspaceUse::read);
        } catch (const Error &error) {
            // A rule of a workspace the actor cannot see is not there.
            if (error.code() == ErrorCode::WORKSPACE_NOT_FOUND) throw not_found();
            throw;
        }
    }();
    std::string document =
        query_value(std::string("select ") + kRuleDocument + " from flowgres.safety_rules r where r.id = $1::uuid", {rule_id})
            .value();
    query("delete from flowgres.safety_rules where id = $1::uuid", {rule_id});
    write_audit(actor, workspace_id.value_or(kPlatformWorkspaceId), "safety_rule.delete", "safety_rule", rule_id);
    return SqlValue::jsonb(document);
}

SqlValue safety_rules_for_run(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    require_system_actor();
    return SqlValue::jsonb(run_safety_rules_document(workspace_id));
}

std::string run_safety_rules_document(const std::string &workspace_id) {
    return query_value(R"sql(
        select coalesce(jsonb_agg(jsonb_build_object('category', category, 'kind', kind, 'text', text)), '[]')
        from flowgres.safety_rules where workspace_id is null or workspace_id = $1::uuid)sql",
                       {workspace_id})
        .value_or("[]");
}

}  // namespace flowgres
