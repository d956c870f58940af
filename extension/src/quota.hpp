// Quotas and budgets on top of the usage ledger (README "Public runtime", seed §14, §32, §44, §54): the
// limits a workspace runs under, consuming usage (checked, held, and appended to
// usage_events in the caller's transaction), QUOTA_EXCEEDED's details, and budget alerts.
//   - requests: 1 per runtime execution admitted past access control and input validation,
//     also when it then fails; never for a request refused earlier.
//   - tokens: prompt + completion of every execution, when it finishes.
//   - egress: the bytes of a runtime execution's outputs, when it finishes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "usage_ledger.hpp"

namespace flowgres {

struct WorkspaceLimits {
    std::string plan;
    UsageLimits usage;                       // spend_limit set only when the budget is enforced
    std::optional<long long> db_storage_quota;
    std::optional<long long> spend_limit_cents;  // the budget's limit, enforced or not
    std::vector<int> alert_thresholds;           // percent of spend_limit_cents
};

WorkspaceLimits workspace_limits(const std::string &workspace_id);

struct QuotaUse {
    WorkspaceLimits limits;
    UsagePeriod period;
    UsageReservation reservation;
    UsageAmounts amounts{};
};

// Checks and holds `amounts` for this transaction (enforce=false holds them whatever the
// limits: usage already consumed, such as a finished run's tokens).
// `limits`: the workspace's, when the caller has read them already.
QuotaUse reserve_quota(const std::string &workspace_id, const UsageAmounts &amounts, bool enforce,
                       const WorkspaceLimits *limits = nullptr);

// The same, as a hold that outlives this transaction (usage_ledger.hpp): for a run admitted
// now and recorded, with its usage row, when it ends. Expires after
// flowgres.execution_heartbeat_timeout_ms (a run that lives longer is stored before then).
QuotaUse hold_quota(const std::string &workspace_id, const std::string &execution_id, const UsageAmounts &amounts,
                    const WorkspaceLimits *limits = nullptr);

// QUOTA_EXCEEDED's details: {exceeded, plan, quota, used, reset_at, retry_after_seconds,
// overage_policy} (for the budget: quota and used are the spend limit and spend in micro-USD).
std::string quota_exceeded_details(const QuotaUse &use);
std::string quota_exceeded_message(const QuotaUse &use);

// Appends the held amounts' usage_events rows (the non-zero ones) and raises the budget alerts
// whose thresholds this use crossed.
void record_usage(const std::string &workspace_id, const std::optional<std::string> &app_id,
                  const std::optional<std::string> &execution_id, const QuotaUse &use);

// Usage a finished run already consumed (its tokens, its outputs' bytes): held whatever the
// limits (the next request is refused instead) and recorded. OVERLOADED when the ledger is full.
void record_consumed_usage(const std::string &workspace_id, const std::string &app_id, const std::string &execution_id,
                           const UsageAmounts &used);

// The same for the runs of one record: each held in the ledger, their rows in one insert
// (unless `rows_written`: the statement that wrote the runs wrote their usage rows too).
struct ConsumedUsage {
    std::string workspace_id, app_id, execution_id;
    UsageAmounts used;
};
void record_consumed_usage(const std::vector<ConsumedUsage> &runs, bool rows_written = false);

// Only the alerts (for callers that append the usage rows themselves).
void raise_budget_alerts(const std::string &workspace_id, const std::optional<std::string> &app_id,
                         const QuotaUse &use);

}  // namespace flowgres
