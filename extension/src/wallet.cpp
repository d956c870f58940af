// Wallets (README "Wallets"): what the SQL functions do with wallet_ledger.hpp's balances and
// holds, and the wallet_transactions rows that make them true.
//
// Money moves only here: the operator grants (top-ups) and refunds; the daemon holds a call's
// worst-case cost and settles it (captures the reported cost, or releases the hold). Every
// movement is a row whose billing_ref_id makes a retry a no-op: a grant or refund sent again
// with the same billing_ref_id answers the first one (`replayed`), and with another amount is
// BILLING_REF_CONFLICT; a hold settled again answers `settled_before`. Refunds of one capture
// never give back more than it took: the capture's row is locked, then the refunds are summed
// by a later statement, whose snapshot sees those committed while it waited.
#include <algorithm>

#include "actor.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "list_filters.hpp"
#include "permission.hpp"
#include "rate_limiter.hpp"
#include "spi.hpp"
#include "wallet.hpp"
#include "wallet_ledger.hpp"

namespace flowgres {
namespace {

constexpr long long kMaxAmount = 1'000'000'000'000'000LL;            // micro-units: a billion of the currency
constexpr long long kMaxBalance = 4'000'000'000'000'000'000LL;       // well inside a bigint
constexpr long long kMaxHoldSeconds = 86400;
constexpr size_t kMaxSettlements = 200;
constexpr size_t kMaxReasonCharacters = 500;
constexpr size_t kMaxBillingRef = 200;
constexpr size_t kMaxTraceId = 64;
constexpr long long kDefaultPageSize = 50;
constexpr long long kMaxPageSize = 200;

// A movement row as the API shows it.
constexpr const char *kMovementJson = R"sql(
    jsonb_build_object('id', t.id, 'kind', t.kind, 'amount', t.amount, 'billing_ref_id', t.billing_ref_id,
                       'refers_to', t.refers_to, 'reason', t.reason, 'trace_id', t.trace_id,
                       'actor_user_id', t.actor_user_id, 'created_at', t.created_at))sql";

long long amount_argument(CallArgs &args, int position, const char *name) {
    std::optional<long long> amount = args.bigint(position);
    if (!amount) throw field_error(name, "is required");
    if (*amount < 1 || *amount > kMaxAmount)
        throw field_error(name, "must be an integer from 1 to " + std::to_string(kMaxAmount) + " (micro-units)");
    return *amount;
}

std::string reason_argument(CallArgs &args, int position) {
    std::string reason = args.required_text(position, "reason");
    size_t length = utf8_length(reason);
    if (length == 0 || length > kMaxReasonCharacters)
        throw field_error("reason", "must be 1 to " + std::to_string(kMaxReasonCharacters) + " characters");
    return reason;
}

bool is_billing_ref(std::string_view ref) {
    if (ref.empty() || ref.size() > kMaxBillingRef) return false;
    return std::all_of(ref.begin(), ref.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
               c == '.' || c == ':';
    });
}

constexpr const char *kBillingRefRule = "must be 1 to 200 characters of letters, digits, '-', '_', '.' and ':'";

// A billing_ref_id argument, or a new one when none is given (the movement cannot be retried).
std::string billing_ref_argument(CallArgs &args, int position, const char *name) {
    std::optional<std::string> ref = args.text(position);
    if (!ref) return query_value("select gen_random_uuid()::text").value();
    if (!is_billing_ref(*ref)) throw field_error(name, kBillingRefRule);
    return *ref;
}

// The operator's movements need an active workspace.
void require_active_workspace(const Actor &actor, const std::string &workspace_id) {
    require_workspace_permission(actor, workspace_id, permission::billing_manage, WorkspaceUse::write);
}

// Movements by one billing_ref_id of a wallet queue behind each other until they commit, so a
// retry sent while the first is in flight finds it.
void lock_billing_ref(const std::string &workspace_id, const std::string &ref) {
    query("select pg_advisory_xact_lock(hashtextextended('flowgres.wallet:' || $1 || ':' || $2, 0))",
          {workspace_id, ref});
}

struct Movement {
    std::string kind;
    long long amount = 0;
    std::string refers_to;
    std::string json;
};

