// Custom domains of apps (README "Custom domains"; seed §12, §27, §116, §122): binding with
// the name's rules, DNS proof (the daemon looks the records up between verify_begin and
// verify_finish; any daemon's sweep asks verify_due), activation one per app with rollback,
// and the operator's block. Every change is audited and announced on channel flowgres_domains
// (the domain's name), which the daemons' routing and certificate caches listen to.
#include "app_domain.hpp"
#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/crypto.hpp"
#include "flowgres/domain_name.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "list_filters.hpp"
#include "permission.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

// Domains one app may have bound at once (pending to active): enough for a name, its www, a
// few regions and a move; a team collecting hundreds is not binding them for one app.
constexpr long long kMaxDomainsPerApp = 20;
constexpr long long kDefaultPageSize = 50;
constexpr long long kMaxPageSize = 200;
constexpr size_t kMaxReasonBytes = 500;
constexpr size_t kMaxCheckErrorBytes = 1000;

}  // namespace

DomainRow find_domain(const Actor &actor, const std::string &domain_id, const std::optional<std::string> &app_id,
                      std::string_view permission, WorkspaceUse use, bool lock) {
    std::string sql =
        "select id, workspace_id, app_id, domain, status, verify_claimed_by, coalesce(verify_claimed_until > now(), false), "
        "replaced_domain_id, status_before_block from flowgres.app_domains where id = $1::uuid";
    if (lock) sql += " for update";
    SqlResult rows = query(sql, {domain_id});
    auto not_found = [&] { return Error(ErrorCode::DOMAIN_NOT_FOUND, "domain " + domain_id + " not found"); };
    if (rows.rows.empty()) throw not_found();
    const SqlRow &row = rows.rows[0];
    DomainRow domain{row.text(0), row.text(1), row.text(2), row.text(3), row.text(4), row[5], row.text(6) == "t", row[7], row[8]};
    if (app_id && *app_id != domain.app_id) throw not_found();
    try {
        require_app_permission(actor, domain.app_id, permission, use);
    } catch (const Error &error) {
        if (error.code() == ErrorCode::APP_NOT_FOUND) throw not_found();
        throw;
    }
    return domain;
}

namespace {

// For what changes which domain of an app is active: the app's row lock first, which orders
// activations, rollbacks and unblocks of one app, then the domain under lock.
DomainRow lock_app_and_domain(const Actor &actor, const std::string &domain_id, const std::optional<std::string> &app_id,
                              WorkspaceUse use) {
    DomainRow domain = find_domain(actor, domain_id, app_id, kManageDomains, use, false);
    query("select 1 from flowgres.apps where id = $1::uuid for update", {domain.app_id});
    return find_domain(actor, domain_id, domain.app_id, kManageDomains, use, true);
}

void require_status(const DomainRow &domain, std::string_view status, std::string_view what) {
    if (domain.status != status)
        throw Error(ErrorCode::STATE_CONFLICT, domain.domain + " is " + domain.status + ": " + std::string(what),
                    "{\"status\":" + json_quote(domain.status) + "}");
}

}  // namespace

std::string document_of(const std::string &domain_id) {
    return query_value("select flowgres.app_domain_document(d) from flowgres.app_domains d where id = $1::uuid", {domain_id})
        .value();
}

void announce(const std::string &domain) { query("select pg_notify('flowgres_domains', $1)", {domain}); }

void audit_domain(const Actor &actor, const DomainRow &domain, std::string_view action, const std::string &extra) {
    write_audit(actor, domain.workspace_id, action, "app_domain", domain.id,
                "{\"domain\":" + json_quote(domain.domain) + ",\"app_id\":" + json_quote(domain.app_id) + extra + "}");
}

