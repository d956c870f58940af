// Seed §30.1, plus secrets_manage (seed §84, §126.3: credentials are for owners and admins):
// owner has everything; admin lacks billing_manage and workspace_admin; member may build and
// look, not publish, manage people or secrets, or change the plan.
#include "flowgres/permissions.hpp"

#include <algorithm>
#include <array>

namespace flowgres {
namespace {

using namespace permission;

constexpr std::array<std::string_view, 11> kAll = {members_manage, billing_manage, app_publish, app_edit,
                                                   app_view_metrics, logs_view, workspace_admin, apps_create,
                                                   plan_view, plan_manage, secrets_manage};
constexpr std::array<std::string_view, 11> kOwner = kAll;
constexpr std::array<std::string_view, 9> kAdmin = {members_manage, app_publish, app_edit, app_view_metrics,
                                                    logs_view, apps_create, plan_view, plan_manage, secrets_manage};
constexpr std::array<std::string_view, 5> kMember = {app_edit, app_view_metrics, logs_view, apps_create,
                                                     plan_view};
constexpr std::array<std::string_view, 3> kRoles = {"owner", "admin", "member"};

}  // namespace

std::span<const std::string_view> all_permissions() { return kAll; }

bool is_known_permission(std::string_view name) {
    return std::find(kAll.begin(), kAll.end(), name) != kAll.end();
}

std::span<const std::string_view> system_role_names() { return kRoles; }

bool is_system_role(std::string_view name) {
    return std::find(kRoles.begin(), kRoles.end(), name) != kRoles.end();
}

std::span<const std::string_view> system_role_permissions(std::string_view role) {
    if (role == "owner") return kOwner;
    if (role == "admin") return kAdmin;
    if (role == "member") return kMember;
    return {};
}

}  // namespace flowgres
