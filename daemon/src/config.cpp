// The configuration table and its three sources.
#include "config.hpp"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>

#include "forwarding.hpp"
#include "executor/egress.hpp"
#include "executor/tls_client.hpp"
#include "http/tls_server.hpp"
#include "flowgres/crypto.hpp"
#include "flowgres/secret_box.hpp"

namespace flowgres::daemon {
namespace {

enum class Type { string, integer, boolean };

struct Key {
    const char *name;
    Type type;
    std::string Config::*text = nullptr;
    int64_t Config::*number = nullptr;
    bool Config::*flag = nullptr;
    int64_t min = 0;
    int64_t max = 0;
    const char *description;
};

// Every key, its type, its bounds and what it does. Nothing reloads on SIGHUP yet: a change
// takes a restart, which the graceful shutdown makes cheap.
const std::vector<Key> &keys() {
    static const std::vector<Key> table = {
        {"listen_host", Type::string, &Config::listen_host, nullptr, nullptr, 0, 0, "IPv4 address to listen on"},
        {"port", Type::integer, nullptr, &Config::port, nullptr, 1, 65535, "TCP port"},
        {"workers", Type::integer, nullptr, &Config::workers, nullptr, 0, 256,
         "event-loop threads, each with its own SO_REUSEPORT socket and database pool; 0 = one per core"},
        {"database_url", Type::string, &Config::database_url, nullptr, nullptr, 0, 0,
         "libpq connection string of the control-plane database (required)"},
        {"db_pool_size", Type::integer, nullptr, &Config::db_pool_size, nullptr, 1, 200,
         "database connections per worker"},
        {"db_pipeline_depth", Type::integer, nullptr, &Config::db_pipeline_depth, nullptr, 1, 1000,
         "requests in flight on one database connection (pipeline mode)"},
        {"db_queue_timeout_ms", Type::integer, nullptr, &Config::db_queue_timeout_ms, nullptr, 1, 600000,
         "how long a request waits for a database connection before 503 DB_UNAVAILABLE"},
        {"db_statement_timeout_ms", Type::integer, nullptr, &Config::db_statement_timeout_ms, nullptr, 1, 3600000,
         "statement_timeout of the daemon's database sessions"},
        {"admin_key", Type::string, &Config::admin_key, nullptr, nullptr, 0, 0,
         "bootstrap admin key (fgk_ + 43 base64url characters): acts as the platform operator"},
        {"max_body_bytes", Type::integer, nullptr, &Config::max_body_bytes, nullptr, 1, 1 << 30,
         "largest request body (routes may set their own) → 413"},
        {"max_header_bytes", Type::integer, nullptr, &Config::max_header_bytes, nullptr, 1024, 1 << 20,
         "largest request line + header block → 431"},
        {"max_url_bytes", Type::integer, nullptr, &Config::max_url_bytes, nullptr, 256, 1 << 20,
         "longest request target → 414"},
        {"header_timeout_ms", Type::integer, nullptr, &Config::header_timeout_ms, nullptr, 100, 3600000,
         "time to receive a request's line and headers once it starts → 408 and close"},
        {"body_timeout_ms", Type::integer, nullptr, &Config::body_timeout_ms, nullptr, 100, 3600000,
         "the longest silence while a request body arrives (each chunk re-arms it) → 408 and close"},
        {"idle_timeout_ms", Type::integer, nullptr, &Config::idle_timeout_ms, nullptr, 100, 86400000,
         "keep-alive connection idle time before it is closed"},
        {"max_connections", Type::integer, nullptr, &Config::max_connections, nullptr, 1, 1000000,
         "open connections per worker; past it a connection gets 503 and is closed"},
        {"shutdown_timeout_ms", Type::integer, nullptr, &Config::shutdown_timeout_ms, nullptr, 0, 3600000,
         "on SIGTERM, how long in-flight requests may take before connections are cut"},
        {"log_level", Type::string, &Config::log_level, nullptr, nullptr, 0, 0, "debug, info, warn or error"},
        {"log_requests", Type::boolean, nullptr, nullptr, &Config::log_requests, 0, 0, "one JSON log line per request"},
        {"api_key_touch_interval_ms", Type::integer, nullptr, &Config::api_key_touch_interval_ms, nullptr, 100, 3600000,
         "how often the API keys used since the last time get their last_used_at written (one batched update)"},
        {"idempotency_purge_interval_ms", Type::integer, nullptr, &Config::idempotency_purge_interval_ms, nullptr, 1000,
         86400000, "how often expired idempotency keys are deleted"},
        {"run_timeout_ms", Type::integer, nullptr, &Config::run_timeout_ms, nullptr, 100, 86400000,
         "longest a workflow run may take before it fails with EXECUTION_TIMEOUT"},
        {"run_wait_ms", Type::integer, nullptr, &Config::run_wait_ms, nullptr, 0, 600000,
         "how long a synchronous run request waits for the result before answering 202 with the execution"},
        {"execution_heartbeat_interval_ms", Type::integer, nullptr, &Config::execution_heartbeat_interval_ms, nullptr,
         100, 3600000,
         "how often a running execution reports it is alive (keep it well under "
         "flowgres.execution_heartbeat_timeout_ms)"},
        {"max_concurrent_runs", Type::integer, nullptr, &Config::max_concurrent_runs, nullptr, 1, 100000,
         "queued executions one worker runs at once; more wait in the table for any daemon"},
        {"max_in_flight", Type::integer, nullptr, &Config::max_in_flight, nullptr, 1, 1000000,
         "runtime executions one worker admits or runs at once; past it, POST /runtime answers 503 OVERLOADED "
         "with Retry-After without asking the database"},
        {"egress_allow", Type::string, &Config::egress_allow, nullptr, nullptr, 0, 0,
         "comma-separated CIDRs that http steps may reach although loopback, private or link-local (default: none)"},
        {"max_http_response_bytes", Type::integer, nullptr, &Config::max_http_response_bytes, nullptr, 1024, 1 << 30,
         "largest response body an http step reads (HTTP_RESPONSE_TOO_LARGE past it)"},
        {"max_http_header_bytes", Type::integer, nullptr, &Config::max_http_header_bytes, nullptr, 1024, 1 << 24,
         "largest status line and header block an http step reads, at most 100 fields (HTTP_RESPONSE_TOO_LARGE past it)"},
        {"http_connect_timeout_ms", Type::integer, nullptr, &Config::http_connect_timeout_ms, nullptr, 1, 3600000,
         "an http step's time to resolve and connect (HTTP_TIMEOUT past it; the step's timeout is the ceiling)"},
        {"http_first_byte_timeout_ms", Type::integer, nullptr, &Config::http_first_byte_timeout_ms, nullptr, 1, 3600000,
         "an http step's wait for the first response byte once connected (HTTP_TIMEOUT; the step's timeout is the ceiling)"},
        {"http_idle_timeout_ms", Type::integer, nullptr, &Config::http_idle_timeout_ms, nullptr, 1, 3600000,
         "the longest silence between response bytes of an http step (HTTP_TIMEOUT; the step's timeout is the ceiling)"},
        {"llm_connect_timeout_ms", Type::integer, nullptr, &Config::llm_connect_timeout_ms, nullptr, 1, 3600000,
         "a model call's time to resolve and connect to its provider (LLM_TIMEOUT past it)"},
        {"llm_first_token_timeout_ms", Type::integer, nullptr, &Config::llm_first_token_timeout_ms, nullptr, 1, 3600000,
         "a model call's wait for its first token (LLM_TIMEOUT past it)"},
        {"llm_idle_timeout_ms", Type::integer, nullptr, &Config::llm_idle_timeout_ms, nullptr, 1, 3600000,
         "the longest silence between the pieces of a streamed answer (LLM_TIMEOUT past it)"},
        {"llm_total_timeout_ms", Type::integer, nullptr, &Config::llm_total_timeout_ms, nullptr, 1, 3600000,
         "the longest a model call may take, retries included; a provider's timeout_ms may only shorten it"},
        {"llm_max_attempts", Type::integer, nullptr, &Config::llm_max_attempts, nullptr, 1, 10,
         "attempts of one model call through one provider when it answers 429 or 5xx or cannot be reached"},
        {"llm_max_backoff_ms", Type::integer, nullptr, &Config::llm_max_backoff_ms, nullptr, 0, 600000,
         "the longest wait before a retry (a longer Retry-After fails the call at once, so a fallback is tried)"},
        {"event_flush_ms", Type::integer, nullptr, &Config::event_flush_ms, nullptr, 10, 60000,
         "how long a running execution's events may wait in memory before they are written for other daemons' streams"},
        {"sse_heartbeat_ms", Type::integer, nullptr, &Config::sse_heartbeat_ms, nullptr, 100, 600000,
         "how often an open event stream gets a comment line (keeps proxies from closing it; finds gone clients)"},
        {"trusted_proxies", Type::string, &Config::trusted_proxies, nullptr, nullptr, 0, 0,
         "CIDRs of proxies in front of flowgresd: from them, Forwarded / X-Forwarded-For names the client (default: "
         "none)"},
        {"tls_port", Type::integer, nullptr, &Config::tls_port, nullptr, 0, 65535,
         "TCP port of the HTTPS listener, next to the plain one (0: none; needs tls_cert_file and tls_key_file)"},
        {"tls_cert_file", Type::string, &Config::tls_cert_file, nullptr, nullptr, 0, 0,
         "the platform's certificate chain (PEM) the HTTPS listener presents"},
        {"tls_key_file", Type::string, &Config::tls_key_file, nullptr, nullptr, 0, 0,
         "the private key (PEM) of tls_cert_file"},
        {"https_redirect", Type::boolean, nullptr, nullptr, &Config::https_redirect, 0, 0,
         "with tls_port: a plain HTTP request to a custom domain that has its certificate is answered 308 to the same "
         "address over HTTPS (ACME's HTTP-01 answers excepted)"},
        {"hsts_max_age", Type::integer, nullptr, &Config::hsts_max_age, nullptr, 0, 63072000,
         "with tls_port: seconds of Strict-Transport-Security on every HTTPS answer (0: no header)"},
        {"platform_host", Type::string, &Config::platform_host, nullptr, nullptr, 0, 0,
         "the platform's own host names, comma-separated (as flowgres.platform_hosts): requests for them, for IP "
         "addresses and for localhost never go to a custom domain's app"},
        {"acme_directory_url", Type::string, &Config::acme_directory_url, nullptr, nullptr, 0, 0,
         "the ACME CA's directory URL custom domains' certificates are ordered from (default: none; no certificates)"},
        {"acme_ca_file", Type::string, &Config::acme_ca_file, nullptr, nullptr, 0, 0,
         "PEM file of CAs that verify the ACME CA's HTTPS, besides the system's"},
        {"acme_email", Type::string, &Config::acme_email, nullptr, nullptr, 0, 0,
         "the contact of the ACME account (default: none)"},
        {"dns_resolver", Type::string, &Config::dns_resolver, nullptr, nullptr, 0, 0,
         "host:port of the DNS server custom domains' TXT and CNAME records are checked against (default: the "
         "system's, /etc/resolv.conf)"},
        {"dns_timeout_ms", Type::integer, nullptr, &Config::dns_timeout_ms, nullptr, 100, 60000,
         "how long one DNS question of a domain check may take (two tries within it)"},
        {"domain_check_interval_ms", Type::integer, nullptr, &Config::domain_check_interval_ms, nullptr, 100, 86400000,
         "how often one daemon looks for custom domains whose next DNS check or certificate order is due (backed off "
         "per domain)"},
        {"runtime_jwt_secret", Type::string, &Config::runtime_jwt_secret, nullptr, nullptr, 0, 0,
         "HS256 secret of the JWTs that sign visitors in to public_auth and private apps (default: none accepted)"},
        {"runtime_jwt_issuer", Type::string, &Config::runtime_jwt_issuer, nullptr, nullptr, 0, 0,
         "the iss those JWTs must carry (default: any)"},
        {"runtime_jwt_audience", Type::string, &Config::runtime_jwt_audience, nullptr, nullptr, 0, 0,
         "the aud those JWTs must carry (default: any)"},
        {"captcha_secret", Type::string, &Config::captcha_secret, nullptr, nullptr, 0, 0,
         "the CAPTCHA provider's secret key (default: none, every token fails)"},
        {"captcha_timeout_ms", Type::integer, nullptr, &Config::captcha_timeout_ms, nullptr, 100, 60000,
         "how long the CAPTCHA provider may take to connect, to answer, or between bytes (fails closed past it)"},
        {"captcha_verify_url", Type::string, &Config::captcha_verify_url, nullptr, nullptr, 0, 0,
         "the provider's siteverify endpoint (Cloudflare Turnstile's by default)"},
        {"prompts_dir", Type::string, &Config::prompts_dir, nullptr, nullptr, 0, 0,
         "the prompt templates app generation sends models (default: the source tree's daemon/prompts)"},
        {"generation_max_attempts", Type::integer, nullptr, &Config::generation_max_attempts, nullptr, 1, 10,
         "answers a model may give for one app generation: the first and its repairs (VALIDATION_FAILED after)"},
        {"web_dir", Type::string, &Config::web_dir, nullptr, nullptr, 0, 0,
         "the directory of the public page's files (page.html, page.js, …; default: web/ of the source tree)"},
        {"master_key_file", Type::string, &Config::master_key_file, nullptr, nullptr, 0, 0,
         "a file (mode 600) of master keys, one id=key per line, the first sealing: workspace database passwords "
         "are sealed with them (default: none, database routes answer SECRETS_NOT_CONFIGURED)"},
        {"master_keys", Type::string, &Config::master_keys, nullptr, nullptr, 0, 0,
         "the same entries inline, comma-separated, when there is no master_key_file (set it as FLOWGRES_MASTER_KEYS, "
         "not as a flag other users can read in the process list)"},
        {"backup_dir", Type::string, &Config::backup_dir, nullptr, nullptr, 0, 0,
         "the directory workspace database backups are written to (pg_dump custom format, mode 600; "
         "default: none, backups answer BACKUP_FAILED)"},
        {"backup_keep", Type::integer, nullptr, &Config::backup_keep, nullptr, 1, 1000,
         "completed backups kept per workspace; older ones are deleted"},
        {"backup_interval_s", Type::integer, nullptr, &Config::backup_interval_s, nullptr, 0, 31536000,
         "back up every ready workspace database whose newest backup is older than this (0: only on request)"},
        {"database_work_threads", Type::integer, nullptr, &Config::database_work_threads, nullptr, 1, 64,
         "threads per worker for workspace-database work (the provisioner, pg_dump, pg_restore), apart from libuv's "
         "thread pool, which resolves http steps' host names"},
        {"database_work_queue", Type::integer, nullptr, &Config::database_work_queue, nullptr, 1, 100000,
         "workspace-database work that may wait for a thread; past it requests answer 503 OVERLOADED"},
        {"database_lock_timeout_ms", Type::integer, nullptr, &Config::database_lock_timeout_ms, nullptr, 10, 3600000,
         "how long the provisioner's sessions and pg_dump wait for a lock in a workspace database before they give up"},
        {"database_tool_timeout_s", Type::integer, nullptr, &Config::database_tool_timeout_s, nullptr, 1, 86400,
         "pg_dump or pg_restore running longer is killed and its backup or restore fails"},
        {"workspace_pool_size", Type::integer, nullptr, &Config::workspace_pool_size, nullptr, 1, 100,
         "connections to one workspace database per worker: a busy workspace queues behind its own"},
        {"workspace_pool_global_cap", Type::integer, nullptr, &Config::workspace_pool_global_cap, nullptr, 1, 10000,
         "connections to all workspace databases per worker; the least recently used idle pool makes room"},
        {"workspace_pool_idle_ms", Type::integer, nullptr, &Config::workspace_pool_idle_ms, nullptr, 100, 86400000,
         "a workspace pool unused this long is closed"},
        {"workspace_pool_lifetime_ms", Type::integer, nullptr, &Config::workspace_pool_lifetime_ms, nullptr, 1000, 604800000,
         "a workspace pool older than this is replaced when next idle"},
        {"db_step_timeout_ms", Type::integer, nullptr, &Config::db_step_timeout_ms, nullptr, 1, 3600000,
         "statement_timeout of database steps (NODE_TIMEOUT past it)"},
        {"db_step_max_rows", Type::integer, nullptr, &Config::db_step_max_rows, nullptr, 1, 100000,
         "rows a database step returns at most, whatever its limit"},
        {"app_role_sweep_ms", Type::integer, nullptr, &Config::app_role_sweep_ms, nullptr, 100, 86400000,
         "how often expired app database roles are looked for and revoked (their passwords stop at expiry anyway)"},
        {"http_ca_file", Type::string, &Config::http_ca_file, nullptr, nullptr, 0, 0,
         "a PEM file of extra CA certificates https steps trust, besides the system's (default: none)"},
    };
    return table;
}

const Key *find_key(const std::string &name) {
    for (const Key &key : keys())
        if (name == key.name) return &key;
    return nullptr;
}

void assign(Config &config, const Key &key, const std::string &value, const std::string &source) {
    auto problem = [&](const std::string &what) {
        return ConfigError(std::string(key.name) + " (" + source + "): " + what);
    };
    switch (key.type) {
        case Type::string:
            config.*key.text = value;
            break;
        case Type::integer: {
            errno = 0;
            char *end = nullptr;
            long long number = std::strtoll(value.c_str(), &end, 10);
            if (value.empty() || *end != '\0' || errno != 0) throw problem("\"" + value + "\" is not an integer");
            if (number < key.min || number > key.max)
                throw problem(std::to_string(number) + " is outside " + std::to_string(key.min) + ".." +
                              std::to_string(key.max));
            config.*key.number = number;
            break;
        }
        case Type::boolean:
            if (value == "true" || value == "on" || value == "1")
                config.*key.flag = true;
            else if (value == "false" || value == "off" || value == "0")
                config.*key.flag = false;
            else
                throw problem("\"" + value + "\" is not a boolean (true/false)");
            break;
    }
}

std::string trim(const std::string &text) {
    size_t start = text.find_first_not_of(" \t\r");
    size_t end = text.find_last_not_of(" \t\r");
    return start == std::string::npos ? "" : text.substr(start, end - start + 1);
}

// `key = value` lines; '#' starts a comment; values may be single- or double-quoted.
void read_file(Config &config, const std::string &path) {
    std::ifstream file(path);
    if (!file) throw ConfigError("config: cannot read " + path);
    std::string line;
    int number = 0;
    while (std::getline(file, line)) {
        number++;
        std::string text = trim(line);
        if (text.empty() || text[0] == '#') continue;
        size_t equals = text.find('=');
        std::string where = path + ":" + std::to_string(number);
        if (equals == std::string::npos) throw ConfigError(where + ": expected key = value");
        std::string name = trim(text.substr(0, equals));
        std::string value = trim(text.substr(equals + 1));
        if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0])
            value = value.substr(1, value.size() - 2);
        else if (size_t hash = value.find(" #"); hash != std::string::npos)
            value = trim(value.substr(0, hash));
        const Key *key = find_key(name);
        if (!key) throw ConfigError(name + " (" + where + "): unknown key");
        assign(config, *key, value, where);
    }
}

