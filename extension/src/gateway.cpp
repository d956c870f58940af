// The OpenAI-compatible gateway's two calls into the extension (README "Gateway"): a call's
// admission — its key (scope llm:execute, bound to the workspace that pays), the model's
// routes, and the wallet hold of its worst-case cost — in one statement, and the record of
// ended calls (each hold captured at the call's cost or released, each call a model_usage row
// with its trace id) in batches. Refusals are answered, not raised: the daemon turns each into
// the error OpenAI's clients expect ({status, type, code, message}).
#include <algorithm>

#include "actor.hpp"
#include "api_key.hpp"
#include "boundary.hpp"
#include "catalog_cache.hpp"
#include "flowgres/cidr.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "rate_limiter.hpp"
#include "run_preparation.hpp"
#include "spi.hpp"
#include "wallet.hpp"
#include "wallet_ledger.hpp"

namespace flowgres {
namespace {

constexpr size_t kMaxRecords = 200;
constexpr long long kMaxTokens = 100'000'000;

std::string refusal(int status, const char *type, const char *code, const std::string &message) {
    return "{\"decision\":\"refuse\",\"status\":" + std::to_string(status) + ",\"type\":\"" + type + "\",\"code\":\"" +
           code + "\",\"message\":" + json_quote(message) + "}";
}

bool is_hex(std::string_view text, size_t length) {
    return text.size() == length &&
           std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

const json_t *member(const json_t *object, const char *name) { return json_object_get(object, name); }

std::string text_member(const json_t *object, const char *name) {
    const char *value = json_string_value(member(object, name));
    return value ? value : "";
}

// A count member (absent: `fallback`), or -1 when it is not an integer from 0 to kMaxTokens.
long long count_member(const json_t *object, const char *name, long long fallback) {
    const json_t *value = member(object, name);
    if (!value || json_is_null(value)) return fallback;
    if (!json_is_integer(value) || json_integer_value(value) < 0 || json_integer_value(value) > kMaxTokens) return -1;
    return json_integer_value(value);
}

// The most a call may cost on any of its routes, in micro-units, rounded up: the prompt at
// the route's input price and max_tokens (or, when the caller set none, the rest of the
// route's context; -1: none, an embedding) at its output price. Routes past their context
// cost their context.
long long worst_case_cost(const json_t *routes, long long prompt_tokens, long long max_tokens) {
    __int128 worst = 0;
    size_t index;
    const json_t *route;
    json_array_foreach(routes, index, route) {
        long long context = std::max<long long>(1, json_integer_value(member(route, "context_tokens")));
        long long prompt = std::min(prompt_tokens, context);
        long long completion = max_tokens > 0 ? max_tokens : max_tokens < 0 ? 0 : context - prompt;
        __int128 scaled = static_cast<__int128>(prompt) * json_integer_value(member(route, "input_micros_per_1m")) +
                          static_cast<__int128>(completion) * json_integer_value(member(route, "output_micros_per_1m"));
        worst = std::max(worst, (scaled + 999999) / 1000000);
    }
    return worst > INT64_MAX ? INT64_MAX : static_cast<long long>(worst);
}

// What a key's limit said, for the x-ratelimit-* headers: {"limit", "remaining", "reset"}.
std::string window_json(const RateLimitHit &hit, int64_t now) {
    return "{\"limit\":" + std::to_string(hit.limit) + ",\"remaining\":" + std::to_string(hit.remaining) +
           ",\"reset\":" + std::to_string(std::max<int64_t>(0, hit.reset_at - now)) + "}";
}

// Whether the JSON array of strings `list_json` holds `value`.
bool listed(const std::string &list_json, std::string_view value) {
    Json list = parse_json(list_json, "list");
    size_t index;
    const json_t *item;
    json_array_foreach(list.get(), index, item) if (json_is_string(item) && value == json_string_value(item)) return true;
    return false;
}

bool address_allowed(const std::string &list_json, const std::string &address) {
    Json list = parse_json(list_json, "ip_allow");
    std::vector<std::string> entries;
    size_t index;
    const json_t *item;
    json_array_foreach(list.get(), index, item) if (json_is_string(item)) entries.emplace_back(json_string_value(item));
    return CidrList::of_entries(entries).contains(address);
}

// The routes to a model for a workspace, cached per backend as a run's are (runtime_admit.cpp):
// the tables they come from move the catalogue's generation, and a secret's expiry makes the
// document stale.
struct ModelRoutes {
    std::string document;
    int64_t stale_at = 0;
};

std::string model_routes(const std::string &workspace_id, const std::string &model) {
    static CatalogCache<ModelRoutes> cache(4096);
    auto load = [&]() -> std::optional<ModelRoutes> {
        return ModelRoutes{run_routes_document(workspace_id, "[" + json_quote(model) + "]"), secrets_stale_at(workspace_id)};
    };
    auto fresh = [](const ModelRoutes &routes) { return routes.stale_at == 0 || epoch_seconds_now() < routes.stale_at; };
    return cache.get(workspace_id + "/" + model, load, fresh)->document;
}

// How long a hold may stay open: the slowest route's timeout and a minute.
long long hold_seconds(const json_t *routes) {
    long long slowest = 0;
    size_t index;
    const json_t *route;
    json_array_foreach(routes, index, route) slowest = std::max<long long>(slowest, json_integer_value(member(route, "timeout_ms")));
    return slowest / 1000 + 60;
}

}  // namespace

SqlValue gateway_admit(CallArgs &args) {
    Json request = parse_json(args.required_jsonb(0, "request"), "request");
    if (!json_is_object(request.get())) throw field_error("request", "must be an object");
    require_system_actor();
    const json_t *asked = request.get();
    std::string key_hash = text_member(asked, "key_hash");
    if (!is_hex(key_hash, 64)) throw field_error("key_hash", "must be a SHA-256 in hex");

    std::optional<KeyForAuthentication> key = key_for_authentication(key_hash);
    if (key_refusal(key))
        return SqlValue::jsonb(refusal(401, "invalid_request_error", "invalid_api_key",
                                       "Incorrect API key provided: it is unknown, expired or revoked."));
    if (key->scopes.find("llm:execute") == std::string::npos || key->workspace_id.empty())
        return SqlValue::jsonb(refusal(401, "invalid_request_error", "missing_scope",
                                       "The API key lacks the scope llm:execute."));
    // Its owner must still be one who may spend the workspace's wallet, and it must be active.
    try {
        require_workspace_permission(Actor{Actor::Kind::user, key->user_id, ""}, key->workspace_id,
                                     permission::app_publish, WorkspaceUse::write);
    } catch (const Error &error) {
        if (error.code() == ErrorCode::WORKSPACE_INACTIVE)
            return SqlValue::jsonb(refusal(403, "permission_error", "workspace_inactive",
                                           "The workspace that pays for this key is not active."));
        if (error.code() != ErrorCode::PERMISSION_DENIED && error.code() != ErrorCode::WORKSPACE_NOT_FOUND) throw;
        return SqlValue::jsonb(refusal(403, "permission_error", "permission_denied",
                                       "The key's owner may no longer spend this workspace's wallet."));
    }
    if (!key->ip_allow_json.empty() && !address_allowed(key->ip_allow_json, text_member(asked, "ip")))
        return SqlValue::jsonb(refusal(403, "permission_error", "ip_not_allowed",
                                       "The API key may not be used from this address."));
    std::string allowed = "{\"decision\":\"allow\",\"key_id\":" + json_quote(key->key_id) +
                          ",\"user_id\":" + json_quote(key->user_id) + ",\"workspace_id\":" + json_quote(key->workspace_id);
    if (text_member(asked, "action") == "models")
        return SqlValue::jsonb(allowed + ",\"models\":" + workspace_models_document(key->workspace_id) + "}");

    std::string model = text_member(asked, "model");
    if (model.empty() || model.size() > 200) throw field_error("model", "must be a model id of 1 to 200 bytes");
    long long prompt_tokens = count_member(asked, "prompt_tokens", 0);
    long long max_tokens = count_member(asked, "max_tokens", 0);
    if (prompt_tokens < 0) throw field_error("prompt_tokens", "must be an integer from 0 to 100000000");
    if (max_tokens < 0) throw field_error("max_tokens", "must be an integer from 0 to 100000000");
    Json routes = parse_json(model_routes(key->workspace_id, model), "routes");
    const json_t *offered = member(routes.get(), model.c_str());
    if (!json_is_array(offered) || json_array_size(offered) == 0)
        return SqlValue::jsonb(refusal(404, "invalid_request_error", "model_not_found",
                                       "The model `" + model + "` does not exist or you do not have access to it."));

    if (!key->allowed_models_json.empty() && !listed(key->allowed_models_json, model))
        return SqlValue::jsonb(refusal(403, "permission_error", "model_not_allowed",
                                       "The API key may not call the model `" + model + "`."));

    // The key's own limits per minute, in shared memory: requests (a refused one counts too),
    // then the call's worst-case tokens (counted only when it goes ahead).
    std::string limits;
    int64_t now = epoch_seconds_now();
    auto limited = [&](const RateLimitHit &hit, const char *what) {
        std::string answer = refusal(429, "requests", "rate_limit_exceeded",
                                     std::string("Rate limit reached for ") + what + " per minute on this API key: retry in " +
                                         std::to_string(hit.retry_after) + " s.");
        answer.pop_back();
        return answer + ",\"retry_after\":" + std::to_string(hit.retry_after) + ",\"rate_limit\":{" + limits + "}}";
    };
    if (key->requests_per_minute > 0) {
        std::string counter = "gateway:requests:" + key->key_id;
        RateLimitHit hit = rate_limit_take(counter.data(), static_cast<int>(counter.size()), 1, true,
                                           key->requests_per_minute, 60, now);
        limits += "\"requests\":" + window_json(hit, now);
        if (!hit.allowed) return SqlValue::jsonb(limited(hit, "requests"));
    }
    if (key->tokens_per_minute > 0) {
        long long context = json_integer_value(member(json_array_get(offered, 0), "context_tokens"));
        long long tokens = prompt_tokens + (text_member(asked, "kind") == "embeddings" ? 0
                                            : max_tokens > 0 ? max_tokens
                                                             : std::max(0LL, context - prompt_tokens));
        std::string counter = "gateway:tokens:" + key->key_id;
        RateLimitHit hit = rate_limit_take(counter.data(), static_cast<int>(counter.size()), tokens, false,
                                           key->tokens_per_minute, 60, now);
        limits += std::string(limits.empty() ? "" : ",") + "\"tokens\":" + window_json(hit, now);
        if (!hit.allowed) return SqlValue::jsonb(limited(hit, "tokens"));
    }

    // An embedding's cost is its input's: it answers no tokens.
    bool embeddings = text_member(asked, "kind") == "embeddings";
    long long cost = worst_case_cost(offered, prompt_tokens, embeddings ? -1 : max_tokens);
    if (cost > 0) {
        std::string hold_id = text_member(asked, "hold_id");
        if (!is_uuid(hold_id)) throw field_error("hold_id", "must be an id when the call costs anything");
        WalletHoldOutcome held = hold_in_wallet(key->workspace_id, hold_id, cost, epoch_seconds_now() + hold_seconds(offered));
        if (held.kind == WalletHoldOutcome::Kind::insufficient)
            return SqlValue::jsonb(refusal(402, "insufficient_quota", "insufficient_quota",
                                           "The workspace's wallet cannot cover this call: it may cost up to " +
                                               std::to_string(cost) + " micro-units and " +
                                               std::to_string(std::max<long long>(0, held.available)) +
                                               " are available. Lower max_tokens or top the wallet up."));
        if (held.kind == WalletHoldOutcome::Kind::full)
            return SqlValue::jsonb(refusal(503, "server_error", "overloaded", "Too many calls are in flight: retry."));
    }
    return SqlValue::jsonb(allowed + ",\"hold\":" + std::to_string(cost) + ",\"rate_limit\":{" + limits +
                           "},\"routes\":" + dump_json(offered) + "}");
}

SqlValue gateway_record(CallArgs &args) {
    Json calls = parse_json(args.required_jsonb(0, "calls"), "calls");
    const json_t *list = calls.get();
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > kMaxRecords)
        throw field_error("calls", "must be an array of 1 to " + std::to_string(kMaxRecords) + " calls");
    require_system_actor();
    ValidationProblems problems;
    std::vector<WalletSettlement> settlements;
    size_t index;
    const json_t *call;
    json_array_foreach(list, index, call) {
        std::string at = "calls[" + std::to_string(index) + "]";
        if (!json_is_object(call)) {
            problems.add(at, "must be an object");
            continue;
        }
        for (const char *id : {"workspace_id", "api_key_id", "user_id"})
            if (!is_uuid(text_member(call, id))) problems.add(at + "." + id, "must be an id");
        if (!is_hex(text_member(call, "trace_id"), 32)) problems.add(at + ".trace_id", "must be 32 hex digits");
        for (const char *name : {"provider", "model"})
            if (text_member(call, name).empty() || text_member(call, name).size() > 200)
                problems.add(at + "." + name, "must be 1 to 200 bytes");
        for (const char *count : {"prompt_tokens", "completion_tokens", "cost_micros", "latency_ms"})
            if (count_member(call, count, 0) < 0) problems.add(at + "." + count, "must be an integer from 0 to 100000000");
        if (!json_is_boolean(member(call, "ok"))) problems.add(at + ".ok", "must be true or false");
        if (const json_t *conversation = member(call, "conversation_id"); conversation && !json_is_null(conversation)) {
            if (!is_uuid(text_member(call, "conversation_id"))) problems.add(at + ".conversation_id", "must be an id");
            const json_t *turns = member(call, "messages");
            size_t turn_index;
            const json_t *turn;
            if (!json_is_array(turns) || json_array_size(turns) > 2)
                problems.add(at + ".messages", "must be the call's last message and its answer");
            else
                json_array_foreach(turns, turn_index, turn) {
                    std::string role = text_member(turn, "role");
                    if ((role != "system" && role != "user" && role != "assistant") || !json_is_string(member(turn, "content")))
                        problems.add(at + ".messages[" + std::to_string(turn_index) + "]", "must be {role, content}");
                }
        }
        std::string hold_id = text_member(call, "hold_id");
        if (!hold_id.empty()) {
            if (!is_uuid(hold_id)) problems.add(at + ".hold_id", "must be an id");
            // What the caller pays: the call's cost, unless it says less (a client that left).
            long long charge = count_member(call, "charge", count_member(call, "cost_micros", 0));
            if (charge < 0) problems.add(at + ".charge", "must be an integer from 0 to 100000000");
            settlements.push_back(WalletSettlement{text_member(call, "workspace_id"), hold_id, std::max(0LL, charge),
                                                   text_member(call, "trace_id")});
        }
    }
    problems.throw_if_any();
    // Each call an audit row, as its key's user, under its trace id.
    query(R"sql(
        insert into flowgres.audit_logs (workspace_id, actor_user_id, actor_role, action, target_type, target_id, metadata)
        select c.workspace_id, c.user_id, 'api_key', 'gateway.call', 'trace', c.trace_id,
               jsonb_build_object('api_key_id', c.api_key_id, 'model', c.model, 'provider', c.provider, 'ok', c.ok,
                                  'error_code', c.error_code, 'cost_micros', coalesce(c.cost_micros, 0))
        from jsonb_to_recordset($1::jsonb)
             as c(workspace_id uuid, user_id uuid, api_key_id uuid, trace_id text, model text, provider text, ok boolean,
                  error_code text, cost_micros bigint))sql",
          {dump_json(list)});
    query(R"sql(
        insert into flowgres.model_usage (workspace_id, provider, model, prompt_tokens, completion_tokens, cost_micros,
                                          latency_ms, ok, error_code, usage_reported, trace_id, api_key_id)
        select c.workspace_id, left(c.provider, 200), left(c.model, 200), coalesce(c.prompt_tokens, 0),
               coalesce(c.completion_tokens, 0), coalesce(c.cost_micros, 0), coalesce(c.latency_ms, 0), c.ok,
               left(c.error_code, 100), coalesce(c.usage_reported, true), c.trace_id, c.api_key_id
        from jsonb_to_recordset($1::jsonb)
             as c(workspace_id uuid, provider text, model text, prompt_tokens bigint, completion_tokens bigint,
                  cost_micros bigint, latency_ms bigint, ok boolean, error_code text, usage_reported boolean,
                  trace_id text, api_key_id uuid))sql",
          {dump_json(list)});
    store_conversation_turns(dump_json(list));
    std::string answers = "[";
    for (const std::string &answer : settle_wallet_holds(settlements))
        answers += (answers.size() > 1 ? "," : "") + answer;
    return SqlValue::jsonb(answers + "]");
}

