// Runtime admission (README "Runtime admission"): one call decides a visitor's request, in
// this order, each refusal with its code:
//   resolve the workspace and app (old slugs → redirect) · workspace status · app status ·
//   access mode and data classification · IP block lists · allowed origins · the session
//   (read; blocked) · rate limits (shared memory) · the session written (created, renewed) ·
//   anomaly signals (anomaly.hpp) · CAPTCHA · input validation ·
//   quota and budget (quota.cpp: the request is billed from here on, also if the run fails) ·
//   the running execution with its usage row.
// A refusal is an answer, not an error: nothing raises, so the refusal's runtime event
// commits with it, and many admissions can share one transaction. Nothing is written before
// the rate limits pass, and refusal events are budgeted (kRefusalEventsPerMinute). Malformed
// requests from the daemon itself do raise (VALIDATION_FAILED).
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "actor.hpp"
#include "anomaly.hpp"
#include "catalog_cache.hpp"
#include "boundary.hpp"
#include "flowgres/cidr.hpp"
#include "flowgres/crypto.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/origins.hpp"
#include "flowgres/ui_schema.hpp"
#include "flowgres/workflow.hpp"
#include "functions.hpp"
#include "quota.hpp"
#include "rate_limiter.hpp"
#include "refusal_counter.hpp"
#include "run_preparation.hpp"
#include "spi.hpp"

