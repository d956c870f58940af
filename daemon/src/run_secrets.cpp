// A run's secrets (README "Secrets"): the names its credential fields reference, read sealed
// from the control plane (secrets_for_run, the service's alone) and opened with the master keys
// just before the run starts. One extra round trip, only for workflows that use secrets; each
// run reads them afresh, so a rotation or a revocation applies from the next run on. A secret
// that cannot be used is not an error of the run: the step that needs it fails with its code.
#include "api.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"

namespace flowgres::daemon {

void Application::open_run_secrets(const std::string &workspace_id, const std::set<std::string> &names,
                                   std::function<void(std::shared_ptr<const executor::RunSecrets>)> done) {
    Json list(json_array());
    for (const auto &name : names) json_array_append_new(list.get(), json_string(name.c_str()));
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(
        pg::Statement{"select flowgres.secrets_for_run($1::uuid, $2::jsonb)::text", {workspace_id, dump_json(list.get())}});
    pool_.run(std::move(statements), [this, workspace_id, names, done = std::move(done)](pg::JobResult &&result) {
        auto secrets = std::make_shared<executor::RunSecrets>();
        secrets->object.reset(new_json_object());
        if (result.outcome != pg::JobResult::Outcome::ok) {
            for (const auto &name : names)
                secrets->unavailable[name] = {"DB_UNAVAILABLE", "the workspace's secrets could not be read"};
            return done(std::move(secrets));
        }
        Json found = parse_json(result.values[1].value_or("{}"), "secrets");
        const Keyring &keyring = *environment_.keyring;
        for (const auto &name : names) {
            const json_t *entry = json_object_get(found.get(), name.c_str());
            if (!entry) continue;  // the step says SECRET_NOT_FOUND
            std::string_view status = json_string_value(json_object_get(entry, "status"))
                                          ? json_string_value(json_object_get(entry, "status"))
                                          : "";
            if (status == "revoked") {
                secrets->unavailable[name] = {"SECRET_REVOKED", "the secret " + name + " is revoked"};
            } else if (status == "expired") {
                secrets->unavailable[name] = {"SECRET_EXPIRED", "the secret " + name + " has expired"};
            } else {
                const char *sealed = json_string_value(json_object_get(entry, "sealed"));
                try {
                    std::string value = keyring.open(sealed ? sealed : "", secrets::sealing_context(workspace_id, name));
                    json_object_set_new(secrets->object.get(), name.c_str(), json_stringn(value.data(), value.size()));
                    secrets->values.emplace_back(name, std::move(value));
                } catch (const Error &error) {
                    secrets->unavailable[name] = {std::string(error_info(error.code()).name),
                                                  "the secret " + name + " cannot be opened: " + error.message()};
                }
            }
        }
        done(std::move(secrets));
    });
}

}  // namespace flowgres::daemon