void record_event(const DomainRow &domain, std::string_view event_type, std::string_view severity,
                  const std::string &extra) {
    query(R"sql(
        insert into flowgres.runtime_events (workspace_id, app_id, event_type, severity, details)
        values ($1::uuid, $2::uuid, $3, $4, $5::jsonb))sql",
          {domain.workspace_id, domain.app_id, std::string(event_type), std::string(severity),
           "{\"domain_id\":" + json_quote(domain.id) + ",\"domain\":" + json_quote(domain.domain) + extra + "}"});
}

namespace {

std::string required_reason(CallArgs &args, int position) {
    std::string reason = args.required_text(position, "reason");
    if (reason.empty() || reason.size() > kMaxReasonBytes)
        throw field_error("reason", "must be 1 to " + std::to_string(kMaxReasonBytes) + " characters");
    return reason;
}

}  // namespace

long long lease_seconds(CallArgs &args, int position, long long fallback) {
    long long lease = args.integer(position).value_or(fallback);
    if (lease < 1 || lease > 3600) throw field_error("lease_seconds", "must be 1 to 3600");
    return lease;
}

std::string required_claimant(CallArgs &args, int position) {
    std::string claimant = args.required_text(position, "claimant");
    if (claimant.empty() || claimant.size() > 200) throw field_error("claimant", "must be 1 to 200 characters");
    return claimant;
}

SqlValue app_domain_bind(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    std::string input = args.required_text(1, "domain");
    Actor actor = require_actor();
    AppAccess app = require_app_permission(actor, app_id, kManageDomains, WorkspaceUse::write);
    DomainNameCheck check = check_domain_name(input);
    if (!check.name) throw field_error("domain", check.problem);
    const DomainName &name = *check.name;
    for (const std::string &host : host_list(query_value("select current_setting('flowgres.platform_hosts')").value_or("")))
        if (domain_within(name.ascii, host))
            throw Error(ErrorCode::DOMAIN_PLATFORM_HOST, name.ascii + " is the platform's host " + host + " or a name below it");
    // The app's row lock makes the count and the insert one step for parallel binds.
    query("select 1 from flowgres.apps where id = $1::uuid for update", {app_id});
    long long bound = std::stoll(query_value("select count(*) from flowgres.app_domains where app_id = $1::uuid", {app_id}).value());
    if (bound >= kMaxDomainsPerApp)
        throw Error(ErrorCode::DOMAIN_QUOTA_EXCEEDED,
                    "app " + app_id + " has " + std::to_string(bound) + " domains; at most " +
                        std::to_string(kMaxDomainsPerApp) + " may be bound at once");
    std::optional<std::string> id = query_value(R"sql(
        insert into flowgres.app_domains (workspace_id, app_id, domain, display_domain, verification_token, created_by)
        values ($1::uuid, $2::uuid, $3, $4, $5, $6::uuid)
        on conflict (domain) do nothing
        returning id)sql",
                                                {app.workspace.workspace_id, app_id, name.ascii, name.unicode,
                                                 random_token(24), actor.user_param()});
    if (!id) throw Error(ErrorCode::DOMAIN_TAKEN, name.ascii + " is bound to an app already");
    DomainRow domain{*id, app.workspace.workspace_id, app_id, name.ascii, "pending", {}, false, {}, {}};
    audit_domain(actor, domain, "domain.bind");
    return SqlValue::jsonb(document_of(*id));
}

SqlValue app_domain_list(CallArgs &args) {
    std::string app_id = args.required_uuid(0, "app_id");
    Json filters = filters_argument(args, 1);
    ValidationProblems problems;
    check_known_filters(problems, filters.get(), {"status", "page", "page_size"});
    std::optional<std::string> status = string_filter(problems, filters.get(), "status", 20);
    PageFilter page = pages_filter(problems, filters.get(), kDefaultPageSize, kMaxPageSize);
    problems.throw_if_any();
    require_app_permission(require_actor(), app_id, "", WorkspaceUse::read);
    return SqlValue::jsonb(query_value(R"sql(
        select jsonb_build_object(
            'items', (select coalesce(jsonb_agg(flowgres.app_domain_document(d) order by d.created_at, d.id), '[]')
                      from (select * from flowgres.app_domains
                            where app_id = $1::uuid and ($2::text is null or status = $2)
                            order by created_at, id limit $3::bigint offset $4::bigint) d),
            'meta', jsonb_build_object('page', $5::bigint, 'page_size', $3::bigint,
                                       'total', (select count(*) from flowgres.app_domains
                                                 where app_id = $1::uuid and ($2::text is null or status = $2)))))sql",
                                       {app_id, status, std::to_string(page.size), std::to_string(page.offset()),
                                        std::to_string(page.page)})
                               .value());
}

