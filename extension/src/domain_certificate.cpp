// Certificates of custom domains (README "Custom domains"; seed §12.3, §27.3, §40.3, §116):
// a daemon claims a domain's order (cert_begin), publishes its HTTP-01 answers here for every
// daemon to serve (cert_challenge, acme_challenge_answer), and records the chain with the key
// it sealed, or the failure with a backed-off retry (cert_finish). The sweep asks cert_due for
// active domains without a certificate, certificates within 30 days of expiry, and failures
// whose retry time has come. The ACME account of each directory is kept for every daemon.
#include "app_domain.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "documents.hpp"
#include "functions.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

constexpr size_t kMaxChainBytes = 64 * 1024;
constexpr size_t kMaxSealedKeyBytes = 4096;
constexpr size_t kMaxOrderErrorBytes = 1000;

struct CertificateClaim {
    std::string ssl_status;
    std::optional<std::string> claimed_by;
    bool claim_live = false;
};

CertificateClaim certificate_claim(const std::string &domain_id) {
    SqlRow row = query("select ssl_status, ssl_claimed_by, coalesce(ssl_claimed_until > now(), false) "
                       "from flowgres.app_domains where id = $1::uuid",
                       {domain_id})
                     .rows.at(0);
    return {row.text(0), row[1], row.text(2) == "t"};
}

// The domain whose order `claimant` holds, under lock: else STATE_CONFLICT.
DomainRow claimed_domain(const Actor &actor, const std::string &domain_id, const std::string &claimant) {
    DomainRow domain = find_domain(actor, domain_id, std::nullopt, kManageDomains, WorkspaceUse::read, true);
    CertificateClaim claim = certificate_claim(domain.id);
    if (claim.ssl_status != "issuing" || claim.claimed_by != claimant)
        throw Error(ErrorCode::STATE_CONFLICT, "the certificate order of " + domain.domain + " is not claimed by " + claimant,
                    "{\"ssl_status\":" + json_quote(claim.ssl_status) + "}");
    return domain;
}

}  // namespace

SqlValue app_domain_cert_begin(CallArgs &args) {
    std::string domain_id = args.required_uuid(0, "domain_id");
    std::string claimant = required_claimant(args, 1);
    bool renew = args.boolean(2).value_or(false);
    long long lease = lease_seconds(args, 4, 300);
    Actor actor = require_actor();
    DomainRow domain = find_domain(actor, domain_id, args.uuid(3), kManageDomains, WorkspaceUse::write, true);
    if (domain.status != "verified" && domain.status != "active")
        throw Error(ErrorCode::STATE_CONFLICT, domain.domain + " is " + domain.status + ": only a verified or active domain gets a certificate",
                    "{\"status\":" + json_quote(domain.status) + "}");
    CertificateClaim claim = certificate_claim(domain.id);
    if (claim.ssl_status == "issuing" && claim.claim_live)
        throw Error(ErrorCode::STATE_CONFLICT, "the certificate of " + domain.domain + " is being ordered by " + claim.claimed_by.value_or("another daemon"),
                    "{\"ssl_status\":\"issuing\"}");
    if (claim.ssl_status == "issued" && !renew)
        throw Error(ErrorCode::STATE_CONFLICT, domain.domain + " has its certificate: renew it", "{\"ssl_status\":\"issued\"}");
    std::optional<std::string> expires = query_value(
        "select ssl_expires_at from flowgres.app_domains where id = $1::uuid and ssl_expires_at < now() + interval '30 days'",
        {domain.id});
    if (claim.ssl_status == "issued" && expires)
        record_event(domain, "cert.expiring", "warn", ",\"expires_at\":" + json_quote(*expires));
    query(R"sql(
        update flowgres.app_domains
        set ssl_status = 'issuing', ssl_claimed_by = $2, ssl_claimed_until = now() + make_interval(secs => $3::int),
            updated_at = now()
        where id = $1::uuid)sql",
          {domain.id, claimant, std::to_string(lease)});
    return SqlValue::jsonb(document_of(domain.id));
}

