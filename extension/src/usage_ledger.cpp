// The shared-memory table behind usage_ledger.hpp. Nothing raises while a spinlock is held;
// the transaction callbacks run plain memory operations only.
#include "usage_ledger.hpp"

#include <array>
#include <chrono>
#include <cstring>
#include <vector>

#include "flowgres/errors.hpp"
#include "hold_table.hpp"
#include "loaded_slots.hpp"
#include "postgres.hpp"
#include "run_cap.hpp"
#include "shared_memory.hpp"
#include "spi.hpp"

extern "C" {
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "storage/ipc.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
}

namespace flowgres {
namespace {

// A workspace-month of this database: the table is the cluster's, and a database copied from
// another (CREATE DATABASE … TEMPLATE) holds the same workspace ids.
struct Key {
    uint8 workspace[16];
    int32 month;
    Oid database;
};

struct Slot {
    Key key;
    int32 state;
    int32 loader_pid;
    uint64 last_used;  // the partition's clock when last reserved on: the least recent is evicted
    int64 committed[kUsageDimensions];
    int64 in_flight[kUsageDimensions];
};

using Ledger = LoadedSlots<Slot>;
using Partition = Ledger::Partition;

int configured_slots = 16384;
Ledger ledger("usage ledger");

Size table_size() { return Ledger::size_for(configured_slots); }
void initialise_table(void *memory) { Ledger::initialise(memory, configured_slots); }

// `amounts` leave the slot's in_flight: into its committed totals when `commit`.
void end_in_flight(Slot &slot, Partition &partition, const UsageAmounts &amounts, bool commit) {
    SpinLockAcquire(&partition.lock);
    for (int d = 0; d < kUsageDimensions; d++) {
        slot.in_flight[d] -= amounts[d];
        if (commit) slot.committed[d] += amounts[d];
    }
    SpinLockRelease(&partition.lock);
}

// What this backend's open transaction holds: amounts in flight per slot.
struct Held {
    Slot *slot;
    Partition *partition;
    UsageAmounts amounts;
};
TransactionChanges<Held> held([](const Held &entry, bool commit) {
    end_in_flight(*entry.slot, *entry.partition, entry.amounts, commit);
});

Key make_key(const std::string &workspace_id, int32 month) {
    Key key{};
    uuid_bytes(workspace_id, key.workspace);
    key.month = month;
    key.database = MyDatabaseId;
    return key;
}

bool has_in_flight(const Slot &slot) {
    for (int64 amount : slot.in_flight)
        if (amount != 0) return true;
    return false;
}

// ---------------------------------------------------------------------------------------
// Holds (usage_ledger.hpp): amounts in flight beyond the transaction that reserved them, one
// per execution, in their own partitioned table. A hold's amounts sit in its slot's in_flight
// (so the slot is never evicted under it) until the hold ends: settled by the transaction that
// records the run (in_flight → committed at its commit), or released — the taking transaction
// aborted, the taking backend ended, or the hold expired.
// ---------------------------------------------------------------------------------------

enum HoldState : int32 { kHoldFree = 0, kHoldTaken = 1, kHoldSettling = 2 };

struct Hold {
    uint8 id[16];
    int32 state;
    int32 owner_pid;     // the backend that took it (released when it ends)
    int32 settler_pid;   // kHoldSettling: the backend whose transaction settles it
    int64 expires_at;    // epoch seconds
    Slot *slot;          // null while being taken
    Partition *ledger;
    UsageAmounts amounts;
    RunCapHeld run;      // a run it counts towards the run cap (run_cap.hpp), if any
    bool run_as_row;     // kHoldSettling: the settling transaction writes the run's row running
};

HoldTable<Hold> holds("usage holds", 0x686f6c64);
int configured_holds = 65536;

// Ends the hold `id` when it is in `expected` state and (owner_pid != 0) belongs to that
// backend: its amounts leave in_flight, into committed when `commit`. Returns whether it did.
bool end_hold(const HoldId &id, int32 expected, int32 owner_pid, bool commit) {
    auto &partition = holds.partition_of(id);
    SpinLockAcquire(&partition.lock);
    Hold *hold = holds.find(partition, id);
    int32 holder = expected == kHoldSettling ? (hold ? hold->settler_pid : 0) : (hold ? hold->owner_pid : 0);
    if (!hold || hold->state != expected || (owner_pid != 0 && holder != owner_pid)) {
        SpinLockRelease(&partition.lock);
        return false;
    }
    Hold ended = *hold;
    hold->state = kHoldFree;
    hold->run = RunCapHeld{};
    SpinLockRelease(&partition.lock);
    if (ended.slot) end_in_flight(*ended.slot, *ended.ledger, ended.amounts, commit);
    run_cap_hold_end(ended.run, commit && ended.run_as_row);
    return true;
}

// A settling hold whose transaction did not commit goes back to being held.
void unsettle_hold(const HoldId &id) { holds.move(id, kHoldSettling, kHoldTaken, &Hold::settler_pid); }

// The holds this transaction took (released if it aborts) and those it settles (counted as
// committed if it commits, held again if not).
TransactionChanges<HoldId> holds_taken_now([](const HoldId &id, bool commit) {
    if (!commit) end_hold(id, kHoldTaken, 0, false);
});
TransactionChanges<HoldId> holds_settling_now([](const HoldId &id, bool commit) {
    if (commit)
        end_hold(id, kHoldSettling, MyProcPid, true);
    else
        unsettle_hold(id);
});

void release_owned_holds(int, Datum) {
    for (const HoldId &id : holds.take_owned()) end_hold(id, kHoldTaken, MyProcPid, false);
}

// This transaction truncated usage_events.
TruncationMark truncated;

// After a TRUNCATE of usage_events commits (this transaction's own amounts settled first),
// this database's workspaces have consumed nothing: a slot with nothing in flight is freed, to
// be loaded from the table on its next use; a slot with amounts in flight (held for runs not
// yet recorded, or reserved by transactions blocked on the TRUNCATE's lock before their
// insert: nobody else's usage row can have committed, as that lock is held until after this
// callback) keeps them in flight with nothing committed.
void forget_truncated_usage() {
    ledger.for_each_ready([](Slot &slot) {
        if (slot.key.database != MyDatabaseId) return;
        bool in_flight = false;
        for (int64 amount : slot.in_flight) in_flight = in_flight || amount != 0;
        if (!in_flight)
            slot.state = kSlotFree;
        else
            for (int64 &amount : slot.committed) amount = 0;
    });
}

// At the end of the transaction (min_level 0) or of a subtransaction at `min_level`.
void settle(bool commit, int min_level) {
    held.settle(commit, min_level);
    holds_settling_now.settle(commit, min_level);
    holds_taken_now.settle(commit, min_level);
    if (truncated.settle(commit, min_level)) forget_truncated_usage();
}

const TransactionHooks transaction_hooks{
    settle,
    [](int level) {
        truncated.nest(level);
        held.nest(level);
        holds_taken_now.nest(level);
        holds_settling_now.nest(level);
    },
    [] {
        return !held.empty() || !holds_taken_now.empty() || !holds_settling_now.empty() || truncated.marked();
    },
    [] { ledger.free_loading(); },
    "flowgres: a transaction that consumed quota, or truncated usage_events, cannot be prepared"};

// Runs `decide` under the lock of the workspace's loaded slot for this month, loading it
// first when needed (see usage_ledger.hpp for why the load sees everything, once). Returns
// false when no slot could be had (the probe run is busy).
template <typename Decide>
bool with_loaded_slot(const std::string &workspace_id, const UsagePeriod &period, Decide &&decide) {
    return ledger.with_loaded(
        make_key(workspace_id, period.month), [](const Slot &slot) { return !has_in_flight(slot); },
        [&] { return usage_period_totals(workspace_id, period, true); },
        [](Slot &slot, const UsageAmounts &totals) {
            for (int d = 0; d < kUsageDimensions; d++) slot.committed[d] = totals[d];
        },
        decide);
}

}  // namespace

UsagePeriod current_usage_period() {
    using namespace std::chrono;
    int64_t epoch_seconds = static_cast<int64_t>(GetCurrentTransactionStartTimestamp() / USECS_PER_SEC) +
                            static_cast<int64_t>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY;
    year_month_day day{floor<days>(sys_seconds{seconds{epoch_seconds}})};
    year_month_day first{day.year(), day.month(), std::chrono::day{1}};
    year_month_day next = first + months{1};
    UsagePeriod period;
    period.month = (static_cast<int>(day.year()) - 1970) * 12 + static_cast<int>(static_cast<unsigned>(day.month())) - 1;
    period.start = sys_seconds{sys_days{first}}.time_since_epoch().count();
    period.end = sys_seconds{sys_days{next}}.time_since_epoch().count();
    return period;
}

int64_t usage_spend(const UsageAmounts &totals, const UsageAmounts &price) {
    static constexpr __int128 kUnits[kUsageDimensions] = {1000, 1000000, static_cast<__int128>(1) << 30};
    __int128 spend = 0;
    for (int d = 0; d < kUsageDimensions; d++)
        spend += static_cast<__int128>(totals[d]) * static_cast<__int128>(price[d]) / kUnits[d];
    return spend > INT64_MAX ? INT64_MAX : static_cast<int64_t>(spend);
}

UsageAmounts usage_period_totals(const std::string &workspace_id, const UsagePeriod &period, bool latest_snapshot) {
    const char *sql = R"sql(
        select coalesce(sum(quantity) filter (where dimension = 'requests'), 0),
               coalesce(sum(quantity) filter (where dimension = 'tokens'), 0),
               coalesce(sum(quantity) filter (where dimension = 'egress'), 0)
        from flowgres.usage_events
        where workspace_id = $1::uuid and created_at >= to_timestamp($2::bigint) and created_at < to_timestamp($3::bigint))sql";
    std::initializer_list<SqlParam> params = {workspace_id, std::to_string(period.start), std::to_string(period.end)};
    SqlResult sums = latest_snapshot ? query_latest_snapshot(sql, params) : query(sql, params);
    UsageAmounts totals{};
    for (int d = 0; d < kUsageDimensions; d++) totals[d] = std::stoll(sums.rows.at(0).text(d));
    return totals;
}

