// How a run reaches its models (README "The llm step"): for each model id the llm steps name,
// the providers that offer it to the workspace (its own first, then the platform's), with the
// opened key (or why it cannot be used) and the prices. Read once before the run starts, with
// its secrets, so a provider or key change applies from the next run on.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "flowgres/llm_openai.hpp"

namespace flowgres::llm {

struct Route {
    std::string provider;  // its name
    std::string scope;     // platform, workspace
    std::string base_url;
    std::string api_key;  // opened; "" for a provider that takes none
    // When the key cannot be used (a revoked secret, a key that does not open): the code and
    // message an attempt through this route fails with.
    std::string key_error_code, key_error_message;
    long long input_micros_per_1m = 0, output_micros_per_1m = 0;
    long long context_tokens = 8192;
    long long quality = 5;
    long long timeout_ms = 60000;
};

struct RunModels {
    std::map<std::string, std::vector<Route>> routes;  // model id → its routes, in preference order
};

// What `usage` costs at the route's prices, in USD micros, rounded up.
inline long long cost_micros(const Route &route, const Usage &usage) {
    long long scaled = usage.prompt_tokens * route.input_micros_per_1m + usage.completion_tokens * route.output_micros_per_1m;
    return (scaled + 999999) / 1000000;
}

}  // namespace flowgres::llm
