// JSON log lines on stderr, one object per line (seed §36.1): ts, level, msg, then the fields
// given. PII never reaches a line in clear (seed §35.2): emails, API keys and bearer tokens are
// masked, IP addresses hashed. Not for: audit rows (the extension writes those).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flowgres::daemon {

enum class LogLevel { debug, info, warn, error };

void set_log_level(std::string_view level);

// Now in UTC, ISO 8601 with milliseconds: "2026-11-23T03:45:19.123Z".
std::string iso_timestamp();
bool log_enabled(LogLevel level);

// A field's value is either a JSON literal already (numbers) or a string to quote.
struct LogField {
    std::string name;
    std::string value;
    bool is_json = false;
};

void log_line(LogLevel level, std::string_view message, const std::vector<LogField> &fields = {});

// "ip:3f2a…" — stable per address (so one client's lines can be followed), not reversible
// without guessing the address. Salted per installation when FLOWGRES_LOG_SALT is set.
std::string hash_ip(std::string_view address);

// Emails → "a***@example.com", fgk_ keys → "fgk_[REDACTED]", "Bearer x" → "Bearer [REDACTED]",
// JWT-shaped tokens → "[REDACTED_JWT]".
std::string mask_pii(std::string_view text);

}  // namespace flowgres::daemon