namespace flowgres {

namespace {

constexpr const char *kSessionTtl = "24 hours";
constexpr int kSessionBlockAfterHits = 20;  // refused requests before a session is blocked
// Refusals cost an attacker nothing: at most this many are written as event rows per app and
// kind of refusal a minute; the rest are counted in shared memory (refusal_counter.hpp).
constexpr int64_t kRefusalEventsPerMinute = 10;

struct Request {
    std::string action;  // entry, schema, execute
    std::string workspace_slug;
    std::optional<std::string> app_slug;
    std::optional<std::string> domain;  // a custom domain's name (the request's Host) instead of the slugs
    std::string ip;
    std::string ip_hash;    // stored: HMAC-SHA-256 under the installation's key
    std::string ip_sha256;  // matched against the block and gray lists' digests
    std::optional<std::string> user_agent_hash;
    std::optional<std::string> origin;
    std::optional<std::string> session_id;
    std::optional<std::string> user;     // the identity the daemon verified (JWT sub)
    std::optional<std::string> user_workspace;  // the workspace the token is for (its workspace claim)
    std::optional<std::string> captcha;  // passed, failed, pending (a token not checked yet)
    bool rate_counted = false;           // a second round (after a CAPTCHA check): limits were counted
    bool defer = false;                  // execute: the caller waits for the run, which nobody streams
    // What the daemon already holds from an earlier answer: the workflow of this version and
    // the run preparation of this key are then not sent again.
    std::optional<std::string> have_version, have_preparation;
    Json inputs;
    std::optional<std::string> claimed_by;
    std::optional<std::string> execution_id;  // action execution: the visitor's own run
};

std::optional<std::string> optional_text(const json_t *request, const char *name, size_t max_length) {
    const json_t *value = json_object_get(request, name);
    if (!value || json_is_null(value)) return std::nullopt;
    if (!json_is_string(value) || json_string_length(value) > max_length)
        throw field_error(name, "must be text of at most " + std::to_string(max_length) + " characters");
    return std::string(json_string_value(value), json_string_length(value));
}

// The installation's key for visitors' address hashes (installation_secrets), read once per
// backend: it never changes once made.
const std::string &ip_hash_key() {
    static const std::string key = [] {
        auto hex = query_value("select encode(value, 'hex') from flowgres.installation_secrets where name = 'ip_hash_key'");
        auto bytes = hex ? hex_decode(*hex) : std::nullopt;
        if (!bytes) throw Error(ErrorCode::INTERNAL_ERROR, "the installation has no ip_hash_key");
        return *bytes;
    }();
    return key;
}

// Digests of what a client sends with every request (its address, its user agent, the inputs
// of its derived session), kept per backend so that the same client's next request hashes
// nothing: keyed by the input, so a value that changes is a new entry. Bounded: emptied when
// full, as the catalogue's caches are.
class DigestMemo {
public:
    template <typename Compute>
    std::string get(const std::string &input, Compute compute) {
        if (auto found = digests_.find(input); found != digests_.end()) return found->second;
        std::string digest = compute(input);
        if (digests_.size() >= kCapacity) digests_.clear();
        digests_.emplace(input, digest);
        return digest;
    }

private:
    static constexpr size_t kCapacity = 1024;  // user agents are up to 1 kB each
    std::unordered_map<std::string, std::string> digests_;
};

std::string address_sha256(const std::string &ip) {
    static DigestMemo memo;
    return memo.get(ip, [](const std::string &value) { return sha256_hex(value); });
}
std::string address_hash(const std::string &ip) {
    static DigestMemo memo;
    return memo.get(ip, [](const std::string &value) { return hmac_sha256_hex(ip_hash_key(), value); });
}
std::string user_agent_sha256(const std::string &agent) {
    static DigestMemo memo;
    return memo.get(agent, [](const std::string &value) { return sha256_hex(value); });
}

Request parse_request(const json_t *document_root) {
    // Read-only: the members taken keep their own references (inputs).
    auto *root = const_cast<json_t *>(document_root);
    if (!json_is_object(root)) throw field_error("request", "must be a JSON object");
    Json document(json_incref(root));
    Request request;
    request.action = optional_text(document.get(), "action", 16).value_or("");
    if (request.action != "entry" && request.action != "schema" && request.action != "execute" &&
        request.action != "execution" && request.action != "preflight")
        throw field_error("action", "must be entry, schema, execute, execution or preflight");
    request.workspace_slug = optional_text(document.get(), "workspace", 63).value_or("");
    request.app_slug = optional_text(document.get(), "app", 63);
    request.domain = optional_text(document.get(), "domain", 253);
    request.ip = optional_text(document.get(), "ip", 64).value_or("");
    if (request.ip.empty()) throw field_error("ip", "is required");
    request.ip_sha256 = address_sha256(request.ip);
    request.ip_hash = address_hash(request.ip);
    if (auto agent = optional_text(document.get(), "user_agent", 1024)) request.user_agent_hash = user_agent_sha256(*agent);
    request.origin = optional_text(document.get(), "origin", 512);
    request.session_id = optional_text(document.get(), "session_id", 64);
    if (request.session_id && !is_uuid(*request.session_id)) request.session_id.reset();  // unknown: a new one
    request.user = optional_text(document.get(), "user", 256);
    request.user_workspace = optional_text(document.get(), "user_workspace", 64);
    request.captcha = optional_text(document.get(), "captcha", 16);
    request.rate_counted = json_is_true(json_object_get(document.get(), "rate_counted"));
    request.defer = json_is_true(json_object_get(document.get(), "defer"));
    request.have_version = optional_text(document.get(), "have_version", 36);
    request.have_preparation = optional_text(document.get(), "have_preparation", 64);
    request.claimed_by = optional_text(document.get(), "claimed_by", 200);
    request.execution_id = optional_text(document.get(), "execution_id", 36);
    if (request.action == "execution" && (!request.execution_id || !is_uuid(*request.execution_id)))
        throw field_error("execution_id", "must be an execution id");
    const json_t *inputs = json_object_get(document.get(), "inputs");
    if (inputs && !json_is_null(inputs) && !json_is_object(inputs)) throw field_error("inputs", "must be a JSON object");
    request.inputs.reset(inputs && json_is_object(inputs) ? json_incref(const_cast<json_t *>(inputs))
                                                          : new_json_object());
    return request;
}

Request parse_request(const std::string &text) { return parse_request(parse_json(text, "request").get()); }

// The documents of an app's access policy (its lists, rate limits, gray-list policy), read
// from their text once per backend rather than on every request: keyed by the text, so a
// policy that changes is a new entry. Each caller gets its own reference, so emptying the
// memo when full (as the catalogue's caches are) frees nothing a caller still reads.
Json policy_document(const std::string &text, const char *what) {
    static std::unordered_map<std::string, Json> parsed;
    if (auto found = parsed.find(text); found != parsed.end()) return Json(json_incref(found->second.get()));
    Json document = parse_json(text, what);
    if (parsed.size() >= 256) parsed.clear();
    parsed.emplace(text, Json(json_incref(document.get())));
    return document;
}

bool json_array_has(const std::string &array_json, const std::string &value) {
    if (array_json == "[]") return false;
    Json array = policy_document(array_json, "list");
    size_t index;
    json_t *item;
    json_array_foreach(array.get(), index, item) if (json_is_string(item) && value == json_string_value(item)) return true;
    return false;
}

// Whether the address falls in any entry of a block or gray list: addresses and CIDR blocks,
// IPv4 and IPv6 (access_policy.cpp checked the entries when the policy was written).
bool address_listed(const std::string &array_json, const std::string &address) {
    if (array_json == "[]") return false;
    Json array = policy_document(array_json, "list");
    if (json_array_size(array.get()) == 0) return false;
    std::vector<std::string> entries;
    size_t index;
    json_t *item;
    json_array_foreach(array.get(), index, item) if (json_is_string(item)) entries.emplace_back(json_string_value(item));
    return CidrList::of_entries(entries).contains(address);
}

// What admission reads of the catalogue, cached per backend (catalog_cache.hpp): a request for
// a known app reads no table before its session.
std::optional<SqlRow> workspace_by_slug(const std::string &slug) {
    static CatalogCache<SqlRow> cache(4096);
    return cache.get(slug, [&]() -> std::optional<SqlRow> {
        auto found = query(
            "select id, slug, status, coalesce(default_app_id::text, '') from flowgres.workspaces where slug = $1",
            {slug});
        if (found.rows.empty()) return std::nullopt;
        return found.rows[0];
    });
}

std::optional<std::string> app_id_by_slug(const std::string &workspace_id, const std::string &slug) {
    static CatalogCache<std::string> cache(4096);
    return cache.get(workspace_id + "/" + slug, [&] {
        return query_value("select id from flowgres.apps where workspace_id = $1::uuid and slug = $2", {workspace_id, slug});
    });
}

// A custom domain's app: its workspace's and app's slugs and the domain's status, for active
// and blocked domains (others route nowhere).
std::optional<SqlRow> app_by_domain(const std::string &domain) {
    static CatalogCache<SqlRow> cache(4096);
    return cache.get(domain, [&]() -> std::optional<SqlRow> {
        auto found = query(R"sql(
            select w.slug, a.slug, d.status
            from flowgres.app_domains d join flowgres.apps a on a.id = d.app_id join flowgres.workspaces w on w.id = a.workspace_id
            where d.domain = $1 and d.status in ('active', 'blocked'))sql",
                           {domain});
        if (found.rows.empty()) return std::nullopt;
        return found.rows[0];
    });
}

// The app with its access policy; the answer's app document names the workspace by `workspace_slug`.
std::optional<SqlRow> app_with_policy(const std::string &app_id, const std::string &workspace_slug) {
    static CatalogCache<SqlRow> cache(4096);
    return cache.get(app_id + "/" + workspace_slug, [&]() -> std::optional<SqlRow> {
        auto app = query(R"sql(
            select a.id, a.slug, a.status, coalesce(a.current_version_id::text, ''),
                   jsonb_build_object('id', a.id, 'slug', a.slug, 'name', a.name, 'description', a.description,
                                      'workspace', $2::text, 'access_mode', p.access_mode, 'page', a.public_page)::text,
                   p.access_mode, p.data_classification, p.rate_limit::text, p.allowed_origins::text, p.require_captcha,
                   p.blocked_ips::text, p.blocked_ip_hashes::text, p.gray_ips::text, p.gray_ip_hashes::text,
                   coalesce(p.gray_policy::text, '')
            from flowgres.apps a join flowgres.app_access_policies p on p.app_id = a.id
            where a.id = $1::uuid)sql",
                         {app_id, workspace_slug});
        if (app.rows.empty()) return std::nullopt;
        return app.rows[0];
    });
}

// The session a client that sends none is given: a UUID keyed by what identifies it that day.
std::string derived_session_id(const std::string &identity) {
    static DigestMemo memo;
    return memo.get(identity, [](const std::string &value) { return keyed_uuid(ip_hash_key(), value); });
}

