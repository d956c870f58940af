// Model providers and the model catalogue (README "Model providers", seed §40.2, §88): the
// platform's providers (workspace_id null) are the operator's, a workspace's are its owners'
// and admins' (secrets_manage, since they carry credentials) and visible to its builders
// (app_edit). A platform provider's key arrives sealed by flowgresd and is readable by no
// role; a workspace provider names one of the workspace's secrets instead. The operator can
// switch a model off everywhere at once (llm_model_switches). workspace_models() is what a
// workspace may call: its own providers' models first, then the platform's.
#include <cstring>

#include "actor.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/llm_catalog.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {


constexpr const char *kProviderDocument = R"sql(
    jsonb_build_object(
        'id', p.id, 'scope', case when p.workspace_id is null then 'platform' else 'workspace' end,
        'workspace_id', p.workspace_id, 'name', p.name, 'protocol', p.protocol, 'base_url', p.base_url,
        'has_api_key', p.sealed_api_key is not null, 'api_key_preview', p.api_key_preview,
        'api_key_secret', p.api_key_secret, 'timeout_ms', p.timeout_ms, 'enabled', p.enabled,
        'created_by', p.created_by, 'created_at', p.created_at, 'updated_by', p.updated_by, 'updated_at', p.updated_at,
        'models', coalesce((select jsonb_agg(jsonb_build_object(
                                'model', m.model, 'input_micros_per_1m', m.input_micros_per_1m,
                                'output_micros_per_1m', m.output_micros_per_1m, 'context_tokens', m.context_tokens,
                                'quality', m.quality, 'enabled', m.enabled,
                                'switched_off', exists (select 1 from flowgres.llm_model_switches s where s.model = m.model))
                            order by m.model)
                            from flowgres.llm_models m where m.provider_id = p.id), '[]')))sql";

// Who acts, and where: the operator for the platform's providers, a member with `permission`
// for a workspace's.
struct Scope {
    Actor actor;
    std::optional<std::string> workspace_id;
    std::string audit_workspace() const { return workspace_id.value_or(kPlatformWorkspaceId); }
};

Scope require_scope(const std::optional<std::string> &workspace_id, std::string_view permission, WorkspaceUse use) {
    return {require_scope_permission(workspace_id, permission, use), workspace_id};
}

std::string checked_name(CallArgs &args, int position) {
    std::string name = args.required_text(position, "name");
    if (!llm::is_provider_name(name)) throw field_error("name", "must be lowercase letters, digits, - and _ (at most 63)");
    return name;
}

std::optional<std::string> find_provider(const Scope &scope, const std::string &name, bool lock = false) {
    return query_value(std::string("select id from flowgres.llm_providers where workspace_id is not distinct from "
                                   "$1::uuid and name = $2") +
                           (lock ? " for update" : ""),
                       {scope.workspace_id, name});
}

std::string require_provider(const Scope &scope, const std::string &name, bool lock = false) {
    auto id = find_provider(scope, name, lock);
    if (!id)
        throw Error(ErrorCode::LLM_PROVIDER_NOT_FOUND, "no model provider named " + name,
                    "{\"name\":" + json_quote(name) + "}");
    return *id;
}

std::string provider_document(const std::string &provider_id) {
    return query_value(std::string("select ") + kProviderDocument + " from flowgres.llm_providers p where p.id = $1::uuid",
                       {provider_id})
        .value();
}

void replace_models(const std::string &provider_id, const std::optional<std::string> &workspace_id,
                    const std::vector<llm::Model> &models) {
    query("delete from flowgres.llm_models where provider_id = $1::uuid", {provider_id});
    query(R"sql(
        insert into flowgres.llm_models (provider_id, workspace_id, model, input_micros_per_1m, output_micros_per_1m,
                                         context_tokens, quality, enabled)
        select $1::uuid, $2::uuid, m.model, m.input_micros_per_1m, m.output_micros_per_1m, m.context_tokens, m.quality,
               m.enabled
        from jsonb_to_recordset($3::jsonb) as m(model text, input_micros_per_1m bigint, output_micros_per_1m bigint,
                                                context_tokens integer, quality integer, enabled boolean))sql",
          {provider_id, workspace_id, llm::models_json(models)});
}

// {"sealed", "preview"} as flowgresd seals a platform provider's key.
std::optional<SealedValue> checked_key(CallArgs &args, int position) {
    auto text = args.jsonb(position);
    if (!text) return std::nullopt;
    return parse_sealed_value(*text, "api_key");
}

}  // namespace

