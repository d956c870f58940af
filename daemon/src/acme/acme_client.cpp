// The ACME order (acme_client.hpp): one object walks the steps, each answer starting the next.
#include "acme/acme_client.hpp"

#include "executor/http_client.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "weak_timer.hpp"

namespace flowgres::daemon::acme {
namespace {

constexpr size_t kMaxAnswerBytes = 1024 * 1024;

std::string header_of(const executor::HttpFetchResult &result, std::string_view name) {
    for (const auto &[key, value] : result.headers)
        if (key == name) return value;
    return "";
}

std::string text_of(const json_t *object, const char *member) {
    const char *text = json_string_value(json_object_get(object, member));
    return text ? text : "";
}

class Order : public std::enable_shared_from_this<Order> {
public:
    Order(uv_loop_t *loop, Settings settings, EcKey account_key, std::string account_url, std::string domain,
          PublishChallenge publish, std::function<void(Outcome)> done)
        : loop_(loop), settings_(std::move(settings)), account_key_(std::move(account_key)), domain_(std::move(domain)),
          publish_(std::move(publish)), done_(std::move(done)) {
        outcome_.account_url = std::move(account_url);
    }

    void start() {
        auto self = shared_from_this();
        fetch("GET", settings_.directory_url, "", [self](const executor::HttpFetchResult &result, Json body) {
            if (result.status != 200 || !json_is_object(body.get())) return self->fail("the ACME directory", result, body);
            self->directory_ = std::move(body);
            self->fetch("HEAD", text_of(self->directory_.get(), "newNonce"), "",
                        [self](const executor::HttpFetchResult &result, Json) {
                            if (self->nonce_.empty()) return self->fail("a nonce", result, Json());
                            self->outcome_.account_url.empty() ? self->new_account() : self->new_order();
                        });
        });
    }

private:
    using Then = std::function<void(const executor::HttpFetchResult &, Json)>;

    // One request; the answer's Replay-Nonce is kept for the next signed one.
    void fetch(const std::string &method, const std::string &url, const std::string &body, Then then,
               const char *accept = "application/json") {
        executor::HttpFetch fetch;
        fetch.method = method;
        fetch.url = url;
        fetch.body = body;
        fetch.tls = settings_.tls;
        fetch.max_redirects = 0;
        fetch.max_response_bytes = kMaxAnswerBytes;
        fetch.headers = {{"Accept", accept}, {"User-Agent", "flowgresd-acme"}};
        if (!body.empty()) fetch.headers.emplace_back("Content-Type", "application/jose+json");
        auto self = shared_from_this();
        active_ = executor::http_fetch(loop_, std::move(fetch), *settings_.egress,
                                       [self, then = std::move(then)](executor::HttpFetchResult result) {
                                           if (std::string nonce = header_of(result, "replay-nonce"); !nonce.empty())
                                               self->nonce_ = nonce;
                                           if (!result.ok) return self->finish_with("the CA could not be reached: " + result.message);
                                           Json body;
                                           if (!result.body.empty() && result.body.front() == '{') {
                                               try {
                                                   body = parse_json(result.body, "ACME answer");
                                               } catch (const flowgres::Error &) {
                                               }
                                           }
                                           then(result, std::move(body));
                                       });
    }

    // A signed POST (RFC 8555 §6.2); a badNonce refusal is retried once with the fresh nonce.
    void post(const std::string &url, const std::string &payload, Then then, const char *accept = "application/json",
              bool retried = false) {
        std::string body = signed_request(account_key_, url, nonce_, outcome_.account_url, payload);
        auto self = shared_from_this();
        fetch(
            "POST", url, body,
            [self, url, payload, then, accept, retried](const executor::HttpFetchResult &result, Json answer) {
                if (result.status == 400 && !retried &&
                    text_of(answer.get(), "type") == "urn:ietf:params:acme:error:badNonce")
                    return self->post(url, payload, then, accept, true);
                then(result, std::move(answer));
            },
            accept);
    }

