// API keys (seed §35.3): created, listed, rotated and revoked by their user (or the operator),
// and resolved per request by the daemon. Only SHA-256 hashes are stored; a key is returned
// once, by the call that made it. Not for: the bootstrap admin key, which lives only in the
// daemon's configuration and acts as the operator.
#include <set>

#include "actor.hpp"
#include "api_key.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "catalog_cache.hpp"
#include "flowgres/crypto.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

constexpr int kMaxActiveKeysPerUser = 50;

const char *kKeyDocument = "to_jsonb(k) - 'key_hash'";

std::string key_document(const std::string &key_id) {
    return query_value(std::string("select ") + kKeyDocument + " from flowgres.api_keys k where id = $1::uuid", {key_id})
        .value();
}

// Audit rows belong to a workspace; a key is the user's, so its rows go to the workspace the
// user owns first (their personal one, created with the user).
std::string audit_workspace_of(const std::string &user_id) {
    return query_value("select id from flowgres.workspaces where owner_user_id = $1::uuid order by created_at, id limit 1",
                       {user_id})
        .value_or("00000000-0000-0000-0000-000000000000");
}

// The user whose keys the call is about: oneself, or for the operator the named user.
std::string key_owner(const Actor &actor, const std::optional<std::string> &user_id) {
    if (actor.is_system()) {
        if (!user_id) throw field_error("user_id", "is required when the operator manages keys");
        if (!query_value("select 1 from flowgres.users where id = $1::uuid", {*user_id}))
            throw Error(ErrorCode::USER_NOT_FOUND, "user " + *user_id + " not found");
        return *user_id;
    }
    if (user_id && *user_id != actor.user_id)
        throw Error(ErrorCode::PERMISSION_DENIED, "only the operator manages another user's API keys");
    return actor.user_id;
}

std::string checked_scopes(const std::optional<std::string> &scopes_json) {
    if (!scopes_json) return "{read,write}";
    Json scopes = parse_json(*scopes_json, "scopes");
    if (!json_is_array(scopes.get()) || json_array_size(scopes.get()) == 0)
        throw field_error("scopes", "must be a non-empty array of \"read\", \"write\" and \"llm:execute\"");
    std::set<std::string> seen;
    size_t index;
    json_t *value;
    json_array_foreach(scopes.get(), index, value) {
        const char *scope = json_string_value(value);
        std::string_view name = scope ? scope : "";
        if (name != "read" && name != "write" && name != "llm:execute")
            throw field_error("scopes[" + std::to_string(index) + "]", "must be \"read\", \"write\" or \"llm:execute\"");
        seen.insert(scope);
    }
    std::string out = "{";
    for (const auto &scope : seen) out += (out.size() > 1 ? "," : "") + scope;
    return out + "}";
}

// The key row the actor may manage, or API_KEY_NOT_FOUND (another user's key looks absent).
std::string require_manageable_key(const Actor &actor, const std::string &key_id) {
    auto owner = query_value("select user_id from flowgres.api_keys where id = $1::uuid", {key_id});
    if (!owner || (!actor.is_system() && *owner != actor.user_id))
        throw Error(ErrorCode::API_KEY_NOT_FOUND, "API key " + key_id + " not found");
    return *owner;
}

SqlValue key_with_secret(const std::string &key_id, const std::string &key) {
    return SqlValue::jsonb("{\"api_key\":" + key_document(key_id) + ",\"key\":" + json_quote(key) + "}");
}

}  // namespace

