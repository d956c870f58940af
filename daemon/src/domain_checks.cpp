// DomainChecks (domain_checks.hpp).
#include "domain_checks.hpp"

#include <algorithm>

#include "dns/dns_lookup.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "log.hpp"

namespace flowgres::daemon {
namespace {

constexpr size_t kSweepBatch = 20;
constexpr const char *kBegin = "select flowgres.app_domain_verify_begin($1::uuid, $2, $3::uuid)::text";
constexpr const char *kFinish = "select flowgres.app_domain_verify_finish($1::uuid, $2, $3::jsonb)::text";

struct Outcome {
    bool verified = false;
    std::string method;
    std::string error;
};

// What the resolver says of the domain's two ways of proof.
Outcome check_records(const std::string &resolver, int timeout_ms, const std::string &domain, const std::string &token,
                      const std::string &cname_target) {
    std::string txt_name = "_flowgres." + domain;
    dns::Answer txt = dns::lookup_txt(resolver, txt_name, timeout_ms);
    for (const std::string &record : txt.records)
        if (record == token) return {true, "txt", ""};
    std::string txt_problem = !txt.ok              ? txt.error + " (TXT " + txt_name + ")"
                              : txt.records.empty() ? "no TXT record at " + txt_name
                                                    : "the TXT records at " + txt_name + " do not hold the token";
    if (cname_target.empty()) return {false, "", txt_problem};
    dns::Answer cname = dns::lookup_cname(resolver, domain, timeout_ms);
    for (const std::string &target : cname.records)
        if (target == cname_target) return {true, "cname", ""};
    std::string cname_problem = !cname.ok              ? cname.error + " (CNAME " + domain + ")"
                                : cname.records.empty() ? domain + " has no CNAME record"
                                                        : domain + " is a CNAME to " + cname.records.front() + ", not to " +
                                                              cname_target;
    return {false, "", txt_problem + "; " + cname_problem};
}

std::string text_at(const json_t *document, std::initializer_list<const char *> path) {
    const json_t *node = document;
    for (const char *key : path) node = json_object_get(node, key);
    const char *text = json_string_value(node);
    return text ? text : "";
}

std::string lowercase_ascii(std::string text) {
    for (char &c : text)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return text;
}

}  // namespace

// One domain's check: for a caller (call set; the caller's key acts) or for the sweep (the
// operator acts).
struct DomainChecks::Check {
    std::shared_ptr<Call> call;
    bool async = false;
    std::string domain_id;
    std::string domain;
    std::string token;
    std::string cname_target;
    Outcome outcome;