    void new_account() {
        std::string payload = "{\"termsOfServiceAgreed\":true";
        if (!settings_.email.empty()) payload += ",\"contact\":[" + json_quote("mailto:" + settings_.email) + "]";
        payload += "}";
        auto self = shared_from_this();
        post(text_of(directory_.get(), "newAccount"), payload, [self](const executor::HttpFetchResult &result, Json body) {
            std::string location = header_of(result, "location");
            if ((result.status != 201 && result.status != 200) || location.empty())
                return self->fail("the account", result, body);
            self->outcome_.account_url = location;
            self->new_order();
        });
    }

    void new_order() {
        auto self = shared_from_this();
        post(text_of(directory_.get(), "newOrder"),
             "{\"identifiers\":[{\"type\":\"dns\",\"value\":" + json_quote(domain_) + "}]}",
             [self](const executor::HttpFetchResult &result, Json body) {
                 std::string location = header_of(result, "location");
                 if (result.status != 201 || location.empty() || !json_is_object(body.get()))
                     return self->fail("the order", result, body);
                 self->order_url_ = location;
                 self->finalize_url_ = text_of(body.get(), "finalize");
                 size_t index;
                 const json_t *url;
                 json_array_foreach(json_object_get(body.get(), "authorizations"), index, url) if (json_is_string(url))
                     self->authorizations_.emplace_back(json_string_value(url));
                 self->next_authorization();
             });
    }

    void next_authorization() {
        if (authorizations_.empty()) return finalize();
        std::string url = authorizations_.back();
        authorizations_.pop_back();
        polls_ = 0;
        auto self = shared_from_this();
        post(url, "", [self, url](const executor::HttpFetchResult &result, Json body) {
            if (result.status != 200 || !json_is_object(body.get())) return self->fail("an authorization", result, body);
            std::string status = text_of(body.get(), "status");
            if (status == "valid") return self->next_authorization();  // proven before, still valid
            if (status != "pending") return self->fail("an authorization (" + status + ")", result, body);
            size_t index;
            const json_t *challenge;
            json_array_foreach(json_object_get(body.get(), "challenges"), index, challenge) {
                if (text_of(challenge, "type") != "http-01") continue;
                std::string token = text_of(challenge, "token"), challenge_url = text_of(challenge, "url");
                std::string key_authorization = token + "." + self->account_key_.thumbprint();
                return self->publish_(token, key_authorization, [self, url, challenge_url](bool published, std::string error) {
                    if (!published) return self->finish_with("the challenge could not be published: " + error);
                    self->post(challenge_url, "{}", [self, url](const executor::HttpFetchResult &result, Json body) {
                        if (result.status != 200) return self->fail("the challenge", result, body);
                        self->poll_authorization(url);
                    });
                });
            }
            self->finish_with("the CA offers no http-01 challenge for " + self->domain_);
        });
    }

    void poll_authorization(const std::string &url) {
        auto self = shared_from_this();
        post(url, "", [self, url](const executor::HttpFetchResult &result, Json body) {
            std::string status = text_of(body.get(), "status");
            if (result.status == 200 && status == "valid") return self->next_authorization();
            if (result.status != 200 || status == "invalid" || status == "expired" || status == "revoked" ||
                status == "deactivated") {
                // The CA's reason is on the challenge it tried.
                size_t index;
                const json_t *challenge;
                json_array_foreach(json_object_get(body.get(), "challenges"), index, challenge) if (json_t *error =
                                                                                                         json_object_get(challenge, "error")) {
                    return self->finish_with("the http-01 challenge failed: " + text_of(error, "detail"));
                }
                return self->fail("the authorization (" + status + ")", result, body);
            }
            self->again(result, [url](Order &order) { order.poll_authorization(url); });
        });
    }

