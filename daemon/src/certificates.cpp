// Certificates (certificates.hpp).
#include "certificates.hpp"

#include <algorithm>

#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/secret_box.hpp"
#include "log.hpp"

namespace flowgres::daemon {
namespace {

constexpr size_t kSweepBatch = 10;
constexpr const char *kBegin = "select flowgres.app_domain_cert_begin($1::uuid, $2, $3::boolean, $4::uuid)::text";
constexpr const char *kChallenge = "select flowgres.app_domain_cert_challenge($1::uuid, $2, $3, $4)::text";
constexpr const char *kFinish = "select flowgres.app_domain_cert_finish($1::uuid, $2, $3::jsonb)::text";

std::string account_context(const std::string &directory_url) { return "acme_account:" + directory_url; }
std::string key_context(const std::string &domain_id) { return "domain_certificate:" + domain_id; }

}  // namespace

// One certificate order: for a caller (call set; the caller's key acts) or for the sweep (the
// operator acts).
struct Certificates::Order {
    std::shared_ptr<Call> call;
    bool async = false;
    bool renew = false;
    std::string domain_id;
    std::string domain;
    std::optional<acme::EcKey> account_key;
    std::string account_url;
    bool new_account = false;

    pg::Statement actor_statement(const WorkerContext &worker) const {
        return call ? worker.actor_statement(*call) : pg::Statement{kActAsOperator, {}};
    }
};

Certificates::Certificates(WorkerContext &worker) : worker_(worker) {
    settings_.directory_url = worker.config.acme_directory_url;
    settings_.email = worker.config.acme_email;
    // The CA is the operator's choice, wherever it is (a CA on this network, pebble in tests).
    settings_.egress = std::make_shared<const executor::EgressPolicy>(executor::EgressPolicy::parse("0.0.0.0/0, ::/0"));
    if (!settings_.directory_url.empty()) {
        settings_.tls = executor::TlsClientContext::create(worker.config.acme_ca_file, setup_error_);
        if (!settings_.tls) setup_error_ = "acme_ca_file: " + setup_error_;
    }
}

std::string Certificates::missing_setup() const {
    if (settings_.directory_url.empty()) return "no ACME directory is configured (acme_directory_url)";
    if (!setup_error_.empty()) return setup_error_;
    if (!worker_.environment.keyring || worker_.environment.keyring->empty())
        return "no master key is configured to seal certificate keys (master_key_file)";
    return "";
}

void Certificates::start() {
    started_ = true;
    uv_timer_init(worker_.loop, &sweep_timer_);
    sweep_timer_.data = this;
    if (worker_.worker_index != 0 || !missing_setup().empty()) return;
    auto every = static_cast<uint64_t>(worker_.config.domain_check_interval_ms);
    uv_timer_start(
        &sweep_timer_, [](uv_timer_t *timer) { static_cast<Certificates *>(timer->data)->sweep(); }, every, every);
}

void Certificates::stop() {
    if (!started_) return;
    started_ = false;
    uv_close(reinterpret_cast<uv_handle_t *>(&sweep_timer_), nullptr);
    due_.clear();
}

void Certificates::run(std::shared_ptr<Call> call) {
    if (std::string missing = missing_setup(); !missing.empty())
        return worker_.finish_error(call, ErrorCode::ACME_NOT_CONFIGURED, missing);
    auto order = std::make_shared<Order>();
    order->call = call;
    order->async = http::asks_async(call->request);
    order->renew = std::string_view(call->route->pattern).ends_with("/renew");
    // The route's SQL arguments: domain_id, claimant (the daemon's), renew (fixed), app_id (nested).
    order->domain_id = call->arguments.at(0).value_or("");
    std::optional<std::string> app_id = call->arguments.size() > 3 ? call->arguments.at(3) : std::nullopt;
    std::vector<pg::Statement> statements;
    statements.push_back(worker_.actor_statement(*call));
    statements.push_back(pg::Statement{kBegin, {order->domain_id, daemon_name(), order->renew ? "true" : "false", app_id}});
    worker_.pool.run(std::move(statements), [this, order](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(order->call, result);
        worker_.note_key_use(*order->call, result.values[0]);
        std::string document = result.values[1].value_or("{}");
        order->domain = json_string_value(json_object_get(parse_json(document, "domain").get(), "domain")) ?: "";
        if (order->async) worker_.finish(order->call, success_response(202, document, order->call->trace));
        with_account(order);
    });
}

// The directory's account: kept by the first daemon that ordered; made by this order if none.
void Certificates::with_account(std::shared_ptr<Order> order) {
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(pg::Statement{"select flowgres.acme_account_get($1)::text", {settings_.directory_url}});
    worker_.pool.run(std::move(statements), [this, order](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok)
            return record(order, acme::Outcome{false, "", "", "", "the ACME account could not be read: " + result.message});
        if (!result.values[1]) {
            order->account_key = acme::EcKey::generate();
            order->new_account = true;
            return place(order);
        }
        try {
            Json account = parse_json(*result.values[1], "account");
            std::string pem = worker_.environment.keyring->open(json_string_value(json_object_get(account.get(), "key_sealed")) ?: "",
                                                                account_context(settings_.directory_url));
            order->account_key = acme::EcKey::from_pem(pem);
            order->account_url = json_string_value(json_object_get(account.get(), "account_url")) ?: "";
        } catch (const Error &error) {
            return record(order, acme::Outcome{false, "", "", "", "the ACME account key does not open: " + error.message()});
        }
        if (!order->account_key) return record(order, acme::Outcome{false, "", "", "", "the ACME account key is unreadable"});
        place(order);
    });
}