// A visitor's session as admission reads it. Cached per backend under the sessions' own
// generation counter (catalog_cache.hpp), which moves when a session is blocked or unblocked,
// moved to another app, given an earlier expiry, or deleted: those count from the next
// request at every daemon. What moves no counter is renewal (last_seen_at, a later
// expires_at), so an entry is trusted only while renewal is not due (last seen under a minute
// ago) and its expiry is ahead: past either, the row is read again (and renewed). An entry is
// thus never more than a minute older than its row for anything a trigger does not see.
// Rows this transaction wrote are read, not kept: they are not committed.
struct CachedSession {
    std::string app_id;
    bool blocked = false;
    std::string blocked_reason;
    bool live = false;          // its expiry is ahead
    bool renewal_due = false;   // last renewed over a minute ago
    std::string json;           // {"id", "type", "expires_at"} as the answer carries it (renewed when due)
    int64_t expires_at_micros = 0, renewal_due_at_micros = 0;  // epoch microseconds
    bool uncommitted = false;   // written by this transaction
};

CatalogCache<CachedSession> &session_cache() {
    static CatalogCache<CachedSession> cache(8192, CachedTables::sessions);
    return cache;
}

std::optional<CachedSession> session_by_id(const std::string &session_id) {
    return session_cache().get(
        session_id,
        [&]() -> std::optional<CachedSession> {
            auto found = query(R"sql(
                select app_id, blocked_at is not null, coalesce(blocked_reason, ''), expires_at > now(),
                       last_seen_at < now() - interval '1 minute',
                       jsonb_build_object('id', id, 'type', session_type, 'expires_at',
                           case when last_seen_at < now() - interval '1 minute' then now() + $2::interval
                                else expires_at end)::text,
                       (extract(epoch from expires_at) * 1000000)::bigint,
                       (extract(epoch from last_seen_at + interval '1 minute') * 1000000)::bigint, xmin::text
                from flowgres.app_sessions where id = $1::uuid)sql",
                               {session_id, kSessionTtl});
            if (found.rows.empty()) return std::nullopt;
            const SqlRow &row = found.rows[0];
            return CachedSession{row.text(0), row.text(1) == "t", row.text(2), row.text(3) == "t", row.text(4) == "t",
                                 row.text(5), std::stoll(row.text(6)), std::stoll(row.text(7)),
                                 written_by_this_transaction(row.text(8))};
        },
        [](const CachedSession &session) {
            int64_t now = transaction_start_micros();
            return now < session.expires_at_micros && now < session.renewal_due_at_micros;
        },
        [](const CachedSession &session) { return !session.uncommitted && session.live && !session.renewal_due; });
}

// What an execute needs of its version: the UI schema's input rules, parsed, and the
// workflow (JSON text) the daemon runs. Versions never change.
struct VersionForRuns {
    std::shared_ptr<const ui::UiSchema> ui;
    std::string workflow;
    std::string secret_names, model_names;  // what its steps reference (JSON arrays; "" for none)
};

std::string names_array(const std::set<std::string> &names) {
    if (names.empty()) return "";
    std::string out = "[";
    for (const auto &name : names) out += (out.size() > 1 ? "," : "") + json_quote(name);
    return out + "]";
}
VersionForRuns version_for_runs(const std::string &version_id) {
    static CatalogCache<VersionForRuns> cache(1024);
    return *cache.get(version_id, [&]() -> std::optional<VersionForRuns> {
        auto found = query("select coalesce(ui_schema, '{}')::text, workflow::text from flowgres.app_versions "
                           "where id = $1::uuid",
                           {version_id});
        if (found.rows.empty()) throw Error(ErrorCode::INTERNAL_ERROR, "the app's current version is missing");
        Json ui_document = parse_json(found.rows[0].text(0), "ui_schema");
        ui::Problems parse_problems;  // checked when the version was made
        auto ui = std::make_shared<const ui::UiSchema>(ui::parse_ui_schema(ui_document.get(), parse_problems));
        Json workflow_document = parse_json(found.rows[0].text(1), "workflow");
        workflow::Problems workflow_problems;  // checked when the version was made
        workflow::Workflow workflow = workflow::parse_workflow(workflow_document.get(), workflow_problems);
        return VersionForRuns{std::move(ui), found.rows[0].text(1), names_array(workflow::referenced_secrets(workflow)),
                              names_array(workflow::referenced_models(workflow))};
    });
}

// What a visitor's run is handed before it starts (run_preparation.hpp): its secrets, the
// routes to its models and the safety rules, cached per version. The tables they come from move
// the catalogue's generation; time makes them stale too, when a secret of the workspace expires
// (a secret's or a provider key's status is "expired" from then on).
struct RunPreparation {
    std::string document;
    std::string key;       // SHA-256 of the document: the daemon keeps what it opened of it by this
    int64_t stale_at = 0;  // epoch seconds; 0: no expiry ahead
};

RunPreparation run_preparation(const std::string &workspace_id, const std::string &version_id,
                               const VersionForRuns &version) {
    static CatalogCache<RunPreparation> cache(1024);
    auto load = [&]() -> std::optional<RunPreparation> {
        RunPreparation prepared;
        prepared.stale_at = secrets_stale_at(workspace_id);
        prepared.document =
            "{\"secrets\":" +
            (version.secret_names.empty() ? std::string("{}") : run_secrets_document(workspace_id, version.secret_names)) +
            ",\"routes\":" +
            (version.model_names.empty() ? std::string("{}") : run_routes_document(workspace_id, version.model_names)) +
            ",\"safety_rules\":" +
            (version.model_names.empty() ? std::string("[]") : run_safety_rules_document(workspace_id)) + "}";
        prepared.key = sha256_hex(prepared.document);
        return prepared;
    };
    auto fresh = [](const RunPreparation &prepared) {
        return prepared.stale_at == 0 || epoch_seconds_now() < prepared.stale_at;
    };
    return *cache.get(workspace_id + "/" + version_id, load, fresh);
}


// One admission: what was found so far, and the answer being built.
class Admission {
public:
    explicit Admission(Request request) : request_(std::move(request)) {}

    std::string run();

private:
    std::string deny(ErrorCode code, const std::string &message, const std::string &details = "null",
                     const char *event = nullptr);
    std::string answer(const std::string &decision, int status, const std::string &extra);
    void event(const std::string &type, const std::string &severity, const std::string &details);
    std::optional<std::string> resolve_session(bool app_deprecated, std::string &refusal);
    void record_session();
    std::optional<std::string> apply_rate_limits(const std::string &policy_json, bool gray);
    std::string schema_of_version();
    std::string deferred_execution(const std::string &execution_id);