// Puts `amounts` in flight on the workspace's slot when they fit `limits`; `reserved` runs
// under the slot's lock once they are (it must not raise).
namespace {
template <typename Reserved>
UsageReservation reserve_in_slot(const std::string &workspace_id, const UsageAmounts &amounts,
                                 const UsageLimits &limits, Reserved &&reserved) {
    UsageReservation reservation;
    UsagePeriod period = current_usage_period();
    bool found = with_loaded_slot(workspace_id, period, [&](Partition &partition, Slot &slot) {
        UsageAmounts after{};
        for (int d = 0; d < kUsageDimensions; d++) {
            reservation.before[d] = slot.committed[d] + slot.in_flight[d];
            after[d] = reservation.before[d] + amounts[d];
        }
        for (int d = 0; d < kUsageDimensions && reservation.exceeded < 0; d++)
            if (limits.quota[d] >= 0 && (after[d] > limits.quota[d] || reservation.before[d] >= limits.quota[d]))
                reservation.exceeded = d;
        if (reservation.exceeded < 0 && limits.spend_limit >= 0 &&
            (usage_spend(after, limits.price) > limits.spend_limit ||
             usage_spend(reservation.before, limits.price) >= limits.spend_limit))
            reservation.exceeded = kUsageBudget;
        if (reservation.exceeded >= 0) {
            reservation.outcome = UsageReservation::Outcome::exceeded;
            return;
        }
        for (int d = 0; d < kUsageDimensions; d++) slot.in_flight[d] += amounts[d];
        reserved(partition, slot);
        reservation.outcome = UsageReservation::Outcome::reserved;
    });
    if (!found) reservation.outcome = UsageReservation::Outcome::ledger_full;
    return reservation;
}
}  // namespace