std::optional<KeyForAuthentication> key_for_authentication(const std::string &key_hash) {
    static CatalogCache<KeyForAuthentication> cache(4096);
    return cache.get(key_hash, [&]() -> std::optional<KeyForAuthentication> {
        SqlResult found = query(R"sql(
            select k.id, k.user_id, u.status = 'active', k.revoked_at is not null,
                   (extract(epoch from k.expires_at) * 1000000)::bigint, array_to_string(k.scopes, ','),
                   coalesce(k.workspace_id::text, ''), coalesce(to_jsonb(k.allowed_models)::text, ''),
                   coalesce(to_jsonb(k.ip_allow)::text, ''), coalesce(k.requests_per_minute, 0),
                   coalesce(k.tokens_per_minute, 0)
            from flowgres.api_keys k join flowgres.users u on u.id = k.user_id
            where k.key_hash = $1)sql",
                                {key_hash});
        if (found.rows.empty()) return std::nullopt;
        const SqlRow &row = found.rows[0];
        KeyForAuthentication key{row.text(0), row.text(1), row.text(2) == "t", row.text(3) == "t", std::nullopt,
                                 row.text(5), row.text(6), row.text(7), row.text(8), std::stoll(row.text(9)),
                                 std::stoll(row.text(10))};
        if (row[4]) key.expires_at_micros = std::stoll(*row[4]);
        return key;
    });
}

const char *key_refusal(const std::optional<KeyForAuthentication> &key) {
    if (!key) return "unknown_key";
    if (!key->user_active) return "user_disabled";
    if (key->revoked) return "revoked";
    if (key->expires_at_micros && *key->expires_at_micros <= transaction_start_micros()) return "expired";
    return nullptr;
}

SqlValue api_key_create(CallArgs &args) {
    std::string name = args.required_text(0, "name");
    std::optional<std::string> scopes_json = args.jsonb(1);
    std::optional<std::string> expires_at = args.timestamptz(2);
    std::optional<std::string> user_id = args.uuid(3);
    std::optional<std::string> workspace_id = args.uuid(4);
    check_display_text("name", name, 100);
    std::string scopes = checked_scopes(scopes_json);
    bool calls_models = scopes.find("llm:execute") != std::string::npos;
    if (calls_models && !workspace_id)
        throw field_error("workspace_id", "is required with the scope llm:execute: the workspace that pays");
    if (!calls_models && workspace_id) throw field_error("workspace_id", "is only for keys with the scope llm:execute");
    Actor actor = require_actor();
    std::string owner = key_owner(actor, user_id);
    // The key spends the workspace's wallet: its owner must be one who may (owners and admins).
    if (workspace_id)
        require_workspace_permission(Actor{Actor::Kind::user, owner, actor.role_name}, *workspace_id,
                                     permission::app_publish, WorkspaceUse::write);
    if (expires_at && query_value("select ($1::timestamptz <= now())::text", {expires_at}) == "true")
        throw field_error("expires_at", "must be in the future");
    // The owner's row serialises key creation (spi.hpp: lock, then count).
    query("select 1 from flowgres.users where id = $1::uuid for update", {owner});
    auto active = query_value_latest_snapshot(
        "select count(*) from flowgres.api_keys where user_id = $1::uuid and revoked_at is null "
        "and (expires_at is null or expires_at > now())",
        {owner});
    if (std::stoll(active.value_or("0")) >= kMaxActiveKeysPerUser)
        throw field_error("name", "a user may hold at most " + std::to_string(kMaxActiveKeysPerUser) + " active API keys");

    std::string key = new_api_key();
    std::string key_id = query_value(R"sql(
        insert into flowgres.api_keys (user_id, name, key_hash, key_preview, scopes, expires_at, created_by, workspace_id)
        values ($1::uuid, $2, $3, $4, $5::text[], $6::timestamptz, $7::uuid, $8::uuid) returning id)sql",
                                     {owner, name, sha256_hex(key), api_key_preview(key), scopes, expires_at,
                                      actor.user_param(), workspace_id})
                             .value();
    write_audit(actor, audit_workspace_of(owner), "api_key.create", "api_key", key_id,
                "{\"name\":" + json_quote(name) + ",\"user_id\":" + json_quote(owner) + "}");
    return key_with_secret(key_id, key);
}

