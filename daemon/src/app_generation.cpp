// Apps from a prompt (POST /api/v1/workspaces/{id}/apps/from-ai, README "Apps from a
// prompt"), and new versions from an instruction (POST /api/v1/apps/{id}/versions/from-ai,
// the current version sent along with prompts/version_edit.txt, the next minor version made by
// version_create_generated): the caller's right to create apps and the workspace's tokens are checked first
// (app_generation_begin, as the caller); then a model (the one asked for, else the first the
// workspace may use) is asked for seed §59's protocol with the template in
// daemon/prompts/app_generation.txt. Each answer is checked by the extension's validators
// (app_document_problems) and, while it fails and attempts remain, sent back with its problems
// (prompts/repair.txt). Every answer is also checked against the output safety rules. The
// calls are metered (generation_usage_record, in a transaction of its own, so a refusal that
// follows does not undo them); a passing document becomes the app and its draft version in one
// transaction (app_create_generated, as the caller). The answer: the app, the version, how
// many answers it took and the final validation report.
#include "app_generation.hpp"

#include <algorithm>

#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/llm_openai.hpp"
#include "log.hpp"

namespace flowgres::daemon {

namespace {
constexpr size_t kMaxPromptCharacters = 20000;
constexpr long long kGenerationMaxTokens = 8000;

}  // namespace

struct AppGeneration::Job {
    std::shared_ptr<Call> call;
    std::string app_id;  // a new version of this app; "" for a new app
    std::string workspace_id;
    std::string prompt;
    std::string model;
    std::shared_ptr<const llm::RunModels> models;
    std::shared_ptr<const executor::RunSecrets> secrets;
    std::shared_ptr<const safety::RuleSet> rules;
    std::vector<llm::Message> messages;
    size_t route_index = 0;
    int answers = 0;
    Json calls{json_array()};  // for generation_usage_record
    llm::Usage usage;
    std::string provider;
    std::unique_ptr<llm::ChatCall> chat;
    std::string last_problems = "[]";
    std::string system;  // the system prompt, {{model}} still to fill
};

void AppGeneration::run(std::shared_ptr<Call> call) {
    auto generation = std::make_shared<Job>();
    generation->call = call;
    // Both routes take (the workspace or the app, the prompt or instruction, the model).
    bool new_version = std::string_view(call->route->function) == "version_generation_begin";
    (new_version ? generation->app_id : generation->workspace_id) = call->arguments[0].value_or("");
    generation->prompt = call->arguments[1].value_or("");
    generation->model = call->arguments[2].value_or("");
    const char *field = new_version ? "instruction" : "prompt";
    if (generation->prompt.empty() || utf8_length(generation->prompt) > kMaxPromptCharacters)
        return worker_.finish_error(call, ErrorCode::VALIDATION_FAILED, std::string(field) + ": must be 1 to 20000 characters",
                                    "[{\"field\":\"" + std::string(field) + "\",\"message\":\"must be 1 to 20000 characters\"}]");
    std::vector<pg::Statement> statements;
    statements.push_back(worker_.actor_statement(*call));
    statements.push_back(pg::Statement{"select flowgres." + std::string(call->route->function) + "($1::uuid)::text",
                                       {call->arguments[0]}});
    worker_.pool.run(std::move(statements), [this, generation](pg::JobResult &&begun) {
        const auto &call = generation->call;
        if (begun.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(call, begun);
        worker_.note_key_use(*call, begun.values[0]);
        Json offered = parse_json(begun.values[1].value_or("{}"), "begun");
        std::string system = worker_.environment.prompts->fill("app_generation", {{"model", "{{model}}"}});
        const json_t *models = json_object_get(offered.get(), "items");
        if (!generation->app_id.empty()) {
            // A new version: the current one goes along, to be changed as the instruction says.
            generation->workspace_id = json_string_value(json_object_get(offered.get(), "workspace_id"));
            models = json_object_get(offered.get(), "models");
            system += "\n\n" + worker_.environment.prompts->fill(
                                    "version_edit", {{"current", dump_json(json_object_get(offered.get(), "current"))}});
        }
        generation->system = std::move(system);
        if (generation->model.empty()) {
            const char *first = json_string_value(json_object_get(json_array_get(models, 0), "model"));
            if (!first)
                return worker_.finish_error(call, ErrorCode::LLM_MODEL_UNAVAILABLE, "no model is available to this workspace");
            generation->model = first;
        }
        preparation_.prepare(generation->workspace_id, {}, {generation->model},
                             [this, generation](std::shared_ptr<const executor::RunSecrets> secrets,
                                                std::shared_ptr<const llm::RunModels> models,
                                                std::shared_ptr<const safety::RuleSet> rules) {
                        generation->secrets = std::move(secrets);
                        generation->models = std::move(models);
                        generation->rules = std::move(rules);
                        std::string system = generation->system;
                        for (size_t at = system.find("{{model}}"); at != std::string::npos; at = system.find("{{model}}", at))
                            system.replace(at, 9, generation->model);
                        generation->messages = {{"system", std::move(system)}, {"user", generation->prompt}};
                        ask_model(generation);
                    });
    });
}

void AppGeneration::ask_model(std::shared_ptr<Job> generation) {
    const std::vector<llm::Route> *routes = nullptr;
    if (generation->models)
        if (auto found = generation->models->routes.find(generation->model); found != generation->models->routes.end())
            routes = &found->second;
    if (!routes || generation->route_index >= routes->size())
        return end(generation, ErrorCode::LLM_MODEL_UNAVAILABLE,
                              "no provider could answer with model " + generation->model, "null");
    const llm::Route &route = (*routes)[generation->route_index];
    if (!route.key_error_code.empty()) {
        generation->route_index++;
        return ask_model(generation);
    }
    llm::ChatRequest request;
    request.model = generation->model;
    request.messages = generation->messages;
    request.max_tokens = kGenerationMaxTokens;
    request.temperature = 0.2;
    llm::CallLimits limits = worker_.llm_limits;
    limits.total_timeout_ms = std::min<uint64_t>(limits.total_timeout_ms, static_cast<uint64_t>(route.timeout_ms));
    long long prompt_estimate = 0;
    for (const auto &message : request.messages) prompt_estimate += llm::estimate_tokens(message.content);
    // The call's callback keeps the generation alive until the call ends (its total timeout
    // bounds that); the generation owns the call only to end it with itself.
    generation->chat = llm::chat(
        worker_.loop, llm::Endpoint{route.provider, route.base_url, route.api_key}, request, limits,
        worker_.environment.egress, worker_.environment.tls, nullptr, [this, generation, route, prompt_estimate](llm::CallResult result) {
            auto keep = generation;  // the call (and this lambda with it) goes with the reset below
            generation->chat.reset();
            bool reported = result.usage.has_value();
            llm::Usage usage = reported ? *result.usage
                               : result.streamed_deltas ? llm::Usage{prompt_estimate, result.streamed_deltas}
                                                        : llm::Usage{};
            generation->usage.prompt_tokens += usage.prompt_tokens;
            generation->usage.completion_tokens += usage.completion_tokens;
            std::string blocked =
                result.ok && generation->rules ? generation->rules->check(result.text) : std::string();
            json_t *entry = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:b}", "provider", route.provider.c_str(),
                                      "model", generation->model.c_str(), "prompt_tokens",
                                      static_cast<json_int_t>(usage.prompt_tokens), "completion_tokens",
                                      static_cast<json_int_t>(usage.completion_tokens), "cost_micros",
                                      static_cast<json_int_t>(llm::cost_micros(route, usage)), "latency_ms",
                                      static_cast<json_int_t>(result.latency_ms), "ok", result.ok && blocked.empty(),
                                      "usage_reported", reported);
            if (!result.ok || !blocked.empty())
                json_object_set_new(entry, "error_code",
                                    json_string(blocked.empty() ? result.error_code.c_str() : "AI_OUTPUT_BLOCKED"));
            json_array_append_new(generation->calls.get(), entry);
            if (!blocked.empty())
                return end(generation, ErrorCode::AI_OUTPUT_BLOCKED,
                                      "the answer was withheld: it broke an output safety rule (category " + blocked + ")",
                                      "{\"category\":" + json_quote(blocked) + "}");
            if (!result.ok) {
                // Another provider of the same model may answer; past the last, the call's error.
                const auto &routes = generation->models->routes.at(generation->model);
                if (generation->route_index + 1 < routes.size()) {
                    generation->route_index++;
                    return ask_model(generation);
                }
                auto code = error_code_from_name(result.error_code).value_or(ErrorCode::LLM_REQUEST_FAILED);
                return end(generation, code, result.message, "null");
            }
            generation->provider = route.provider;
            generation->answers++;
            check_answer(generation, std::move(result.text));
        });
}