// The first movement of the wallet by `ref`, if any.
std::optional<Movement> movement_by_ref(const std::string &workspace_id, const std::string &ref) {
    SqlResult found = query(std::string("select t.kind, t.amount::text, coalesce(t.refers_to, ''), ") + kMovementJson +
                                R"sql(::text
        from flowgres.wallet_transactions t where t.workspace_id = $1::uuid and t.billing_ref_id = $2
        order by t.id limit 1)sql",
                            {workspace_id, ref});
    if (found.rows.empty()) return std::nullopt;
    const SqlRow &row = found.rows[0];
    return Movement{row.text(0), std::stoll(row.text(1)), row.text(2), row.text(3)};
}

// A grant or refund sent again: the first one's answer when it is the same movement.
std::optional<std::string> replayed(const std::optional<Movement> &earlier, const std::string &kind, long long amount,
                                    const std::string &refers_to, const std::string &ref) {
    if (!earlier) return std::nullopt;
    if (earlier->kind != kind || earlier->amount != amount || earlier->refers_to != refers_to)
        throw Error(ErrorCode::BILLING_REF_CONFLICT,
                    "billing_ref_id " + ref + " names a " + earlier->kind + " of " + std::to_string(earlier->amount));
    return "{\"replayed\":true,\"movement\":" + earlier->json + "}";
}

std::string insert_movement(const Actor &actor, const std::string &workspace_id, const char *kind, long long amount,
                            const std::string &ref, const SqlParam &refers_to, const std::string &reason) {
    return query_value(std::string(R"sql(
        with t as (
            insert into flowgres.wallet_transactions (workspace_id, kind, amount, billing_ref_id, refers_to, reason,
                                                      actor_user_id)
            values ($1::uuid, $2, $3::bigint, $4, $5, $6, $7::uuid) returning *)
        select )sql") + kMovementJson + "::text from t",
                       {workspace_id, std::string(kind), std::to_string(amount), ref, refers_to, reason,
                        actor.user_param()})
        .value();
}

std::string audit_metadata(long long amount, const std::string &ref, const std::string &reason,
                           const std::string &extra = "") {
    return "{\"amount\":" + std::to_string(amount) + ",\"billing_ref_id\":" + json_quote(ref) +
           ",\"reason\":" + json_quote(reason) + extra + "}";
}

std::string wallet_json(const std::string &workspace_id, const WalletState &state) {
    return "{\"workspace_id\":" + json_quote(workspace_id) + ",\"balance\":" + std::to_string(state.balance) +
           ",\"frozen\":" + std::to_string(state.frozen) +
           ",\"available\":" + std::to_string(state.balance - state.frozen) + "}";
}

// The start of an operator's grant or refund: an active workspace, the billing_ref_id's lock,
// and the first answer when it is a replay.
std::optional<std::string> begin_credit(const Actor &actor, const std::string &workspace_id, const std::string &ref,
                                        const std::string &kind, long long amount, const std::string &refers_to) {
    require_active_workspace(actor, workspace_id);
    lock_billing_ref(workspace_id, ref);
    return replayed(movement_by_ref(workspace_id, ref), kind, amount, refers_to, ref);
}

// The end of one: counted in the balance at commit, its row, its audit row, its answer.
std::string record_credit(const Actor &actor, const std::string &workspace_id, const char *kind, long long amount,
                          const std::string &ref, const SqlParam &refers_to, const std::string &reason) {
    credit_wallet(workspace_id, amount);
    std::string movement = insert_movement(actor, workspace_id, kind, amount, ref, refers_to, reason);
    std::string extra = refers_to ? ",\"capture_ref_id\":" + json_quote(*refers_to) : "";
    write_audit(actor, workspace_id, std::string("wallet.") + kind, "wallet", workspace_id,
                audit_metadata(amount, ref, reason, extra));
    return "{\"replayed\":false,\"movement\":" + movement + "}";
}

using Settlement = WalletSettlement;

