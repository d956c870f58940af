// Reading executions_record_framed's answer (daemon/src/run_recorder.hpp): each run's
// document handed back as the database wrote it, errors as their statement's; anything but
// the expected frames fails every run rather than mixing answers up.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "run_recorder.hpp"

using flowgres::daemon::read_recorded_runs;
using Outcome = flowgres::pg::JobResult::Outcome;

namespace {
std::string frame(char kind, const std::string &document) {
    return kind + std::to_string(document.size()) + ":" + document;
}
}  // namespace

TEST(ReadRecordedRuns, EachRunGetsItsDocumentOrItsError) {
    std::string first = R"({"id":"a","outputs":{"text":"é: 1:2"}})";  // multi-byte, colons
    std::string second = R"({"error_code":"STATE_CONFLICT","sqlstate":"FG060","message":"ended meanwhile"})";
    auto runs = read_recorded_runs(frame('E', first) + frame('X', second) + frame('E', "{}"), 3);
    ASSERT_EQ(runs.size(), 3u);
    EXPECT_EQ(runs[0].outcome, Outcome::ok);
    EXPECT_EQ(runs[0].values.at(0), first);
    EXPECT_EQ(runs[1].outcome, Outcome::sql_error);
    EXPECT_EQ(runs[1].sqlstate, "FG060");
    EXPECT_EQ(runs[1].message, "ended meanwhile");
    EXPECT_EQ(runs[2].values.at(0), "{}");
}

TEST(ReadRecordedRuns, AnErrorObjectThatCannotBeReadIsStillAnError) {
    auto runs = read_recorded_runs(frame('X', "not json"), 1);
    ASSERT_EQ(runs.size(), 1u);
    EXPECT_EQ(runs[0].outcome, Outcome::sql_error);
    EXPECT_EQ(runs[0].sqlstate, "XX000");
}

TEST(ReadRecordedRuns, AnythingButTheExpectedFramesFailsEveryRun) {
    std::string good = frame('E', "{}");
    for (const std::string &answer : std::vector<std::string>{
             std::string(), good, good + good + good, "E3:{}", "E2{}" + good, "Q2:{}" + good, "E:{}" + good,
          "E-2:{}" + good, "E99999999999999999999:{}" + good, good + "E2:{}x", std::string("E2:{}\0", 6) + good}) {
        auto runs = read_recorded_runs(answer, 2);
        ASSERT_EQ(runs.size(), 2u) << answer;
        for (const auto &run : runs) {
            EXPECT_EQ(run.outcome, Outcome::sql_error) << answer;
            EXPECT_EQ(run.sqlstate, "XX000") << answer;
        }
    }
}
