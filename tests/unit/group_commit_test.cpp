// Group commit (daemon/src/group_commit.hpp): what waits while the slots are busy leaves
// together, up to the batch size, as soon as a slot frees.
#include <gtest/gtest.h>

#include <vector>

#include "group_commit.hpp"

using flowgres::daemon::GroupCommit;

namespace {

struct Sent {
    std::vector<std::vector<int>> batches;
};

GroupCommit<int> recording(Sent &sent, size_t max_batch, size_t max_in_flight) {
    return GroupCommit<int>(max_batch, max_in_flight, [&sent](std::vector<int> batch) { sent.batches.push_back(batch); });
}

}  // namespace

TEST(GroupCommit, AnItemGoesAtOnceWhileASlotIsFree) {
    Sent sent;
    auto batches = recording(sent, 4, 2);
    batches.add(1);
    batches.add(2);
    EXPECT_EQ(sent.batches, (std::vector<std::vector<int>>{{1}, {2}}));
}

TEST(GroupCommit, ItemsWaitingForASlotLeaveTogetherUpToTheBatchSize) {
    Sent sent;
    auto batches = recording(sent, 3, 1);
    batches.add(1);
    for (int item = 2; item <= 6; item++) batches.add(item);
    EXPECT_EQ(sent.batches.size(), 1u) << "the slot is busy: the others wait";
    batches.answered();
    batches.answered();
    EXPECT_EQ(sent.batches, (std::vector<std::vector<int>>{{1}, {2, 3, 4}, {5, 6}}));
    batches.answered();
    batches.add(7);
    EXPECT_EQ(sent.batches.back(), std::vector<int>{7}) << "a free slot again: no wait";
}

TEST(GroupCommit, AFailedBatchIsSentAgainItemByItem) {
    Sent sent;
    auto batches = recording(sent, 8, 1);
    batches.add(1);
    batches.add(2);
    batches.add(3);
    batches.answered();  // {1} answered: {2, 3} leaves
    ASSERT_EQ(sent.batches.back(), (std::vector<int>{2, 3}));
    batches.resend_alone({2, 3});
    batches.answered();  // the failed {2, 3}
    EXPECT_EQ(sent.batches, (std::vector<std::vector<int>>{{1}, {2, 3}, {2}, {3}}));
    batches.add(4);
    EXPECT_EQ(sent.batches.size(), 4u) << "the two resent are out: 4 waits for them";
    batches.answered();  // {2}
    EXPECT_EQ(sent.batches.size(), 4u) << "{3} is still out";
    batches.answered();  // {3}
    EXPECT_EQ(sent.batches.back(), std::vector<int>{4});
}
