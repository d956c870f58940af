// Token holds (README "The llm step"): before a model call is sent, its worst case (prompt size
// plus max_tokens) is checked against the workspace's tokens quota and budget and held; the
// run's execution_finish drops its holds in the transaction that records what was used. Checks
// of one workspace queue on an advisory lock and count every live hold as used (spi.hpp: lock,
// then count), so parallel runs never overshoot together. Only holds of runs still running
// count: a run whose daemon died (kill -9) stops counting once the maintenance worker fails it
// as abandoned, and its holds are swept by the next check of its workspace (or expire).
#include <algorithm>

#include "actor.hpp"
#include "boundary.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "functions.hpp"
#include "quota.hpp"
#include "spi.hpp"

namespace flowgres {

SqlValue llm_tokens_reserve(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    long long tokens = args.bigint(1).value_or(0);
    if (tokens < 1 || tokens > 100000000) throw field_error("tokens", "must be from 1 to 100000000");
    require_system_actor();
    auto execution = query("select workspace_id, status from flowgres.executions where id = $1::uuid", {execution_id});
    if (execution.rows.empty()) throw Error(ErrorCode::EXECUTION_NOT_FOUND, "execution " + execution_id + " not found");
    if (execution.rows[0].text(1) != "running")
        throw Error(ErrorCode::STATE_CONFLICT, "the execution is not running", "{\"status\":" + json_quote(execution.rows[0].text(1)) + "}");
    std::string workspace_id = execution.rows[0].text(0);
    QuotaUse use;
    use.limits = workspace_limits(workspace_id);
    // Nothing to hold against: no tokens quota and no enforced budget (no lock, no row).
    if (use.limits.usage.quota[kUsageTokens] < 0 && use.limits.usage.spend_limit < 0)
        return SqlValue::jsonb("{\"hold_id\":null,\"tokens\":" + std::to_string(tokens) + ",\"tokens_remaining\":null}");
    query("select pg_advisory_xact_lock(hashtext('flowgres.token_holds:' || $1))", {workspace_id});
    query(R"sql(
        delete from flowgres.token_holds h
        where h.workspace_id = $1::uuid
          and (h.expires_at <= now()
               or not exists (select 1 from flowgres.executions e where e.id = h.execution_id and e.status = 'running')))sql",
          {workspace_id});
    long long held = std::stoll(query_value_latest_snapshot(
                                    "select coalesce(sum(tokens), 0) from flowgres.token_holds "
                                    "where workspace_id = $1::uuid and expires_at > now()",
                                    {workspace_id})
                                    .value_or("0"));
    UsageLedgerEntry entry = usage_ledger_entry(workspace_id);
    use.period = entry.period;
    use.amounts = {0, tokens, 0};
    for (int d = 0; d < kUsageDimensions; d++) use.reservation.before[d] = entry.committed[d] + entry.in_flight[d];
    use.reservation.before[kUsageTokens] += held;
    UsageAmounts after = use.reservation.before;
    after[kUsageTokens] += tokens;
    int64_t quota = use.limits.usage.quota[kUsageTokens];
    if (quota >= 0 && after[kUsageTokens] > quota)
        use.reservation.exceeded = kUsageTokens;
    else if (use.limits.usage.spend_limit >= 0 && usage_spend(after, use.limits.usage.price) > use.limits.usage.spend_limit)
        use.reservation.exceeded = kUsageBudget;
    if (use.reservation.exceeded >= 0) {
        use.reservation.outcome = UsageReservation::Outcome::exceeded;
        throw Error(ErrorCode::QUOTA_EXCEEDED, quota_exceeded_message(use), quota_exceeded_details(use));
    }
    std::string hold_id = query_value(R"sql(
        insert into flowgres.token_holds (workspace_id, execution_id, tokens, expires_at)
        values ($1::uuid, $2::uuid, $3::bigint, now() + interval '15 minutes') returning id)sql",
                                      {workspace_id, execution_id, std::to_string(tokens)})
                              .value();
    std::string remaining = quota < 0 ? "null" : std::to_string(std::max<int64_t>(0, quota - after[kUsageTokens]));
    return SqlValue::jsonb("{\"hold_id\":" + hold_id + ",\"tokens\":" + std::to_string(tokens) +
                           ",\"tokens_remaining\":" + remaining + "}");
}

}  // namespace flowgres

namespace flowgres {

SqlValue llm_tokens_release(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    require_system_actor();
    return SqlValue::integer(static_cast<long long>(
        query("delete from flowgres.token_holds where execution_id = $1::uuid", {execution_id}).processed));
}

}  // namespace flowgres
