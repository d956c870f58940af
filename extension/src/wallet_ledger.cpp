// The shared-memory tables behind wallet_ledger.hpp: balances per workspace (LoadedSlots) and
// holds per call (partitions of 64 under a spinlock each, found by the hold id's hash).
// Nothing raises while a spinlock is held; the transaction callbacks run plain memory
// operations only.
#include "wallet_ledger.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "flowgres/errors.hpp"
#include "hold_table.hpp"
#include "loaded_slots.hpp"
#include "postgres.hpp"
#include "shared_memory.hpp"
#include "spi.hpp"

extern "C" {
#include "common/hashfn.h"
#include "storage/ipc.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
}

namespace flowgres {
namespace {

struct Key {
    uint8 workspace[16];
    Oid database;  // the table is the cluster's; a database copied from another has its ids
};

struct Slot {
    Key key;
    int32 state;
    int32 loader_pid;
    uint64 last_used;
    int64 balance;  // committed: grants + refunds - captures
    int64 frozen;   // the sum of the open holds
    int32 pending;  // transactions in flight that will change the balance
};

using Ledger = LoadedSlots<Slot>;
using Partition = Ledger::Partition;

int configured_slots = 4096;
Ledger ledger("wallet ledger");

Key make_key(const std::string &workspace_id) {
    Key key{};
    uuid_bytes(workspace_id, key.workspace);
    key.database = MyDatabaseId;
    return key;
}

std::string uuid_text(const uint8 bytes[16]) {
    static const char *hex = "0123456789abcdef";
    std::string out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
        out += hex[bytes[i] >> 4];
        out += hex[bytes[i] & 15];
    }
    return out;
}

int64 committed_balance(const std::string &workspace_id) {
    auto sum = query_value_latest_snapshot(R"sql(
        select coalesce(sum(case kind when 'capture' then -amount when 'release' then 0 when 'hold' then 0
                                      else amount end), 0)::text
        from flowgres.wallet_transactions where workspace_id = $1::uuid)sql",
                                           {workspace_id});
    return std::stoll(sum.value_or("0"));
}

// Runs decide(partition, slot) under the lock of the workspace's loaded slot; false when no
// slot could be had.
template <typename Decide>
bool with_wallet(const std::string &workspace_id, Decide &&decide) {
    return ledger.with_loaded(
        make_key(workspace_id), [](const Slot &slot) { return slot.frozen == 0 && slot.pending == 0; },
        [&] { return committed_balance(workspace_id); },
        [](Slot &slot, int64 balance) { slot.balance = balance; }, decide);
}

// A grant or refund of the open transaction: counted at its commit.
struct Credit {
    Slot *slot;
    Partition *partition;
    int64 amount;
};
TransactionChanges<Credit> credits([](const Credit &credit, bool commit) {
    SpinLockAcquire(&credit.partition->lock);
    if (commit) credit.slot->balance += credit.amount;
    credit.slot->pending--;
    SpinLockRelease(&credit.partition->lock);
});

// ---------------------------------------------------------------------------------------
// Holds.
// ---------------------------------------------------------------------------------------

enum HoldState : int32 { kHoldFree = 0, kHoldTaking = 1, kHoldTaken = 2, kHoldSettling = 3 };

struct Hold {
    uint8 id[16];
    int32 state;
    int32 owner_pid;    // the backend that took it (released when it ends)
    int32 settler_pid;  // kHoldSettling: the backend whose transaction settles it
    int64 held_at;      // microseconds since the Unix epoch
    int64 expires_at;   // epoch seconds
    int64 amount;
    int64 captured;     // kHoldSettling: what the settling transaction captures
    Slot *slot;
    Partition *ledger;
};

HoldTable<Hold> holds("wallet holds", 0x77616c6c);
int configured_holds = 65536;