SqlValue app_domain_get(CallArgs &args) {
    std::string domain_id = args.required_uuid(0, "domain_id");
    DomainRow domain = find_domain(require_actor(), domain_id, args.uuid(1), "", WorkspaceUse::read, false);
    return SqlValue::jsonb(document_of(domain.id));
}

SqlValue app_domain_delete(CallArgs &args) {
    std::string domain_id = args.required_uuid(0, "domain_id");
    Actor actor = require_actor();
    DomainRow domain = find_domain(actor, domain_id, args.uuid(1), kManageDomains, WorkspaceUse::write, true);
    if (domain.status == "blocked" && !actor.is_system())
        throw Error(ErrorCode::STATE_CONFLICT, domain.domain + " is blocked: only the operator may unbind it");
    std::string document = document_of(domain.id);
    query("delete from flowgres.app_domains where id = $1::uuid", {domain.id});
    audit_domain(actor, domain, "domain.delete", ",\"status\":" + json_quote(domain.status));
    announce(domain.domain);
    return SqlValue::jsonb(document);
}

SqlValue app_domain_verify_begin(CallArgs &args) {
    std::string domain_id = args.required_uuid(0, "domain_id");
    std::string claimant = required_claimant(args, 1);
    long long lease = lease_seconds(args, 3, 60);
    Actor actor = require_actor();
    DomainRow domain = find_domain(actor, domain_id, args.uuid(2), kManageDomains, WorkspaceUse::write, true);
    bool claimable = domain.status == "pending" || domain.status == "failed" ||
                     (domain.status == "verifying" && !domain.claim_live);
    if (!claimable) {
        std::string why = domain.status == "verifying" ? " is being checked by " + domain.claimed_by.value_or("another daemon")
                                                       : " is " + domain.status + ", not pending or failed";
        throw Error(ErrorCode::STATE_CONFLICT, domain.domain + why, "{\"status\":" + json_quote(domain.status) + "}");
    }
    query(R"sql(
        update flowgres.app_domains
        set status = 'verifying', verify_claimed_by = $2, verify_claimed_until = now() + make_interval(secs => $3::int),
            updated_at = now()
        where id = $1::uuid)sql",
          {domain.id, claimant, std::to_string(lease)});
    return SqlValue::jsonb(document_of(domain.id));
}

