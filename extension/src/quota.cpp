// Quotas, budgets and the usage and metrics reports (quota.hpp).
#include "quota.hpp"

#include <algorithm>
#include <ctime>
#include <set>

#include "actor.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "catalog_cache.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "rate_limiter.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

constexpr long long kMicrosPerCent = 10000;
constexpr const char *kQuotaDimensions[] = {"requests", "tokens", "egress", "db_storage"};

std::string iso_utc(int64_t epoch_seconds) {
    time_t seconds = static_cast<time_t>(epoch_seconds);
    struct tm parts {};
    gmtime_r(&seconds, &parts);
    char text[32];
    strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
    return text;
}

std::string optional_number(const std::optional<long long> &value) {
    return value ? std::to_string(*value) : std::string("null");
}

std::optional<long long> json_optional_integer(const json_t *object, const char *name) {
    const json_t *value = json_object_get(object, name);
    if (!json_is_integer(value)) return std::nullopt;
    return json_integer_value(value);
}

// "1.234567" from micro-dollars.
std::string usd(int64_t micros) {
    std::string fraction = std::to_string(micros % 1000000);
    return std::to_string(micros / 1000000) + "." + std::string(6 - fraction.size(), '0') + fraction;
}

std::string require_quota_dimension(const std::string &dimension) {
    for (const char *known : kQuotaDimensions)
        if (dimension == known) return dimension;
    throw field_error("dimension", "must be requests, tokens, egress or db_storage");
}

std::string limits_document(const std::string &workspace_id) {
    return query_value("select flowgres.workspace_limits($1::uuid)::text", {workspace_id}).value();
}

std::string budget_document(const std::string &workspace_id, const WorkspaceLimits &limits, int64_t spend,
                            const UsagePeriod &period) {
    auto row = query(R"sql(
        select coalesce(b.spend_limit_enabled, false)::text,
               coalesce(to_jsonb(b.alert_thresholds), '[50, 80, 100]')::text,
               (select coalesce(jsonb_agg(jsonb_build_object('threshold', a.threshold, 'spend_micros', a.spend_micros,
                                                             'limit_micros', a.limit_micros, 'created_at', a.created_at)
                                          order by a.threshold), '[]')
                from flowgres.budget_alerts a
                where a.workspace_id = $1::uuid and a.period_start = to_timestamp($2::bigint)::date)::text
        from (select 1) one left join flowgres.budgets b on b.workspace_id = $1::uuid)sql",
                     {workspace_id, std::to_string(period.start)});
    const SqlRow &b = row.rows.at(0);
    std::string percent = "null";
    if (limits.spend_limit_cents && *limits.spend_limit_cents > 0)
        percent = std::to_string(spend * 100 / (*limits.spend_limit_cents * kMicrosPerCent));
    return "{\"currency\":\"USD\",\"spend_limit_cents\":" + optional_number(limits.spend_limit_cents) +
           ",\"spend_limit_enabled\":" + b.text(0) + ",\"alert_thresholds\":" + b.text(1) +
           ",\"spend_micros\":" + std::to_string(spend) + ",\"spend_usd\":" + json_quote(usd(spend)) +
           ",\"used_percent\":" + percent + ",\"alerts\":" + b.text(2) + "}";
}

}  // namespace

namespace {
WorkspaceLimits load_workspace_limits(const std::string &workspace_id) {
    Json document = parse_json(limits_document(workspace_id), "limits");
    WorkspaceLimits limits;
    const json_t *plan = json_object_get(document.get(), "plan");
    limits.plan = json_is_string(plan) ? json_string_value(plan) : "";
    const json_t *quota = json_object_get(document.get(), "quota");
    const json_t *prices = json_object_get(document.get(), "prices");
    for (int d = 0; d < kUsageDimensions; d++) {
        limits.usage.quota[d] = json_optional_integer(quota, kUsageDimensionNames[d]).value_or(-1);
        limits.usage.price[d] = json_optional_integer(prices, kUsageDimensionNames[d]).value_or(0);
    }
    limits.db_storage_quota = json_optional_integer(quota, "db_storage");
    const json_t *budget = json_object_get(document.get(), "budget");
    if (json_is_object(budget)) {
        limits.spend_limit_cents = json_optional_integer(budget, "spend_limit_cents");
        if (limits.spend_limit_cents && json_is_true(json_object_get(budget, "spend_limit_enabled")))
            limits.usage.spend_limit = *limits.spend_limit_cents * kMicrosPerCent;
        size_t index;
        json_t *threshold;
        json_array_foreach(json_object_get(budget, "alert_thresholds"), index, threshold)
            limits.alert_thresholds.push_back(static_cast<int>(json_integer_value(threshold)));
    }
    return limits;
}
}  // namespace

