// What a run needs from the control plane before it starts (README "Secrets", "The llm step"),
// as the documents the daemon opens: the sealed secrets its credential fields name, the routes
// to the models its llm steps name, and the output safety rules. Read by secrets_for_run,
// llm_routes_for_run and safety_rules_for_run (trial and queued runs ask for them), and by
// runtime admission, which hands them over with the admitted execution so a visitor's run
// needs no round trip of its own for them.
#pragma once

#include <cstdint>
#include <string>

namespace flowgres {

// {"NAME": {"status": "active", "sealed", "version"} | {"status": "revoked" | "expired"}}; a
// name the workspace lacks is absent. `names_json`: a JSON array of names.
std::string run_secrets_document(const std::string &workspace_id, const std::string &names_json);
// {"model": [route, …]} over the providers that offer each model to the workspace, its own first.
std::string run_routes_document(const std::string &workspace_id, const std::string &models_json);
// When the next of the workspace's active secrets expires (epoch seconds; 0: none will): what
// a cached route document says of a secret's status is stale from then on.
int64_t secrets_stale_at(const std::string &workspace_id);
// [{category, kind, text}]: the platform's rules and the workspace's.
std::string run_safety_rules_document(const std::string &workspace_id);

}  // namespace flowgres