SqlValue app_domain_verify_finish(CallArgs &args) {
    std::string domain_id = args.required_uuid(0, "domain_id");
    std::string claimant = required_claimant(args, 1);
    Json result = parse_object_argument(args.required_jsonb(2, "result"), "result");
    const json_t *verified = json_object_get(result.get(), "verified");
    if (!json_is_boolean(verified)) throw field_error("result.verified", "must be true or false");
    std::string method, error;
    if (json_is_true(verified)) {
        const char *text = json_string_value(json_object_get(result.get(), "method"));
        method = text ? text : "";
        if (method != "txt" && method != "cname") throw field_error("result.method", "must be txt or cname");
    } else {
        const char *text = json_string_value(json_object_get(result.get(), "error"));
        error = text ? text : "";
        if (error.empty() || error.size() > kMaxCheckErrorBytes)
            throw field_error("result.error", "must be 1 to " + std::to_string(kMaxCheckErrorBytes) + " characters");
    }
    Actor actor = require_actor();
    DomainRow domain = find_domain(actor, domain_id, std::nullopt, kManageDomains, WorkspaceUse::read, true);
    if (domain.status != "verifying" || domain.claimed_by != claimant)
        throw Error(ErrorCode::STATE_CONFLICT, "the check of " + domain.domain + " is not claimed by " + claimant,
                    "{\"status\":" + json_quote(domain.status) + "}");
    if (!error.empty()) {
        // Backed off: 1 minute after the first failure, doubling, at most a day apart.
        query(R"sql(
            update flowgres.app_domains
            set status = 'failed', verify_attempts = verify_attempts + 1, last_error = $2,
                next_retry_at = now() + least(interval '1 minute' * power(2, least(verify_attempts, 20)), interval '24 hours'),
                verify_claimed_by = null, verify_claimed_until = null, updated_at = now()
            where id = $1::uuid)sql",
              {domain.id, error});
        audit_domain(actor, domain, "domain.verify", ",\"verified\":false,\"error\":" + json_quote(error));
        record_event(domain, "domain.verify.failed", "error", ",\"error\":" + json_quote(error));
    } else {
        query(R"sql(
            update flowgres.app_domains
            set status = 'verified', verified_by = $2, verified_at = now(), verify_attempts = verify_attempts + 1,
                last_error = null, next_retry_at = null, verify_claimed_by = null, verify_claimed_until = null,
                updated_at = now()
            where id = $1::uuid)sql",
              {domain.id, method});
        audit_domain(actor, domain, "domain.verify", ",\"verified\":true,\"method\":" + json_quote(method));
        record_event(domain, "domain.verified", "info", ",\"method\":" + json_quote(method));
    }
    announce(domain.domain);
    return SqlValue::jsonb(document_of(domain.id));
}

SqlValue app_domain_verify_due(CallArgs &args) {
    long long limit = args.integer(0).value_or(20);
    if (limit < 1 || limit > 1000) throw field_error("max_domains", "must be 1 to 1000");
    require_system_actor();
    return SqlValue::jsonb(query_value(R"sql(
        select coalesce(jsonb_agg(id order by due, id), '[]')
        from (select id, coalesce(next_retry_at, created_at) as due from flowgres.app_domains
              where ((status in ('pending', 'failed')
                      and verify_attempts < current_setting('flowgres.domain_verify_attempts')::int
                      and coalesce(next_retry_at, created_at) <= now())
                     or (status = 'verifying' and verify_claimed_until <= now()))
              order by due, id limit $1::int) due)sql",
                                       {std::to_string(limit)})
                               .value());
}

SqlValue app_domain_activate(CallArgs &args) {
    std::string domain_id = args.required_uuid(0, "domain_id");
    Actor actor = require_actor();
    DomainRow domain = lock_app_and_domain(actor, domain_id, args.uuid(1), WorkspaceUse::write);
    require_status(domain, "verified", "only a verified domain is activated");
    std::optional<std::string> replaced = query_value(R"sql(
        update flowgres.app_domains set status = 'verified', updated_at = now()
        where app_id = $1::uuid and status = 'active'
        returning domain || ' ' || id)sql",
                                                      {domain.app_id});
    std::optional<std::string> replaced_id;
    if (replaced) {
        size_t space = replaced->find(' ');
        replaced_id = replaced->substr(space + 1);
        announce(replaced->substr(0, space));
    }
    query(R"sql(
        update flowgres.app_domains
        set status = 'active', activated_at = now(), replaced_domain_id = $2::uuid, updated_at = now()
        where id = $1::uuid)sql",
          {domain.id, replaced_id});
    audit_domain(actor, domain, "domain.activate",
                 ",\"replaced_domain_id\":" + (replaced_id ? json_quote(*replaced_id) : std::string("null")));
    announce(domain.domain);
    return SqlValue::jsonb(document_of(domain.id));
}

