// What the llm step needs from the control plane and leaves in it (README "The llm step"):
// the routes to a run's models (service only: providers that offer each model to the
// workspace, its own first, with their sealed keys or key secrets and prices), the record of
// every model call a run made (service only, in the run's final transaction), and the
// workspace's model usage grouped by provider and model for a period.
#include "actor.hpp"
#include "boundary.hpp"
#include "execution_entries.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "list_filters.hpp"
#include "permission.hpp"
#include "run_preparation.hpp"
#include "spi.hpp"

namespace flowgres {

SqlValue llm_routes_for_run(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Json models = parse_json(args.required_jsonb(1, "models"), "models");
    if (!json_is_array(models.get()) || json_array_size(models.get()) > 100)
        throw field_error("models", "must be an array of at most 100 model ids");
    require_system_actor();
    return SqlValue::jsonb(run_routes_document(workspace_id, dump_json(models.get())));
}

int64_t secrets_stale_at(const std::string &workspace_id) {
    return std::stoll(query_value("select coalesce(floor(extract(epoch from min(expires_at)))::bigint, 0)::text "
                                  "from flowgres.workspace_secrets "
                                  "where workspace_id = $1::uuid and status = 'active' and expires_at > now()",
                                  {workspace_id})
                          .value_or("0"));
}

std::string run_routes_document(const std::string &workspace_id, const std::string &models_json) {
    return query_value(R"sql(
        select coalesce(jsonb_object_agg(model, routes), '{}')
        from (select m.model,
                     jsonb_agg(jsonb_build_object(
                         'provider', p.name, 'scope', case when p.workspace_id is null then 'platform' else 'workspace' end,
                         'protocol', p.protocol, 'base_url', p.base_url, 'timeout_ms', p.timeout_ms,
                         'sealed_api_key', p.sealed_api_key, 'api_key_secret', p.api_key_secret,
                         'secret_status', case when p.api_key_secret is null then null
                                               when s.id is null then 'missing'
                                               when s.status = 'revoked' then 'revoked'
                                               when s.expires_at <= now() then 'expired' else 'active' end,
                         'secret_sealed', case when s.status = 'active' and (s.expires_at is null or s.expires_at > now())
                                               then s.sealed_value end,
                         'input_micros_per_1m', m.input_micros_per_1m, 'output_micros_per_1m', m.output_micros_per_1m,
                         'context_tokens', m.context_tokens, 'quality', m.quality)
                     order by p.workspace_id is null, p.name) as routes
              from flowgres.llm_models m join flowgres.llm_providers p on p.id = m.provider_id
                   left join flowgres.workspace_secrets s on s.workspace_id = p.workspace_id and s.name = p.api_key_secret
              where m.model in (select jsonb_array_elements_text($2::jsonb))
                and (p.workspace_id = $1::uuid or p.workspace_id is null) and p.enabled and m.enabled
                and not exists (select 1 from flowgres.llm_model_switches s where s.model = m.model)
              group by m.model) offered)sql",
                       {workspace_id, models_json})
        .value_or("{}");
}

SqlValue model_usage_record(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    std::string calls = args.required_jsonb(1, "calls");
    JsonbRef parsed = JsonbDocument::parse(calls, "calls").root();
    ValidationProblems problems;
    check_model_calls(parsed, "calls", problems);
    problems.throw_if_any();
    require_system_actor();
    auto execution = query("select workspace_id::text, app_id::text from flowgres.executions where id = $1::uuid",
                           {execution_id});
    if (execution.rows.empty()) {
        if (parsed.size() == 0) return SqlValue::integer(0);
        throw Error(ErrorCode::EXECUTION_NOT_FOUND, "execution " + execution_id + " not found");
    }
    const SqlRow &row = execution.rows[0];
    return SqlValue::integer(
        static_cast<long long>(insert_model_calls(single_run_batch(row.text(0), row.text(1), execution_id, "calls", calls))));
}

