// Envelope, trace context, database error mapping, configuration and log masking.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <ctime>
#include <thread>

#include <gtest/gtest.h>

#include "config.hpp"
#include "envelope.hpp"
#include "flowgres/crypto.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/secret_box.hpp"
#include "log.hpp"

using namespace flowgres::daemon;

TEST(Envelope, SuccessAndErrorShapes) {
    TraceContext trace{"req-1", std::string(32, 'a'), std::string(16, 'b')};
    auto ok = success_response(201, R"({"id":1})", trace);
    EXPECT_EQ(ok.status, 201);
    EXPECT_EQ(ok.body, R"({"code":"OK","message":"ok","data":{"id":1},"trace_id":")" + std::string(32, 'a') +
                           R"(","request_id":"req-1"})");
    auto error = error_response(flowgres::ErrorCode::APP_NOT_FOUND, "no \"app\"", R"({"id":2})", trace);
    EXPECT_EQ(error.status, 404);
    EXPECT_NE(
        error.body.find(R"("error_code":"APP_NOT_FOUND","error_message":"no \"app\"","data":{"details":{"id":2}})"),
        std::string::npos);
}

TEST(TraceContext, ContinuesValidTraceparentOnly) {
    flowgres::http::Request request;
    request.headers = {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
                       {"x-request-id", "abc"}};
    auto trace = trace_context_of(request);
    EXPECT_EQ(trace.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(trace.request_id, "abc");
    EXPECT_NE(trace.span_id, "00f067aa0ba902b7");
    for (const char *bad : {"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "garbage"}) {
        request.headers = {{"traceparent", bad}, {"x-request-id", "a b"}};
        auto fresh = trace_context_of(request);
        EXPECT_NE(fresh.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        EXPECT_EQ(fresh.trace_id.size(), 32u);
        EXPECT_EQ(fresh.request_id.rfind("req_", 0), 0u);
    }
}

TEST(DatabaseErrors, FlowgresErrorsKeepTheirCodeAndDetails) {
    auto mapped =
        map_database_error("FG040", "app x not found", R"({"error_code":"APP_NOT_FOUND","details":{"id":"x"}})");
    EXPECT_EQ(mapped.code, flowgres::ErrorCode::APP_NOT_FOUND);
    EXPECT_EQ(mapped.details_json, R"({"id":"x"})");
    EXPECT_FALSE(mapped.internal);
    EXPECT_EQ(map_database_error("22P02", "invalid input", "").code, flowgres::ErrorCode::VALIDATION_FAILED);
    EXPECT_EQ(map_database_error("57014", "canceling statement", "").code, flowgres::ErrorCode::DB_UNAVAILABLE);
    auto internal = map_database_error("42883", "function does not exist", "");
    EXPECT_EQ(internal.code, flowgres::ErrorCode::INTERNAL_ERROR);
    EXPECT_TRUE(internal.internal);
    EXPECT_EQ(internal.message, "internal error") << "server internals are not shown to clients";
}

TEST(Config, SourcesOverrideInOrderAndBadValuesNameTheKey) {
    Config config;
    std::string env_url = "FLOWGRES_DATABASE_URL=host=/env";
    std::string env_port = "FLOWGRES_PORT=9000";
    std::string unrelated = "FLOWGRES_PG_PORT=5544";
    char *environment[] = {env_url.data(), env_port.data(), unrelated.data(), nullptr};
    ASSERT_TRUE(load_config(config, {"--port=9100", "--workers", "3"}, environment));
    EXPECT_EQ(config.database_url, "host=/env");
    EXPECT_EQ(config.port, 9100);
    EXPECT_EQ(config.workers, 3);

    auto error_of = [](std::vector<std::string> arguments) {
        Config fresh;
        char *none[] = {nullptr};
        try {
            load_config(fresh, arguments, none);
        } catch (const ConfigError &error) {
            return std::string(error.what());
        }
        return std::string();
    };
    EXPECT_NE(error_of({}).find("database_url"), std::string::npos);
    EXPECT_NE(error_of({"--database_url=x", "--port=0"}).find("port"), std::string::npos);
    EXPECT_NE(error_of({"--database_url=x", "--log_requests=perhaps"}).find("log_requests"), std::string::npos);
    EXPECT_NE(error_of({"--database_url=x", "--admin_key=short"}).find("admin_key"), std::string::npos);
    EXPECT_EQ(error_of({"--database_url=x", "--admin_key=" + flowgres::new_api_key()}), "");
    // Workspace databases: pools that could never open, schedules with nowhere to write, keys.
    EXPECT_NE(error_of({"--database_url=x", "--workspace_pool_size=8", "--workspace_pool_global_cap=4"}).find("workspace_pool_global_cap"),
              std::string::npos);
    EXPECT_NE(error_of({"--database_url=x", "--backup_interval_s=60"}).find("backup_dir"), std::string::npos);
    EXPECT_NE(error_of({"--database_url=x", "--master_keys=k1=short"}).find("master_keys"), std::string::npos);
    EXPECT_NE(error_of({"--database_url=x", "--master_key_file=/nonexistent/keys"}).find("master_key_file"), std::string::npos);
    EXPECT_EQ(error_of({"--database_url=x", "--master_keys=k1=" + flowgres::new_master_key_text()}), "");
    Config help;
    char *none[] = {nullptr};
    EXPECT_FALSE(load_config(help, {"--help"}, none));
    EXPECT_NE(usage_text().find("db_queue_timeout_ms"), std::string::npos);
}

TEST(LogMasking, EmailsKeysTokensAndIpsNeverAppearInClear) {
    std::string key = flowgres::new_api_key();
    std::string masked = mask_pii("user ada.lovelace@example.com used " + key +
                                  " with Authorization: Bearer abc.def and eyJhbGciOi.eyJzdWIi.sig");
    EXPECT_EQ(masked.find("ada.lovelace@"), std::string::npos);
    EXPECT_NE(masked.find("a***@example.com"), std::string::npos);
    EXPECT_EQ(masked.find(key), std::string::npos);
    EXPECT_EQ(masked.find("abc.def"), std::string::npos);
    EXPECT_EQ(masked.find("eyJzdWIi"), std::string::npos);
    EXPECT_EQ(mask_pii("nothing to hide"), "nothing to hide");
    EXPECT_EQ(hash_ip("10.0.0.1"), hash_ip("10.0.0.1"));
    EXPECT_NE(hash_ip("10.0.0.1"), hash_ip("10.0.0.2"));
    EXPECT_EQ(hash_ip("10.0.0.1").find("10.0.0.1"), std::string::npos);
}

TEST(LogTimestamps, IsoUtcWithMillisecondsAcrossSeconds) {
    // The seconds part is formatted once per second per thread: it must still move on.
    std::string first = iso_timestamp();
    ASSERT_EQ(first.size(), 24u) << first;
    EXPECT_EQ(first[4], '-');
    EXPECT_EQ(first[10], 'T');
    EXPECT_EQ(first[19], '.');
    EXPECT_EQ(first.back(), 'Z');
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));
    std::string later = iso_timestamp();
    EXPECT_NE(first.substr(0, 19), later.substr(0, 19)) << first << " then " << later;
    // The same clock as the C library's, to the second.
    std::time_t now = std::time(nullptr);
    std::tm parts{};
    gmtime_r(&now, &parts);
    char expected[32];
    std::strftime(expected, sizeof(expected), "%Y-%m-%dT%H:%M", &parts);
    EXPECT_EQ(iso_timestamp().substr(0, 16), expected);
}

namespace {
// What the calling thread logs while `write` runs, stderr caught in a file (`write` gets the
// file, to look at what was written so far).
template <typename Write>
std::string captured_log(Write write) {
    char path[] = "/tmp/flowgres-log-XXXXXX";
    int file = mkstemp(path);
    int saved = dup(2);
    dup2(file, 2);
    write(file);
    std::fflush(stderr);
    dup2(saved, 2);
    close(saved);
    std::string text(static_cast<size_t>(lseek(file, 0, SEEK_END)), '\0');
    pread(file, text.data(), text.size(), 0);
    close(file);
    unlink(path);
    return text;
}
}  // namespace

TEST(LogBuffer, LinesOfALoopThreadWaitForTheIterationThenLeaveWhole) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::string text = captured_log([&](int file) {
        LoopLogBuffer buffer(&loop);
        log_line(LogLevel::warn, "buffered one");
        log_line(LogLevel::warn, "buffered two");
        std::fflush(stderr);
        EXPECT_EQ(lseek(file, 0, SEEK_END), 0) << "nothing written before the loop runs";
        uv_run(&loop, UV_RUN_NOWAIT);
        buffer.close();
        uv_run(&loop, UV_RUN_NOWAIT);
    });
    EXPECT_NE(text.find("\"msg\":\"buffered one\"}\n{"), std::string::npos) << text;
    EXPECT_NE(text.find("\"msg\":\"buffered two\"}\n"), std::string::npos) << text;
    EXPECT_EQ(uv_loop_close(&loop), 0) << "the buffer's handles are closed";
}