    Request request_;
    std::string workspace_id_, workspace_slug_, app_id_, app_slug_, app_json_ = "null", version_id_;
    std::string session_json_ = "null", session_id_, rate_json_ = "null";
    bool session_is_new_ = false;  // session_id_ is chosen but its row not yet written
    bool session_renewal_due_ = false;  // an existing session last renewed over a minute ago
    bool origin_allowed_ = false;  // the request's origin passed the app's list (CORS may answer)
};

void Admission::event(const std::string &type, const std::string &severity, const std::string &details) {
    if (workspace_id_.empty()) return;  // nothing resolved: nobody's event
    query(R"sql(
        insert into flowgres.runtime_events (workspace_id, app_id, session_id, event_type, severity, ip_hash, details)
        values ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7::jsonb))sql",
          {workspace_id_, app_id_.empty() ? SqlParam() : SqlParam(app_id_),
           session_id_.empty() || session_is_new_ ? SqlParam() : SqlParam(session_id_), type, severity, request_.ip_hash,
           details});
}

std::string Admission::answer(const std::string &decision, int status, const std::string &extra) {
    // The daemon's synchronous executes ("defer") have no use for the app's public description.
    bool lean = request_.defer && request_.action == "execute";
    return "{\"decision\":" + json_quote(decision) + ",\"status\":" + std::to_string(status) +
           ",\"app\":" + (lean ? "null" : app_json_) +
           ",\"session\":" + session_json_ + ",\"rate_limit\":" + rate_json_ +
           ",\"origin_allowed\":" + (origin_allowed_ ? "true" : "false") + extra + "}";
}

std::string Admission::deny(ErrorCode code, const std::string &message, const std::string &details,
                            const char *event_type) {
    const ErrorInfo &info = error_info(code);
    if (event_type && !workspace_id_.empty()) {
        std::string key = "refusal:" + (app_id_.empty() ? workspace_id_ : app_id_) + ":" + event_type;
        int64_t now = epoch_seconds_now();
        RateLimitHit budget = rate_limit_hit(key.data(), static_cast<int>(key.size()), kRefusalEventsPerMinute, 60, now);
        if (budget.allowed)
            event(event_type, "warn",
                  "{\"action\":" + json_quote(request_.action) + ",\"error_code\":" + json_quote(std::string(info.name)) +
                      (details == "null" ? std::string() : ",\"details\":" + details) + "}");
        else
            count_refusal(workspace_id_, app_id_, event_type, now);
    }
    return answer("deny", info.http_status,
                  ",\"error\":{\"error_code\":" + json_quote(std::string(info.name)) +
                      ",\"message\":" + json_quote(message) + ",\"details\":" + details + "}");
}

// The visitor's session, read but not written: a request refused by a rate limit, or by
// anything before it, leaves no row behind. A new session's id is chosen here (per-session
// limits count against it) and its row written by record_session() once the limits pass.
std::optional<std::string> Admission::resolve_session(bool app_deprecated, std::string &refusal) {
    // A client that sends no session to execute or read the schema (an API client, a script)
    // is given the same session for a day from the same address, user agent and sign-in,
    // derived from them under the installation's key (so nobody else can name it): one row a
    // day instead of one a request, and per-session limits and blocking hold for it too. The
    // page starts its own session at the entry and sends it back.
    std::optional<std::string> wanted = request_.session_id;
    bool derived = !wanted && (request_.action == "execute" || request_.action == "schema");
    if (derived)
        wanted = derived_session_id("session\n" + app_id_ + "\n" + request_.ip + "\n" +
                                    request_.user_agent_hash.value_or("") + "\n" + request_.user.value_or("") + "\n" +
                                    std::to_string(epoch_seconds_now() / 86400));
    if (wanted) {
        if (std::optional<CachedSession> found = session_by_id(*wanted)) {
            if (found->app_id != app_id_) {
                refusal = deny(ErrorCode::SESSION_INVALID, "the session belongs to another app", "null",
                               "runtime.access_blocked");
                return std::nullopt;
            }
            session_id_ = *wanted;
            if (found->blocked) {
                refusal = deny(ErrorCode::SESSION_BLOCKED, "this session is blocked",
                               "{\"reason\":" + json_quote(found->blocked_reason) + "}", "runtime.access_blocked");
                return std::nullopt;
            }
            // A derived session is the client's for the whole day: renewed, never replaced.
            if (found->live || derived) {
                session_json_ = found->json;  // the expiry as renewed, when due
                session_renewal_due_ = found->renewal_due;
                return session_id_;
            }
            session_id_.clear();  // expired: a new one below
        }
    }
    if (app_deprecated) {
        refusal = deny(ErrorCode::APP_DEPRECATED, "the app is deprecated: it serves existing sessions only");
        return std::nullopt;
    }
    session_id_ = derived ? *wanted : random_uuid();
    session_is_new_ = true;
    return session_id_;
}

// Writes what resolve_session() decided, after the rate limits let the request through: the
// new session's row, or an existing one's renewal (at most once a minute per session).
void Admission::record_session() {
    if (session_is_new_) {
        auto created = query(R"sql(
            insert into flowgres.app_sessions (workspace_id, id, app_id, session_type, subject, ip_hash, user_agent_hash,
                                               expires_at)
            values ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6, $7, now() + $8::interval)
            on conflict do nothing
            returning jsonb_build_object('id', id, 'type', session_type, 'expires_at', expires_at)::text)sql",
                             {workspace_id_, session_id_, app_id_, std::string(request_.user ? "auth" : "anon"),
                              request_.user, request_.ip_hash, request_.user_agent_hash, kSessionTtl});
        // The same client's first requests of the day race to make its derived session: the
        // others wait for the first and take its row, read anew (the statement's snapshot
        // predates that commit). No conflict target: the row has two unique keys, and a
        // conflict on one not named would be an error.
        if (created.rows.empty())
            created = query("select jsonb_build_object('id', id, 'type', session_type, 'expires_at', expires_at)::text "
                            "from flowgres.app_sessions where id = $1::uuid",
                            {session_id_});
        session_json_ = created.rows.at(0).text(0);
        session_is_new_ = false;
    } else if (session_renewal_due_) {
        session_cache().forget(session_id_);  // read again once this renewal is committed
        query(R"sql(
            update flowgres.app_sessions set last_seen_at = now(), expires_at = now() + $2::interval
            where id = $1::uuid and last_seen_at < now() - interval '1 minute')sql",
              {session_id_, kSessionTtl});
        session_renewal_due_ = false;
    }
}

