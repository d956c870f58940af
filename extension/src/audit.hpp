// Audit rows (README "SQL API"): one per mutation, written by the mutating function in its own
// transaction, so a rolled-back mutation leaves no audit row and a committed one always has one.
#pragma once

#include <string>
#include <string_view>

#include "actor.hpp"

namespace flowgres {

// Where audit rows of platform-wide changes (database servers, platform providers and rules)
// go: no workspace has this id.
inline constexpr const char *kPlatformWorkspaceId = "00000000-0000-0000-0000-000000000000";

// `metadata_json` must be a JSON object; the actor's role name is added to it.
void write_audit(const Actor &actor, const std::string &workspace_id, std::string_view action,
                 std::string_view target_type, const std::string &target_id, const std::string &metadata_json = "{}");

}  // namespace flowgres
