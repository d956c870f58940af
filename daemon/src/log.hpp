// JSON log lines on stderr, one object per line (seed §36.1): ts, level, msg, then the fields
// given. PII never reaches a line in clear (seed §35.2): emails, API keys and bearer tokens are
// masked, IP addresses hashed. Not for: audit rows (the extension writes those).
//
// Lines logged on a worker's loop are not written one by one: they collect in the thread's
// buffer (LoopLogBuffer) and leave in one write right after the loop's I/O callbacks and again
// before it waits for I/O, or at once past 64 KiB. A line is never held back while the loop sleeps; a crash
// loses at most the lines of the iteration it happened in. Other threads write each line as it
// comes. Writes from several threads never interleave.
#pragma once

#include <uv.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flowgres::daemon {

enum class LogLevel { debug, info, warn, error };

void set_log_level(std::string_view level);

// Now in UTC, ISO 8601 with milliseconds: "2026-11-23T03:45:19.123Z".
std::string iso_timestamp();
void append_iso_timestamp(std::string &out);
bool log_enabled(LogLevel level);

// One line built in place: straight into the thread's loop buffer when it has one, so that a
// line costs no allocation and no copy of its fields (a request's line is on every request's
// path). The line leaves when the builder is destroyed, e.g. at the end of
//     LogLine(LogLevel::info, "request").text("route", route).number("status", 200);
// Text values are quoted and PII-masked as log_line's are. Nothing is built below the log level.
// Work out the values before the line starts: one that logs while the line is being built
// would put its own line inside this one.
class LogLine {
public:
    LogLine(LogLevel level, std::string_view message);
    ~LogLine();
    LogLine(const LogLine &) = delete;
    LogLine &operator=(const LogLine &) = delete;

    LogLine &text(std::string_view name, std::string_view value);
    LogLine &number(std::string_view name, long long value);
    // `thousandths` / 1000 with three decimals ("12.034"): durations in ms from microseconds.
    LogLine &thousandths(std::string_view name, long long thousandths);
    // A JSON literal as it is (numbers, true/false, an already serialised document).
    LogLine &json(std::string_view name, std::string_view literal);

private:
    void name(std::string_view name);

    std::string own_;    // the line when the thread has no loop buffer
    std::string *out_;   // where the line is built; nullptr below the log level
};

// A field's value is either a JSON literal already (numbers) or a string to quote.
struct LogField {
    std::string name;
    std::string value;
    bool is_json = false;
};

void log_line(LogLevel level, std::string_view message, const std::vector<LogField> &fields = {});

// Buffers the calling thread's lines while it runs `loop` (see above). close() before the
// loop's last run: it writes what waits and closes its handle.
class LoopLogBuffer {
public:
    explicit LoopLogBuffer(uv_loop_t *loop);
    ~LoopLogBuffer();
    LoopLogBuffer(const LoopLogBuffer &) = delete;
    LoopLogBuffer &operator=(const LoopLogBuffer &) = delete;
    void close();

private:
    uv_prepare_t *before_wait_;
    uv_check_t *after_io_;
    std::string buffer_;
};

// Writes the calling thread's buffered lines now.
void flush_log_buffer();

// "ip:3f2a…" — stable per address (so one client's lines can be followed), not reversible
// without guessing the address. Salted per installation when FLOWGRES_LOG_SALT is set. The
// reference is the thread's kept hash: valid until the thread's next call.
const std::string &hash_ip(std::string_view address);

// Emails → "a***@example.com", fgk_ keys → "fgk_[REDACTED]", "Bearer x" → "Bearer [REDACTED]",
// JWT-shaped tokens → "[REDACTED_JWT]".
std::string mask_pii(std::string_view text);

}  // namespace flowgres::daemon