// Counts this request against every configured window (per_ip, per_session, per_app); the
// answer's rate_limit is the tightest. Returns the refusal when one window is full.
std::optional<std::string> Admission::apply_rate_limits(const std::string &policy_json, bool gray) {
    Json policy = policy_document(policy_json, "rate_limit");
    int64_t now = epoch_seconds_now();
    std::optional<RateLimitHit> tightest;
    std::string refused_dimension;
    for (const char *dimension : {"per_ip", "per_session", "per_app"}) {
        const json_t *window = json_object_get(policy.get(), dimension);
        if (!json_is_object(window)) continue;
        int64_t limit = json_integer_value(json_object_get(window, "max_requests"));
        int64_t seconds = json_integer_value(json_object_get(window, "window_seconds"));
        if (limit < 1 || seconds < 1) continue;
        std::string key = std::string(gray ? "gray:" : "") + dimension + ":" + app_id_ + ":" +
                          (std::string_view(dimension) == "per_ip"        ? rate_limit_subject(request_.ip)
                           : std::string_view(dimension) == "per_session" ? session_id_
                                                                         : std::string());
        RateLimitHit hit = request_.rate_counted
                               ? rate_limit_peek(key.data(), static_cast<int>(key.size()), limit, seconds, now)
                               : rate_limit_hit(key.data(), static_cast<int>(key.size()), limit, seconds, now);
        if (!tightest || (!hit.allowed && tightest->allowed) ||
            (hit.allowed == tightest->allowed && hit.remaining < tightest->remaining))
            tightest = hit;
        if (!hit.allowed && refused_dimension.empty()) refused_dimension = dimension;
    }
    if (!tightest) return std::nullopt;
    rate_json_ = "{\"limit\":" + std::to_string(tightest->limit) + ",\"remaining\":" + std::to_string(tightest->remaining) +
                 ",\"reset_at\":" + std::to_string(tightest->reset_at) +
                 ",\"retry_after\":" + std::to_string(tightest->retry_after) + "}";
    if (refused_dimension.empty()) return std::nullopt;
    // A session that keeps running into the limit is blocked (seed §25.4); a session this
    // request would have created has no row to count in.
    if (!session_id_.empty() && !session_is_new_)
        query(R"sql(
            update flowgres.app_sessions set limit_hits = limit_hits + 1,
                   blocked_at = case when limit_hits + 1 >= $2::integer then now() end,
                   blocked_reason = case when limit_hits + 1 >= $2::integer then 'repeated rate-limit hits' end
            where id = $1::uuid and blocked_at is null)sql",
              {session_id_, std::to_string(kSessionBlockAfterHits)});
    return deny(ErrorCode::RATE_LIMITED, "too many requests: retry after " + std::to_string(tightest->retry_after) + " s",
                "{\"dimension\":" + json_quote(refused_dimension) + ",\"retry_after_seconds\":" +
                    std::to_string(tightest->retry_after) + "}",
                "runtime.rate_limited");
}

// What the public page needs to draw the form: the UI schema, how its fields map onto the
// workflow's start inputs, those inputs, and the output schema (the version's config).
std::string Admission::schema_of_version() {
    auto version = query(
        "select workflow::text, ui_schema::text, coalesce(config -> 'output_schema', 'null')::text "
        "from flowgres.app_versions where id = $1::uuid",
        {version_id_});
    const SqlRow &v = version.rows.at(0);
    Json workflow_document = parse_json(v.text(0), "workflow");
    Json ui_document = parse_json(v.text(1), "ui_schema");
    workflow::Problems ignored;
    std::vector<workflow::Port> start_inputs =
        workflow::parse_workflow(workflow_document.get(), ignored).start_inputs();
    ui::Problems ui_problems;
    ui::UiSchema ui = ui::parse_ui_schema(ui_document.get(), ui_problems);
    std::string inputs = "[";
    for (size_t i = 0; i < start_inputs.size(); i++)
        inputs += (i ? "," : "") + std::string("{\"name\":") + json_quote(start_inputs[i].name) +
                  ",\"type\":" + json_quote(start_inputs[i].type) +
                  ",\"required\":" + (start_inputs[i].required ? "true" : "false") + "}";
    inputs += "]";
    return "{\"ui_schema\":" + v.text(1) + ",\"input_mapping\":" + ui::map_inputs(ui, start_inputs).to_json() +
           ",\"start_inputs\":" + inputs + ",\"output_schema\":" + v.text(2) + "}";
}

// The execution row a deferred run will have, as to_jsonb of it would show it now, with
// "deferred": true. Its times are the transaction's, as the row's defaults would be.
std::string Admission::deferred_execution(const std::string &execution_id) {
    // What the daemon runs it with and writes its row from: no more (every byte is parsed).
    return "{\"id\":" + json_quote(execution_id) + ",\"workspace_id\":" + json_quote(workspace_id_) +
           ",\"app_id\":" + json_quote(app_id_) + ",\"version_id\":" + json_quote(version_id_) +
           ",\"status\":\"running\",\"session_id\":" + json_quote(session_id_) +
           ",\"inputs\":" + dump_json(request_.inputs.get()) + ",\"claimed_by\":" +
           (request_.claimed_by ? json_quote(*request_.claimed_by) : std::string("null")) +
           ",\"started_at\":" + json_quote(transaction_start_iso()) + ",\"deferred\":true}";
}

