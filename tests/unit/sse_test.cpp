// The incremental event-stream reader, fed whole and cut at every byte.
#include "flowgres/sse.hpp"

#include <gtest/gtest.h>

#include <vector>

using namespace flowgres;

namespace {
std::vector<std::string> read_all(std::string_view stream, size_t piece) {
    SseReader reader;
    std::vector<std::string> events;
    for (size_t at = 0; at < stream.size(); at += piece)
        EXPECT_TRUE(reader.feed(stream.substr(at, piece), [&](const std::string &data) {
            events.push_back(data);
            return true;
        }));
    return events;
}
}  // namespace

TEST(Sse, EventsComeOutHoweverTheBytesAreCut) {
    std::string stream =
        ": keep-alive\r\n\r\ndata: {\"a\":1}\r\n\r\nevent: x\ndata:no space\n\ndata: two\ndata: lines\n\n"
        "id: 7\rdata: cr only\r\rdata: [DONE]\n\n";
    std::vector<std::string> expected = {"{\"a\":1}", "no space", "two\nlines", "cr only", "[DONE]"};
    for (size_t piece = 1; piece <= stream.size(); piece++) EXPECT_EQ(read_all(stream, piece), expected) << piece;
}

TEST(Sse, AnUnfinishedEventWaits) {
    SseReader reader;
    int seen = 0;
    auto count = [&](const std::string &) { return ++seen, true; };
    EXPECT_TRUE(reader.feed("data: half", count));
    EXPECT_EQ(seen, 0);
    EXPECT_TRUE(reader.feed("\n\n", count));
    EXPECT_EQ(seen, 1);
}

TEST(Sse, AnOversizedEventStopsTheReader) {
    SseReader reader(64);
    auto ignore = [](const std::string &) { return true; };
    EXPECT_FALSE(reader.feed("data: " + std::string(100, 'x'), ignore));
    EXPECT_FALSE(reader.feed("\n\ndata: small\n\n", ignore)) << "nothing more is read";
}

TEST(Sse, TheCallerCanStopIt) {
    SseReader reader;
    int seen = 0;
    EXPECT_FALSE(reader.feed("data: 1\n\ndata: 2\n\n", [&](const std::string &) { return ++seen < 1; }));
    EXPECT_EQ(seen, 1);
}