void validate(const Config &config) {
    if (config.database_url.empty())
        throw ConfigError("database_url: is required (config file, FLOWGRES_DATABASE_URL or --database_url)");
    if (!config.admin_key.empty() && !looks_like_api_key(config.admin_key))
        throw ConfigError(
            "admin_key: must be fgk_ followed by 43 base64url characters (make one with `flowgresd --new-key`)");
    if (config.log_level != "debug" && config.log_level != "info" && config.log_level != "warn" &&
        config.log_level != "error")
        throw ConfigError("log_level: must be debug, info, warn or error");
    try {
        executor::EgressPolicy::parse(config.egress_allow);
    } catch (const std::invalid_argument &error) {
        throw ConfigError(std::string("egress_allow: ") + error.what());
    }
    if (std::string error; !executor::TlsClientContext::create(config.http_ca_file, error)) throw ConfigError(error);
    if (config.tls_port > 0) {
        if (config.tls_port == config.port) throw ConfigError("tls_port: must differ from port");
        if (config.tls_cert_file.empty() || config.tls_key_file.empty())
            throw ConfigError("tls_port: the HTTPS listener needs tls_cert_file and tls_key_file");
        if (std::string error; !http::TlsServerContext::create(config.tls_cert_file, config.tls_key_file, error))
            throw ConfigError(error);
    }
    if (config.workspace_pool_global_cap < config.workspace_pool_size)
        throw ConfigError("workspace_pool_global_cap: must be at least workspace_pool_size, or no workspace pool could open");
    if (config.backup_interval_s > 0 && config.backup_dir.empty())
        throw ConfigError("backup_interval_s: scheduled backups need backup_dir");
    try {
        Keyring::load(config.master_key_file, config.master_keys.empty() ? nullptr : config.master_keys.c_str());
    } catch (const std::invalid_argument &error) {
        throw ConfigError(std::string(config.master_key_file.empty() ? "master_keys: " : "master_key_file: ") + error.what());
    }
    // Visitor JWTs: a short HS256 secret falls to a brute force, and a token without an
    // audience check is good at any service that shares the secret.
    if (!config.runtime_jwt_secret.empty() && config.runtime_jwt_secret.size() < 32)
        throw ConfigError("runtime_jwt_secret: must be at least 32 bytes");
    if (!config.runtime_jwt_secret.empty() && config.runtime_jwt_audience.empty())
        throw ConfigError("runtime_jwt_audience: is required with runtime_jwt_secret");
    try {
        CidrList::parse(config.trusted_proxies);
    } catch (const std::invalid_argument &error) {
        throw ConfigError(std::string("trusted_proxies: ") + error.what());
    }
    if (config.listen_host.find_first_not_of("0123456789.") != std::string::npos)
        throw ConfigError("listen_host: must be an IPv4 address such as 127.0.0.1");
}

}  // namespace

