// The llhttp glue without sockets: framing, pipelining order, limits and their statuses.
#include <gtest/gtest.h>

#include "http/parser.hpp"

using flowgres::http::ParserLimits;
using flowgres::http::Request;
using flowgres::http::RequestParser;

namespace {

RequestParser make_parser(size_t body_limit = 1024, ParserLimits limits = {}) {
    return RequestParser(limits, [body_limit](const Request &) { return body_limit; });
}

std::optional<flowgres::http::ParseFailure> feed(RequestParser &parser, const std::string &data) {
    return parser.feed(data.data(), data.size());
}

}  // namespace

TEST(HttpParser, ParsesMethodPathQueryHeadersAndBody) {
    auto parser = make_parser();
    ASSERT_FALSE(feed(parser,
                      "POST /api/v1/apps?page=2&q=a%20b HTTP/1.1\r\nHost: x\r\nX-Thing:  v \r\n"
                      "Content-Length: 2\r\n\r\n{}"));
    ASSERT_EQ(parser.ready().size(), 1u);
    const Request &request = parser.ready().front();
    EXPECT_EQ(request.method, "POST");
    EXPECT_EQ(request.path, "/api/v1/apps");
    EXPECT_EQ(request.query, "page=2&q=a%20b");
    EXPECT_EQ(request.header("x-thing"), "v");
    EXPECT_EQ(request.body, "{}");
    EXPECT_TRUE(request.keep_alive);
}

TEST(HttpParser, PipelinedRequestsComeOutInOrderEvenWhenSplitAnywhere) {
    std::string stream;
    for (int i = 0; i < 5; i++) stream += "GET /r" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
    for (size_t split = 1; split < stream.size(); split += 7) {
        auto parser = make_parser();
        ASSERT_FALSE(feed(parser, stream.substr(0, split)));
        ASSERT_FALSE(feed(parser, stream.substr(split)));
        ASSERT_EQ(parser.ready().size(), 5u);
        for (int i = 0; i < 5; i++) EXPECT_EQ(parser.ready()[i].path, "/r" + std::to_string(i));
    }
}