    pg::Statement actor_statement(const WorkerContext &worker) const {
        return call ? worker.actor_statement(*call) : pg::Statement{kActAsOperator, {}};
    }
};

DomainChecks::DomainChecks(WorkerContext &worker) : worker_(worker), lookups_(worker.loop, 1, 256) {}

DomainChecks::~DomainChecks() = default;

void DomainChecks::start() {
    started_ = true;
    uv_timer_init(worker_.loop, &sweep_timer_);
    sweep_timer_.data = this;
    if (worker_.worker_index != 0) return;
    auto every = static_cast<uint64_t>(worker_.config.domain_check_interval_ms);
    uv_timer_start(
        &sweep_timer_, [](uv_timer_t *timer) { static_cast<DomainChecks *>(timer->data)->sweep(); }, every, every);
}

void DomainChecks::stop(std::function<void()> done) {
    if (started_) {
        started_ = false;
        uv_close(reinterpret_cast<uv_handle_t *>(&sweep_timer_), nullptr);
    }
    due_.clear();
    lookups_.stop(std::move(done));
}

void DomainChecks::run(std::shared_ptr<Call> call) {
    auto check = std::make_shared<Check>();
    check->call = call;
    check->async = http::asks_async(call->request);
    // The route's SQL arguments: domain_id, claimant (the daemon fills it), app_id (nested form).
    check->domain_id = call->arguments.at(0).value_or("");
    std::optional<std::string> app_id = call->arguments.size() > 2 ? call->arguments.at(2) : std::nullopt;
    std::vector<pg::Statement> statements;
    statements.push_back(worker_.actor_statement(*call));
    statements.push_back(pg::Statement{kBegin, {check->domain_id, daemon_name(), app_id}});
    worker_.pool.run(std::move(statements), [this, check](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(check->call, result);
        worker_.note_key_use(*check->call, result.values[0]);
        std::string document = result.values[1].value_or("{}");
        Json claimed = parse_json(document, "domain");
        check->domain = text_at(claimed.get(), {"domain"});
        check->token = text_at(claimed.get(), {"verification", "txt", "value"});
        check->cname_target = lowercase_ascii(text_at(claimed.get(), {"verification", "cname", "value"}));
        if (check->async) {
            worker_.finish(check->call, success_response(202, document, check->call->trace));
        }
        look_up(check);
    });
}

void DomainChecks::look_up(std::shared_ptr<Check> check) {
    std::string resolver = worker_.config.dns_resolver;
    int timeout_ms = static_cast<int>(worker_.config.dns_timeout_ms);
    bool queued = lookups_.submit(
        [check, resolver, timeout_ms] {
            check->outcome = check_records(resolver, timeout_ms, check->domain, check->token, check->cname_target);
        },
        [this, check](bool cancelled) {
            if (cancelled) check->outcome = Outcome{false, "", "the daemon stopped before the DNS check"};
            record(check);
        });
    if (!queued) {
        check->outcome = Outcome{false, "", "too many DNS checks are waiting in this daemon; retried later"};
        record(check);
    }
}

void DomainChecks::record(std::shared_ptr<Check> check) {
    Json result(new_json_object());
    json_object_set_new(result.get(), "verified", json_boolean(check->outcome.verified));
    if (check->outcome.verified)
        json_object_set_new(result.get(), "method", json_string(check->outcome.method.c_str()));
    else
        json_object_set_new(result.get(), "error", json_string(utf8_prefix(check->outcome.error, 1000).c_str()));
    std::vector<pg::Statement> statements;
    statements.push_back(check->actor_statement(worker_));
    statements.push_back(pg::Statement{kFinish, {check->domain_id, daemon_name(), dump_json(result.get())}});
    worker_.pool.run(std::move(statements), [this, check](pg::JobResult &&result) {
        bool recorded = result.outcome == pg::JobResult::Outcome::ok;
        if (!recorded)
            log_line(LogLevel::warn, "a domain check was not recorded",
                     {{"domain", check->domain}, {"error", result.message}});
        if (check->call && !check->async) {
            if (!recorded) return worker_.finish_database_error(check->call, result);
            return worker_.finish(check->call, success_response(200, result.values[1].value_or("null"), check->call->trace));
        }
        if (!check->call) next_in_sweep();
    });
}

void DomainChecks::sweep() {
    if (sweeping_ || !started_) return;
    sweeping_ = true;
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(
        pg::Statement{"select flowgres.app_domain_verify_due($1::int)::text", {std::to_string(kSweepBatch)}});
    worker_.pool.run(std::move(statements), [this](pg::JobResult &&result) {
        due_.clear();
        if (result.outcome == pg::JobResult::Outcome::ok) {
            Json ids = parse_json(result.values[1].value_or("[]"), "due domains");
            size_t index;
            const json_t *id;
            json_array_foreach(ids.get(), index, id) if (json_is_string(id)) due_.emplace_back(json_string_value(id));
            std::reverse(due_.begin(), due_.end());  // the most overdue first (taken from the back)
        }
        next_in_sweep();
    });
}

// The sweep's domains one at a time: a check claimed meanwhile by a caller or another daemon
// is skipped (STATE_CONFLICT).
void DomainChecks::next_in_sweep() {
    if (due_.empty() || !started_) {
        sweeping_ = false;
        due_.clear();
        return;
    }
    auto check = std::make_shared<Check>();
    check->domain_id = due_.back();
    due_.pop_back();
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(pg::Statement{kBegin, {check->domain_id, daemon_name(), std::nullopt}});
    worker_.pool.run(std::move(statements), [this, check](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok) return next_in_sweep();
        Json claimed = parse_json(result.values[1].value_or("{}"), "domain");
        check->domain = text_at(claimed.get(), {"domain"});
        check->token = text_at(claimed.get(), {"verification", "txt", "value"});
        check->cname_target = lowercase_ascii(text_at(claimed.get(), {"verification", "cname", "value"}));
        look_up(check);
    });
}

}  // namespace flowgres::daemon
