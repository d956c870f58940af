// Log line formatting and masking.
#include "log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <unordered_map>

#include "flowgres/crypto.hpp"
#include "flowgres/json.hpp"
#include "flowgres/pattern.hpp"

namespace flowgres::daemon {
namespace {
std::atomic<int> current_level{static_cast<int>(LogLevel::info)};

const char *level_name(LogLevel level) {
    switch (level) {
        case LogLevel::debug:
            return "debug";
        case LogLevel::info:
            return "info";
        case LogLevel::warn:
            return "warn";
        case LogLevel::error:
            return "error";
    }
    return "info";
}

// Writes leave whole: from several threads, lines never interleave (a write to a pipe past
// PIPE_BUF bytes could otherwise be split by another writer's).
void write_out(std::string_view text) {
    static std::mutex mutex;
    std::lock_guard lock(mutex);
    std::fwrite(text.data(), 1, text.size(), stderr);
}

// The calling thread's buffer while a LoopLogBuffer is attached to it.
thread_local std::string *loop_buffer = nullptr;
constexpr size_t kFlushBytes = 64 * 1024;

}  // namespace

LoopLogBuffer::LoopLogBuffer(uv_loop_t *loop) : before_wait_(new uv_prepare_t), after_io_(new uv_check_t) {
    // Prepare handles run just before the loop waits for I/O (lines of timers and the like);
    // check handles just after the I/O callbacks (lines of requests answered in them).
    uv_prepare_init(loop, before_wait_);
    uv_prepare_start(before_wait_, [](uv_prepare_t *) { flush_log_buffer(); });
    uv_check_init(loop, after_io_);
    uv_check_start(after_io_, [](uv_check_t *) { flush_log_buffer(); });
    // Logging keeps no loop alive.
    uv_unref(reinterpret_cast<uv_handle_t *>(before_wait_));
    uv_unref(reinterpret_cast<uv_handle_t *>(after_io_));
    loop_buffer = &buffer_;
}

LoopLogBuffer::~LoopLogBuffer() {
    flush_log_buffer();
    if (loop_buffer == &buffer_) loop_buffer = nullptr;
}

void LoopLogBuffer::close() {
    flush_log_buffer();
    if (loop_buffer == &buffer_) loop_buffer = nullptr;
    if (!before_wait_) return;
    uv_prepare_stop(before_wait_);
    uv_check_stop(after_io_);
    uv_close(reinterpret_cast<uv_handle_t *>(before_wait_),
             [](uv_handle_t *handle) { delete reinterpret_cast<uv_prepare_t *>(handle); });
    uv_close(reinterpret_cast<uv_handle_t *>(after_io_),
             [](uv_handle_t *handle) { delete reinterpret_cast<uv_check_t *>(handle); });
    before_wait_ = nullptr;
    after_io_ = nullptr;
}

void flush_log_buffer() {
    if (!loop_buffer || loop_buffer->empty()) return;
    write_out(*loop_buffer);
    loop_buffer->clear();
}

std::string iso_timestamp() {
    auto now = std::chrono::system_clock::now();
    auto seconds = std::chrono::system_clock::to_time_t(now);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    // The date and time to the second change once a second: formatted once per thread then.
    thread_local std::time_t formatted_second = -1;
    thread_local char prefix[80];
    if (seconds != formatted_second) {
        std::tm parts{};
        gmtime_r(&seconds, &parts);
        std::snprintf(prefix, sizeof(prefix), "%04d-%02d-%02dT%02d:%02d:%02d.", parts.tm_year + 1900, parts.tm_mon + 1,
                      parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec);
        formatted_second = seconds;
    }
    std::string text(prefix);
    text += static_cast<char>('0' + millis / 100);
    text += static_cast<char>('0' + millis / 10 % 10);
    text += static_cast<char>('0' + millis % 10);
    text += 'Z';
    return text;
}

void set_log_level(std::string_view level) {
    LogLevel value = level == "debug"   ? LogLevel::debug
                     : level == "warn"  ? LogLevel::warn
                     : level == "error" ? LogLevel::error
                                        : LogLevel::info;
    current_level = static_cast<int>(value);
}

bool log_enabled(LogLevel level) {
    return static_cast<int>(level) >= current_level.load(std::memory_order_relaxed);
}

void log_line(LogLevel level, std::string_view message, const std::vector<LogField> &fields) {
    if (!log_enabled(level)) return;
    std::string line;
    line.reserve(320);
    line += "{\"ts\":\"";
    line += iso_timestamp();
    line += "\",\"level\":\"";
    line += level_name(level);
    line += "\",\"msg\":";
    line += json_quote(mask_pii(message));
    for (const auto &field : fields) {
        line += ',';
        line += json_quote(field.name);
        line += ':';
        line += field.is_json ? field.value : json_quote(mask_pii(field.value));
    }
    line += "}\n";
    if (!loop_buffer) return write_out(line);
    loop_buffer->append(line);
    if (loop_buffer->size() >= kFlushBytes) flush_log_buffer();
}

// A keyed hash: without the key nobody can walk the IPv4 space back to the address. The key is
// FLOWGRES_LOG_SALT when set (the same across restarts and daemons, for correlating lines),
// else 32 random bytes made at start.
std::string hash_ip(std::string_view address) {
    static const std::string key = [] {
        const char *value = std::getenv("FLOWGRES_LOG_SALT");
        return value && *value ? std::string(value) : random_token(32);
    }();
    if (address.empty()) return "";
    // An HMAC per log line is the costliest part of a request's line (OpenSSL looks the digest
    // up on every call): a client's hash is kept per thread. Cleared whole when full.
    thread_local std::unordered_map<std::string, std::string> known;
    std::string text(address);
    if (auto found = known.find(text); found != known.end()) return found->second;
    if (known.size() >= 4096) known.clear();
    return known.emplace(std::move(text), "ip:" + hmac_sha256_hex(key, address).substr(0, 16)).first->second;
}

std::string mask_pii(std::string_view text) {
    // Fast path: most messages hold nothing to mask.
    if (text.find('@') == std::string_view::npos && text.find("fgk_") == std::string_view::npos &&
        text.find("earer") == std::string_view::npos && text.find("eyJ") == std::string_view::npos)
        return std::string(text);
    static const auto email = Pattern::compile(R"(([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,}))");
    static const auto api_key = Pattern::compile(R"(fgk_[A-Za-z0-9_-]+)");
    static const auto bearer = Pattern::compile(R"(([Bb]earer)\s+[^\s",]+)");
    static const auto jwt = Pattern::compile(R"(eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)");
    std::string out(text);
    bearer->replace_all(out, "\\1 [REDACTED]");
    api_key->replace_all(out, "fgk_[REDACTED]");
    jwt->replace_all(out, "[REDACTED_JWT]");
    email->replace_all(out, "\\1***@\\2");
    return out;
}

}  // namespace flowgres::daemon
