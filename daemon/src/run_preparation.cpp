// What a run needs from the control plane before it starts (README "Secrets", "The llm step"):
// the secrets its credential fields reference, the routes to the models its llm steps name and
// the output safety rules their answers are checked against, read in one round trip
// (secrets_for_run, llm_routes_for_run, safety_rules_for_run: the service's alone) and opened
// with the master keys here. Only workflows that use either pay for it; each run reads
// them afresh, so a rotation, a revocation or a provider change applies from the next run on.
// A visitor's run gets them with its admission (runtime_admit reads the same documents), so
// only trial and queued runs make the round trip.
// A secret or a key that cannot be used is not an error of the run: the step that needs it
// fails with its code.
#include "run_preparation.hpp"
#include "llm/route_document.hpp"

#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"

namespace flowgres::daemon {
using llm::open_or_note;

void RunPreparation::prepare(const std::string &workspace_id, const std::set<std::string> &secret_names,
                             const std::set<std::string> &model_names, Prepared done) {
    Json secret_list(json_array()), model_list(json_array());
    for (const auto &name : secret_names) json_array_append_new(secret_list.get(), json_string(name.c_str()));
    for (const auto &name : model_names) json_array_append_new(model_list.get(), json_string(name.c_str()));
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(pg::Statement{"select flowgres.secrets_for_run($1::uuid, $2::jsonb)::text",
                                       {workspace_id, dump_json(secret_list.get())}});
    statements.push_back(pg::Statement{"select flowgres.llm_routes_for_run($1::uuid, $2::jsonb)::text",
                                       {workspace_id, dump_json(model_list.get())}});
    if (!model_names.empty())
        statements.push_back(pg::Statement{"select flowgres.safety_rules_for_run($1::uuid)::text", {workspace_id}});
    worker_.pool.run(std::move(statements), [this, workspace_id, secret_names, model_names,
                                             done = std::move(done)](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok) {
            auto secrets = std::make_shared<executor::RunSecrets>();
            secrets->object.reset(new_json_object());
            for (const auto &name : secret_names)
                secrets->unavailable[name] = {"DB_UNAVAILABLE", "the workspace's secrets could not be read"};
            return done(std::move(secrets), std::make_shared<llm::RunModels>(), nullptr);  // no routes: llm steps say so
        }
        Json preparation(json_pack("{s:o, s:o, s:o}", "secrets", parse_json(result.values[1].value_or("{}"), "secrets").release(),
                                   "routes", parse_json(result.values[2].value_or("{}"), "routes").release(), "safety_rules",
                                   parse_json(model_names.empty() ? "[]" : result.values[3].value_or("[]"), "safety rules")
                                       .release()));
        open(workspace_id, secret_names, model_names, preparation.get(), done);
    });
}

void RunPreparation::open(const std::string &workspace_id, const std::set<std::string> &secret_names,
                          const std::set<std::string> &model_names, const json_t *preparation,
                          const Prepared &done) const {
    auto secrets = std::make_shared<executor::RunSecrets>();
    auto models = std::make_shared<llm::RunModels>();
    secrets->object.reset(new_json_object());
    const Keyring &keyring = *worker_.environment.keyring;
    const json_t *found = json_object_get(preparation, "secrets");
    for (const auto &name : secret_names) {
        const json_t *entry = json_object_get(found, name.c_str());
        if (!entry) continue;  // the step says SECRET_NOT_FOUND
        std::string_view status = json_string_value(json_object_get(entry, "status"))
                                      ? json_string_value(json_object_get(entry, "status"))
                                      : "";
        if (status == "revoked") {
            secrets->unavailable[name] = {"SECRET_REVOKED", "the secret " + name + " is revoked"};
        } else if (status == "expired") {
            secrets->unavailable[name] = {"SECRET_EXPIRED", "the secret " + name + " has expired"};
        } else {
            std::string code, message;
            auto value = open_or_note(keyring, json_string_value(json_object_get(entry, "sealed")),
                                      secrets::sealing_context(workspace_id, name), code, message, "the secret " + name);
            if (!value) {
                secrets->unavailable[name] = {code, message};
                continue;
            }
            json_object_set_new(secrets->object.get(), name.c_str(), json_stringn(value->data(), value->size()));
            secrets->values.emplace_back(name, std::move(*value));
        }
    }
    const char *model;
    json_t *list;
    json_object_foreach(json_object_get(preparation, "routes"), model, list) {
        size_t index;
        json_t *entry;
        json_array_foreach(list, index, entry) {
            llm::OpenedRoute opened = llm::route_from_document(entry, keyring, workspace_id);
            llm::Route &route = opened.route;
            // Masked out of everything the run reports, like a secret.
            if (!route.api_key.empty()) secrets->values.emplace_back(opened.key_name, route.api_key);
            models->routes[model].push_back(std::move(route));
        }
    }
    std::shared_ptr<const safety::RuleSet> rules;
    if (!model_names.empty()) {
        std::vector<safety::Rule> list;
        size_t index;
        json_t *rule;
        json_array_foreach(json_object_get(preparation, "safety_rules"), index, rule) {
            auto text = [&](const char *key) {
                const char *value = json_string_value(json_object_get(rule, key));
                return std::string(value ? value : "");
            };
            list.push_back({text("category"), text("kind"), text("text")});
        }
        rules = std::make_shared<safety::RuleSet>(list);
    }
    done(std::move(secrets), std::move(models), std::move(rules));
}

}  // namespace flowgres::daemon