UsageReservation usage_reserve(const std::string &workspace_id, const UsageAmounts &amounts, const UsageLimits &limits) {
    held.make_room();  // so recording the reservation below cannot fail
    return reserve_in_slot(workspace_id, amounts, limits, [&](Partition &partition, Slot &slot) {
        held.add(Held{&slot, &partition, amounts});
    });
}

UsageLedgerEntry usage_ledger_entry(const std::string &workspace_id) {
    UsageLedgerEntry entry;
    entry.period = current_usage_period();
    bool found = with_loaded_slot(workspace_id, entry.period, [&](Partition &, Slot &slot) {
        for (int d = 0; d < kUsageDimensions; d++) {
            entry.committed[d] = slot.committed[d];
            entry.in_flight[d] = slot.in_flight[d];
        }
    });
    if (!found) throw Error(ErrorCode::OVERLOADED, "the usage ledger has no free slot for this workspace: retry");
    return entry;
}

UsageReservation usage_hold(const std::string &workspace_id, const std::string &execution_id, const UsageAmounts &amounts,
                            const UsageLimits &limits, int64_t expires_at) {
    holds.require();
    static bool exit_callback = false;
    if (!exit_callback) {
        before_shmem_exit(release_owned_holds, 0);
        exit_callback = true;
    }
    HoldId id = hold_id_of(execution_id);
    // Room first, so that nothing below can fail once the amounts are in flight.
    holds_taken_now.make_room();
    holds.make_room_to_own();
    auto &partition = holds.partition_of(id);
    SpinLockAcquire(&partition.lock);
    Hold *hold = holds.find(partition, id);
    if (hold) {
        SpinLockRelease(&partition.lock);
        throw Error(ErrorCode::INTERNAL_ERROR, "usage ledger: execution " + execution_id + " already holds usage");
    }
    hold = holds.free_entry(partition);
    if (hold) {
        memcpy(hold->id, id.data(), id.size());
        hold->state = kHoldTaken;
        hold->owner_pid = MyProcPid;
        hold->expires_at = expires_at;
        hold->slot = nullptr;
        hold->ledger = nullptr;
        hold->run = RunCapHeld{};
        hold->run_as_row = false;
    }
    SpinLockRelease(&partition.lock);
    if (!hold) return UsageReservation{};  // ledger_full: every hold of this partition is taken

    Slot *reserved_slot = nullptr;
    Partition *reserved_ledger = nullptr;
    UsageReservation reservation;
    try {
        reservation = reserve_in_slot(workspace_id, amounts, limits, [&](Partition &ledger, Slot &slot) {
            reserved_slot = &slot;
            reserved_ledger = &ledger;
        });
    } catch (...) {
        end_hold(id, kHoldTaken, MyProcPid, false);
        throw;
    }
    if (reservation.outcome != UsageReservation::Outcome::reserved) {
        end_hold(id, kHoldTaken, MyProcPid, false);
        return reservation;
    }
    SpinLockAcquire(&partition.lock);
    hold->slot = reserved_slot;
    hold->ledger = reserved_ledger;
    hold->amounts = amounts;
    SpinLockRelease(&partition.lock);
    holds_taken_now.add(id);
    holds.own(id, [](const Hold &owned) { return owned.state == kHoldTaken; });
    return reservation;
}

