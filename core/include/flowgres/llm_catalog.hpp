// The model catalogue's documents (README "Model providers"): a provider is a name, a wire
// protocol (`openai` chat completions; the list is where others join), a base URL, how its key
// is found, a timeout and its models, each with prices per million input and output tokens, a
// context size and a quality tier. Shared by the extension (which stores them) and the daemon
// (which routes calls by them). Every problem of a document is reported at once.
// Not for: calling a provider (daemon/src/llm) or the secrets its key lives in (secrets.hpp).
#pragma once

#include <jansson.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowgres/errors.hpp"

namespace flowgres::llm {

inline constexpr size_t kMaxModelsPerProvider = 200;
inline constexpr size_t kMaxProvidersPerScope = 50;
inline constexpr long long kMaxPriceMicros = 1000000000000LL;  // $1,000,000 per million tokens

// Lowercase letters, digits, '-' and '_', starting with a letter or digit, at most 63.
bool is_provider_name(std::string_view name);
// What providers call their models ("gpt-4o-mini", "meta-llama/Llama-3-8B", "local:echo"):
// 1 to 200 printable ASCII characters without spaces.
bool is_model_id(std::string_view model);
// "openai": the wire protocols flowgresd speaks.
bool is_known_protocol(std::string_view protocol);

struct Model {
    std::string model;
    long long input_micros_per_1m = 0;   // USD micros per million prompt tokens
    long long output_micros_per_1m = 0;  // … per million completion tokens
    long long context_tokens = 8192;
    long long quality = 5;  // 1 (basic) to 10 (best): what routingStrategy "quality" prefers
    bool enabled = true;
};

// The fields of a provider document that are present (a PATCH names only what changes).
struct ProviderFields {
    std::optional<std::string> name, protocol, base_url, api_key_secret;
    std::optional<long long> timeout_ms;
    std::optional<bool> enabled;
    std::optional<std::vector<Model>> models;
};

// Checks `document` (an object). `creating`: name and base_url are required; otherwise name
// and protocol may not change. `workspace_scope`: the key is `api_key_secret` (a workspace
// secret's name); the platform's providers hold a sealed key instead and take no
// api_key_secret. Throws Error(VALIDATION_FAILED) listing every problem.
ProviderFields check_provider(const json_t *document, bool creating, bool workspace_scope);

// [{"model", "input_micros_per_1m", …}]: the models as stored and answered.
std::string models_json(const std::vector<Model> &models);

}  // namespace flowgres::llm