std::vector<ConfigKeyInfo> config_keys() {
    Config defaults;
    std::vector<ConfigKeyInfo> out;
    for (const Key &key : keys()) {
        ConfigKeyInfo info{key.name, "", "", key.description};
        switch (key.type) {
            case Type::string:
                info.type = "string";
                info.default_value = defaults.*key.text;
                break;
            case Type::integer:
                info.type = "integer";
                info.default_value = std::to_string(defaults.*key.number);
                break;
            case Type::boolean:
                info.type = "boolean";
                info.default_value = defaults.*key.flag ? "true" : "false";
                break;
        }
        out.push_back(info);
    }
    return out;
}

std::string usage_text() {
    std::ostringstream out;
    out << "usage: flowgresd [--config FILE] [--KEY=VALUE ...]\n"
           "       flowgresd --new-key      print a fresh API key (for admin_key)\n\n"
           "Every key may be set in the file (key = value), as FLOWGRES_<KEY> in the environment,\n"
           "or as --key=value; later sources win (file < environment < flags).\n\nkeys:\n";
    for (const auto &key : config_keys()) {
        out << "  " << key.name << " (" << key.type;
        if (!key.default_value.empty()) out << ", default " << key.default_value;
        out << ")\n      " << key.description << "\n";
    }
    return out.str();
}