SqlValue model_usage_list(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Json filters = filters_argument(args, 1);
    ValidationProblems problems;
    check_known_filters(problems, filters.get(), {"api_key_id", "model", "trace_id", "from", "to", "page", "page_size"});
    auto key_id = string_filter(problems, filters.get(), "api_key_id", 36);
    if (key_id && !is_uuid(*key_id)) problems.add("api_key_id", "must be a key id");
    auto model = string_filter(problems, filters.get(), "model", 200);
    auto trace_id = string_filter(problems, filters.get(), "trace_id", 32);
    if (trace_id && (trace_id->size() != 32 || trace_id->find_first_not_of("0123456789abcdef") != std::string::npos))
        problems.add("trace_id", "must be 32 lowercase hex digits");
    PeriodFilter period = period_filter(problems, filters.get());
    PageFilter pages = pages_filter(problems, filters.get(), 50, 200);
    problems.throw_if_any();
    require_workspace_permission(require_actor(), workspace_id, permission::app_view_metrics, WorkspaceUse::read);
    return SqlValue::jsonb(query_value(R"sql(
        with matching as (
            select * from flowgres.model_usage
            where workspace_id = $1::uuid and ($2::uuid is null or api_key_id = $2::uuid)
              and ($3::text is null or model = $3) and ($4::text is null or trace_id = $4)
              and ($5::timestamptz is null or created_at >= $5::timestamptz)
              and ($6::timestamptz is null or created_at < $6::timestamptz))
        select jsonb_build_object(
            'items', (select coalesce(jsonb_agg(to_jsonb(u) - 'workspace_id' order by u.id desc), '[]')
                      from (select * from matching order by id desc limit $7::bigint offset $8::bigint) u),
            'meta', jsonb_build_object('page', $9::bigint, 'page_size', $7::bigint, 'total', (select count(*) from matching))))sql",
                                       {workspace_id, key_id, model, trace_id, period.from, period.to,
                                        std::to_string(pages.size), std::to_string(pages.offset()),
                                        std::to_string(pages.page)})
                               .value());
}

SqlValue model_usage(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::optional<std::string> from = args.timestamptz(1);
    std::optional<std::string> to = args.timestamptz(2);
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::app_view_metrics, WorkspaceUse::read);
    return SqlValue::jsonb(query_value(R"sql(
        with period as (
            select coalesce($3::timestamptz, now()) as t, coalesce($2::timestamptz, coalesce($3::timestamptz, now()) - interval '30 days') as f),
        calls as (
            select u.* from flowgres.model_usage u, period
            where u.workspace_id = $1::uuid and u.created_at >= period.f and u.created_at < period.t),
        grouped as (
            select provider, model, count(*) as calls, count(*) filter (where not ok) as failed,
                   sum(prompt_tokens) as prompt_tokens, sum(completion_tokens) as completion_tokens,
                   sum(cost_micros) as cost_micros,
                   round((percentile_cont(0.5) within group (order by latency_ms))::numeric, 1) as p50,
                   round((percentile_cont(0.99) within group (order by latency_ms))::numeric, 1) as p99
            from calls group by provider, model)
        select jsonb_build_object(
            'workspace_id', $1::uuid, 'from', (select f from period), 'to', (select t from period),
            'items', coalesce((select jsonb_agg(jsonb_build_object(
                                  'provider', provider, 'model', model, 'calls', calls, 'failed', failed,
                                  'prompt_tokens', prompt_tokens, 'completion_tokens', completion_tokens,
                                  'total_tokens', prompt_tokens + completion_tokens, 'cost_micros', cost_micros,
                                  'latency_ms', jsonb_build_object('p50', p50, 'p99', p99))
                              order by cost_micros desc, provider, model) from grouped), '[]'),
            'totals', (select jsonb_build_object('calls', count(*), 'failed', count(*) filter (where not ok),
                                                 'prompt_tokens', coalesce(sum(prompt_tokens), 0),
                                                 'completion_tokens', coalesce(sum(completion_tokens), 0),
                                                 'cost_micros', coalesce(sum(cost_micros), 0)) from calls)))sql",
                                       {workspace_id, from, to})
                               .value());
}

}  // namespace flowgres
