// What other concerns do with wallets (wallet.cpp): the gateway settles its calls' holds.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace flowgres {

// A hold to end: `captured` (0: released) of it taken from the balance.
struct WalletSettlement {
    std::string workspace_id, hold_id;
    long long captured = 0;
    std::optional<std::string> trace_id;
};

// Ends the holds in this transaction, writing each one's rows (hold, then capture or
// release); each is answered {hold_id, outcome, held, captured}: captured, released,
// settled_before (its rows exist) or not_held (gone without rows: nothing charged). Raises
// BILLING_REF_CONFLICT for a hold of another workspace than named.
std::vector<std::string> settle_wallet_holds(const std::vector<WalletSettlement> &settlements);

}  // namespace flowgres
