// Log line formatting and masking.
#include "log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

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

}  // namespace

std::string iso_timestamp() {
    auto now = std::chrono::system_clock::now();
    auto seconds = std::chrono::system_clock::to_time_t(now);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm parts{};
    gmtime_r(&seconds, &parts);
    char text[64];
    std::snprintf(text, sizeof(text), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1,
                  parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, static_cast<int>(millis));
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
    std::string line = "{\"ts\":\"" + iso_timestamp() + "\",\"level\":\"" + level_name(level) +
                       "\",\"msg\":" + json_quote(mask_pii(message));
    for (const auto &field : fields) {
        line += ",";
        line += json_quote(field.name);
        line += ":";
        line += field.is_json ? field.value : json_quote(mask_pii(field.value));
    }
    line += "}\n";
    // One write per line: lines from several workers never interleave mid-line.
    std::fwrite(line.data(), 1, line.size(), stderr);
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
    return "ip:" + hmac_sha256_hex(key, address).substr(0, 16);
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
