// Custom domains' certificates by SNI (domain_tls.hpp).
#include "domain_tls.hpp"

#include <chrono>
#include <mutex>

#include "flowgres/domain_name.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "flowgres/secret_box.hpp"
#include "log.hpp"

namespace flowgres::daemon {

using Clock = std::chrono::steady_clock;

namespace {
constexpr auto kRefusalLifetime = std::chrono::minutes(5);
constexpr auto kFailedLoadLifetime = std::chrono::seconds(5);  // the database did not answer
constexpr auto kCertificateLifetime = std::chrono::hours(1);
constexpr size_t kMaxNames = 100000;  // past it the cache starts again empty
}  // namespace

class DomainTlsCache {
public:
    struct Entry {
        std::shared_ptr<http::TlsServerContext> context;  // null: refused
        Clock::time_point expires;
    };

    std::optional<Entry> find(const std::string &name) {
        std::lock_guard lock(mutex_);
        auto found = entries_.find(name);
        if (found == entries_.end()) return std::nullopt;
        if (found->second.expires <= Clock::now()) {
            entries_.erase(found);
            return std::nullopt;
        }
        return found->second;
    }

    void put(const std::string &name, Entry entry) {
        std::lock_guard lock(mutex_);
        if (entries_.size() >= kMaxNames) entries_.clear();
        entries_[name] = std::move(entry);
    }

    void forget(const std::string &name) {
        std::lock_guard lock(mutex_);
        entries_.erase(name);
    }

private:
    std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;
};

DomainTlsCache &domain_tls_cache() {
    static DomainTlsCache cache;
    return cache;
}

void forget_domain_tls(const std::string &domain) { domain_tls_cache().forget(domain); }

DomainTls::DomainTls(WorkerContext &worker) : worker_(worker), platform_hosts_(host_list(worker.config.platform_host)) {}

http::CertificateSource::Found DomainTls::lookup(const std::string &name, SSL_CTX **context) {
    Found found = peek(name, context);
    if (found == Found::refused) worker_.metrics.count_tls_name_refused();
    return found;
}

http::CertificateSource::Found DomainTls::peek(const std::string &name, SSL_CTX **context) {
    std::string host = request_host(name);
    if (host.empty() || host == "localhost" || host.ends_with(".localhost")) return Found::platform;
    for (const std::string &platform : platform_hosts_)
        if (domain_within(host, platform)) return Found::platform;
    std::optional<DomainTlsCache::Entry> entry = domain_tls_cache().find(host);
    if (!entry) return Found::unknown;
    if (!entry->context) return Found::refused;
    *context = entry->context->get();
    SSL_CTX_up_ref(*context);  // the handshake's own reference: the cache may drop the name meanwhile
    return Found::certificate;
}

void DomainTls::load(const std::string &name, std::function<void()> done) {
    auto [waiting, first] = loading_.try_emplace(name);
    waiting->second.push_back(std::move(done));
    if (!first) return;  // this worker asks once per name, however many handshakes wait
    worker_.metrics.count_tls_certificate_load();
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(pg::Statement{"select flowgres.app_domain_tls($1)::text", {name}});
    worker_.pool.run(std::move(statements), [this, name](pg::JobResult &&result) {
        DomainTlsCache::Entry entry{nullptr, Clock::now() + kRefusalLifetime};
        if (result.outcome != pg::JobResult::Outcome::ok) {
            entry.expires = Clock::now() + kFailedLoadLifetime;
            log_line(LogLevel::warn, "a domain's certificate could not be read", {{"domain", name}, {"error", result.message}});
        } else if (result.values[1]) {
            Json found = parse_json(*result.values[1], "domain certificate");
            const char *status = json_string_value(json_object_get(found.get(), "status"));
            const char *chain = json_string_value(json_object_get(found.get(), "chain"));
            const char *sealed = json_string_value(json_object_get(found.get(), "key_sealed"));
            const char *id = json_string_value(json_object_get(found.get(), "id"));
            if (status && std::string_view(status) == "active" && chain && sealed && id && worker_.environment.keyring) {
                try {
                    std::string key = worker_.environment.keyring->open(sealed, std::string("domain_certificate:") + id);
                    std::string error;
                    if (auto context = http::TlsServerContext::from_pem(chain, key, error))
                        entry = {context, Clock::now() + kCertificateLifetime};
                    else
                        log_line(LogLevel::warn, "a domain's certificate does not load", {{"domain", name}, {"error", error}});
                } catch (const Error &error) {
                    log_line(LogLevel::warn, "a domain's certificate key does not open",
                             {{"domain", name}, {"error", error.message()}});
                }
            }
        }
        domain_tls_cache().put(name, entry);
        auto waiting = loading_.extract(name);
        for (auto &done : waiting.mapped()) done();
    });
}

}  // namespace flowgres::daemon