std::vector<Settlement> parse_settlements(const std::string &text) {
    Json document = parse_json(text, "settlements");
    const json_t *list = document.get();
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > kMaxSettlements)
        throw field_error("settlements", "must be an array of 1 to " + std::to_string(kMaxSettlements) + " settlements");
    ValidationProblems problems;
    std::vector<Settlement> settlements;
    for (size_t index = 0; index < json_array_size(list); index++) {
        const json_t *item = json_array_get(list, index);
        std::string at = "settlements[" + std::to_string(index) + "]";
        if (!json_is_object(item)) {
            problems.add(at, "must be an object");
            continue;
        }
        Settlement settlement;
        for (auto [member, target] : {std::pair{"workspace_id", &settlement.workspace_id}, {"hold_id", &settlement.hold_id}}) {
            const json_t *id = json_object_get(item, member);
            if (!json_is_string(id) || !is_uuid(json_string_value(id)))
                problems.add(at + "." + member, "must be an id");
            else
                *target = json_string_value(id);
        }
        const json_t *captured = json_object_get(item, "captured");
        if (!json_is_integer(captured) || json_integer_value(captured) < 0 || json_integer_value(captured) > kMaxAmount)
            problems.add(at + ".captured", "must be an integer from 0 to " + std::to_string(kMaxAmount));
        else
            settlement.captured = json_integer_value(captured);
        const json_t *trace = json_object_get(item, "trace_id");
        if (trace && !json_is_null(trace)) {
            if (!json_is_string(trace) || !is_billing_ref(json_string_value(trace)) ||
                json_string_length(trace) > kMaxTraceId)
                problems.add(at + ".trace_id", "must be 1 to 64 characters of letters, digits, '-', '_', '.' and ':'");
            else
                settlement.trace_id = json_string_value(trace);
        }
        for (const Settlement &earlier : settlements)
            if (!settlement.hold_id.empty() && earlier.hold_id == settlement.hold_id)
                problems.add(at + ".hold_id", "names a hold already settled in this batch");
        settlements.push_back(std::move(settlement));
    }
    problems.throw_if_any();
    return settlements;
}

// How a hold no longer open ended, from its rows: settled_before (with what was captured) or,
// with no rows, not_held (released without rows: nothing was charged).
std::string ended_before(const Settlement &settlement) {
    auto captured = query_value(R"sql(
        select case kind when 'capture' then amount else 0 end::text from flowgres.wallet_transactions
        where workspace_id = $1::uuid and billing_ref_id = $2 and kind in ('capture', 'release'))sql",
                                {settlement.workspace_id, settlement.hold_id});
    return "{\"hold_id\":" + json_quote(settlement.hold_id) + ",\"outcome\":" +
           (captured ? "\"settled_before\",\"captured\":" + *captured : std::string("\"not_held\",\"captured\":0")) + "}";
}

}  // namespace

SqlValue wallet(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    require_workspace_permission(require_actor(), workspace_id, permission::plan_view, WorkspaceUse::read);
    return SqlValue::jsonb(wallet_json(workspace_id, wallet_state(workspace_id)));
}

SqlValue wallet_open_holds(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    require_workspace_permission(require_actor(), workspace_id, permission::plan_view, WorkspaceUse::read);
    std::string list = "[";
    for (const WalletOpenHold &hold : open_wallet_holds(workspace_id))
        list += (list.size() > 1 ? "," : "") + std::string("{\"hold_id\":") + json_quote(hold.hold_id) +
                ",\"amount\":" + std::to_string(hold.amount) + ",\"held_at_us\":" + std::to_string(hold.held_at) +
                ",\"expires_at\":" + std::to_string(hold.expires_at) +
                ",\"settling\":" + (hold.settling ? "true" : "false") + "}";
    return SqlValue::jsonb(list + "]");
}