// Ends the hold `id` when it is in `expected` state and (pid != 0) belongs to that backend as
// owner (taken) or settler (settling): it leaves frozen, and with `capture` its captured part
// leaves the balance. Returns whether it did.
bool end_hold(const HoldId &id, int32 expected, int32 pid, bool capture) {
    auto &partition = holds.partition_of(id);
    SpinLockAcquire(&partition.lock);
    Hold *hold = holds.find(partition, id);
    int32 holder = !hold ? 0 : expected == kHoldSettling ? hold->settler_pid : hold->owner_pid;
    if (!hold || hold->state != expected || (pid != 0 && holder != pid)) {
        SpinLockRelease(&partition.lock);
        return false;
    }
    Hold ended = *hold;
    hold->state = kHoldFree;
    SpinLockRelease(&partition.lock);
    SpinLockAcquire(&ended.ledger->lock);
    ended.slot->frozen -= ended.amount;
    if (capture) ended.slot->balance -= ended.captured;
    SpinLockRelease(&ended.ledger->lock);
    return true;
}

void unsettle_hold(const HoldId &id) { holds.move(id, kHoldSettling, kHoldTaken, &Hold::settler_pid); }

// Frees a hold entry this backend was filling in (its amount never reached a slot).
void drop_taking(const HoldId &id) { holds.move(id, kHoldTaking, kHoldFree, &Hold::owner_pid); }

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

void settle(bool commit, int min_level) {
    credits.settle(commit, min_level);
    holds_settling_now.settle(commit, min_level);
    holds_taken_now.settle(commit, min_level);
}

const TransactionHooks transaction_hooks{
    settle,
    [](int level) {
        credits.nest(level);
        holds_taken_now.nest(level);
        holds_settling_now.nest(level);
    },
    [] { return !credits.empty() || !holds_taken_now.empty() || !holds_settling_now.empty(); },
    [] { ledger.free_loading(); },
    "flowgres: a transaction that moved money in a wallet cannot be prepared"};

int64 epoch_micros_now() {
    return static_cast<int64>(GetCurrentTimestamp()) +
           static_cast<int64>(POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * USECS_PER_SEC;
}

void require_tables() { holds.require(); }

}  // namespace

WalletHoldOutcome hold_in_wallet(const std::string &workspace_id, const std::string &hold_id, int64_t amount,
                              int64_t expires_at) {
    require_tables();
    if (amount <= 0) throw Error(ErrorCode::INTERNAL_ERROR, "wallet ledger: a hold must be of a positive amount");
    static bool exit_callback = false;
    if (!exit_callback) {
        before_shmem_exit(release_owned_holds, 0);
        exit_callback = true;
    }
    HoldId id = hold_id_of(hold_id);
    holds_taken_now.make_room();  // nothing below may fail once the amount is frozen
    holds.make_room_to_own();

    // The entry first (taking), so that a second hold by the same id is refused.
    auto &partition = holds.partition_of(id);
    SpinLockAcquire(&partition.lock);
    Hold *hold = holds.find(partition, id);
    if (hold) {
        SpinLockRelease(&partition.lock);
        throw Error(ErrorCode::BILLING_REF_CONFLICT, "the hold " + hold_id + " is open already");
    }
    hold = holds.free_entry(partition);
    if (hold) {
        memset(hold, 0, sizeof(Hold));
        memcpy(hold->id, id.data(), id.size());
        hold->state = kHoldTaking;
        hold->owner_pid = MyProcPid;
    }
    SpinLockRelease(&partition.lock);
    if (!hold) return WalletHoldOutcome{};

    WalletHoldOutcome outcome;
    Slot *frozen_slot = nullptr;
    Partition *frozen_ledger = nullptr;
    bool found;
    try {
        found = with_wallet(workspace_id, [&](Partition &slot_partition, Slot &slot) {
            outcome.available = slot.balance - slot.frozen;
            if (outcome.available < amount) {
                outcome.kind = WalletHoldOutcome::Kind::insufficient;
                return;
            }
            slot.frozen += amount;
            frozen_slot = &slot;
            frozen_ledger = &slot_partition;
            outcome.kind = WalletHoldOutcome::Kind::held;
        });
    } catch (...) {
        drop_taking(id);
        throw;
    }
    if (!found || !frozen_slot) {
        drop_taking(id);
        if (!found) outcome.kind = WalletHoldOutcome::Kind::full;
        return outcome;
    }
    SpinLockAcquire(&partition.lock);
    hold->slot = frozen_slot;
    hold->ledger = frozen_ledger;
    hold->amount = amount;
    hold->held_at = epoch_micros_now();
    hold->expires_at = expires_at;
    hold->state = kHoldTaken;
    SpinLockRelease(&partition.lock);
    holds_taken_now.add(id);
    holds.own(id, [](const Hold &owned) { return owned.state == kHoldTaken; });
    return outcome;
}