TEST(HttpParser, ChunkedBodyIsReassembled) {
    auto parser = make_parser();
    ASSERT_FALSE(feed(parser, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
    ASSERT_EQ(parser.ready().size(), 1u);
    EXPECT_EQ(parser.ready().front().body, "abcde");
}

TEST(HttpParser, LimitsGiveTheirStatuses) {
    ParserLimits small;
    small.max_url_bytes = 32;
    small.max_header_bytes = 256;
    {
        auto parser = make_parser(1024, small);
        auto failure = feed(parser, "GET /" + std::string(40, 'a') + " HTTP/1.1\r\n\r\n");
        ASSERT_TRUE(failure);
        EXPECT_EQ(failure->status, 414);
    }
    {
        auto parser = make_parser(1024, small);
        auto failure = feed(parser, "GET / HTTP/1.1\r\nX: " + std::string(300, 'b') + "\r\n\r\n");
        ASSERT_TRUE(failure);
        EXPECT_EQ(failure->status, 431);
        EXPECT_EQ(failure->code, "HEADERS_TOO_LARGE");
    }
    {
        auto parser = make_parser(10);
        auto failure = feed(parser, "POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
        ASSERT_TRUE(failure);  // refused on the declared length, before any body byte
        EXPECT_EQ(failure->status, 413);
    }
    {
        auto parser = make_parser(10);
        auto failure =
            feed(parser, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n");
        ASSERT_TRUE(failure);
        EXPECT_EQ(failure->status, 413);
    }
}

TEST(HttpParser, MalformedFramingIs400AndSticky) {
    for (std::string bad : {"NOT HTTP\r\n\r\n", "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
                            "GET / HTTP/1.1\r\nBad Header Line\r\n\r\n"}) {
        auto parser = make_parser();
        auto failure = feed(parser, bad);
        ASSERT_TRUE(failure) << bad;
        EXPECT_EQ(failure->status, 400) << bad;
        EXPECT_TRUE(feed(parser, "GET / HTTP/1.1\r\n\r\n")) << "a failed parser must accept nothing more";
    }
}

TEST(HttpParser, ExpectContinueOnlyWhenABodyIsComing) {
    auto parser = make_parser();
    ASSERT_FALSE(feed(parser, "POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"));
    EXPECT_TRUE(parser.take_continue_request());
    EXPECT_FALSE(parser.take_continue_request());
    EXPECT_TRUE(parser.mid_message());
    ASSERT_FALSE(feed(parser, "{}"));
    EXPECT_FALSE(parser.mid_message());
    auto no_body = make_parser();
    ASSERT_FALSE(feed(no_body, "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"));
    EXPECT_FALSE(no_body.take_continue_request());
}

TEST(HttpParser, Http10AndConnectionCloseAreNotKeptAlive) {
    auto parser = make_parser();
    ASSERT_FALSE(feed(parser, "GET / HTTP/1.0\r\n\r\n"));
    EXPECT_FALSE(parser.ready().front().keep_alive);
    auto closing = make_parser();
    ASSERT_FALSE(feed(closing, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    EXPECT_FALSE(closing.ready().front().keep_alive);
}

TEST(HttpResponse, SerializesWithLengthAndClose) {
    flowgres::http::Response response;
    response.status = 404;
    response.body = "nope";
    response.with_header("X-A", "1");
    EXPECT_EQ(flowgres::http::serialize(response, true, false),
              "HTTP/1.1 404 Not Found\r\nX-A: 1\r\nContent-Length: 4\r\n\r\nnope");
    EXPECT_EQ(flowgres::http::serialize(response, false, true),
              "HTTP/1.1 404 Not Found\r\nX-A: 1\r\nContent-Length: 4\r\nConnection: close\r\n\r\n");
}

TEST(HttpResponse, StreamsInChunks) {
    flowgres::http::Response head;
    head.with_header("Content-Type", "text/event-stream");
    EXPECT_EQ(flowgres::http::serialize_stream_head(head, true),
              "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n");
    EXPECT_EQ(flowgres::http::serialize_stream_head(head, false),
              "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
              "Connection: close\r\n\r\n");
    EXPECT_EQ(flowgres::http::serialize_chunk("data: {}\n\n"), "a\r\ndata: {}\n\n\r\n");
    EXPECT_EQ(flowgres::http::serialize_chunk(std::string(300, 'x')), "12c\r\n" + std::string(300, 'x') + "\r\n");
    EXPECT_EQ(flowgres::http::kLastChunk, "0\r\n\r\n");
}

TEST(HttpQuery, DecodesAndRejectsBadEscapes) {
    auto pairs = flowgres::http::parse_query("a=1&b=x+y&c=%41%42&&d");
    ASSERT_TRUE(pairs);
    ASSERT_EQ(pairs->size(), 4u);
    EXPECT_EQ((*pairs)[1].second, "x y");
    EXPECT_EQ((*pairs)[2].second, "AB");
    EXPECT_EQ((*pairs)[3].first, "d");
    EXPECT_FALSE(flowgres::http::parse_query("a=%4"));
    EXPECT_FALSE(flowgres::http::parse_query("a=%zz"));
}

TEST(HttpQuery, AParameterIsItsLastValueAndAsyncOnlyWhenTrue) {
    flowgres::http::Request request;
    request.query = "after=3&async=true&after=%37";
    EXPECT_EQ(flowgres::http::query_value(request, "after"), "7");
    EXPECT_EQ(flowgres::http::query_value(request, "missing"), std::nullopt);
    EXPECT_TRUE(flowgres::http::asks_async(request));
    for (std::string query : {"async=1", "async=TRUE", "async", "async=true&async=false", "async=%zz", ""}) {
        request.query = query;
        EXPECT_FALSE(flowgres::http::asks_async(request)) << query;
    }
    request.query = "a=%4&async=true";  // a malformed query says nothing
    EXPECT_EQ(flowgres::http::query_value(request, "async"), std::nullopt);
}
