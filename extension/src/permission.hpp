// Permission checks against each workspace's stored roles (seed §30), and has_permission().
// A caller who is not an active member of a workspace is told it does not exist (404), so ids
// of other tenants reveal nothing; a member lacking the permission gets PERMISSION_DENIED.
#pragma once

#include <string>
#include <string_view>

#include "actor.hpp"

namespace flowgres {

// What a function is about to do with the workspace.
enum class WorkspaceUse {
    read,     // any non-deleted workspace
    write,    // active workspaces only (else WORKSPACE_INACTIVE)
    restore,  // deleted workspaces too
};

struct WorkspaceAccess {
    std::string workspace_id;
    std::string status;
    std::string plan;
    std::string role;  // the actor's role name; "operator" for the system actor
};

// `permission` empty means "any active member".
WorkspaceAccess require_workspace_permission(const Actor &actor, const std::string &workspace_id,
                                             std::string_view permission, WorkspaceUse use);

// For things the platform and workspaces both have (model providers, safety rules): the
// operator for the platform's (no workspace_id), else a member with `permission`.
Actor require_scope_permission(const std::optional<std::string> &workspace_id, std::string_view permission,
                               WorkspaceUse use);

struct AppAccess {
    WorkspaceAccess workspace;
    std::string app_id;
    std::string status;
    std::string slug;
    std::optional<std::string> current_version_id;
    // What a run of the app without a version named runs: the current version, or when none
    // is published, the latest one made.
    std::optional<std::string> version_to_run;
};

// The app's workspace must grant `permission`; an app the actor cannot see is APP_NOT_FOUND.
AppAccess require_app_permission(const Actor &actor, const std::string &app_id, std::string_view permission,
                                 WorkspaceUse use);

}  // namespace flowgres
