// The permission matrix of seed §30.1.
#include <gtest/gtest.h>

#include <algorithm>

#include "flowgres/permissions.hpp"

using namespace flowgres;

namespace {
bool grants(std::string_view role, std::string_view permission) {
    auto list = system_role_permissions(role);
    return std::find(list.begin(), list.end(), permission) != list.end();
}
}  // namespace

TEST(Permissions, MatrixOfSeedSection30) {
    for (auto permission : all_permissions()) EXPECT_TRUE(grants("owner", permission)) << permission;
    EXPECT_FALSE(grants("admin", permission::billing_manage));
    EXPECT_FALSE(grants("admin", permission::workspace_admin));
    EXPECT_TRUE(grants("admin", permission::members_manage));
    EXPECT_TRUE(grants("admin", permission::app_publish));
    EXPECT_TRUE(grants("member", permission::app_edit));
    EXPECT_TRUE(grants("member", permission::apps_create));
    EXPECT_FALSE(grants("member", permission::app_publish));
    EXPECT_FALSE(grants("member", permission::members_manage));
    EXPECT_FALSE(grants("member", permission::plan_manage));
    EXPECT_TRUE(grants("admin", permission::secrets_manage));
    EXPECT_FALSE(grants("member", permission::secrets_manage));
    EXPECT_EQ(system_role_permissions("guest").size(), 0u);
    EXPECT_TRUE(is_known_permission("logs_view"));
    EXPECT_FALSE(is_known_permission("drop_database"));
}
