// The counters behind anomaly.hpp: keys in the rate limiter's table, so every daemon and
// backend on the database shares them and memory stays bounded.
#include "anomaly.hpp"

#include <algorithm>

#include "rate_limiter.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

int64_t integer_of(const json_t *rule, const char *name) { return json_integer_value(json_object_get(rule, name)); }

std::string action_of(const json_t *rule) {
    const char *action = json_string_value(json_object_get(rule, "action"));
    return action ? action : "captcha";
}

int64_t hit(const std::string &key, int64_t window, int64_t now) {
    return rate_limit_hit(key.data(), static_cast<int>(key.size()), INT64_MAX, window, now).count;
}

int64_t count(const std::string &key, int64_t window, int64_t at) {
    return rate_limit_count(key.data(), static_cast<int>(key.size()), window, at);
}

int64_t rest_of_window(int64_t window, int64_t now) { return std::max<int64_t>(1, window - now % window); }

}  // namespace

std::optional<RiskSignal> detect_anomaly(const json_t *anomaly, const std::string &app_id, const std::string &ip,
                                         int64_t now, bool counted_already) {
    if (!json_is_object(anomaly)) return std::nullopt;
    // A request admitted a second time (a CAPTCHA's round) was counted by the first.
    auto tally = [&](const std::string &key, int64_t window) {
        return counted_already ? count(key, window, now) : hit(key, window, now);
    };
    std::optional<RiskSignal> fired;
    auto fire = [&](const char *signal, const json_t *rule, int64_t window, std::string details) {
        if (!fired) fired = RiskSignal{signal, action_of(rule), rest_of_window(window, now), std::move(details)};
    };
    // Every signal counts this request, whether or not an earlier one fired.
    if (const json_t *rule = json_object_get(anomaly, "high_freq")) {
        int64_t window = integer_of(rule, "window_seconds"), limit = integer_of(rule, "max_requests");
        int64_t seen = window > 0 ? tally("anomaly.hf:" + app_id + ":" + ip, window) : 0;
        if (window > 0 && seen > limit)
            fire("high_freq", rule, window, "{\"requests\":" + std::to_string(seen) + ",\"max_requests\":" +
                                                std::to_string(limit) + "}");
    }
    if (const json_t *rule = json_object_get(anomaly, "failure_rate")) {
        int64_t window = integer_of(rule, "window_seconds"), minimum = integer_of(rule, "min_requests");
        double threshold = json_number_value(json_object_get(rule, "threshold"));
        if (window > 0) {
            int64_t runs = tally("anomaly.runs:" + app_id + ":" + std::to_string(window), window);
            int64_t failed = count("anomaly.failed:" + app_id + ":" + std::to_string(window), window, now);
            if (runs >= minimum && static_cast<double>(failed) >= threshold * static_cast<double>(runs))
                fire("failure_rate", rule, window, "{\"runs\":" + std::to_string(runs) + ",\"failed\":" +
                                                       std::to_string(failed) + "}");
        }
    }
    if (const json_t *rule = json_object_get(anomaly, "spike")) {
        int64_t window = integer_of(rule, "window_seconds"), minimum = integer_of(rule, "min_requests");
        double factor = json_number_value(json_object_get(rule, "factor"));
        if (window > 0) {
            // A key per window index, so the previous window's count is still there to compare.
            int64_t index = now / window;
            std::string prefix = "anomaly.spike:" + app_id + ":" + std::to_string(window) + ":";
            int64_t current = tally(prefix + std::to_string(index), window);
            int64_t previous = count(prefix + std::to_string(index - 1), window, now - window);
            if (current >= minimum && static_cast<double>(current) > factor * static_cast<double>(previous))
                fire("spike", rule, window, "{\"requests\":" + std::to_string(current) + ",\"previous\":" +
                                                std::to_string(previous) + "}");
        }
    }
    return fired;
}

void note_runtime_failure(const std::string &app_id, int64_t now) {
    auto window = query_value(
        "select rate_limit #>> '{anomaly,failure_rate,window_seconds}' from flowgres.app_access_policies "
        "where app_id = $1::uuid",
        {app_id});
    if (!window) return;
    int64_t seconds = std::stoll(*window);
    if (seconds > 0) hit("anomaly.failed:" + app_id + ":" + std::to_string(seconds), seconds, now);
}

}  // namespace flowgres