SqlValue wallet_transaction_list(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Json filters = filters_argument(args, 1);
    ValidationProblems problems;
    check_known_filters(problems, filters.get(), {"kind", "billing_ref_id", "from", "to", "page", "page_size"});
    auto kind = string_filter(problems, filters.get(), "kind", 20);
    if (kind && *kind != "grant" && *kind != "hold" && *kind != "capture" && *kind != "release" && *kind != "refund")
        problems.add("kind", "must be grant, hold, capture, release or refund");
    auto ref = string_filter(problems, filters.get(), "billing_ref_id", kMaxBillingRef);
    PeriodFilter period = period_filter(problems, filters.get());
    PageFilter pages = pages_filter(problems, filters.get(), kDefaultPageSize, kMaxPageSize);
    problems.throw_if_any();

    require_workspace_permission(require_actor(), workspace_id, permission::plan_view, WorkspaceUse::read);
    auto list = query_value(std::string(R"sql(
        with matching as (
            select * from flowgres.wallet_transactions
            where workspace_id = $1::uuid
              and ($2::text is null or kind = $2)
              and ($3::text is null or billing_ref_id = $3)
              and ($4::timestamptz is null or created_at >= $4::timestamptz)
              and ($5::timestamptz is null or created_at < $5::timestamptz))
        select jsonb_build_object(
            'items', (select coalesce(jsonb_agg()sql") + kMovementJson + R"sql( order by t.id desc), '[]')
                      from (select * from matching order by id desc limit $6::bigint offset $7::bigint) t),
            'meta', jsonb_build_object('page', $8::bigint, 'page_size', $6::bigint,
                                       'total', (select count(*) from matching),
                                       'total_pages', ceil((select count(*) from matching)::numeric / $6::bigint)::bigint)))sql",
                            {workspace_id, kind, ref, period.from, period.to, std::to_string(pages.size),
                             std::to_string(pages.offset()), std::to_string(pages.page)});
    return SqlValue::jsonb(list.value());
}

SqlValue wallet_grant(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    long long amount = amount_argument(args, 1, "amount");
    std::string reason = reason_argument(args, 2);
    std::string ref = billing_ref_argument(args, 3, "billing_ref_id");
    Actor actor = require_system_actor();
    if (auto answer = begin_credit(actor, workspace_id, ref, "grant", amount, "")) return SqlValue::jsonb(*answer);
    if (wallet_state(workspace_id).balance > kMaxBalance - amount)
        throw field_error("amount", "would take the balance past " + std::to_string(kMaxBalance) + " micro-units");
    return SqlValue::jsonb(record_credit(actor, workspace_id, "grant", amount, ref, std::nullopt, reason));
}

SqlValue wallet_refund(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string capture_ref = args.required_text(1, "capture_ref_id");
    if (!is_billing_ref(capture_ref)) throw field_error("capture_ref_id", kBillingRefRule);
    long long amount = amount_argument(args, 2, "amount");
    std::string reason = reason_argument(args, 3);
    std::string ref = billing_ref_argument(args, 4, "billing_ref_id");
    Actor actor = require_system_actor();
    if (auto answer = begin_credit(actor, workspace_id, ref, "refund", amount, capture_ref))
        return SqlValue::jsonb(*answer);
    // The capture's row locked first; the refunds summed by the next statement see every
    // refund of it committed before the lock was granted.
    auto captured = query_value(R"sql(
        select amount::text from flowgres.wallet_transactions
        where workspace_id = $1::uuid and billing_ref_id = $2 and kind = 'capture' for update)sql",
                                {workspace_id, capture_ref});
    if (!captured)
        throw Error(ErrorCode::CAPTURE_NOT_FOUND, "no capture of this wallet has billing_ref_id " + capture_ref);
    long long refunded = std::stoll(query_value(R"sql(
        select coalesce(sum(amount), 0)::text from flowgres.wallet_transactions
        where workspace_id = $1::uuid and refers_to = $2 and kind = 'refund')sql",
                                                {workspace_id, capture_ref})
                                        .value());
    long long taken = std::stoll(*captured);
    if (refunded + amount > taken)
        throw Error(ErrorCode::REFUND_EXCEEDS_CAPTURE,
                    "the capture took " + std::to_string(taken) + " and " + std::to_string(refunded) +
                        " of it was refunded: at most " + std::to_string(taken - refunded) + " more");
    return SqlValue::jsonb(record_credit(actor, workspace_id, "refund", amount, ref, capture_ref, reason));
}