void AppGeneration::check_answer(std::shared_ptr<Job> generation, std::string text) {
    Json document = llm::json_in_answer(text);
    auto problems_found = [this, generation, text](const std::string &problems) {
        generation->last_problems = problems;
        if (generation->answers >= worker_.config.generation_max_attempts)
            return end(generation, ErrorCode::VALIDATION_FAILED,
                                  "the model's app did not pass validation after " + std::to_string(generation->answers) +
                                      " answers",
                                  "{\"problems\":" + problems + ",\"attempts\":" + std::to_string(generation->answers) + "}");
        generation->messages.push_back({"assistant", text});
        generation->messages.push_back({"user", worker_.environment.prompts->fill("repair", {{"problems", problems}})});
        ask_model(generation);
    };
    if (!json_is_object(document.get()))
        return problems_found(R"([{"field":"document","message":"is not a JSON object"}])");
    std::string document_json = dump_json(document.get());
    std::vector<pg::Statement> statements;
    statements.push_back(worker_.actor_statement(*generation->call));
    statements.push_back(pg::Statement{"select flowgres.app_document_problems($1::jsonb)::text", {document_json}});
    worker_.pool.run(std::move(statements), [this, generation, document_json, problems_found](pg::JobResult &&checked) {
        if (checked.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(generation->call, checked);
        Json report = parse_json(checked.values[1].value_or("{}"), "report");
        if (!json_is_true(json_object_get(report.get(), "valid")))
            return problems_found(dump_json(json_object_get(report.get(), "problems")));
        generation->last_problems = "[]";
        record_usage(generation, [this, generation, document_json] {
            Json trail(json_pack("{s:s, s:s, s:i, s:I, s:{s:I, s:I}}", "model", generation->model.c_str(), "provider",
                                 generation->provider.c_str(), "attempts", generation->answers, "prompt_characters",
                                 static_cast<json_int_t>(utf8_length(generation->prompt)), "usage", "prompt_tokens",
                                 static_cast<json_int_t>(generation->usage.prompt_tokens), "completion_tokens",
                                 static_cast<json_int_t>(generation->usage.completion_tokens)));
            std::vector<pg::Statement> create;
            create.push_back(worker_.actor_statement(*generation->call));
            if (generation->app_id.empty())
                create.push_back(pg::Statement{"select flowgres.app_create_generated($1::uuid, $2::jsonb, $3::jsonb)::text",
                                               {generation->workspace_id, document_json, dump_json(trail.get())}});
            else
                create.push_back(pg::Statement{
                    "select flowgres.version_create_generated($1::uuid, $2::jsonb, $3::jsonb, $4)::text",
                    {generation->app_id, document_json, dump_json(trail.get()), generation->prompt}});
            worker_.pool.run(std::move(create), [this, generation, trail_json = dump_json(trail.get())](pg::JobResult &&made) {
                if (made.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(generation->call, made);
                Json answer = parse_json(made.values[1].value_or("{}"), "created");
                Json generation_report = parse_json(trail_json, "generation");
                json_object_set_new(answer.get(), "attempts", json_integer(generation->answers));
                json_object_set_new(answer.get(), "validation", json_pack("{s:b, s:[]}", "valid", 1, "problems"));
                json_object_set_new(answer.get(), "model", json_string(generation->model.c_str()));
                json_object_set(answer.get(), "usage", json_object_get(generation_report.get(), "usage"));
                worker_.finish(generation->call, success_response(201, dump_json(answer.get()), generation->call->trace));
            });
        });
    });
}

void AppGeneration::record_usage(std::shared_ptr<Job> generation, std::function<void()> then) {
    if (json_array_size(generation->calls.get()) == 0) return then();
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(pg::Statement{"select flowgres.generation_usage_record($1::uuid, $2::jsonb)::text",
                                       {generation->workspace_id, dump_json(generation->calls.get())}});
    worker_.pool.run(std::move(statements), [generation, then = std::move(then)](pg::JobResult &&recorded) {
        if (recorded.outcome != pg::JobResult::Outcome::ok)
            log_line(LogLevel::error, "could not record a generation's model usage",
                     {{"workspace_id", generation->workspace_id}, {"error", recorded.message}});
        then();
    });
}

void AppGeneration::end(std::shared_ptr<Job> generation, ErrorCode code, const std::string &message,
                        const std::string &details) {
    record_usage(generation, [this, generation, code, message, details] {
        worker_.finish_error(generation->call, code, message, details);
    });
}

}  // namespace flowgres::daemon
