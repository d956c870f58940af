// Log line formatting and masking.
#include "log.hpp"

#include <array>
#include <atomic>
#include <charconv>
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
// What mask_pii looks for: no '@', "fgk_", "earer" or "eyJ" means nothing to mask.
bool might_hold_pii(std::string_view text) {
    return text.find('@') != std::string_view::npos || text.find("fgk_") != std::string_view::npos ||
           text.find("earer") != std::string_view::npos || text.find("eyJ") != std::string_view::npos;
}

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

// Bytes that stop a text from being copied as it is (below), or may: controls, non-ASCII, the
// quote, the backslash and '@'; '_', 'r' and 'J' end what mask_pii looks for.
constexpr auto kLookAgain = [] {
    std::array<bool, 256> table{};
    for (int c = 0; c < 256; c++) table[c] = c < 0x20 || c > 0x7e;
    for (unsigned char c : std::string_view("\"\\@_rJ")) table[c] = true;
    return table;
}();

// True when `text` can be written between quotes as it is: printable ASCII without a quote or
// a backslash, and none of what mask_pii looks for ('@', "fgk_", "earer", "eyJ", each seen at
// its last character). One pass with a table: ids, routes and methods, most of what a line
// holds, are so.
bool copies_as_is(std::string_view text) {
    for (size_t i = 0; i < text.size(); i++) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (!kLookAgain[c]) [[likely]]
            continue;
        if (c == '_' ? i < 3 || text.substr(i - 3, 4) != "fgk_"
            : c == 'r' ? i < 4 || text.substr(i - 4, 5) != "earer"
            : c == 'J' ? i < 2 || text.substr(i - 2, 3) != "eyJ"
                       : false)
            continue;
        return false;
    }
    return true;
}

// `text` quoted as a JSON string, PII masked.
void append_quoted(std::string &out, std::string_view text) {
    if (!copies_as_is(text)) {
        out.append(json_quote(mask_pii(text)));
        return;
    }
    out.push_back('"');
    out.append(text);
    out.push_back('"');
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

void append_iso_timestamp(std::string &out) {
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
    out += prefix;
    out += static_cast<char>('0' + millis / 100);
    out += static_cast<char>('0' + millis / 10 % 10);
    out += static_cast<char>('0' + millis % 10);
    out += 'Z';
}

std::string iso_timestamp() {
    std::string text;
    append_iso_timestamp(text);
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

LogLine::LogLine(LogLevel level, std::string_view message) : out_(nullptr) {
    if (!log_enabled(level)) return;
    out_ = loop_buffer ? loop_buffer : &own_;
    out_->append("{\"ts\":\"");
    append_iso_timestamp(*out_);
    out_->append("\",\"level\":\"");
    out_->append(level_name(level));
    out_->append("\",\"msg\":");
    append_quoted(*out_, message);
}

LogLine::~LogLine() {
    if (!out_) return;
    out_->append("}\n");
    if (out_ == &own_)
        write_out(own_);
    else if (out_->size() >= kFlushBytes)
        flush_log_buffer();
}

// Field names are the code's own (plain ASCII): copied without a look.
void LogLine::name(std::string_view name) {
    out_->append(",\"");
    out_->append(name);
    out_->append("\":");
}

LogLine &LogLine::text(std::string_view name, std::string_view value) {
    if (!out_) return *this;
    this->name(name);
    append_quoted(*out_, value);
    return *this;
}

LogLine &LogLine::number(std::string_view name, long long value) {
    if (!out_) return *this;
    this->name(name);
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof(digits), value).ptr;
    out_->append(digits, end);
    return *this;
}

LogLine &LogLine::thousandths(std::string_view name, long long thousandths) {
    if (!out_) return *this;
    this->name(name);
    if (thousandths < 0) {
        out_->push_back('-');
        thousandths = -thousandths;
    }
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof(digits), thousandths / 1000).ptr;
    out_->append(digits, end);
    long long fraction = thousandths % 1000;
    out_->push_back('.');
    out_->push_back(static_cast<char>('0' + fraction / 100));
    out_->push_back(static_cast<char>('0' + fraction / 10 % 10));
    out_->push_back(static_cast<char>('0' + fraction % 10));
    return *this;
}

LogLine &LogLine::json(std::string_view name, std::string_view literal) {
    if (!out_) return *this;
    this->name(name);
    out_->append(literal);
    return *this;
}

void log_line(LogLevel level, std::string_view message, const std::vector<LogField> &fields) {
    LogLine line(level, message);
    for (const auto &field : fields) field.is_json ? line.json(field.name, field.value) : line.text(field.name, field.value);
}

// A keyed hash: without the key nobody can walk the IPv4 space back to the address. The key is
// FLOWGRES_LOG_SALT when set (the same across restarts and daemons, for correlating lines),
// else 32 random bytes made at start.
const std::string &hash_ip(std::string_view address) {
    static const std::string key = [] {
        const char *value = std::getenv("FLOWGRES_LOG_SALT");
        return value && *value ? std::string(value) : random_token(32);
    }();
    static const std::string none;
    if (address.empty()) return none;
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
    if (!might_hold_pii(text)) return std::string(text);
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
