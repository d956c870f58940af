// Custom domains' certificates by SNI (domain_tls.hpp).
#include "domain_tls.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <unordered_set>

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
constexpr auto kNamesLifetime = std::chrono::minutes(10);
constexpr auto kNamesRetry = std::chrono::seconds(5);  // after a list that could not be read
constexpr size_t kMaxNames = 100000;  // past it the cache starts again empty
}  // namespace

class DomainTlsCache {
public:
    struct Entry {
        std::shared_ptr<http::TlsServerContext> context;  // null: refused
        Clock::time_point expires;
    };

    // The name's certificate or refusal; without one, `candidate` says whether a handshake for
    // it is worth a database call: not when the list of names is read and does not have it.
    std::optional<Entry> find(const std::string &name, bool &candidate) {
        std::lock_guard lock(mutex_);
        auto found = entries_.find(name);
        if (found != entries_.end() && found->second.expires > Clock::now()) return found->second;
        if (found != entries_.end()) entries_.erase(found);
        candidate = !names_read_ || names_.count(name) > 0;
        return std::nullopt;
    }

    // What a read of the name (app_domain_tls, begun at `changes_seen`) found; `answered`:
    // the database answered (a failed read leaves the list as it is). A change of any domain
    // announced meanwhile may have made it stale: it is then kept for a few seconds only.
    void put(const std::string &name, Entry entry, uint64_t changes_seen, bool answered) {
        std::lock_guard lock(mutex_);
        if (changes_seen != changes_) {
            entry.expires = std::min(entry.expires, Clock::now() + kFailedLoadLifetime);
        } else if (answered) {
            if (entry.context) names_.insert(name);
            else names_.erase(name);
        }
        if (entries_.size() >= kMaxNames) entries_.clear();
        entries_[name] = std::move(entry);
    }

    void forget(const std::string &name) {
        std::lock_guard lock(mutex_);
        changes_++;
        if (name.empty()) {  // notifications were lost: read the list again, after any read begun before
            if (names_reading_) read_again_ = true;
            else names_due_ = 0;
            return;
        }
        entries_.erase(name);
        names_.insert(name);  // a candidate until its next read says otherwise
        if (names_reading_) changed_while_reading_.insert(name);
    }

    uint64_t changes() {
        std::lock_guard lock(mutex_);
        return changes_;
    }

    // Whether the caller should read the list now (it is due and nobody is reading it). Asked
    // at every handshake: not due is answered without the lock.
    bool begin_names_read() {
        if (ticks(Clock::now()) < names_due_.load(std::memory_order_relaxed)) return false;
        std::lock_guard lock(mutex_);
        if (names_reading_ || ticks(Clock::now()) < names_due_.load(std::memory_order_relaxed)) return false;
        names_reading_ = true;
        names_due_ = ticks(Clock::now() + kNamesLifetime);  // others skip it fast meanwhile
        changed_while_reading_.clear();
        return true;
    }

    // The list as read (nullopt: it could not be), with the names announced while it was read.
    void end_names_read(std::optional<std::unordered_set<std::string>> names) {
        std::lock_guard lock(mutex_);
        names_reading_ = false;
        names_due_ = read_again_ ? 0 : ticks(Clock::now() + (names ? kNamesLifetime : kNamesRetry));
        read_again_ = false;
        if (!names) return;
        names_ = std::move(*names);
        names_.insert(changed_while_reading_.begin(), changed_while_reading_.end());
        changed_while_reading_.clear();
        names_read_ = true;
    }

private:
    static Clock::rep ticks(Clock::time_point at) { return at.time_since_epoch().count(); }

    std::mutex mutex_;
    std::unordered_map<std::string, Entry> entries_;
    // The names that may be answered for: read from the database, plus names announced since.
    std::unordered_set<std::string> names_;
    bool names_read_ = false;
    bool names_reading_ = false;
    bool read_again_ = false;  // notifications were lost while the list was being read
    std::atomic<Clock::rep> names_due_{0};  // when the list is read next (0: at once)
    std::unordered_set<std::string> changed_while_reading_;
    uint64_t changes_ = 0;  // announcements so far
};

DomainTlsCache &domain_tls_cache() {
    static DomainTlsCache cache;
    return cache;
}

void forget_domain_tls(const std::string &domain) { domain_tls_cache().forget(domain); }

DomainTls::DomainTls(WorkerContext &worker) : worker_(worker), platform_hosts_(host_list(worker.config.platform_host)) {}

http::CertificateSource::Found DomainTls::lookup(const std::string &name, SSL_CTX **context) {
    load_names_if_due();
    Found found = peek(name, context);
    if (found == Found::refused) worker_.metrics.count_tls_name_refused();
    return found;
}

http::CertificateSource::Found DomainTls::peek(const std::string &name, SSL_CTX **context) {
    std::string host = request_host(name);
    if (host.empty() || host == "localhost" || host.ends_with(".localhost")) return Found::platform;
    for (const std::string &platform : platform_hosts_)
        if (domain_within(host, platform)) return Found::platform;
    bool candidate = false;
    std::optional<DomainTlsCache::Entry> entry = domain_tls_cache().find(host, candidate);
    if (!entry) return candidate ? Found::unknown : Found::refused;
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
    uint64_t changes_seen = domain_tls_cache().changes();
    worker_.pool.run(std::move(statements), [this, name, changes_seen](pg::JobResult &&result) {
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
        domain_tls_cache().put(name, entry, changes_seen, result.outcome == pg::JobResult::Outcome::ok);
        auto waiting = loading_.extract(name);
        for (auto &done : waiting.mapped()) done();
    });
}

void DomainTls::load_names_if_due() {
    if (!domain_tls_cache().begin_names_read()) return;
    worker_.metrics.count_tls_domain_list_load();
    std::vector<pg::Statement> statements;
    statements.push_back(pg::Statement{kActAsOperator, {}});
    statements.push_back(pg::Statement{"select flowgres.app_domain_tls_names()::text", {}});
    worker_.pool.run(std::move(statements), [](pg::JobResult &&result) {
        std::optional<std::unordered_set<std::string>> names;
        if (result.outcome == pg::JobResult::Outcome::ok && result.values[1]) {
            try {
                Json list = parse_json(*result.values[1], "domain names");
                names.emplace();
                size_t index;
                json_t *name;
                json_array_foreach(list.get(), index, name) {
                    if (const char *text = json_string_value(name)) names->insert(text);
                }
            } catch (const Error &error) {
                names.reset();
                log_line(LogLevel::warn, "the list of domain names does not parse", {{"error", error.message()}});
            }
        } else {
            log_line(LogLevel::warn, "the list of domain names could not be read", {{"error", result.message}});
        }
        domain_tls_cache().end_names_read(std::move(names));
    });
}

}  // namespace flowgres::daemon