SqlValue app_domain_rollback(CallArgs &args) {
    std::string domain_id = args.required_uuid(0, "domain_id");
    Actor actor = require_actor();
    DomainRow domain = lock_app_and_domain(actor, domain_id, args.uuid(1), WorkspaceUse::write);
    require_status(domain, "active", "only the active domain is rolled back");
    query("update flowgres.app_domains set status = 'verified', updated_at = now() where id = $1::uuid", {domain.id});
    std::optional<std::string> restored;
    if (domain.replaced_domain_id)
        restored = query_value(R"sql(
            update flowgres.app_domains set status = 'active', activated_at = now(), updated_at = now()
            where id = $1::uuid and app_id = $2::uuid and status = 'verified'
            returning domain)sql",
                               {*domain.replaced_domain_id, domain.app_id});
    audit_domain(actor, domain, "domain.rollback",
                 ",\"restored_domain_id\":" +
                     (restored ? json_quote(*domain.replaced_domain_id) : std::string("null")));
    announce(domain.domain);
    if (restored) announce(*restored);
    return SqlValue::jsonb(query_value(R"sql(
        select jsonb_build_object(
            'domain', (select flowgres.app_domain_document(d) from flowgres.app_domains d where id = $1::uuid),
            'restored', (select flowgres.app_domain_document(d) from flowgres.app_domains d
                         where id = $2::uuid and $3::boolean)))sql",
                                       {domain.id, domain.replaced_domain_id, restored ? "true" : "false"})
                               .value());
}

SqlValue app_domain_block(CallArgs &args) {
    std::string domain_id = args.required_uuid(0, "domain_id");
    std::string reason = required_reason(args, 1);
    Actor actor = require_system_actor();
    DomainRow domain = find_domain(actor, domain_id, args.uuid(2), kManageDomains, WorkspaceUse::read, true);
    if (domain.status == "blocked") throw Error(ErrorCode::STATE_CONFLICT, domain.domain + " is blocked already");
    // A check under way ends with the block: unblocked, the domain is checked again.
    std::string before = domain.status == "verifying" ? "pending" : domain.status;
    query(R"sql(
        update flowgres.app_domains
        set status = 'blocked', status_before_block = $2, blocked_at = now(), blocked_reason = $3,
            verify_claimed_by = null, verify_claimed_until = null, updated_at = now()
        where id = $1::uuid)sql",
          {domain.id, before, reason});
    audit_domain(actor, domain, "domain.block", ",\"reason\":" + json_quote(reason) + ",\"status\":" + json_quote(before));
    record_event(domain, "domain.blocked", "warn", ",\"reason\":" + json_quote(reason));
    announce(domain.domain);
    return SqlValue::jsonb(document_of(domain.id));
}

SqlValue app_domain_unblock(CallArgs &args) {
    std::string domain_id = args.required_uuid(0, "domain_id");
    std::string reason = required_reason(args, 1);
    Actor actor = require_system_actor();
    DomainRow domain = lock_app_and_domain(actor, domain_id, args.uuid(2), WorkspaceUse::read);
    require_status(domain, "blocked", "only a blocked domain is unblocked");
    std::string after = domain.status_before_block.value_or("pending");
    // The app may have activated another domain meanwhile: one active domain per app.
    if (after == "active" &&
        query_value("select 1 from flowgres.app_domains where app_id = $1::uuid and status = 'active'", {domain.app_id}))
        after = "verified";
    query(R"sql(
        update flowgres.app_domains
        set status = $2, status_before_block = null, blocked_at = null, blocked_reason = null, updated_at = now()
        where id = $1::uuid)sql",
          {domain.id, after});
    audit_domain(actor, domain, "domain.unblock", ",\"reason\":" + json_quote(reason) + ",\"status\":" + json_quote(after));
    announce(domain.domain);
    return SqlValue::jsonb(document_of(domain.id));
}

}  // namespace flowgres