// Read on every admission and finish: cached per backend (catalog_cache.hpp).
WorkspaceLimits workspace_limits(const std::string &workspace_id) {
    static CatalogCache<WorkspaceLimits> cache(4096);
    return *cache.get(workspace_id, [&] { return std::optional(load_workspace_limits(workspace_id)); });
}

QuotaUse reserve_quota(const std::string &workspace_id, const UsageAmounts &amounts, bool enforce,
                       const WorkspaceLimits *limits) {
    QuotaUse use;
    use.limits = limits ? *limits : workspace_limits(workspace_id);
    use.period = current_usage_period();
    use.amounts = amounts;
    use.reservation = usage_reserve(workspace_id, amounts, enforce ? use.limits.usage : UsageLimits{});
    return use;
}

int execution_heartbeat_timeout_ms();  // worker_maintenance.cpp

QuotaUse hold_quota(const std::string &workspace_id, const std::string &execution_id, const UsageAmounts &amounts,
                    const WorkspaceLimits *limits) {
    QuotaUse use;
    use.limits = limits ? *limits : workspace_limits(workspace_id);
    use.period = current_usage_period();
    use.amounts = amounts;
    int64_t expires_at = epoch_seconds_now() + (execution_heartbeat_timeout_ms() + 999) / 1000;
    use.reservation = usage_hold(workspace_id, execution_id, amounts, use.limits.usage, expires_at);
    return use;
}

std::string quota_exceeded_message(const QuotaUse &use) {
    int d = use.reservation.exceeded;
    if (d == kUsageBudget) return "the workspace's monthly spend limit is reached";
    return std::string("the workspace's monthly ") + kUsageDimensionNames[d] + " quota is used up";
}

std::string quota_exceeded_details(const QuotaUse &use) {
    int d = use.reservation.exceeded;
    bool budget = d == kUsageBudget;
    int64_t quota = budget ? use.limits.usage.spend_limit : use.limits.usage.quota[d];
    int64_t used = budget ? usage_spend(use.reservation.before, use.limits.usage.price) : use.reservation.before[d];
    int64_t now = std::time(nullptr);
    return "{\"exceeded\":" + json_quote(budget ? "budget" : kUsageDimensionNames[d]) +
           ",\"plan\":" + json_quote(use.limits.plan) + ",\"quota\":" + std::to_string(quota) +
           ",\"used\":" + std::to_string(used) + (budget ? ",\"unit\":\"micro_usd\"" : "") +
           ",\"reset_at\":" + json_quote(iso_utc(use.period.end)) +
           ",\"retry_after_seconds\":" + std::to_string(std::max<int64_t>(1, use.period.end - now)) +
           ",\"overage_policy\":\"block\"}";
}

void raise_budget_alerts(const std::string &workspace_id, const std::optional<std::string> &app_id,
                         const QuotaUse &use) {
    if (!use.limits.spend_limit_cents || *use.limits.spend_limit_cents <= 0) return;
    UsageAmounts after = use.reservation.before;
    for (int d = 0; d < kUsageDimensions; d++) after[d] += use.amounts[d];
    __int128 limit = static_cast<__int128>(*use.limits.spend_limit_cents) * kMicrosPerCent;
    __int128 before_spend = usage_spend(use.reservation.before, use.limits.usage.price);
    __int128 after_spend = usage_spend(after, use.limits.usage.price);
    std::string crossed;
    for (int threshold : use.limits.alert_thresholds)
        if (before_spend * 100 < limit * threshold && after_spend * 100 >= limit * threshold)
            crossed += (crossed.empty() ? "" : ",") + std::to_string(threshold);
    if (crossed.empty()) return;
    // Once per threshold and month, however many transactions cross it at once.
    query(R"sql(
        with raised as (
            insert into flowgres.budget_alerts (workspace_id, period_start, threshold, spend_micros, limit_micros)
            select $1::uuid, to_timestamp($3::bigint)::date, t, $4::bigint, $5::bigint
            from unnest($2::integer[]) t
            on conflict do nothing
            returning threshold)
        insert into flowgres.runtime_events (workspace_id, app_id, event_type, severity, details)
        select $1::uuid, $6::uuid, 'budget.alert', case when threshold >= 100 then 'error' else 'warn' end,
               jsonb_build_object('threshold', threshold, 'spend_micros', $4::bigint, 'limit_micros', $5::bigint)
        from raised)sql",
          {workspace_id, "{" + crossed + "}", std::to_string(use.period.start),
           std::to_string(static_cast<int64_t>(after_spend)), std::to_string(static_cast<int64_t>(limit)), app_id});
}

