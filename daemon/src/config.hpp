// flowgresd's configuration: one declarative table of keys (pgbouncer's CF_ABS is the model),
// read from a file (--config), then FLOWGRES_<KEY> environment variables, then --key=value
// flags; later sources win. A bad value stops start-up with a message naming the key.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace flowgres::daemon {

struct Config {
    std::string listen_host = "127.0.0.1";
    int64_t port = 8080;
    int64_t workers = 0;  // 0: one per core
    std::string database_url;
    int64_t db_pool_size = 4;  // connections per worker
    int64_t db_pipeline_depth = 16;
    int64_t db_queue_timeout_ms = 5000;
    int64_t db_statement_timeout_ms = 30000;
    std::string admin_key;
    int64_t max_body_bytes = 1024 * 1024;
    int64_t max_header_bytes = 16 * 1024;
    int64_t max_url_bytes = 8 * 1024;
    int64_t header_timeout_ms = 10000;
    int64_t body_timeout_ms = 10000;
    int64_t idle_timeout_ms = 60000;
    int64_t max_connections = 10000;
    int64_t shutdown_timeout_ms = 10000;
    std::string log_level = "info";
    bool log_requests = true;
    int64_t api_key_touch_interval_ms = 10000;
    int64_t idempotency_purge_interval_ms = 600000;
    int64_t run_timeout_ms = 300000;
    int64_t run_wait_ms = 30000;
    int64_t execution_heartbeat_interval_ms = 5000;
    int64_t max_concurrent_runs = 32;
    int64_t max_in_flight = 1024;
    std::string egress_allow;  // CIDRs http steps may reach although special-purpose
    int64_t max_http_response_bytes = 1024 * 1024;
    int64_t max_http_header_bytes = 64 * 1024;
    int64_t http_connect_timeout_ms = 5000;
    int64_t http_first_byte_timeout_ms = 30000;
    int64_t http_idle_timeout_ms = 30000;
    int64_t llm_connect_timeout_ms = 5000;
    int64_t llm_first_token_timeout_ms = 30000;
    int64_t llm_idle_timeout_ms = 30000;
    int64_t llm_total_timeout_ms = 120000;
    int64_t llm_max_attempts = 3;
    int64_t llm_max_backoff_ms = 10000;
    int64_t event_flush_ms = 200;
    int64_t sse_heartbeat_ms = 15000;
    std::string http_ca_file;  // extra CA certificates https steps trust (PEM), besides the system's
    std::string trusted_proxies;  // CIDRs whose forwarding headers name the client
    int64_t tls_port = 0;         // the HTTPS listener (0: none)
    std::string tls_cert_file;    // the platform's certificate chain (PEM)
    std::string tls_key_file;
    bool https_redirect = true;   // plain HTTP to a custom domain with a certificate → 308 to HTTPS
    int64_t hsts_max_age = 0;     // Strict-Transport-Security on HTTPS answers (0: none)
    std::string platform_host;    // the platform's own host names, comma-separated
    std::string acme_directory_url;  // the ACME CA's directory ("" = no certificates)
    std::string acme_ca_file;        // extra CAs (PEM) that verify the CA's HTTPS
    std::string acme_email;
    std::string dns_resolver;     // host:port custom domains are checked against ("" = /etc/resolv.conf)
    int64_t dns_timeout_ms = 5000;
    int64_t domain_check_interval_ms = 60000;
    std::string runtime_jwt_secret;
    std::string runtime_jwt_issuer;
    std::string runtime_jwt_audience;
    std::string captcha_secret;
    int64_t captcha_timeout_ms = 3000;
    std::string captcha_verify_url = "https://challenges.cloudflare.com/turnstile/v0/siteverify";
    std::string web_dir;  // the public page's files; "" → the source tree's web/
    std::string prompts_dir;  // the prompt templates; "" → the source tree's daemon/prompts
    int64_t generation_max_attempts = 3;
    std::string master_key_file;  // "id=key" lines sealing workspace database passwords
    std::string master_keys;      // the same entries inline (FLOWGRES_MASTER_KEYS)
    std::string backup_dir;       // where workspace database dumps go; "" → no backups
    int64_t backup_keep = 7;
    int64_t backup_interval_s = 0;  // scheduled backups; 0 → only on request
    int64_t app_role_sweep_ms = 10000;  // how often expired app database roles are looked for
    int64_t database_work_threads = 2;            // provisioner threads per worker (apart from libuv's)
    int64_t database_work_queue = 64;             // database work waiting past that → 503 OVERLOADED
    int64_t database_tool_timeout_s = 3600;       // pg_dump / pg_restore killed past it
    int64_t database_lock_timeout_ms = 30000;     // the provisioner's sessions and pg_dump wait no longer for a lock
    int64_t workspace_pool_size = 2;              // connections per workspace database, per worker
    int64_t workspace_pool_global_cap = 32;       // all workspace connections of one worker
    int64_t workspace_pool_idle_ms = 60000;
    int64_t workspace_pool_lifetime_ms = 1800000;
    int64_t db_step_timeout_ms = 5000;            // statement_timeout of database steps
    int64_t db_step_max_rows = 1000;              // rows a database step returns at most
};

struct ConfigError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct ConfigKeyInfo {
    std::string name;  // "db_pool_size"
    std::string type;  // "integer", "string", "boolean"
    std::string default_value;
    std::string description;
};
std::vector<ConfigKeyInfo> config_keys();

// argv without the program name. Returns false when --help was asked for (usage printed by
// the caller). Throws ConfigError naming the key at fault.
bool load_config(Config &config, const std::vector<std::string> &arguments, char **environment);

std::string usage_text();

}  // namespace flowgres::daemon