SqlValue wallet_hold(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string hold_id = args.required_uuid(1, "hold_id");
    long long amount = amount_argument(args, 2, "amount");
    long long ttl = args.integer(3).value_or(600);
    if (ttl < 1 || ttl > kMaxHoldSeconds) throw field_error("ttl_seconds", "must be from 1 to 86400");
    require_system_actor();
    auto status = query_value("select status from flowgres.workspaces where id = $1::uuid", {workspace_id});
    if (!status) throw Error(ErrorCode::WORKSPACE_NOT_FOUND, "workspace " + workspace_id + " not found");
    if (*status != "active") throw Error(ErrorCode::WORKSPACE_INACTIVE, "workspace " + workspace_id + " is " + *status);
    if (query_value("select 1 from flowgres.wallet_transactions where workspace_id = $1::uuid and billing_ref_id = $2",
                    {workspace_id, hold_id}))
        throw Error(ErrorCode::BILLING_REF_CONFLICT, "hold " + hold_id + " was settled already");
    WalletHoldOutcome outcome = hold_in_wallet(workspace_id, hold_id, amount, epoch_seconds_now() + ttl);
    const char *refused = outcome.kind == WalletHoldOutcome::Kind::insufficient ? "insufficient"
                          : outcome.kind == WalletHoldOutcome::Kind::full      ? "ledger_full"
                                                                               : nullptr;
    return SqlValue::jsonb(std::string("{\"held\":") + (refused ? "false" : "true") +
                           ",\"available\":" + std::to_string(outcome.available) +
                           (refused ? ",\"refused\":\"" + std::string(refused) + "\"" : "") + "}");
}

SqlValue wallet_settle(CallArgs &args) {
    std::vector<Settlement> settlements = parse_settlements(args.required_jsonb(0, "settlements"));
    require_system_actor();
    std::string answers = "[";
    for (const std::string &answer : settle_wallet_holds(settlements))
        answers += (answers.size() > 1 ? "," : "") + answer;
    return SqlValue::jsonb(answers + "]");
}

std::vector<std::string> settle_wallet_holds(const std::vector<WalletSettlement> &settlements) {
    std::string rows = "[";
    std::vector<std::string> answers;
    size_t expected_rows = 0;
    for (const Settlement &settlement : settlements) {
        std::optional<WalletHeld> held = settle_wallet_hold(settlement.hold_id, settlement.captured);
        if (held && held->workspace_id != settlement.workspace_id) {
            throw Error(ErrorCode::BILLING_REF_CONFLICT,
                        "hold " + settlement.hold_id + " is not of workspace " + settlement.workspace_id);
        }
        if (!held) {
            answers.push_back(ended_before(settlement));
            continue;
        }
        std::string trace = settlement.trace_id ? json_quote(*settlement.trace_id) : "null";
        std::string common = ",\"workspace_id\":" + json_quote(settlement.workspace_id) +
                             ",\"billing_ref_id\":" + json_quote(settlement.hold_id) + ",\"trace_id\":" + trace;
        rows += (rows.size() > 1 ? "," : "") + std::string("{\"kind\":\"hold\",\"amount\":") +
                std::to_string(held->amount) + ",\"at_us\":" + std::to_string(held->held_at) + common + "}";
        rows += held->captured > 0 ? ",{\"kind\":\"capture\",\"amount\":" + std::to_string(held->captured) + common + "}"
                                   : ",{\"kind\":\"release\",\"amount\":" + std::to_string(held->amount) + common + "}";
        expected_rows += 2;
        answers.push_back("{\"hold_id\":" + json_quote(settlement.hold_id) + ",\"outcome\":" +
                          (held->captured > 0 ? "\"captured\"" : "\"released\"") +
                          ",\"held\":" + std::to_string(held->amount) + ",\"captured\":" + std::to_string(held->captured) +
                          "}");
    }
    if (expected_rows > 0) {
        auto written = query_value(R"sql(
            with written as (
                insert into flowgres.wallet_transactions (workspace_id, kind, amount, billing_ref_id, trace_id, created_at)
                select m.workspace_id, m.kind, m.amount, m.billing_ref_id, m.trace_id,
                       coalesce(to_timestamp(m.at_us / 1000000.0), now())
                from jsonb_to_recordset($1::jsonb)
                     as m(workspace_id uuid, kind text, amount bigint, billing_ref_id text, trace_id text, at_us bigint)
                on conflict (workspace_id, billing_ref_id, kind) do nothing
                returning 1)
            select count(*)::text from written)sql",
                                   {rows + "]"});
        if (std::stoull(written.value()) != expected_rows)
            throw Error(ErrorCode::BILLING_REF_CONFLICT, "a hold of this batch has rows already: nothing was settled");
    }
    return answers;
}

}  // namespace flowgres
