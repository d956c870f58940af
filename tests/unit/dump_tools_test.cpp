// The environment pg_dump and pg_restore get: what libpq needs, never the daemon's secrets.
#include "dump_tools.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace flowgres::provisioner;

TEST(ChildEnvironment, KeepsWhatLibpqNeedsAndNothingElse) {
    std::vector<std::string> text = {"PATH=/usr/bin:/bin",
                                     "LANG=C.UTF-8",
                                     "LC_MESSAGES=C",
                                     "PGSSLMODE=verify-full",
                                     "FLOWGRES_MASTER_KEYS=k1=c2VjcmV0",
                                     "FLOWGRES_ADMIN_KEY=fgk_secret",
                                     "AWS_SECRET_ACCESS_KEY=abc",
                                     "PGPASSWORD=inherited-password",
                                     "PATHOLOGICAL=1",
                                     "HOME=/root"};
    std::vector<char *> inherited;
    for (auto &entry : text) inherited.push_back(entry.data());
    inherited.push_back(nullptr);
    std::vector<std::string> child = child_environment(inherited.data(), "tenant-password");
    std::sort(child.begin(), child.end());
    EXPECT_EQ(child, (std::vector<std::string>{"LANG=C.UTF-8", "LC_MESSAGES=C", "PATH=/usr/bin:/bin",
                                                "PGPASSWORD=tenant-password", "PGSSLMODE=verify-full"}));
    EXPECT_EQ(child_environment(inherited.data(), "").size(), 4u) << "no password, no PGPASSWORD (not the inherited one)";
}