void record_usage(const std::string &workspace_id, const std::optional<std::string> &app_id,
                  const std::optional<std::string> &execution_id, const QuotaUse &use) {
    std::string dimensions, quantities;
    for (int d = 0; d < kUsageDimensions; d++) {
        if (use.amounts[d] <= 0) continue;
        dimensions += (dimensions.empty() ? "" : ",") + std::string(kUsageDimensionNames[d]);
        quantities += (quantities.empty() ? "" : ",") + std::to_string(use.amounts[d]);
    }
    if (dimensions.empty()) return;
    query(R"sql(
        insert into flowgres.usage_events (workspace_id, app_id, execution_id, dimension, quantity)
        select $1::uuid, $2::uuid, $3::uuid, d, q
        from unnest($4::text[], $5::bigint[]) as u (d, q))sql",
          {workspace_id, app_id, execution_id, "{" + dimensions + "}", "{" + quantities + "}"});
    raise_budget_alerts(workspace_id, app_id, use);
}

void record_consumed_usage(const std::string &workspace_id, const std::string &app_id, const std::string &execution_id,
                           const UsageAmounts &used) {
    record_consumed_usage({ConsumedUsage{workspace_id, app_id, execution_id, used}});
}

void record_consumed_usage(const std::vector<ConsumedUsage> &runs, bool rows_written) {
    std::vector<QuotaUse> uses;
    std::vector<const ConsumedUsage *> consumed;
    std::string workspaces, apps, executions, dimensions, quantities;
    for (const ConsumedUsage &run : runs) {
        if (run.used[kUsageTokens] <= 0 && run.used[kUsageEgress] <= 0) continue;
        QuotaUse use = reserve_quota(run.workspace_id, run.used, false);
        if (use.reservation.outcome != UsageReservation::Outcome::reserved)
            throw Error(ErrorCode::OVERLOADED, "too many workspaces are metering usage at once: retry");
        for (int d = 0; d < kUsageDimensions && !rows_written; d++) {
            if (run.used[d] <= 0) continue;
            auto add = [](std::string &list, const std::string &value) { list += (list.empty() ? "" : ",") + value; };
            add(workspaces, run.workspace_id);
            add(apps, run.app_id);
            add(executions, run.execution_id);
            add(dimensions, kUsageDimensionNames[d]);
            add(quantities, std::to_string(run.used[d]));
        }
        uses.push_back(std::move(use));
        consumed.push_back(&run);
    }
    if (consumed.empty()) return;
    if (!rows_written)
        query(R"sql(
            insert into flowgres.usage_events (workspace_id, app_id, execution_id, dimension, quantity)
            select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[]))sql",
              {"{" + workspaces + "}", "{" + apps + "}", "{" + executions + "}", "{" + dimensions + "}",
               "{" + quantities + "}"});
    for (size_t i = 0; i < consumed.size(); i++) raise_budget_alerts(consumed[i]->workspace_id, consumed[i]->app_id, uses[i]);
}

// ---------------------------------------------------------------------------------------
// SQL functions
// ---------------------------------------------------------------------------------------

