// The workspace permission matrix of seed §30: the system roles and what each may do.
// Not for: checking a user (the extension reads each workspace's stored role rows).
#pragma once

#include <span>
#include <string_view>

namespace flowgres {

namespace permission {
inline constexpr std::string_view members_manage = "members_manage";
inline constexpr std::string_view billing_manage = "billing_manage";
inline constexpr std::string_view app_publish = "app_publish";
inline constexpr std::string_view app_edit = "app_edit";
inline constexpr std::string_view app_view_metrics = "app_view_metrics";
inline constexpr std::string_view logs_view = "logs_view";
inline constexpr std::string_view workspace_admin = "workspace_admin";
inline constexpr std::string_view apps_create = "apps_create";
inline constexpr std::string_view plan_view = "plan_view";
inline constexpr std::string_view plan_manage = "plan_manage";
inline constexpr std::string_view secrets_manage = "secrets_manage";  // create, rotate, revoke secrets
}  // namespace permission

std::span<const std::string_view> all_permissions();
bool is_known_permission(std::string_view name);

// "owner", "admin", "member": the roles every workspace is created with.
std::span<const std::string_view> system_role_names();
bool is_system_role(std::string_view name);
std::span<const std::string_view> system_role_permissions(std::string_view role);

}  // namespace flowgres
