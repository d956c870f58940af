// Each workspace's wallet in shared memory (README "Wallets"): its balance and what open holds
// have frozen of it, so that holding the worst-case cost of a model call before it is sent
// moves two counters under a spinlock instead of writing a row per call.
//
// The truth is the wallet_transactions table: the balance is its grants and refunds less its
// captures. The shared balance is a cache of that sum that stays exact, as the usage ledger's
// totals do (usage_ledger.hpp):
//   - A transaction that adds a grant, refund or capture row tells the ledger first; the
//     amount moves the cached balance when it commits, and not if it aborts.
//   - A workspace's balance is loaded from the table when first needed after the server
//     starts, and again after eviction. A slot with holds or such transactions in flight is
//     never evicted, and they need a loaded slot, so a load sees every committed row once.
//
// Holds are not rows: a hold freezes an amount of the available balance (balance - frozen)
// when it fits, beyond the transaction that took it, until
//   - the transaction settling it commits: the amount leaves `frozen` and the captured part
//     leaves the balance (that transaction writes the hold's rows: wallet.cpp);
//   - the transaction that took it aborts, or the backend that took it ends (its daemon died
//     or lost the connection), or it expires (expire_wallet_holds(), from the maintenance
//     worker): released, nothing written, nothing charged.
// A server restart empties the table: the holds of calls then in flight are released.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowgres {

struct WalletHoldOutcome {
    enum class Kind { held, insufficient, full } kind = Kind::full;
    int64_t available = 0;  // balance - frozen before this hold
};

// Freezes `amount` (> 0) of the workspace's wallet for the call `hold_id` (a uuid) when it
// fits the available balance. `full`: no room in the hold table or for the workspace's slot.
// Raises when the hold id is held already, or when loading the balance fails.
WalletHoldOutcome hold_in_wallet(const std::string &workspace_id, const std::string &hold_id, int64_t amount,
                              int64_t expires_at);

// An open hold, as the transaction settling it found it.
struct WalletHeld {
    std::string workspace_id;
    int64_t amount = 0;
    int64_t captured = 0;  // what is captured: never more than the hold
    int64_t held_at = 0;   // microseconds since the Unix epoch
};

// Settles the hold `hold_id` in this transaction, capturing `captured` (>= 0; more than the
// hold captures the hold: it was the call's worst case) of it: nullopt when no such hold is open (settled, released, expired, lost in a restart, or
// being settled by another transaction). At commit the hold ends; if the transaction aborts
// the hold is open again.
std::optional<WalletHeld> settle_wallet_hold(const std::string &hold_id, int64_t captured);

// This transaction adds `amount` (> 0) to the workspace's balance (a grant or a refund): it
// counts when the transaction commits. Raises OVERLOADED when the workspace gets no slot.
void credit_wallet(const std::string &workspace_id, int64_t amount);

struct WalletState {
    int64_t balance = 0;
    int64_t frozen = 0;
};
WalletState wallet_state(const std::string &workspace_id);

struct WalletOpenHold {
    std::string hold_id;
    int64_t amount = 0;
    int64_t held_at = 0;     // microseconds since the Unix epoch
    int64_t expires_at = 0;  // epoch seconds
    bool settling = false;
};
// The workspace's open holds (for the operator and tests: it visits the whole table).
std::vector<WalletOpenHold> open_wallet_holds(const std::string &workspace_id);

// Releases the holds past their expiry; returns how many.
int64_t expire_wallet_holds(int64_t now);

// From _PG_init: the settings, shared memory and the transaction callbacks.
void register_wallet_ledger();

}  // namespace flowgres