SqlValue workspace_usage(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::plan_view, WorkspaceUse::read);
    WorkspaceLimits limits = workspace_limits(workspace_id);
    UsagePeriod period = current_usage_period();
    UsageAmounts used = usage_period_totals(workspace_id, period, false);
    std::string usage = "{";
    for (int d = 0; d < kUsageDimensions; d++) {
        std::optional<long long> quota;
        if (limits.usage.quota[d] >= 0) quota = limits.usage.quota[d];
        std::optional<long long> remaining;
        if (quota) remaining = std::max<long long>(0, *quota - used[d]);
        usage += (d ? ",\"" : "\"") + std::string(kUsageDimensionNames[d]) +
                 "\":{\"used\":" + std::to_string(used[d]) + ",\"quota\":" + optional_number(quota) +
                 ",\"remaining\":" + optional_number(remaining) + "}";
    }
    usage += ",\"db_storage\":{\"quota\":" + optional_number(limits.db_storage_quota) + "}}";
    int64_t spend = usage_spend(used, limits.usage.price);
    auto apps = query_value(R"sql(
        select coalesce(jsonb_agg(jsonb_build_object('app_id', u.app_id, 'slug', a.slug, 'requests', u.requests,
                                                     'tokens', u.tokens, 'egress', u.egress)
                                  order by u.requests desc, u.tokens desc, u.app_id), '[]')::text
        from (select app_id,
                     coalesce(sum(quantity) filter (where dimension = 'requests'), 0) as requests,
                     coalesce(sum(quantity) filter (where dimension = 'tokens'), 0) as tokens,
                     coalesce(sum(quantity) filter (where dimension = 'egress'), 0) as egress
              from flowgres.usage_events
              where workspace_id = $1::uuid and created_at >= to_timestamp($2::bigint) and created_at < to_timestamp($3::bigint)
              group by app_id) u
        left join flowgres.apps a on a.id = u.app_id)sql",
                            {workspace_id, std::to_string(period.start), std::to_string(period.end)});
    return SqlValue::jsonb("{\"workspace_id\":" + json_quote(workspace_id) + ",\"plan\":" + json_quote(limits.plan) +
                           ",\"period\":{\"start\":" + json_quote(iso_utc(period.start)) +
                           ",\"end\":" + json_quote(iso_utc(period.end)) + "},\"usage\":" + usage +
                           ",\"spend\":{\"currency\":\"USD\",\"micros\":" + std::to_string(spend) +
                           ",\"usd\":" + json_quote(usd(spend)) + "},\"budget\":" +
                           budget_document(workspace_id, limits, spend, period) + ",\"apps\":" + apps.value() +
                           "}");
}

SqlValue workspace_quota_set(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string dimension = require_quota_dimension(args.required_text(1, "dimension"));
    Json setting = parse_json(args.required_jsonb(2, "setting"), "setting");
    const json_t *quota = json_object_get(setting.get(), "quota");
    if (!json_is_object(setting.get()) || !quota || (!json_is_null(quota) && !json_is_integer(quota)) ||
        (json_is_integer(quota) && json_integer_value(quota) < 0))
        throw field_error("quota", "must be a number from 0, or null for unlimited");
    Actor actor = require_system_actor();
    require_workspace_permission(actor, workspace_id, "", WorkspaceUse::read);
    std::optional<std::string> value;
    if (json_is_integer(quota)) value = std::to_string(json_integer_value(quota));
    query(R"sql(
        insert into flowgres.workspace_quotas (workspace_id, dimension, quota) values ($1::uuid, $2, $3::bigint)
        on conflict (workspace_id, dimension) do update set quota = excluded.quota, updated_at = now())sql",
          {workspace_id, dimension, value});
    write_audit(actor, workspace_id, "quota.update", "workspace", workspace_id,
                "{\"dimension\":" + json_quote(dimension) + ",\"quota\":" + value.value_or("null") + "}");
    return SqlValue::jsonb(limits_document(workspace_id));
}

SqlValue workspace_quota_clear(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string dimension = require_quota_dimension(args.required_text(1, "dimension"));
    Actor actor = require_system_actor();
    require_workspace_permission(actor, workspace_id, "", WorkspaceUse::read);
    query("delete from flowgres.workspace_quotas where workspace_id = $1::uuid and dimension = $2", {workspace_id, dimension});
    write_audit(actor, workspace_id, "quota.clear", "workspace", workspace_id,
                "{\"dimension\":" + json_quote(dimension) + "}");
    return SqlValue::jsonb(limits_document(workspace_id));
}

SqlValue budget_get(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::plan_view, WorkspaceUse::read);
    WorkspaceLimits limits = workspace_limits(workspace_id);
    UsagePeriod period = current_usage_period();
    return SqlValue::jsonb(
        budget_document(workspace_id, limits, usage_spend(usage_period_totals(workspace_id, period, false), limits.usage.price), period));
}