SqlValue app_domain_cert_challenge(CallArgs &args) {
    std::string domain_id = args.required_uuid(0, "domain_id");
    std::string claimant = required_claimant(args, 1);
    std::string token = args.required_text(2, "token");
    std::string key_authorization = args.required_text(3, "key_authorization");
    if (token.empty() || token.size() > 255 || token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != std::string::npos)
        throw field_error("token", "must be 1 to 255 base64url characters");
    if (key_authorization.size() > 512 || !key_authorization.starts_with(token + "."))
        throw field_error("key_authorization", "must be the token, a dot and the account key's thumbprint");
    DomainRow domain = claimed_domain(require_actor(), domain_id, claimant);
    query(R"sql(
        insert into flowgres.acme_challenges (token, key_authorization, domain_id, expires_at)
        values ($1, $2, $3::uuid, now() + interval '1 hour')
        on conflict (token) do update set key_authorization = excluded.key_authorization, domain_id = excluded.domain_id,
                                          expires_at = excluded.expires_at)sql",
          {token, key_authorization, domain.id});
    return SqlValue::jsonb("{\"token\":" + json_quote(token) + "}");
}

SqlValue acme_challenge_answer(CallArgs &args) {
    std::optional<std::string> token = args.text(0);
    if (!token || token->empty() || token->size() > 255) return SqlValue::null();
    std::optional<std::string> answer =
        query_value("select key_authorization from flowgres.acme_challenges where token = $1 and expires_at > now()", {*token});
    return answer ? SqlValue::text_value(*answer) : SqlValue::null();
}

SqlValue app_domain_cert_finish(CallArgs &args) {
    std::string domain_id = args.required_uuid(0, "domain_id");
    std::string claimant = required_claimant(args, 1);
    Json result = parse_object_argument(args.required_jsonb(2, "result"), "result");
    const json_t *issued = json_object_get(result.get(), "issued");
    if (!json_is_boolean(issued)) throw field_error("result.issued", "must be true or false");
    auto text_member = [&](const char *name, size_t max) {
        const char *text = json_string_value(json_object_get(result.get(), name));
        std::string value = text ? text : "";
        if (value.empty() || value.size() > max)
            throw field_error(std::string("result.") + name, "must be 1 to " + std::to_string(max) + " characters");
        return value;
    };
    Actor actor = require_actor();
    if (json_is_true(issued)) {
        std::string chain = text_member("chain", kMaxChainBytes);
        std::string key_sealed = text_member("key_sealed", kMaxSealedKeyBytes);
        const json_t *expires_at = json_object_get(result.get(), "expires_at");
        if (!json_is_integer(expires_at) || json_integer_value(expires_at) <= 0)
            throw field_error("result.expires_at", "must be the certificate's notAfter in seconds since the epoch");
        if (!chain.starts_with("-----BEGIN CERTIFICATE-----")) throw field_error("result.chain", "must be a PEM chain");
        DomainRow domain = claimed_domain(actor, domain_id, claimant);
        std::string expires = query_value(R"sql(
            update flowgres.app_domains
            set ssl_status = 'issued', certificate_chain = $2, certificate_key_sealed = $3, ssl_issued_at = now(),
                ssl_expires_at = to_timestamp($4::bigint), ssl_attempts = 0, ssl_last_error = null, ssl_next_retry_at = null,
                ssl_claimed_by = null, ssl_claimed_until = null, updated_at = now()
            where id = $1::uuid
            returning ssl_expires_at::text)sql",
                                              {domain.id, chain, key_sealed, std::to_string(json_integer_value(expires_at))})
                                  .value();
        query("delete from flowgres.acme_challenges where domain_id = $1::uuid", {domain.id});
        audit_domain(actor, domain, "domain.cert_issue", ",\"issued\":true,\"expires_at\":" + json_quote(expires));
        record_event(domain, "cert.issued", "info", ",\"expires_at\":" + json_quote(expires));
        announce(domain.domain);
        return SqlValue::jsonb(document_of(domain.id));
    }
    std::string error = text_member("error", kMaxOrderErrorBytes);
    DomainRow domain = claimed_domain(actor, domain_id, claimant);
    // Backed off: 5 minutes after the first failure, doubling, at most a day apart (a CA's rate
    // limits are counted in hours). A certificate issued before is kept and served until it expires.
    query(R"sql(
        update flowgres.app_domains
        set ssl_status = 'failed', ssl_attempts = ssl_attempts + 1, ssl_last_error = $2,
            ssl_next_retry_at = now() + least(interval '5 minutes' * power(2, least(ssl_attempts, 20)), interval '24 hours'),
            ssl_claimed_by = null, ssl_claimed_until = null, updated_at = now()
        where id = $1::uuid)sql",
          {domain.id, error});
    query("delete from flowgres.acme_challenges where domain_id = $1::uuid", {domain.id});
    audit_domain(actor, domain, "domain.cert_issue", ",\"issued\":false,\"error\":" + json_quote(error));
    record_event(domain, "cert.issue.failed", "error", ",\"error\":" + json_quote(error));
    return SqlValue::jsonb(document_of(domain.id));
}

