// Workspace creation, shared by workspace_create and user_create (every user gets one).
#pragma once

#include <optional>
#include <string>

#include "actor.hpp"

namespace flowgres {

struct NewWorkspace {
    std::string owner_user_id;
    std::string name;
    std::optional<std::string> slug;  // generated from `slug_source` when absent
    std::string slug_source;
    std::optional<std::string> icon;
    std::optional<std::string> region;
    bool is_default = false;
};

// Validates, inserts the workspace, its owner/admin/member roles and the owner's membership,
// writes the audit row; returns the new workspace's id.
std::string create_workspace(const Actor &actor, const NewWorkspace &request);

// Validators shared with workspace_update.
void check_icon(std::string_view field, std::string_view icon);
void check_region(std::string_view field, std::string_view region);

}  // namespace flowgres