bool load_config(Config &config, const std::vector<std::string> &arguments, char **environment) {
    // Flags are gathered first, so --config names the file before the file is read.
    std::string config_path;
    std::vector<std::pair<std::string, std::string>> flags;
    for (size_t i = 0; i < arguments.size(); i++) {
        const std::string &argument = arguments[i];
        if (argument == "--help" || argument == "-h") return false;
        if (argument.rfind("--", 0) != 0) throw ConfigError(argument + ": unexpected argument (flags are --key=value)");
        std::string name = argument.substr(2), value;
        size_t equals = name.find('=');
        if (equals != std::string::npos) {
            value = name.substr(equals + 1);
            name = name.substr(0, equals);
        } else {
            if (i + 1 >= arguments.size()) throw ConfigError(name + " (flag): needs a value");
            value = arguments[++i];
        }
        for (char &c : name)
            if (c == '-') c = '_';
        if (name == "config")
            config_path = value;
        else
            flags.emplace_back(name, value);
    }
    if (config_path.empty())
        if (const char *path = std::getenv("FLOWGRES_CONFIG")) config_path = path;
    if (!config_path.empty()) read_file(config, config_path);

    for (char **entry = environment; entry && *entry; entry++) {
        std::string text = *entry;
        if (text.rfind("FLOWGRES_", 0) != 0) continue;
        size_t equals = text.find('=');
        std::string name = text.substr(9, equals - 9);
        for (char &c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (name == "config") continue;
        // The environment carries other tools' FLOWGRES_* too (make run's FLOWGRES_PG_PORT):
        // only names of keys are read from it.
        if (const Key *key = find_key(name))
            assign(config, *key, text.substr(equals + 1), "FLOWGRES_" + text.substr(9, equals - 9));
    }
    for (const auto &[name, value] : flags) {
        const Key *key = find_key(name);
        if (!key) throw ConfigError(name + " (flag): unknown key; see --help");
        assign(config, *key, value, "flag");
    }
    validate(config);
    return true;
}

}  // namespace flowgres::daemon