SqlValue llm_provider_create(CallArgs &args) {
    std::optional<std::string> workspace_id = args.uuid(8);
    Json document(new_json_object());  // jansson's plain constructor would bind to PostgreSQL's own symbol
    auto put_text = [&](int position, const char *key) {
        if (auto value = args.text(position)) json_object_set_new(document.get(), key, json_stringn(value->data(), value->size()));
    };
    put_text(0, "name");
    put_text(1, "base_url");
    put_text(2, "protocol");
    put_text(4, "api_key_secret");
    if (auto timeout = args.integer(5)) json_object_set_new(document.get(), "timeout_ms", json_integer(*timeout));
    if (auto enabled = args.boolean(6)) json_object_set_new(document.get(), "enabled", json_boolean(*enabled));
    if (auto models = args.jsonb(7)) json_object_set_new(document.get(), "models", parse_json(*models, "models").release());
    llm::ProviderFields fields = llm::check_provider(document.get(), true, workspace_id.has_value());
    std::optional<SealedValue> key = checked_key(args, 3);
    if (key && workspace_id)
        throw field_error("api_key", "a workspace provider takes api_key_secret, the name of one of its secrets");
    Scope scope = require_scope(workspace_id, permission::secrets_manage, WorkspaceUse::write);
    // One scope's provider changes queue here (spi.hpp: lock, then count).
    query("select pg_advisory_xact_lock(hashtext('flowgres.llm_providers:' || coalesce($1, 'platform')))", {workspace_id});
    if (query_value_latest_snapshot("select 1 from flowgres.llm_providers where workspace_id is not distinct from $1::uuid "
                                    "and name = $2",
                                    {workspace_id, *fields.name}))
        throw Error(ErrorCode::LLM_PROVIDER_EXISTS, "a model provider named " + *fields.name + " exists here",
                    "{\"name\":" + json_quote(*fields.name) + "}");
    auto count = query_value_latest_snapshot(
        "select count(*) from flowgres.llm_providers where workspace_id is not distinct from $1::uuid", {workspace_id});
    if (std::stoll(count.value_or("0")) >= static_cast<long long>(llm::kMaxProvidersPerScope))
        throw field_error("name", "at most " + std::to_string(llm::kMaxProvidersPerScope) + " providers; delete one first");
    std::string provider_id =
        query_value(R"sql(
        insert into flowgres.llm_providers (workspace_id, name, protocol, base_url, sealed_api_key, api_key_preview,
                                            api_key_secret, timeout_ms, enabled, created_by, updated_by)
        values ($1::uuid, $2, coalesce($3, 'openai'), $4, $5, $6, $7, coalesce($8::integer, 60000),
                coalesce($9::boolean, true), $10::uuid, $10::uuid)
        returning id)sql",
                    {workspace_id, *fields.name, fields.protocol, *fields.base_url,
                     key ? SqlParam(key->sealed) : SqlParam(), key ? SqlParam(key->preview) : SqlParam(),
                     fields.api_key_secret,
                     fields.timeout_ms ? SqlParam(std::to_string(*fields.timeout_ms)) : SqlParam(),
                     fields.enabled ? SqlParam(*fields.enabled ? "true" : "false") : SqlParam(), scope.actor.user_param()})
            .value();
    if (fields.models) replace_models(provider_id, workspace_id, *fields.models);
    write_audit(scope.actor, scope.audit_workspace(), "llm_provider.create", "llm_provider", provider_id,
                "{\"name\":" + json_quote(*fields.name) + "}");
    return SqlValue::jsonb(provider_document(provider_id));
}

SqlValue llm_provider_list(CallArgs &args) {
    std::optional<std::string> workspace_id = args.uuid(0);
    Scope scope = require_scope(workspace_id, permission::app_edit, WorkspaceUse::read);
    return SqlValue::jsonb(
        query_value(std::string("select jsonb_build_object('items', coalesce(jsonb_agg(") + kProviderDocument +
                        " order by p.name), '[]')) from flowgres.llm_providers p "
                        "where p.workspace_id is not distinct from $1::uuid",
                    {workspace_id})
            .value());
}

SqlValue llm_provider_get(CallArgs &args) {
    std::string name = checked_name(args, 0);
    std::optional<std::string> workspace_id = args.uuid(1);
    Scope scope = require_scope(workspace_id, permission::app_edit, WorkspaceUse::read);
    return SqlValue::jsonb(provider_document(require_provider(scope, name)));
}

SqlValue llm_provider_update(CallArgs &args) {
    std::string name = checked_name(args, 0);
    Json changes = parse_json(args.required_jsonb(1, "changes"), "changes");
    std::optional<std::string> workspace_id = args.uuid(2);
    llm::ProviderFields fields = llm::check_provider(changes.get(), false, workspace_id.has_value());
    Scope scope = require_scope(workspace_id, permission::secrets_manage, WorkspaceUse::write);
    std::string provider_id = require_provider(scope, name, true);
    // api_key_secret: null removes it (a keyless provider), a name replaces it.
    const json_t *secret = json_object_get(changes.get(), "api_key_secret");
    query(R"sql(
        update flowgres.llm_providers
        set base_url = coalesce($2, base_url), timeout_ms = coalesce($3::integer, timeout_ms),
            enabled = coalesce($4::boolean, enabled),
            api_key_secret = case when $5::boolean then $6 else api_key_secret end,
            updated_by = $7::uuid, updated_at = now()
        where id = $1::uuid)sql",
          {provider_id, fields.base_url, fields.timeout_ms ? SqlParam(std::to_string(*fields.timeout_ms)) : SqlParam(),
           fields.enabled ? SqlParam(*fields.enabled ? "true" : "false") : SqlParam(), secret ? "true" : "false",
           fields.api_key_secret, scope.actor.user_param()});
    if (fields.models) replace_models(provider_id, workspace_id, *fields.models);
    write_audit(scope.actor, scope.audit_workspace(), "llm_provider.update", "llm_provider", provider_id,
                "{\"name\":" + json_quote(name) + ",\"changed\":" +
                    query_value("select coalesce(jsonb_agg(k), '[]')::text from jsonb_object_keys($1::jsonb) k",
                                {dump_json(changes.get())})
                        .value_or("[]") +
                    "}");
    return SqlValue::jsonb(provider_document(provider_id));
}

