// A model route as the extension describes it (llm_routes_for_run for a run, gateway_admit for
// the gateway): the provider, its prices and limits, and its key opened with the keyring —
// the provider's own sealed key, or the workspace secret it names — or, when the key cannot be
// used (a revoked or expired secret, a key that does not open), why.
#pragma once

#include <jansson.h>

#include <optional>
#include <string>

#include "flowgres/secret_box.hpp"
#include "llm/routes.hpp"

namespace flowgres::llm {

// Opens `sealed` with `context`; on failure records why (error_code, "<what> cannot be opened:
// …") and returns nullopt.
std::optional<std::string> open_or_note(const Keyring &keyring, const char *sealed, const std::string &context,
                                        std::string &error_code, std::string &error_message, const std::string &what);

struct OpenedRoute {
    Route route;
    std::string key_name;  // what the key is called when masked: the secret's name, or provider:<name>
};

OpenedRoute route_from_document(const json_t *entry, const Keyring &keyring, const std::string &workspace_id);

}  // namespace flowgres::llm