SqlValue app_domain_cert_due(CallArgs &args) {
    long long limit = args.integer(0).value_or(20);
    if (limit < 1 || limit > 1000) throw field_error("max_domains", "must be 1 to 1000");
    require_system_actor();
    return SqlValue::jsonb(query_value(R"sql(
        select coalesce(jsonb_agg(jsonb_build_object('id', id, 'renew', ssl_status in ('issued', 'issuing') or certificate_chain is not null)
                                  order by due, id), '[]')
        from (select id, ssl_status, certificate_chain,
                     coalesce(ssl_next_retry_at, ssl_expires_at - interval '30 days', ssl_claimed_until, updated_at) as due
              from flowgres.app_domains
              where status in ('verified', 'active')
                and ((status = 'active' and ssl_status = 'none')
                     or (ssl_status = 'issued' and ssl_expires_at < now() + interval '30 days')
                     or (ssl_status = 'failed' and ssl_next_retry_at <= now())
                     or (ssl_status = 'issuing' and ssl_claimed_until <= now()))
              order by due, id limit $1::int) due)sql",
                                       {std::to_string(limit)})
                               .value());
}

SqlValue acme_account_get(CallArgs &args) {
    std::string directory_url = args.required_text(0, "directory_url");
    require_system_actor();
    std::optional<std::string> account = query_value(
        "select jsonb_build_object('directory_url', directory_url, 'email', email, 'key_sealed', key_sealed, "
        "'account_url', account_url, 'created_at', created_at) from flowgres.acme_accounts where directory_url = $1",
        {directory_url});
    return account ? SqlValue::jsonb(*account) : SqlValue::null();
}

SqlValue acme_account_save(CallArgs &args) {
    std::string directory_url = args.required_text(0, "directory_url");
    std::optional<std::string> email = args.text(1);
    std::string key_sealed = args.required_text(2, "key_sealed");
    std::string account_url = args.required_text(3, "account_url");
    if (directory_url.empty() || directory_url.size() > 2000) throw field_error("directory_url", "must be 1 to 2000 characters");
    if (key_sealed.empty() || key_sealed.size() > kMaxSealedKeyBytes) throw field_error("key_sealed", "must be a sealed key");
    if (account_url.empty() || account_url.size() > 2000) throw field_error("account_url", "must be 1 to 2000 characters");
    require_system_actor();
    query(R"sql(
        insert into flowgres.acme_accounts (directory_url, email, key_sealed, account_url) values ($1, $2, $3, $4)
        on conflict (directory_url) do nothing)sql",
          {directory_url, email, key_sealed, account_url});
    return SqlValue::jsonb(query_value(
                               "select jsonb_build_object('directory_url', directory_url, 'email', email, 'key_sealed', "
                               "key_sealed, 'account_url', account_url, 'created_at', created_at) "
                               "from flowgres.acme_accounts where directory_url = $1",
                               {directory_url})
                               .value());
}

SqlValue app_domain_tls(CallArgs &args) {
    std::string domain = args.required_text(0, "domain");
    require_system_actor();
    if (domain.empty() || domain.size() > 253) return SqlValue::null();
    std::optional<std::string> found = query_value(R"sql(
        select jsonb_build_object('id', id, 'status', status, 'chain', certificate_chain, 'key_sealed', certificate_key_sealed,
                                  'expires_at', ssl_expires_at)
        from flowgres.app_domains where domain = $1)sql",
                                                   {domain});
    return found ? SqlValue::jsonb(*found) : SqlValue::null();
}

// The names app_domain_tls answers with a certificate the listener can present: what a daemon
// keeps in memory to refuse every other name without asking.
SqlValue app_domain_tls_names(CallArgs &) {
    require_system_actor();
    return SqlValue::jsonb(query_value(R"sql(
        select coalesce(jsonb_agg(domain order by domain), '[]')
        from flowgres.app_domains
        where status = 'active' and certificate_chain is not null and certificate_key_sealed is not null)sql",
                                       {})
                               .value());
}

}  // namespace flowgres