std::string Admission::run() {
    // A custom domain first (seed §122): an active one names its app's slugs as they are now.
    if (request_.domain) {
        std::optional<SqlRow> bound = app_by_domain(*request_.domain);
        if (!bound) return deny(ErrorCode::RUNTIME_APP_NOT_FOUND, "no app is published at this address");
        if (bound->text(2) == "blocked") return deny(ErrorCode::DOMAIN_BLOCKED, "this domain is blocked");
        request_.workspace_slug = bound->text(0);
        request_.app_slug = bound->text(1);
    }
    // The workspace: by slug, or by an old slug (→ redirect), never a deleted one.
    std::optional<SqlRow> workspace = workspace_by_slug(request_.workspace_slug);
    if (!workspace) {
        auto renamed = query_value(
            "select w.slug from flowgres.workspace_slug_aliases a join flowgres.workspaces w on w.id = a.workspace_id "
            "where a.slug = $1 and w.status <> 'deleted'",
            {request_.workspace_slug});
        if (renamed)
            return answer("redirect", 301,
                          ",\"location\":{\"workspace\":" + json_quote(*renamed) + ",\"app\":" +
                              (request_.app_slug ? json_quote(*request_.app_slug) : std::string("null")) + "}");
        return deny(ErrorCode::RUNTIME_APP_NOT_FOUND, "no app is published at this address");
    }
    const SqlRow &w = *workspace;
    if (w.text(2) == "deleted") return deny(ErrorCode::RUNTIME_APP_NOT_FOUND, "no app is published at this address");
    workspace_id_ = w.text(0);
    workspace_slug_ = w.text(1);
    if (w.text(2) != "active")
        return deny(ErrorCode::WORKSPACE_SUSPENDED, "the workspace is " + w.text(2), "null", "runtime.access_blocked");

    // The app: by slug in the workspace, by an old slug (→ redirect), or the default app.
    std::optional<std::string> app_id;
    if (request_.app_slug) {
        app_id = app_id_by_slug(workspace_id_, *request_.app_slug);
        if (!app_id) {
            auto renamed = query_value(
                "select p.slug from flowgres.app_slug_aliases a join flowgres.apps p on p.id = a.app_id "
                "where a.workspace_id = $1::uuid and a.slug = $2",
                {workspace_id_, *request_.app_slug});
            if (renamed)
                return answer("redirect", 301,
                              ",\"location\":{\"workspace\":" + json_quote(workspace_slug_) +
                                  ",\"app\":" + json_quote(*renamed) + "}");
        }
    } else if (!w.text(3).empty()) {
        app_id = w.text(3);
    }
    if (!app_id) return deny(ErrorCode::RUNTIME_APP_NOT_FOUND, "no app is published at this address");
    std::optional<SqlRow> app = app_with_policy(*app_id, workspace_slug_);
    if (!app) return deny(ErrorCode::RUNTIME_APP_NOT_FOUND, "no app is published at this address");
    const SqlRow &a = *app;
    app_id_ = a.text(0);
    app_slug_ = a.text(1);
    const std::string &status = a.text(2);
    if (status == "draft" || a.text(3).empty())
        return deny(ErrorCode::APP_NOT_PUBLISHED, "the app is not published");
    if (status == "archived") return deny(ErrorCode::APP_ARCHIVED, "the app is archived");
    app_json_ = a.text(4);
    version_id_ = a.text(3);

    // allowed_origins' meaning is origins.hpp's, shared with the embed page's frame-ancestors;
    // only a request that names its origin needs the list.
    Json allowed_origins = request_.origin ? policy_document(a.text(8), "allowed_origins") : Json();
    // A CORS preflight carries no credentials: only the origin is checked, nothing recorded.
    if (request_.action == "preflight") {
        if (request_.origin && !origin_allowed(allowed_origins.get(), *request_.origin))
            return deny(ErrorCode::ORIGIN_NOT_ALLOWED, "the app may not be used from this origin",
                        "{\"origin\":" + json_quote(*request_.origin) + "}");
        origin_allowed_ = true;
        return answer("allow", 204, ",\"allowed_origins\":" + a.text(8));
    }

    // Who may use it: the access mode, then the data classification (seed §35.1): internal
    // data needs a member, confidential an admin or owner, restricted the owner.
    const std::string &access_mode = a.text(5);
    const std::string &classification = a.text(6);
    std::optional<std::string> role;
    if (request_.user && is_uuid(*request_.user))
        role = query_value(R"sql(
            select r.name from flowgres.workspace_members m join flowgres.workspace_roles r on r.id = m.role_id
            where m.workspace_id = $1::uuid and m.user_id = $2::uuid and m.status = 'active')sql",
                           {workspace_id_, *request_.user});
    // A token is for one workspace (its workspace claim, the slug or id): elsewhere it signs
    // nobody in, so a token an app of one workspace was given cannot be replayed at another's.
    if (request_.user && request_.user_workspace && *request_.user_workspace != workspace_id_ &&
        *request_.user_workspace != workspace_slug_)
        return deny(ErrorCode::AUTH_REQUIRED, "the sign-in is for another workspace", "null", "runtime.access_blocked");
    if ((access_mode == "private" || access_mode == "public_auth" || classification != "public") && !request_.user)
        return deny(ErrorCode::AUTH_REQUIRED, "sign in to use this app", "null", "runtime.access_blocked");
    if (access_mode == "private" && !role)
        return deny(ErrorCode::ACCESS_DENIED, "the app is private to its workspace's members", "null",
                    "runtime.access_blocked");
    const char *required = classification == "internal"       ? "member"
                           : classification == "confidential" ? "admin"
                           : classification == "restricted"   ? "owner"
                                                              : nullptr;
    bool cleared = !required || (role && (std::string_view(required) == "member" ||
                                          (std::string_view(required) == "admin" && (*role == "admin" || *role == "owner")) ||
                                          *role == "owner"));
    if (!cleared)
        return deny(ErrorCode::ACCESS_DENIED,
                    "the app's data is " + classification + ": only a workspace " + required +
                        (std::string_view(required) == "member" ? "" : std::string_view(required) == "admin" ? " or owner" : "") +
                        " may use it",
                    "{\"data_classification\":" + json_quote(classification) + ",\"required_role\":" +
                        json_quote(std::string(required)) + "}",
                    "runtime.access_blocked");

    // Block lists, then where the request comes from.
    if (address_listed(a.text(10), request_.ip) || json_array_has(a.text(11), request_.ip_sha256))
        return deny(ErrorCode::IP_BLOCKED, "requests from this address are blocked", "null", "runtime.access_blocked");
    bool gray = address_listed(a.text(12), request_.ip) || json_array_has(a.text(13), request_.ip_sha256);
    if (request_.origin && !origin_allowed(allowed_origins.get(), *request_.origin))
        return deny(ErrorCode::ORIGIN_NOT_ALLOWED, "the app may not be used from this origin",
                    "{\"origin\":" + json_quote(*request_.origin) + "}", "runtime.access_blocked");
    origin_allowed_ = true;

    std::string refusal;
    if (!resolve_session(status == "deprecated", refusal)) return refusal;

    // Gray-listed clients get the stricter policy, and a CAPTCHA when it says so.
    Json gray_policy = policy_document(a.text(14).empty() ? "{}" : a.text(14), "gray_policy");
    std::string limits = a.text(7);
    if (gray && json_integer_value(json_object_get(gray_policy.get(), "max_requests")) > 0)
        limits = "{\"per_ip\":" + dump_json(gray_policy.get()) + "}";
    if (auto limited = apply_rate_limits(limits, gray)) return *limited;
    record_session();

    if (request_.action == "entry") {
        event("runtime.entry", "info", "{}");
        // The daemon turns allowed_origins into the embed page's frame-ancestors.
        return answer("allow", 200, ",\"version_id\":" + json_quote(version_id_) + ",\"allowed_origins\":" + a.text(8));
    }
    if (request_.action == "execution") {
        // Only the session that started it, or the same signed-in visitor, sees a run.
        auto execution = query_value(R"sql(
            select to_jsonb(e)::text from flowgres.executions e
            where e.id = $1::uuid and e.app_id = $2::uuid and e.trigger = 'runtime'
              and (e.session_id = $3::uuid
                   or ($4::text is not null and exists (
                       select 1 from flowgres.app_sessions s
                       where s.id = e.session_id and s.session_type = 'auth' and s.subject = $4::text))))sql",
                                     {*request_.execution_id, app_id_, session_id_, request_.user});
        if (!execution) return deny(ErrorCode::EXECUTION_NOT_FOUND, "no such execution of yours");
        return answer("allow", 200, ",\"version_id\":" + json_quote(version_id_) + ",\"execution\":" + *execution);
    }
    if (request_.action == "schema") {
        event("runtime.schema", "info", "{}");
        return answer("allow", 200, ",\"version_id\":" + json_quote(version_id_) + ",\"schema\":" + schema_of_version());
    }

    // Anomaly signals (seed §31.2): a CAPTCHA, or shedding until the window ends.
    Json rate_policy = policy_document(a.text(7), "rate_limit");
    std::optional<RiskSignal> risk =
        detect_anomaly(json_object_get(rate_policy.get(), "anomaly"), app_id_, rate_limit_subject(request_.ip),
                       epoch_seconds_now(), request_.rate_counted);
    std::string risk_details = "null";
    if (risk)
        risk_details = "{\"signal\":" + json_quote(risk->signal) + ",\"measured\":" + risk->details_json +
                       ",\"retry_after_seconds\":" + std::to_string(risk->retry_after) + "}";
    if (risk && risk->action == "shed")
        return deny(ErrorCode::OVERLOADED, "unusual traffic to this app: retry later", risk_details,
                    "runtime.risk_detected");

    bool captcha_needed = a.text(9) == "t" || (gray && json_is_true(json_object_get(gray_policy.get(), "require_captcha"))) ||
                          risk.has_value();
    const char *captcha_event = risk ? "runtime.risk_detected" : "runtime.captcha_required";
    // "pending": the daemon holds a token it checks only if this answer asks for it (so the
    // provider is never asked before the rate limits); that round records no refusal.
    bool token_pending = request_.captcha && *request_.captcha == "pending";
    if (captcha_needed && (!request_.captcha || token_pending))
        return deny(ErrorCode::CAPTCHA_REQUIRED, "solve the CAPTCHA and send its token", risk_details,
                    token_pending ? nullptr : captcha_event);
    if (captcha_needed && *request_.captcha != "passed")
        return deny(ErrorCode::CAPTCHA_INVALID, "the CAPTCHA token was not accepted", risk_details, captcha_event);

    // The inputs against the UI schema's rules, field by field (not billed when refused).
    VersionForRuns version = version_for_runs(version_id_);
    ui::Problems problems = ui::validate_inputs(*version.ui, request_.inputs.get());
    if (!problems.empty()) {
        std::string details = "{\"problems\":[";
        for (size_t i = 0; i < problems.size(); i++)
            details += (i ? "," : "") + std::string("{\"field\":") + json_quote(problems[i].field) +
                       ",\"message\":" + json_quote(problems[i].message) + "}";
        details += "]}";
        return deny(ErrorCode::VALIDATION_FAILED, problems[0].field + " " + problems[0].message, details);
    }

    // One request of the month's quota and budget. A run the caller waits for, whose model
    // calls need not hold tokens first (no tokens quota and no enforced budget), is not written
    // now: its execution row and usage row are written once, when it is recorded, and the
    // request is held in shared memory until then (quota.hpp hold_quota). Any other run is
    // written now and the request held until this transaction ends.
    WorkspaceLimits plan_limits = workspace_limits(workspace_id_);
    bool token_holds = plan_limits.usage.quota[kUsageTokens] >= 0 || plan_limits.usage.spend_limit >= 0;
    bool deferred = request_.defer && !(token_holds && !version.model_names.empty());
    std::string execution_id = deferred ? random_uuid() : std::string();
    QuotaUse quota = deferred ? hold_quota(workspace_id_, execution_id, UsageAmounts{1, 0, 0}, &plan_limits)
                              : reserve_quota(workspace_id_, UsageAmounts{1, 0, 0}, true, &plan_limits);
    if (quota.reservation.outcome == UsageReservation::Outcome::exceeded)
        return deny(ErrorCode::QUOTA_EXCEEDED, quota_exceeded_message(quota), quota_exceeded_details(quota),
                    "runtime.quota_exceeded");
    if (quota.reservation.outcome == UsageReservation::Outcome::ledger_full)
        return deny(ErrorCode::OVERLOADED, "too many workspaces are metering usage at once: retry",
                    "{\"retry_after_seconds\":1}", "runtime.load_shed");

    // Admitted: the execution starts running, claimed by the daemon that asked, and its
    // request is billed in the same statement; or, deferred, the row it will be, not yet written.
    std::string execution = deferred ? deferred_execution(execution_id) : query_value(R"sql(
        with created as (
            insert into flowgres.executions (workspace_id, app_id, version_id, trigger, session_id, inputs, status,
                                             started_at, heartbeat_at, claimed_by)
            values ($1::uuid, $2::uuid, $3::uuid, 'runtime', $4::uuid, $5::jsonb, 'running', now(), now(), $6)
            returning *),
        billed as (
            insert into flowgres.usage_events (workspace_id, app_id, execution_id, dimension, quantity)
            select workspace_id, app_id, id, 'requests', 1 from created)
        select to_jsonb(c)::text from created c)sql",
                                        {workspace_id_, app_id_, version_id_, session_id_,
                                         dump_json(request_.inputs.get()), request_.claimed_by})
                                .value();
    // The row's object, with the version's workflow added (unless the daemon holds it).
    execution.pop_back();
    if (request_.have_version != version_id_) execution += ",\"workflow\":" + version.workflow;
    // What the run needs before it starts, so that it needs no round trip of its own for it
    // (named by its key, and sent unless the daemon holds that one); and whether its model
    // calls must hold tokens first (a tokens quota or an enforced budget applies: as of this
    // admission).
    if (!version.secret_names.empty() || !version.model_names.empty()) {
        RunPreparation prepared = run_preparation(workspace_id_, version_id_, version);
        execution += ",\"preparation_key\":" + json_quote(prepared.key);
        if (request_.have_preparation != prepared.key) execution += ",\"preparation\":" + prepared.document;
        execution += std::string(",\"token_holds\":") + (token_holds ? "true" : "false");
    }
    execution += "}";
    raise_budget_alerts(workspace_id_, app_id_, quota);
    // Counted, not a row per request: the maintenance worker writes one summary row per app
    // and minute (refusal_counter.hpp).
    count_event_at_commit(workspace_id_, app_id_, "runtime.execute");
    return answer("allow", 200, ",\"version_id\":" + json_quote(version_id_) + ",\"execution\":" + execution);
}

}  // namespace