std::optional<WalletHeld> settle_wallet_hold(const std::string &hold_id, int64_t captured) {
    require_tables();
    HoldId id = hold_id_of(hold_id);
    holds_settling_now.make_room();
    auto &partition = holds.partition_of(id);
    SpinLockAcquire(&partition.lock);
    Hold *hold = holds.find(partition, id);
    bool settling = hold && hold->state == kHoldTaken && captured >= 0;
    std::optional<WalletHeld> held;
    uint8 workspace[16];
    if (settling) {
        hold->state = kHoldSettling;
        hold->settler_pid = MyProcPid;
        hold->captured = std::min<int64>(captured, hold->amount);
        memcpy(workspace, hold->slot->key.workspace, sizeof(workspace));
        held = WalletHeld{{}, hold->amount, hold->captured, hold->held_at};
    }
    SpinLockRelease(&partition.lock);
    if (!settling) return std::nullopt;
    holds_settling_now.add(id);
    held->workspace_id = uuid_text(workspace);
    return held;
}

void credit_wallet(const std::string &workspace_id, int64_t amount) {
    require_tables();
    credits.make_room();
    bool found = with_wallet(workspace_id, [&](Partition &partition, Slot &slot) {
        slot.pending++;
        credits.add(Credit{&slot, &partition, amount});
    });
    if (!found) throw Error(ErrorCode::OVERLOADED, "the wallet ledger has no free slot for this workspace: retry");
}

WalletState wallet_state(const std::string &workspace_id) {
    require_tables();
    WalletState state;
    bool found = with_wallet(workspace_id, [&](Partition &, Slot &slot) {
        state.balance = slot.balance;
        state.frozen = slot.frozen;
    });
    if (!found) throw Error(ErrorCode::OVERLOADED, "the wallet ledger has no free slot for this workspace: retry");
    return state;
}

std::vector<WalletOpenHold> open_wallet_holds(const std::string &workspace_id) {
    require_tables();
    Key key = make_key(workspace_id);
    std::vector<WalletOpenHold> open;
    for (const Hold &hold : holds.copies([&](const Hold &hold) {
             return (hold.state == kHoldTaken || hold.state == kHoldSettling) &&
                    memcmp(&hold.slot->key, &key, sizeof(Key)) == 0;
         }))
        open.push_back(WalletOpenHold{uuid_text(hold.id), hold.amount, hold.held_at, hold.expires_at,
                                      hold.state == kHoldSettling});
    return open;
}

int64_t expire_wallet_holds(int64_t now) {
    return holds.end_each([&](const Hold &hold) { return hold.state == kHoldTaken && hold.expires_at <= now; },
                          [](const HoldId &id) { return end_hold(id, kHoldTaken, 0, false); });
}

void register_wallet_ledger() {
    DefineCustomIntVariable("flowgres.wallet_slots",
                            "Workspaces whose wallet balance is kept in shared memory at once (rounded up to a "
                            "multiple of 64).",
                            nullptr, &configured_slots, 4096, 64, 4194304, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable("flowgres.wallet_holds",
                            "Model calls whose worst-case cost is held in wallets at once (rounded up to a multiple "
                            "of 64).",
                            nullptr, &configured_holds, 65536, 64, 4194304, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
    register_shared_struct("flowgres wallet ledger", [] { return Ledger::size_for(configured_slots); },
                           [](void *memory) { Ledger::initialise(memory, configured_slots); },
                           reinterpret_cast<void **>(ledger.table_address()));
    register_shared_struct("flowgres wallet holds", [] { return HoldTable<Hold>::size_for(configured_holds); },
                           [](void *memory) { HoldTable<Hold>::initialise(memory, configured_holds); },
                           reinterpret_cast<void **>(holds.table_address()));
    register_transaction_hooks(transaction_hooks);
}

}  // namespace flowgres