// A request's line is built in place from its fields: what it holds must still be one valid JSON
// object per line, every text escaped and masked as log_line's fields are.
TEST(LogLines, BuiltInPlaceEscapedMaskedAndValidJson) {
    std::string key = flowgres::new_api_key();
    std::string text = captured_log([&](int) {
        LogLine(LogLevel::info, "request")
            .text("route", "/health")
            .text("quoted", "say \"hi\"\\ \n\x01 caf\xc3\xa9")
            .text("email", "path/ada.lovelace@example.com")
            .text("key", "/x/" + key)
            .text("bearer", "Bearer abc.def")
            .text("jwt", "eyJhbGciOi.eyJzdWIi.sig")
            .text("almost", "fgk eye_ bearr req_12 J r _")
            .number("status", 404)
            .number("negative", -12)
            .thousandths("zero", 0)
            .thousandths("duration_ms", 12034)
            .thousandths("small", 7)
            .thousandths("below", -1500)
            .json("flag", "true");
        LogLine(LogLevel::debug, "below the level").text("secret", "never built");
    });
    ASSERT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
    flowgres::Json line = flowgres::parse_json(text, "log line");
    auto field = [&](const char *name) { return std::string(json_string_value(json_object_get(line.get(), name))); };
    EXPECT_EQ(field("msg"), "request");
    EXPECT_EQ(field("level"), "info");
    EXPECT_EQ(field("route"), "/health");
    EXPECT_EQ(field("quoted"), "say \"hi\"\\ \n\x01 caf\xc3\xa9");
    EXPECT_EQ(field("email"), "path/a***@example.com");
    EXPECT_EQ(field("key"), "/x/fgk_[REDACTED]");
    EXPECT_EQ(field("bearer"), "Bearer [REDACTED]");
    EXPECT_EQ(field("jwt"), "[REDACTED_JWT]");
    EXPECT_EQ(field("almost"), "fgk eye_ bearr req_12 J r _");
    EXPECT_NE(text.find("\"status\":404,\"negative\":-12,\"zero\":0.000,\"duration_ms\":12.034,\"small\":0.007,"
                        "\"below\":-1.500,\"flag\":true}"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.find("never built"), std::string::npos);
    EXPECT_EQ(text.find(key), std::string::npos);
}

TEST(ApiKeys, ShapeHashAndPreview) {
    std::string key = flowgres::new_api_key();
    EXPECT_TRUE(flowgres::looks_like_api_key(key));
    EXPECT_NE(key, flowgres::new_api_key());
    EXPECT_FALSE(flowgres::looks_like_api_key("fgk_" + std::string(43, '!')));
    EXPECT_EQ(flowgres::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    std::string preview = flowgres::api_key_preview(key);
    EXPECT_EQ(preview.substr(0, 8), key.substr(0, 8));
    EXPECT_LT(preview.size(), 20u);
    EXPECT_TRUE(flowgres::secrets_equal(key, key));
    EXPECT_FALSE(flowgres::secrets_equal(key, flowgres::new_api_key()));
}

// Random uuids come from a buffer of CSPRNG bytes refilled as it runs out; none repeats, across
// refills and across a fork (a PostgreSQL backend is a fork of a process that may have drawn).
TEST(Uuids, RandomNeverRepeatAcrossRefillsNorInAForkedChild) {
    std::set<std::string> seen;
    for (int i = 0; i < 5000; i++) ASSERT_TRUE(seen.insert(flowgres::random_uuid()).second) << "draw " << i;
    int pipe_ends[2];
    ASSERT_EQ(pipe(pipe_ends), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        std::string drawn;
        for (int i = 0; i < 40; i++) drawn += flowgres::random_uuid();
        ssize_t written = write(pipe_ends[1], drawn.data(), drawn.size());
        _exit(written == static_cast<ssize_t>(drawn.size()) ? 0 : 1);
    }
    close(pipe_ends[1]);
    std::string from_child;
    char chunk[4096];
    for (ssize_t got; (got = read(pipe_ends[0], chunk, sizeof(chunk))) > 0;) from_child.append(chunk, static_cast<size_t>(got));
    close(pipe_ends[0]);
    int status = 0;
    waitpid(child, &status, 0);
    ASSERT_EQ(from_child.size(), 40u * 36u);
    std::set<std::string> parent_next;
    for (int i = 0; i < 40; i++) parent_next.insert(flowgres::random_uuid());
    for (size_t at = 0; at < from_child.size(); at += 36) {
        std::string uuid = from_child.substr(at, 36);
        EXPECT_TRUE(flowgres::is_uuid(uuid));
        EXPECT_FALSE(seen.count(uuid) || parent_next.count(uuid)) << uuid;
    }
}

TEST(Uuids, RandomAreVersion4AndKeyedAreVersion8OfTheHmac) {
    std::string random = flowgres::random_uuid();
    EXPECT_TRUE(flowgres::is_uuid(random));
    EXPECT_EQ(random[14], '4');
    EXPECT_NE(random, flowgres::random_uuid());
    // RFC 4231 test case 2: HMAC-SHA-256("Jefe", …) = 5bdcc146bf60754e6a042426089575c7…, with
    // the version (8) and variant bits set.
    EXPECT_EQ(flowgres::keyed_uuid("Jefe", "what do ya want for nothing?"), "5bdcc146-bf60-854e-aa04-2426089575c7");
    EXPECT_NE(flowgres::keyed_uuid("Jefe", "what do ya want for nothing!"),
              flowgres::keyed_uuid("Jefe", "what do ya want for nothing?"));
    EXPECT_NE(flowgres::keyed_uuid("jefe", "what do ya want for nothing?"),
              flowgres::keyed_uuid("Jefe", "what do ya want for nothing?"));
}