SqlValue llm_provider_delete(CallArgs &args) {
    std::string name = checked_name(args, 0);
    std::optional<std::string> workspace_id = args.uuid(1);
    Scope scope = require_scope(workspace_id, permission::secrets_manage, WorkspaceUse::read);
    std::string provider_id = require_provider(scope, name, true);
    std::string document = provider_document(provider_id);
    query("delete from flowgres.llm_providers where id = $1::uuid", {provider_id});
    write_audit(scope.actor, scope.audit_workspace(), "llm_provider.delete", "llm_provider", provider_id,
                "{\"name\":" + json_quote(name) + "}");
    return SqlValue::jsonb(document);
}

SqlValue llm_provider_rotate_key(CallArgs &args) {
    std::string name = checked_name(args, 0);
    std::optional<SealedValue> key = checked_key(args, 1);
    Scope scope = require_scope(std::nullopt, "", WorkspaceUse::write);
    std::string provider_id = require_provider(scope, name, true);
    query("update flowgres.llm_providers set sealed_api_key = $2, api_key_preview = $3, updated_by = $4::uuid, "
          "updated_at = now() where id = $1::uuid",
          {provider_id, key ? SqlParam(key->sealed) : SqlParam(), key ? SqlParam(key->preview) : SqlParam(),
           scope.actor.user_param()});
    write_audit(scope.actor, scope.audit_workspace(), "llm_provider.rotate_key", "llm_provider", provider_id,
                "{\"name\":" + json_quote(name) + ",\"has_api_key\":" + (key ? "true" : "false") + "}");
    return SqlValue::jsonb(provider_document(provider_id));
}

SqlValue llm_model_set_enabled(CallArgs &args) {
    std::string model = args.required_text(0, "model");
    if (!llm::is_model_id(model)) throw field_error("model", "must be 1 to 200 printable characters without spaces");
    bool enabled = args.boolean(1).value_or(true);
    std::optional<std::string> reason = args.text(2);
    if (reason) check_display_text("reason", *reason, 500);
    Actor actor = require_system_actor();
    if (enabled)
        query("delete from flowgres.llm_model_switches where model = $1", {model});
    else
        query("insert into flowgres.llm_model_switches (model, reason, disabled_by) values ($1, $2, $3::uuid) "
              "on conflict (model) do update set reason = excluded.reason, disabled_by = excluded.disabled_by, "
              "disabled_at = now()",
              {model, reason, actor.user_param()});
    write_audit(actor, kPlatformWorkspaceId, enabled ? "llm_model.enable" : "llm_model.disable", "llm_model", model,
                "{\"reason\":" + (reason ? json_quote(*reason) : std::string("null")) + "}");
    return SqlValue::jsonb(query_value(R"sql(
        select jsonb_build_object('model', $1::text, 'enabled', s.model is null, 'reason', s.reason,
                                  'disabled_at', s.disabled_at,
                                  'offered_by', (select count(*) from flowgres.llm_models m where m.model = $1))
        from (select 1) one left join flowgres.llm_model_switches s on s.model = $1)sql",
                                       {model})
                               .value());
}

SqlValue workspace_models(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, "", WorkspaceUse::read);
    return SqlValue::jsonb(workspace_models_document(workspace_id));
}

std::string workspace_models_document(const std::string &workspace_id) {
    return query_value(R"sql(
        select jsonb_build_object('items', coalesce(jsonb_agg(jsonb_build_object(
                   'model', m.model, 'provider', p.name,
                   'scope', case when p.workspace_id is null then 'platform' else 'workspace' end,
                   'input_micros_per_1m', m.input_micros_per_1m, 'output_micros_per_1m', m.output_micros_per_1m,
                   'context_tokens', m.context_tokens, 'quality', m.quality)
               order by p.workspace_id is null, p.name, m.model), '[]'))
        from flowgres.llm_providers p join flowgres.llm_models m on m.provider_id = p.id
        where (p.workspace_id = $1::uuid or p.workspace_id is null) and p.enabled and m.enabled
          and not exists (select 1 from flowgres.llm_model_switches s where s.model = m.model))sql",
                       {workspace_id})
        .value();
}

}  // namespace flowgres