void Certificates::place(std::shared_ptr<Order> order) {
    auto publish = [this, order](const std::string &token, const std::string &key_authorization,
                                 std::function<void(bool, std::string)> published) {
        std::vector<pg::Statement> statements;
        statements.push_back(order->actor_statement(worker_));
        statements.push_back(pg::Statement{kChallenge, {order->domain_id, daemon_name(), token, key_authorization}});
        worker_.pool.run(std::move(statements), [published = std::move(published)](pg::JobResult &&result) {
            published(result.outcome == pg::JobResult::Outcome::ok, result.message);
        });
    };
    acme::order_certificate(worker_.loop, settings_, *order->account_key, order->account_url, order->domain, publish,
                            [this, order](acme::Outcome outcome) {
                                if (order->new_account && !outcome.account_url.empty()) {
                                    // Kept even when the order failed: the account exists at the CA now.
                                    std::string sealed = worker_.environment.keyring->seal(
                                        order->account_key->private_pem(), account_context(settings_.directory_url));
                                    std::vector<pg::Statement> statements;
                                    statements.push_back(pg::Statement{kActAsOperator, {}});
                                    statements.push_back(pg::Statement{
                                        "select flowgres.acme_account_save($1, $2, $3, $4)::text",
                                        {settings_.directory_url,
                                         settings_.email.empty() ? std::nullopt : std::optional<std::string>(settings_.email),
                                         sealed, outcome.account_url}});
                                    worker_.pool.run(std::move(statements), [](pg::JobResult &&saved) {
                                        if (saved.outcome != pg::JobResult::Outcome::ok)
                                            log_line(LogLevel::warn, "the ACME account was not kept", {{"error", saved.message}});
                                    });
                                }
                                record(order, outcome);
                            });
}

void Certificates::record(std::shared_ptr<Order> order, const acme::Outcome &outcome) {
    Json result(new_json_object());
    std::optional<long long> expires = outcome.ok ? acme::certificate_not_after(outcome.chain_pem) : std::nullopt;
    if (outcome.ok && expires) {
        json_object_set_new(result.get(), "issued", json_true());
        json_object_set_new(result.get(), "chain", json_string(outcome.chain_pem.c_str()));
        json_object_set_new(result.get(), "key_sealed",
                            json_string(worker_.environment.keyring->seal(outcome.key_pem, key_context(order->domain_id)).c_str()));
        json_object_set_new(result.get(), "expires_at", json_integer(*expires));
    } else {
        std::string error = outcome.ok ? "the CA's certificate is unreadable" : outcome.error;
        json_object_set_new(result.get(), "issued", json_false());
        json_object_set_new(result.get(), "error", json_string(utf8_prefix(error, 1000).c_str()));
    }
    std::vector<pg::Statement> statements;
    statements.push_back(order->actor_statement(worker_));
    statements.push_back(pg::Statement{kFinish, {order->domain_id, daemon_name(), dump_json(result.get())}});
    worker_.pool.run(std::move(statements), [this, order](pg::JobResult &&result) {
        bool recorded = result.outcome == pg::JobResult::Outcome::ok;
        if (!recorded)
            log_line(LogLevel::warn, "a certificate order was not recorded", {{"domain", order->domain}, {"error", result.message}});
        if (order->call && !order->async) {
            if (!recorded) return worker_.finish_database_error(order->call, result);
            return worker_.finish(order->call, success_response(200, result.values[1].value_or("null"), order->call->trace));
        }
        if (!order->call) next_in_sweep();
    });
}

void Certificates::answer_challenge(std::shared_ptr<Call> call, const std::string &token) {
    call->route_label = "acme_challenge";
    worker_.pool.run({pg::Statement{"select flowgres.acme_challenge_answer($1)", {token}}}, [this, call](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok) return worker_.finish_database_error(call, result);
        if (!result.values[0]) return worker_.finish_error(call, ErrorCode::NOT_FOUND, "no such challenge");
        http::Response response;
        response.body = *result.values[0];
        response.with_header("Content-Type", "application/octet-stream");
        worker_.finish(call, std::move(response));
    });
}

void Certificates::sweep() {
    if (sweeping_ || !started_) return;
    sweeping_ = true;
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(pg::Statement{"select flowgres.app_domain_cert_due($1::int)::text", {std::to_string(kSweepBatch)}});
    worker_.pool.run(std::move(statements), [this](pg::JobResult &&result) {
        due_.clear();
        if (result.outcome == pg::JobResult::Outcome::ok) {
            Json due = parse_json(result.values[1].value_or("[]"), "due certificates");
            size_t index;
            const json_t *entry;
            json_array_foreach(due.get(), index, entry) if (const char *id = json_string_value(json_object_get(entry, "id")))
                due_.emplace_back(id, json_is_true(json_object_get(entry, "renew")));
            std::reverse(due_.begin(), due_.end());  // the most overdue first (taken from the back)
        }
        next_in_sweep();
    });
}

// The sweep's orders one at a time: one claimed meanwhile by a caller or another daemon is
// skipped (STATE_CONFLICT).
void Certificates::next_in_sweep() {
    if (due_.empty() || !started_) {
        sweeping_ = false;
        due_.clear();
        return;
    }
    auto order = std::make_shared<Order>();
    std::tie(order->domain_id, order->renew) = due_.back();
    due_.pop_back();
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(pg::Statement{kBegin, {order->domain_id, daemon_name(), order->renew ? "true" : "false", std::nullopt}});
    worker_.pool.run(std::move(statements), [this, order](pg::JobResult &&result) {
        if (result.outcome != pg::JobResult::Outcome::ok) return next_in_sweep();
        order->domain = json_string_value(json_object_get(parse_json(result.values[1].value_or("{}"), "domain").get(), "domain")) ?: "";
        with_account(order);
    });
}

}  // namespace flowgres::daemon