SqlValue api_key_list(CallArgs &args) {
    std::optional<std::string> user_id = args.uuid(0);
    Actor actor = require_actor();
    std::string owner = key_owner(actor, user_id);
    return SqlValue::jsonb(query_value(std::string("select jsonb_build_object('items', coalesce(jsonb_agg(") + kKeyDocument +
                                           " order by k.created_at desc, k.id), '[]')) from flowgres.api_keys k "
                                           "where k.user_id = $1::uuid",
                                       {owner})
                               .value());
}

SqlValue api_key_rotate(CallArgs &args) {
    std::string key_id = args.required_uuid(0, "key_id");
    Actor actor = require_actor();
    std::string owner = require_manageable_key(actor, key_id);
    if (query_value("select 1 from flowgres.api_keys where id = $1::uuid and revoked_at is not null", {key_id}))
        throw Error(ErrorCode::STATE_CONFLICT, "a revoked API key cannot be rotated", "{\"status\":\"revoked\"}");
    std::string key = new_api_key();
    query("update flowgres.api_keys set key_hash = $2, key_preview = $3, rotated_at = now() where id = $1::uuid",
          {key_id, sha256_hex(key), api_key_preview(key)});
    write_audit(actor, audit_workspace_of(owner), "api_key.rotate", "api_key", key_id);
    return key_with_secret(key_id, key);
}

SqlValue api_key_revoke(CallArgs &args) {
    std::string key_id = args.required_uuid(0, "key_id");
    std::optional<std::string> reason = args.text(1);
    if (reason) check_display_text("reason", *reason, 500);
    Actor actor = require_actor();
    std::string owner = require_manageable_key(actor, key_id);
    if (query_value("select 1 from flowgres.api_keys where id = $1::uuid and revoked_at is not null", {key_id}))
        throw Error(ErrorCode::STATE_CONFLICT, "the API key is already revoked", "{\"status\":\"revoked\"}");
    query("update flowgres.api_keys set revoked_at = now(), revoked_by = $2::uuid, revoked_reason = $3 where id = $1::uuid",
          {key_id, actor.user_param(), reason});
    write_audit(actor, audit_workspace_of(owner), "api_key.revoke", "api_key", key_id,
                "{\"reason\":" + (reason ? json_quote(*reason) : std::string("null")) + "}");
    return SqlValue::jsonb(key_document(key_id));
}