SqlValue trace_get(CallArgs &args) {
    std::string trace_id = args.required_text(0, "trace_id");
    if (!is_hex(trace_id, 32)) throw field_error("trace_id", "must be 32 lowercase hex digits");
    Actor actor = require_actor();
    auto not_found = [&] { return Error(ErrorCode::TRACE_NOT_FOUND, "no gateway call has trace id " + trace_id); };
    auto workspace_id =
        query_value("select workspace_id::text from flowgres.model_usage where trace_id = $1 limit 1", {trace_id});
    if (!workspace_id) throw not_found();
    try {
        require_workspace_permission(actor, *workspace_id, permission::logs_view, WorkspaceUse::read);
    } catch (const Error &error) {
        if (error.code() == ErrorCode::WORKSPACE_NOT_FOUND) throw not_found();
        throw;
    }
    return SqlValue::jsonb(query_value(R"sql(
        select jsonb_build_object(
            'trace_id', $1, 'workspace_id', $2::uuid,
            'calls', (select coalesce(jsonb_agg(jsonb_build_object(
                          'api_key_id', u.api_key_id, 'provider', u.provider, 'model', u.model,
                          'prompt_tokens', u.prompt_tokens, 'completion_tokens', u.completion_tokens,
                          'cost_micros', u.cost_micros, 'latency_ms', u.latency_ms, 'ok', u.ok, 'error_code', u.error_code,
                          'usage_reported', u.usage_reported, 'created_at', u.created_at) order by u.id), '[]')
                      from flowgres.model_usage u where u.trace_id = $1 and u.workspace_id = $2::uuid),
            'wallet', (select coalesce(jsonb_agg(jsonb_build_object(
                           'kind', t.kind, 'amount', t.amount, 'billing_ref_id', t.billing_ref_id,
                           'created_at', t.created_at) order by t.id), '[]')
                       from flowgres.wallet_transactions t where t.workspace_id = $2::uuid and t.trace_id = $1),
            'audit', (select coalesce(jsonb_agg(jsonb_build_object(
                          'action', a.action, 'actor_user_id', a.actor_user_id, 'metadata', a.metadata,
                          'created_at', a.created_at) order by a.created_at), '[]')
                      from flowgres.audit_logs a
                      where a.workspace_id = $2::uuid and a.target_type = 'trace' and a.target_id = $1)))sql",
                                       {trace_id, *workspace_id})
                               .value());
}

}  // namespace flowgres