    void finalize() {
        auto self = shared_from_this();
        polls_ = 0;
        post(finalize_url_, "{\"csr\":\"" + csr_for(certificate_key_, domain_) + "\"}",
             [self](const executor::HttpFetchResult &result, Json body) {
                 if (result.status != 200) return self->fail("the finalize", result, body);
                 self->poll_order(body);
             });
    }

    void poll_order(const Json &order) {
        std::string status = text_of(order.get(), "status");
        if (status == "valid") return download(text_of(order.get(), "certificate"));
        if (status == "invalid") return finish_with("the CA refused the order for " + domain_);
        executor::HttpFetchResult none;
        again(none, [](Order &order) {
            auto self = order.shared_from_this();
            order.post(order.order_url_, "", [self](const executor::HttpFetchResult &result, Json body) {
                if (result.status != 200) return self->fail("the order", result, body);
                self->poll_order(body);
            });
        });
    }

    void download(const std::string &url) {
        auto self = shared_from_this();
        post(
            url, "",
            [self](const executor::HttpFetchResult &result, Json body) {
                if (result.status != 200 || result.body.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
                    return self->fail("the certificate", result, body);
                self->outcome_.ok = true;
                self->outcome_.chain_pem = result.body;
                self->outcome_.key_pem = self->certificate_key_.private_pem();
                self->finish();
            },
            "application/pem-certificate-chain");
    }

    // The next poll after the CA's Retry-After (bounded) or the interval; past max_polls, done.
    void again(const executor::HttpFetchResult &result, std::function<void(Order &)> poll) {
        if (++polls_ > settings_.max_polls) return finish_with("the CA did not finish within " +
                                                               std::to_string(settings_.max_polls) + " polls");
        uint64_t wait = settings_.poll_interval_ms;
        if (std::string retry = header_of(result, "retry-after"); !retry.empty() && retry.size() < 4 &&
                                                                   retry.find_first_not_of("0123456789") == std::string::npos)
            wait = std::min<uint64_t>(std::stoull(retry) * 1000, 10000);
        // Nothing else holds the order while it waits: the timer's callback does, until it fires.
        timer_ = WeakTimer<Order>::start(loop_, weak_from_this(), wait, [self = shared_from_this(), poll](Order &order) {
            WeakTimer<Order>::close(order.timer_);
            poll(order);
        });
    }

    void fail(const std::string &what, const executor::HttpFetchResult &result, const Json &body) {
        std::string detail = text_of(body.get(), "detail");
        finish_with(what + " failed (HTTP " + std::to_string(result.status) + ")" + (detail.empty() ? "" : ": " + detail));
    }

    void finish_with(std::string error) {
        outcome_.ok = false;
        outcome_.error = std::move(error);
        finish();
    }

    void finish() {
        if (finished_) return;
        finished_ = true;
        WeakTimer<Order>::close(timer_);
        auto done = std::move(done_);
        done(std::move(outcome_));
    }

    uv_loop_t *loop_;
    Settings settings_;
    EcKey account_key_;
    std::string domain_;
    PublishChallenge publish_;
    std::function<void(Outcome)> done_;
    Outcome outcome_;
    Json directory_;
    std::string nonce_;
    std::string order_url_, finalize_url_;
    std::vector<std::string> authorizations_;
    EcKey certificate_key_ = EcKey::generate();  // the certificate's own key, new for each order
    std::unique_ptr<executor::HttpClientCall> active_;
    WeakTimer<Order> *timer_ = nullptr;
    int polls_ = 0;
    bool finished_ = false;
};

}  // namespace

void order_certificate(uv_loop_t *loop, const Settings &settings, const EcKey &account_key, const std::string &account_url,
                       const std::string &domain, PublishChallenge publish, std::function<void(Outcome)> done) {
    auto order = std::make_shared<Order>(loop, settings, account_key, account_url, domain, std::move(publish), std::move(done));
    order->start();
}

}  // namespace flowgres::daemon::acme
