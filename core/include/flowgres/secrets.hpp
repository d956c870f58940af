// Workspace secrets (README "Secrets"): named values, sealed with the keyring (secret_box.hpp)
// by the daemon before they reach the database, that a workflow's credential fields reference
// as {{secrets.NAME}}. This module holds what both sides agree on: the name rule, the sealing
// context (the secret's workspace and name, so a ciphertext copied to another row does not
// open), the preview a list may show, and the masking that keeps a value out of anything a run
// stores or streams.
// Not for: sealing (secret_box.hpp) or where {{secrets.…}} may appear (workflow.hpp).
#pragma once

#include <jansson.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace flowgres::secrets {

inline constexpr size_t kMaxNameLength = 64;
inline constexpr size_t kMaxValueBytes = 16 * 1024;
inline constexpr size_t kMaxPerWorkspace = 100;
// Values shorter than this are not masked in run output: masking "ab" would mangle every word.
inline constexpr size_t kMinMaskedLength = 4;

// A letter or '_', then letters, digits and '_', at most 64 in all (a template path step).
bool is_name(std::string_view name);

// "workspace_secret:<workspace id>:<name>": the associated data the value is sealed under.
std::string sealing_context(std::string_view workspace_id, std::string_view name);

// "…" plus the last four characters for values of 16 bytes or more, "…" alone for shorter
// ones: enough to tell two keys apart, too little to use one.
std::string preview(std::string_view value);

// Names and plain values of the secrets a run opened.
using Values = std::vector<std::pair<std::string, std::string>>;

// `text` with every occurrence of a value (of kMinMaskedLength bytes or more) replaced by
// "[secret:NAME]". Linear in text × values.
std::string mask_text(std::string text, const Values &values);

// The same over every string and object key inside `document`, in place.
void mask_json(json_t *document, const Values &values);

}  // namespace flowgres::secrets
