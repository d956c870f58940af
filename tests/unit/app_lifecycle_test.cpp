// The app state machine, pair by pair: every (state, action) is either the listed transition
// or illegal.
#include <gtest/gtest.h>

#include <map>

#include "flowgres/app_lifecycle.hpp"

using namespace flowgres;

TEST(AppLifecycle, FullTransitionTable) {
    const std::map<std::pair<AppStatus, AppAction>, AppStatus> legal = {
        {{AppStatus::draft, AppAction::publish}, AppStatus::published},
        {{AppStatus::published, AppAction::publish}, AppStatus::published},
        {{AppStatus::published, AppAction::rollback}, AppStatus::published},
        {{AppStatus::published, AppAction::deprecate}, AppStatus::deprecated},
        {{AppStatus::deprecated, AppAction::archive}, AppStatus::archived},
        {{AppStatus::draft, AppAction::archive}, AppStatus::archived},
    };
    for (auto from : {AppStatus::draft, AppStatus::published, AppStatus::deprecated, AppStatus::archived}) {
        for (auto action : {AppAction::publish, AppAction::rollback, AppAction::deprecate, AppAction::archive}) {
            auto found = legal.find({from, action});
            auto to = app_transition(from, action);
            if (found == legal.end()) {
                EXPECT_FALSE(to) << to_string(from) << " " << to_string(action);
            } else {
                ASSERT_TRUE(to) << to_string(from) << " " << to_string(action);
                EXPECT_EQ(*to, found->second);
            }
        }
    }
}

TEST(AppLifecycle, StatusNamesRoundTrip) {
    for (auto status : {AppStatus::draft, AppStatus::published, AppStatus::deprecated, AppStatus::archived})
        EXPECT_EQ(parse_app_status(to_string(status)), status);
    EXPECT_FALSE(parse_app_status("deleted"));
}