// SQL: runtime_refusals_flush() — this database's runtime events counted in shared memory
// (refusals past the per-minute budget of rows, admitted executes, visitors' run outcomes),
// written as one summary event per (workspace, app, kind, minute) with details.count (and
// details.refusals for refusals): {rows, events, refusals, lost}.
SqlValue runtime_refusals_flush(CallArgs &) {
    require_system_actor();
    int64_t lost = 0;
    std::vector<RefusalCount> counts = drain_refusal_counts(lost);
    int64_t events = 0, refusals = 0;
    std::string rows = "[";
    for (const auto &entry : counts) {
        rows += (rows.size() > 1 ? "," : "") + std::string("{\"workspace_id\":") + json_quote(entry.workspace_id) +
                ",\"app_id\":" + (entry.app_id.empty() ? std::string("null") : json_quote(entry.app_id)) +
                ",\"event_type\":" + json_quote(entry.event_type) + ",\"minute\":" + std::to_string(entry.minute) +
                ",\"count\":" + std::to_string(entry.count) + "}";
        events += entry.count;
        if (entry.event_type.rfind("runtime.execute", 0) != 0) refusals += entry.count;
    }
    rows += "]";
    if (!counts.empty())
        query(R"sql(
            insert into flowgres.runtime_events (workspace_id, app_id, event_type, severity, details, created_at)
            select (r ->> 'workspace_id')::uuid, (r ->> 'app_id')::uuid, r ->> 'event_type',
                   case when r ->> 'event_type' in ('runtime.execute', 'runtime.execute_succeeded') then 'info' else 'warn' end,
                   jsonb_build_object('summary', true, 'count', (r ->> 'count')::bigint,
                                      'minute', to_timestamp((r ->> 'minute')::bigint))
                   || case when r ->> 'event_type' like 'runtime.execute%' then '{}'::jsonb
                           else jsonb_build_object('refusals', (r ->> 'count')::bigint) end,
                   to_timestamp((r ->> 'minute')::bigint) + interval '59 seconds'
            from jsonb_array_elements($1::jsonb) r)sql",
              {rows});
    return SqlValue::jsonb("{\"rows\":" + std::to_string(counts.size()) + ",\"events\":" + std::to_string(events) +
                           ",\"refusals\":" + std::to_string(refusals) + ",\"lost\":" + std::to_string(lost) + "}");
}

