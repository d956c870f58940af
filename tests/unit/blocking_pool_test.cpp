// BlockingPool: work on its own threads, answers on the loop, a bounded queue, and a stop that
// cancels what waits and lets what runs finish.
#include "blocking_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace flowgres::daemon;

TEST(BlockingPool, RunsOffTheLoopAnswersOnItAndBoundsItsQueue) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::thread::id loop_thread = std::this_thread::get_id();
    std::atomic<bool> release{false};
    int answered = 0, cancelled = 0;
    bool answers_on_loop = true;
    {
        BlockingPool pool(&loop, 1, 2);
        auto blocked = [&] {
            while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        };
        auto done = [&](bool was_cancelled) {
            answers_on_loop = answers_on_loop && std::this_thread::get_id() == loop_thread;
            (was_cancelled ? cancelled : answered)++;
        };
        ASSERT_TRUE(pool.submit(blocked, done));  // runs, holding the one thread
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        EXPECT_TRUE(pool.submit(blocked, done));  // waits
        EXPECT_TRUE(pool.submit(blocked, done));  // waits
        EXPECT_FALSE(pool.submit(blocked, done)) << "a full queue refuses";
        EXPECT_EQ(pool.waiting(), 2u);
        bool stopped = false;
        pool.stop([&] { stopped = true; });
        EXPECT_FALSE(pool.submit(blocked, done)) << "a stopping pool takes nothing";
        release = true;
        for (int i = 0; i < 200 && !stopped; i++) uv_run(&loop, UV_RUN_NOWAIT), std::this_thread::sleep_for(std::chrono::milliseconds(5));
        EXPECT_TRUE(stopped);
    }
    EXPECT_EQ(answered, 1) << "what ran finished";
    EXPECT_EQ(cancelled, 2) << "what waited was cancelled";
    EXPECT_TRUE(answers_on_loop);
    uv_run(&loop, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop), 0) << "no handle left open";
}