SqlValue budget_update(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Json changes = parse_json(args.required_jsonb(1, "changes"), "changes");
    if (!json_is_object(changes.get())) throw field_error("changes", "must be a JSON object");
    ValidationProblems problems;
    const char *key;
    json_t *value;
    std::optional<std::string> limit, enabled, thresholds;
    bool limit_given = false;
    json_object_foreach(changes.get(), key, value) {
        std::string_view name = key;
        if (name == "spend_limit_cents") {
            limit_given = true;
            if (json_is_integer(value) && json_integer_value(value) >= 0 &&
                json_integer_value(value) <= 100000000000000LL)
                limit = std::to_string(json_integer_value(value));
            else if (!json_is_null(value))
                problems.add(key, "must be a whole number of cents from 0, or null");
        } else if (name == "spend_limit_enabled") {
            if (json_is_boolean(value)) enabled = json_is_true(value) ? "true" : "false";
            else problems.add(key, "must be true or false");
        } else if (name == "alert_thresholds") {
            std::set<long long> seen;
            size_t index;
            json_t *item;
            bool valid = json_is_array(value) && json_array_size(value) <= 10;
            if (valid) json_array_foreach(value, index, item) {
                    valid = valid && json_is_integer(item) && json_integer_value(item) >= 1 &&
                            json_integer_value(item) <= 100 && seen.insert(json_integer_value(item)).second;
                }
            if (!valid) problems.add(key, "must be up to 10 distinct whole percentages from 1 to 100");
            else {
                std::string list;
                for (long long t : seen) list += (list.empty() ? "" : ",") + std::to_string(t);
                thresholds = "{" + list + "}";
            }
        } else {
            problems.add(key, "is not a budget setting (spend_limit_cents, spend_limit_enabled, alert_thresholds)");
        }
    }
    problems.throw_if_any();
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, permission::billing_manage, WorkspaceUse::write);
    auto current = query(
        "select spend_limit_cents::text, spend_limit_enabled::text from flowgres.budgets where workspace_id = $1::uuid",
        {workspace_id});
    std::optional<std::string> final_limit = limit_given ? limit : current.rows.empty() ? std::nullopt : current.rows[0][0];
    bool final_enabled = enabled ? *enabled == "true" : !current.rows.empty() && current.rows[0][1] == "true";
    if (final_enabled && !final_limit) throw field_error("spend_limit_cents", "is required to enable the spend limit");
    query(R"sql(
        insert into flowgres.budgets as b (workspace_id, spend_limit_cents, spend_limit_enabled, alert_thresholds)
        values ($1::uuid, $3::bigint, coalesce($4::boolean, false), coalesce($5::integer[], '{50,80,100}'))
        on conflict (workspace_id) do update set
            spend_limit_cents = case when $2::boolean then excluded.spend_limit_cents else b.spend_limit_cents end,
            spend_limit_enabled = coalesce($4::boolean, b.spend_limit_enabled),
            alert_thresholds = coalesce($5::integer[], b.alert_thresholds),
            updated_at = now())sql",
          {workspace_id, limit_given ? "true" : "false", limit, enabled, thresholds});
    write_audit(actor, workspace_id, "budget.update", "workspace", workspace_id, dump_json(changes.get()));
    return budget_get(args);
}

namespace {

// The (app_id, days) arguments of the app reports, checked, with the caller's app_view_metrics.
std::pair<std::string, std::string> app_report_arguments(CallArgs &args, long long default_days, long long max_days) {
    std::string app_id = args.required_uuid(0, "app_id");
    long long days = args.integer(1).value_or(default_days);
    if (days < 1 || days > max_days) throw field_error("days", "must be from 1 to " + std::to_string(max_days));
    Actor actor = require_actor();
    require_app_permission(actor, app_id, permission::app_view_metrics, WorkspaceUse::read);
    return {app_id, std::to_string(days)};
}

}  // namespace

