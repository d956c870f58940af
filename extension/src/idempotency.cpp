// Idempotency keys (seed §105). The daemon claims a key in its own committed transaction, so a
// concurrent duplicate sees the claim; the call and the stored response then commit together,
// so a replay returns exactly what the first request answered. A failed call releases its
// claim: errors are not stored, and a retry with the same key runs again.
#include "actor.hpp"
#include "boundary.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "functions.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

std::string actor_key(const Actor &actor) { return actor.is_system() ? "operator" : actor.user_id; }

void check_key(const std::string &key) {
    if (key.empty() || key.size() > 255) throw field_error("Idempotency-Key", "must be 1 to 255 characters");
    for (unsigned char c : key)
        if (c < 0x21 || c > 0x7e) throw field_error("Idempotency-Key", "must be printable ASCII without spaces");
}

}  // namespace

SqlValue idempotency_claim(CallArgs &args) {
    std::string key = args.required_text(0, "key");
    std::string route = args.required_text(1, "route");
    std::string request_hash = args.required_text(2, "request_hash");
    check_key(key);
    Actor actor = require_actor();
    std::string owner = actor_key(actor);
    // An expired row is gone for good: the key may be used afresh. So is a claim left
    // in_progress for longer than any call may run (its daemon died before releasing it).
    query(R"sql(
        delete from flowgres.idempotency_keys
        where actor_key = $1 and key = $2
          and (expires_at <= now() or (status = 'in_progress' and created_at < now() - interval '2 minutes')))sql",
          {owner, key});
    auto inserted = query_value(R"sql(
        insert into flowgres.idempotency_keys (actor_key, key, route, request_hash) values ($1, $2, $3, $4)
        on conflict do nothing returning 'claimed')sql",
                                {owner, key, route, request_hash});
    if (inserted) return SqlValue::jsonb("{\"state\":\"claimed\"}");

    auto row = query(R"sql(
        select route, request_hash, status, response_status::text, response::text
        from flowgres.idempotency_keys where actor_key = $1 and key = $2)sql",
                     {owner, key});
    if (row.rows.empty())  // released between our insert and this read: ask the client to retry
        throw Error(ErrorCode::IDEMPOTENCY_IN_PROGRESS, "a request with this Idempotency-Key is in flight");
    const SqlRow &stored = row.rows[0];
    if (stored.text(0) != route || stored.text(1) != request_hash)
        throw Error(ErrorCode::IDEMPOTENCY_CONFLICT, "this Idempotency-Key was used with a different request",
                    "{\"route\":" + json_quote(stored.text(0)) + "}");
    if (stored.text(2) != "completed")
        throw Error(ErrorCode::IDEMPOTENCY_IN_PROGRESS, "a request with this Idempotency-Key is in flight");
    return SqlValue::jsonb("{\"state\":\"replay\",\"status\":" + stored.text(3) + ",\"response\":" + stored.text(4) + "}");
}

SqlValue idempotency_complete(CallArgs &args) {
    std::string key = args.required_text(0, "key");
    auto status = args.integer(1);
    std::string response = args.jsonb(2).value_or("null");
    Actor actor = require_actor();
    query(R"sql(
        update flowgres.idempotency_keys set status = 'completed', response_status = $3::integer, response = $4::jsonb
        where actor_key = $1 and key = $2 and status = 'in_progress')sql",
          {actor_key(actor), key, std::to_string(status.value_or(200)), response});
    return SqlValue::jsonb(response);
}

SqlValue idempotency_release(CallArgs &args) {
    std::string key = args.required_text(0, "key");
    Actor actor = require_actor();
    auto result = query("delete from flowgres.idempotency_keys where actor_key = $1 and key = $2 and status = 'in_progress'",
                        {actor_key(actor), key});
    return SqlValue::boolean(result.processed > 0);
}

SqlValue idempotency_purge(CallArgs &) {
    auto result = query("delete from flowgres.idempotency_keys where expires_at <= now()");
    return SqlValue::integer(static_cast<long long>(result.processed));
}

}  // namespace flowgres