// SQL: runtime_outcome_count(workspace_id, app_id, status) — from the executions trigger: a
// visitor's run ended; counted when the transaction commits (no row per run).
SqlValue runtime_outcome_count(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string app_id = args.required_uuid(1, "app_id");
    std::string status = args.required_text(2, "status");
    // No actor check: the trigger runs it for whoever ended the run (a member cancelling
    // included); nobody else may execute it (revoked from public).
    if (!count_runtime_outcome(workspace_id, app_id, status))
        throw field_error("status", "must be completed, failed or cancelled");
    return SqlValue::null();
}

SqlValue runtime_admit(CallArgs &args) {
    Request request = parse_request(args.required_jsonb(0, "request"));
    require_system_actor();
    return SqlValue::jsonb(Admission(std::move(request)).run());
}

// The same over json (the daemon's): the request read as the text it came as and the answer
// returned as the text it was built as, with no jsonb made of either on the way.
SqlValue runtime_admit_json(CallArgs &args) {
    Request request = parse_request(args.required_text(0, "request"));
    require_system_actor();
    return SqlValue::json(Admission(std::move(request)).run());
}

// The daemon's batch: many requests as one JSON array, read once (not checked as json, split
// into elements and each read again, as json_array_elements over runtime_admit_json would),
// answered as the array of their answers in order. One request's error is the batch's (the
// daemon then asks for each on its own to find whose), as it was over json_agg.
SqlValue runtime_admit_batch(CallArgs &args) {
    constexpr size_t kMaxRequests = 1000;
    Json requests = parse_json(args.required_text(0, "requests"), "requests");
    size_t size = json_array_size(requests.get());
    if (!json_is_array(requests.get()) || size == 0 || size > kMaxRequests)
        throw field_error("requests", "must be an array of 1 to " + std::to_string(kMaxRequests) + " requests");
    std::vector<Request> parsed;
    parsed.reserve(size);
    for (size_t i = 0; i < size; i++) parsed.push_back(parse_request(json_array_get(requests.get(), i)));
    require_system_actor();
    std::string answers = "[";
    for (Request &request : parsed) {
        if (answers.size() > 1) answers += ',';
        answers += Admission(std::move(request)).run();
    }
    return SqlValue::json(answers + "]");
}

}  // namespace flowgres