bool usage_hold_attach_run(const std::string &execution_id, const RunCapHeld &run) {
    if (!holds.ready()) return false;
    HoldId id = hold_id_of(execution_id);
    auto &partition = holds.partition_of(id);
    SpinLockAcquire(&partition.lock);
    Hold *hold = holds.find(partition, id);
    bool attached = hold && hold->state == kHoldTaken && hold->owner_pid == MyProcPid && !hold->run.slot;
    if (attached) hold->run = run;
    SpinLockRelease(&partition.lock);
    return attached;
}

bool usage_hold_settle(const std::string &execution_id, bool run_as_row) {
    if (!holds.ready()) return false;
    HoldId id = hold_id_of(execution_id);
    holds_settling_now.make_room();
    auto &partition = holds.partition_of(id);
    SpinLockAcquire(&partition.lock);
    Hold *hold = holds.find(partition, id);
    bool settling = hold && hold->state == kHoldTaken;
    if (settling) {
        hold->state = kHoldSettling;
        hold->settler_pid = MyProcPid;
        hold->run_as_row = run_as_row;
    }
    SpinLockRelease(&partition.lock);
    if (settling) holds_settling_now.add(id);
    return settling;
}

int64_t usage_holds_expire(int64_t now) {
    return holds.end_each([&](const Hold &hold) { return hold.state == kHoldTaken && hold.slot && hold.expires_at <= now; },
                          [](const HoldId &id) { return end_hold(id, kHoldTaken, 0, false); });
}

void register_usage_ledger() {
    DefineCustomIntVariable("flowgres.usage_slots",
                            "Workspace-months of usage totals kept in shared memory (rounded up to a multiple of 64).",
                            nullptr, &configured_slots, 16384, 64, 4194304, PGC_POSTMASTER, 0, nullptr, nullptr,
                            nullptr);
    DefineCustomIntVariable("flowgres.usage_holds",
                            "Runs admitted and not yet recorded whose usage is held in shared memory at once "
                            "(rounded up to a multiple of 64).",
                            nullptr, &configured_holds, 65536, 64, 4194304, PGC_POSTMASTER, 0, nullptr, nullptr,
                            nullptr);
    register_shared_struct("flowgres usage ledger", table_size, initialise_table,
                           reinterpret_cast<void **>(ledger.table_address()));
    register_shared_struct("flowgres usage holds", [] { return HoldTable<Hold>::size_for(configured_holds); },
                           [](void *memory) { HoldTable<Hold>::initialise(memory, configured_holds); },
                           reinterpret_cast<void **>(holds.table_address()));
    register_transaction_hooks(transaction_hooks);
}

}  // namespace flowgres

// SQL: usage_truncated() — the statement trigger after TRUNCATE on usage_events
// (flowgres--0.31--0.32.sql). Written against PostgreSQL's C API only: it cannot raise.
extern "C" {
PG_FUNCTION_INFO_V1(flowgres_usage_truncated);
Datum flowgres_usage_truncated(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo)) ereport(ERROR, (errmsg("flowgres.usage_truncated() is a trigger")));
    flowgres::truncated.mark();
    return PointerGetDatum(nullptr);
}
}
