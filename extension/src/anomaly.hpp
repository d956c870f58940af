// Anomaly signals of the runtime (README "Public runtime", seed §31.2), counted in the rate limiter's
// shared memory and configured in the access policy's rate_limit.anomaly:
//   high_freq     one address executing more than max_requests per window_seconds;
//   failure_rate  the app's runtime runs failing at threshold or more of at least
//                 min_requests in the current window;
//   spike         the app's executes in this window over factor × the previous window's
//                 (and at least min_requests).
// A signal that fires asks for a CAPTCHA (action "captcha", the default) or sheds the request
// with 503 OVERLOADED until the window ends (action "shed").
#pragma once

#include <jansson.h>

#include <cstdint>
#include <optional>
#include <string>

namespace flowgres {

struct RiskSignal {
    std::string signal;  // high_freq, failure_rate, spike
    std::string action;  // captcha, shed
    int64_t retry_after = 1;  // seconds until the window that fired ends
    std::string details_json;  // what was measured
};

// Counts this execute against the app's signals (unless `counted_already`: a request's second
// round of admission reads the counts its first round moved); the first that fires, if any.
std::optional<RiskSignal> detect_anomaly(const json_t *anomaly, const std::string &app_id, const std::string &ip,
                                         int64_t now_seconds, bool counted_already = false);

// Counts a failed runtime run of the app for failure_rate (from execution_finish).
void note_runtime_failure(const std::string &app_id, int64_t now_seconds);

}  // namespace flowgres