SqlValue app_metrics(CallArgs &args) {
    auto [app_id, days] = app_report_arguments(args, 7, 90);
    return SqlValue::jsonb(query_value(R"sql(
        with runs as (
            select status, trigger, prompt_tokens, completion_tokens, created_at,
                   extract(epoch from (finished_at - started_at)) * 1000 as duration_ms
            from flowgres.executions
            where app_id = $1::uuid and created_at >= now() - make_interval(days => $2::integer))
        select jsonb_build_object(
            'app_id', $1::uuid, 'days', $2::integer, 'from', now() - make_interval(days => $2::integer), 'to', now(),
            'requests', count(*) filter (where trigger = 'runtime'),
            'executions', count(*),
            'completed', count(*) filter (where status = 'completed'),
            'errors', count(*) filter (where status = 'failed'),
            'cancelled', count(*) filter (where status = 'cancelled'),
            'in_progress', count(*) filter (where status in ('pending', 'running')),
            'error_rate', case when count(*) filter (where status in ('completed', 'failed')) > 0
                               then round(count(*) filter (where status = 'failed')::numeric
                                          / count(*) filter (where status in ('completed', 'failed')), 4) end,
            'duration_ms', jsonb_build_object(
                'p50', round((percentile_cont(0.5) within group (order by duration_ms)
                              filter (where status in ('completed', 'failed')))::numeric, 1),
                'p95', round((percentile_cont(0.95) within group (order by duration_ms)
                              filter (where status in ('completed', 'failed')))::numeric, 1)),
            'tokens', jsonb_build_object('prompt', coalesce(sum(prompt_tokens), 0),
                                         'completion', coalesce(sum(completion_tokens), 0),
                                         'total', coalesce(sum(prompt_tokens + completion_tokens), 0)),
            'by_day', (select coalesce(jsonb_agg(jsonb_build_object('day', day, 'executions', n, 'errors', failed)
                                                 order by day), '[]')
                       from (select (created_at at time zone 'UTC')::date as day, count(*) as n,
                                    count(*) filter (where status = 'failed') as failed
                             from runs group by 1) d))::text
        from runs)sql",
                                       {app_id, days})
                               .value());
}

SqlValue app_access_stats(CallArgs &args) {
    auto [app_id, days] = app_report_arguments(args, 30, 366);
    return SqlValue::jsonb(query_value(R"sql(
        -- A summary row (refusal_counter.hpp) stands for details.count events (details.refusals
        -- in rows written before counts had their own name). Executes are only counted, so
        -- visitors and sessions also come from the sessions the app's requests made.
        with recent as (
            select event_type, ip_hash, session_id, (created_at at time zone 'UTC')::date as day,
                   coalesce((details ->> 'count')::bigint, (details ->> 'refusals')::bigint, 1) as weight
            from flowgres.runtime_events
            where app_id = $1::uuid and created_at >= now() - make_interval(days => $2::integer)),
        sessions as (
            select id, ip_hash, (created_at at time zone 'UTC')::date as day from flowgres.app_sessions
            where app_id = $1::uuid and created_at >= now() - make_interval(days => $2::integer))
        select jsonb_build_object(
            'app_id', $1::uuid, 'days', $2::integer, 'from', now() - make_interval(days => $2::integer), 'to', now(),
            'events', (select coalesce(sum(weight), 0) from recent),
            'visitors', (select count(distinct ip_hash) from (select ip_hash from recent union select ip_hash from sessions) v),
            'sessions', (select count(distinct session_id) from (select session_id from recent union select id from sessions) s),
            'refused', (select coalesce(sum(weight), 0) from recent
                        where event_type in ('runtime.access_blocked', 'runtime.rate_limited', 'runtime.captcha_required',
                                             'runtime.quota_exceeded', 'runtime.load_shed', 'runtime.risk_detected')),
            'by_type', (select coalesce(jsonb_object_agg(event_type, n), '{}')
                        from (select event_type, sum(weight) as n from recent group by 1) t),
            'by_day', (select coalesce(jsonb_agg(jsonb_build_object('day', day, 'events', n, 'visitors', v,
                                                                    'by_type', types) order by day), '[]')
                       from (select day, sum(weight) as n, count(distinct ip_hash) as v,
                                    (select jsonb_object_agg(event_type, c)
                                     from (select event_type, sum(weight) as c from recent r2
                                           where r2.day = r.day group by 1) x) as types
                             from recent r group by day) d))::text)sql",
                                       {app_id, days})
                               .value());
}

SqlValue usage_ledger_sql(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    require_system_actor();
    UsageLedgerEntry entry = usage_ledger_entry(workspace_id);
    auto amounts = [](const UsageAmounts &values) {
        std::string out = "{";
        for (int d = 0; d < kUsageDimensions; d++)
            out += (d ? ",\"" : "\"") + std::string(kUsageDimensionNames[d]) + "\":" + std::to_string(values[d]);
        return out + "}";
    };
    return SqlValue::jsonb("{\"period_start\":" + json_quote(iso_utc(entry.period.start)) +
                           ",\"committed\":" + amounts(entry.committed) + ",\"in_flight\":" + amounts(entry.in_flight) +
                           "}");
}

}  // namespace flowgres
