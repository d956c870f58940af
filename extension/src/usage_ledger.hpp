// The running usage totals of each workspace's current month, in shared memory (README "Public runtime",
// README "Runtime admission (service)"): a quota check reads and moves a counter under one slot's
// spinlock instead of locking a row every request of the workspace would queue on.
//
// The truth is the usage_events table: every unit consumed is a row written in the same
// transaction as what it measures. The totals are a cache of that table that stays exact:
//   - A transaction *reserves* what it will consume (in flight). When it commits, the amount
//     moves to the committed total; when it or its subtransaction aborts, it is given back.
//     Checks count in-flight amounts as used, so concurrent requests cannot overshoot a quota.
//   - A workspace's month is loaded from usage_events when first needed after the server
//     starts (the shared memory is new after a restart or crash), and again after eviction.
//     While a slot is loading, other backends wait for it; no usage of that workspace can be
//     in flight then (reserving needs a loaded slot, and a slot with amounts in flight is never
//     evicted), so the load sees every committed row and nothing is counted twice.
// The table is flowgres.usage_slots slots (a server setting) in partitions of 64, each under
// its own spinlock; a full probe run whose slots all have usage in flight refuses with
// `ledger_full` (the caller answers 503) rather than guessing.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace flowgres {

enum UsageDimension : int { kUsageRequests = 0, kUsageTokens = 1, kUsageEgress = 2 };
inline constexpr int kUsageDimensions = 3;
inline constexpr const char *kUsageDimensionNames[kUsageDimensions] = {"requests", "tokens", "egress"};
inline constexpr int kUsageBudget = kUsageDimensions;  // UsageReservation::exceeded for the budget

using UsageAmounts = std::array<int64_t, kUsageDimensions>;

// A calendar month in UTC: the month of the transaction's start (now()), which is also what
// the rows it writes are dated.
struct UsagePeriod {
    int32_t month = 0;  // months since January 1970
    int64_t start = 0;  // epoch seconds
    int64_t end = 0;
};
UsagePeriod current_usage_period();

// The month's committed sums from usage_events: as the caller's transaction sees them, or
// (latest_snapshot) with a snapshot taken now, which the ledger's load needs (see above).
UsageAmounts usage_period_totals(const std::string &workspace_id, const UsagePeriod &period, bool latest_snapshot);

struct UsageLimits {
    UsageAmounts quota{-1, -1, -1};  // per month; -1: unlimited
    UsageAmounts price{0, 0, 0};     // micro-USD per 1,000 requests, per 1,000,000 tokens, per GiB
    int64_t spend_limit = -1;        // micro-USD per month; -1: none
};

// The spend of these totals at these prices, in micro-USD (rounded down per dimension).
int64_t usage_spend(const UsageAmounts &totals, const UsageAmounts &price);

struct UsageReservation {
    enum class Outcome { reserved, exceeded, ledger_full } outcome = Outcome::ledger_full;
    int exceeded = -1;       // the dimension, or kUsageBudget
    UsageAmounts before{};   // committed + in flight before this reservation
};

// Reserves `amounts` for the current transaction when they fit `limits`: a dimension fits when
// used + amount stays within its quota (and a dimension already at its quota refuses even an
// amount of 0); the budget when the spend stays within the limit. Raises only when loading the
// totals fails.
UsageReservation usage_reserve(const std::string &workspace_id, const UsageAmounts &amounts, const UsageLimits &limits);

// Holds: usage reserved for a run admitted in one transaction and recorded in another (a
// visitor's run whose execution row is written once, when it ends). usage_hold() reserves as
// usage_reserve() does, but the amounts stay in flight after the transaction commits, until
//   - usage_hold_settle() in the transaction that records the run: they move to the committed
//     totals when it commits (false: no such hold any more, its amounts already given back);
//   - the transaction that took the hold aborts;
//   - the backend that took it ends (its daemon died or lost the connection);
//   - it expires (`expires_at`, epoch seconds): usage_holds_expire(), from the maintenance worker.
// Either way the amounts are counted exactly once. A server restart empties the table (and
// reloads the committed totals from usage_events).
UsageReservation usage_hold(const std::string &workspace_id, const std::string &execution_id, const UsageAmounts &amounts,
                            const UsageLimits &limits, int64_t expires_at);
// `run_as_row`: the settling transaction writes the run's row running (see below).
bool usage_hold_settle(const std::string &execution_id, bool run_as_row = false);

// A hold may also count its run towards the run cap (run_cap.hpp: a trial run admitted
// without its row): attached by the transaction that took the hold, right after
// run_cap_hold(), and ended with the hold — settled (counted as a committed row when the
// settling transaction said `run_as_row`, else gone) or released. false: no hold of this
// backend's open transaction by that id (the caller ends the run itself). Cannot raise.
struct RunCapHeld;
bool usage_hold_attach_run(const std::string &execution_id, const RunCapHeld &run);
int64_t usage_holds_expire(int64_t now);

struct UsageLedgerEntry {
    UsagePeriod period;
    UsageAmounts committed{};
    UsageAmounts in_flight{};
};
// The workspace's totals this month, loading them when absent.
UsageLedgerEntry usage_ledger_entry(const std::string &workspace_id);

// From _PG_init: the setting, shared memory and the transaction callbacks.
void register_usage_ledger();

}  // namespace flowgres
