// What the app-role functions share with workspace_database.cpp: the claim a provisioner
// holds on a workspace's database while it works there.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "actor.hpp"
#include "spi.hpp"

namespace flowgres {

// Claims the workspace's database for `operation` (the caller checked the actor's
// permission); PROVISION_IN_PROGRESS while another holds it. Returns the work order.
std::string claim_database(const Actor &actor, const std::string &workspace_id, const std::string &operation,
                           const std::string &claimant, const std::optional<std::string> &pinned, long long lease_seconds);
// The row under lock, held by `claimant`; STATE_CONFLICT otherwise.
SqlRow require_claim(const std::string &workspace_id, const std::string &claimant);
// Ends a claim without changing the database's state.
void release_claim(const std::string &workspace_id, const std::string &claimant);
void check_claimant(std::string_view claimant);

}  // namespace flowgres