SqlValue api_key_set_limits(CallArgs &args) {
    std::string key_id = args.required_uuid(0, "key_id");
    Json limits = parse_json(args.required_jsonb(1, "limits"), "limits");
    const json_t *given = limits.get();
    if (!json_is_object(given)) throw field_error("limits", "must be an object");
    ValidationProblems problems;
    const char *key;
    const json_t *value;
    json_object_foreach(const_cast<json_t *>(given), key, value) {
        std::string_view name = key;
        if (name != "models" && name != "requests_per_minute" && name != "tokens_per_minute" && name != "ip_allow")
            problems.add(key, "is not a limit (models, requests_per_minute, tokens_per_minute, ip_allow)");
    }
    // A list of 1 to 100 strings, each checked by `valid`; "" when absent or null.
    auto list = [&](const char *name, auto valid, const char *rule) -> std::string {
        const json_t *items = json_object_get(given, name);
        if (!items || json_is_null(items)) return "";
        if (!json_is_array(items) || json_array_size(items) == 0 || json_array_size(items) > 100) {
            problems.add(name, "must be an array of 1 to 100 entries, or null");
            return "";
        }
        size_t index;
        const json_t *item;
        json_array_foreach(items, index, item) {
            if (!json_is_string(item) || !valid(std::string_view(json_string_value(item), json_string_length(item))))
                problems.add(std::string(name) + "[" + std::to_string(index) + "]", rule);
        }
        return dump_json(items);
    };
    auto per_minute = [&](const char *name, long long high) -> SqlParam {
        const json_t *number = json_object_get(given, name);
        if (!number || json_is_null(number)) return std::nullopt;
        if (!json_is_integer(number) || json_integer_value(number) < 1 || json_integer_value(number) > high) {
            problems.add(name, "must be an integer from 1 to " + std::to_string(high) + ", or null");
            return std::nullopt;
        }
        return std::to_string(json_integer_value(number));
    };
    std::string models = list("models", [](std::string_view id) { return !id.empty() && id.size() <= 200; },
                              "must be a model id of 1 to 200 bytes");
    std::string addresses = list("ip_allow", [](std::string_view text) { return is_ip_or_cidr(text); },
                                 "must be an IP address or CIDR block");
    SqlParam requests = per_minute("requests_per_minute", 1000000);
    SqlParam tokens = per_minute("tokens_per_minute", 1000000000);
    problems.throw_if_any();
    Actor actor = require_actor();
    std::string owner = require_manageable_key(actor, key_id);
    if (!query_value("select 1 from flowgres.api_keys where id = $1::uuid and 'llm:execute' = any (scopes)", {key_id}))
        throw field_error("key_id", "limits are for keys with the scope llm:execute");
    query(R"sql(
        update flowgres.api_keys
        set allowed_models = (select array_agg(m) from jsonb_array_elements_text(nullif($2, '')::jsonb) m),
            ip_allow = (select array_agg(a) from jsonb_array_elements_text(nullif($3, '')::jsonb) a),
            requests_per_minute = $4::integer, tokens_per_minute = $5::bigint
        where id = $1::uuid)sql",
          {key_id, models, addresses, requests, tokens});
    write_audit(actor, audit_workspace_of(owner), "api_key.limits", "api_key", key_id, dump_json(given));
    return SqlValue::jsonb(key_document(key_id));
}

SqlValue api_key_authenticate(CallArgs &args) {
    std::string key_hash = args.required_text(0, "key_hash");
    std::string required_scope = args.required_text(1, "required_scope");
    if (required_scope != "read" && required_scope != "write")
        throw field_error("required_scope", "must be \"read\" or \"write\"");
    std::optional<KeyForAuthentication> key = key_for_authentication(key_hash);
    // One message for every refusal reason but the scope: a caller learns nothing about keys
    // that are not theirs; the reason goes into the details for the key's owner to read.
    if (const char *reason = key_refusal(key))
        throw Error(ErrorCode::UNAUTHENTICATED, "the API key is missing, invalid, expired or revoked",
                    std::string("{\"reason\":\"") + reason + "\"}");
    // "write" includes "read": a key that may change things may also look at them.
    bool allowed = key->scopes.find("write") != std::string::npos || key->scopes.find(required_scope) != std::string::npos;
    if (!allowed)
        throw Error(ErrorCode::PERMISSION_DENIED, "the API key lacks the scope " + required_scope,
                    "{\"required_scope\":" + json_quote(required_scope) + "}");
    set_verified_actor(key->user_id);
    return SqlValue::text_value(key->key_id);
}

SqlValue api_key_touch(CallArgs &args) {
    std::string ids = args.required_jsonb(0, "key_ids");
    Json parsed = parse_json(ids, "key_ids");
    if (!json_is_array(parsed.get())) throw field_error("key_ids", "must be an array of key ids");
    size_t index;
    json_t *value;
    json_array_foreach(parsed.get(), index, value) {
        if (!json_is_string(value) || !is_uuid(json_string_value(value)))
            throw field_error("key_ids[" + std::to_string(index) + "]", "must be a key id");
    }
    auto result = query(
        "update flowgres.api_keys set last_used_at = now() "
        "where id in (select value::uuid from jsonb_array_elements_text($1::jsonb))",
        {ids});
    return SqlValue::integer(static_cast<long long>(result.processed));
}

}  // namespace flowgres
