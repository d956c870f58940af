// What the provisioner's work shares (work_order.hpp).
#include "work_order.hpp"

#include <chrono>
#include <ctime>
#include <random>
#include <thread>

#include "flowgres/crypto.hpp"

namespace flowgres::provisioner {

std::string text_member(const json_t *object, const char *key) {
    const json_t *value = json_object_get(object, key);
    if (json_is_string(value)) return json_string_value(value);
    if (json_is_integer(value)) return std::to_string(json_integer_value(value));
    throw Error(ErrorCode::INTERNAL_ERROR, std::string("the control plane's document lacks ") + key);
}

std::optional<std::string> optional_member(const json_t *object, const char *key) {
    const json_t *value = json_object_get(object, key);
    return json_is_string(value) ? std::optional<std::string>(json_string_value(value)) : std::nullopt;
}

WorkOrder parse_work_order(const std::string &document) {
    Json order = parse_json(document, "work order");
    const json_t *server = json_object_get(order.get(), "server");
    return WorkOrder{text_member(order.get(), "workspace_id"), text_member(order.get(), "previous_status"),
                     text_member(order.get(), "db_name"),      text_member(order.get(), "db_user"),
                     optional_member(order.get(), "secret_ref"), optional_member(order.get(), "pending_secret_ref"),
                     text_member(server, "id"),                text_member(server, "name"),
                     text_member(server, "host"),              text_member(server, "port"),
                     text_member(server, "admin_conninfo"),    optional_member(server, "admin_secret_ref")};
}

std::string secret_context(const std::string &workspace_id) { return "workspace_database:" + workspace_id; }

Parameters admin_parameters(const WorkOrder &order, const Keyring &keyring, const Options &options,
                            const std::string &database) {
    Parameters parameters{{"dbname", order.admin_conninfo},
                          {"connect_timeout", std::to_string(options.connect_timeout_seconds)},
                          {"options", "-c lock_timeout=" + std::to_string(options.lock_timeout_ms)},
                          {"application_name", "flowgres-provision"}};
    if (order.admin_secret_ref)
        parameters.push_back({"password", keyring.open(*order.admin_secret_ref, "database_server:" + order.server_id)});
    if (!database.empty()) parameters.push_back({"dbname", database});
    return parameters;
}

Parameters tenant_parameters(const WorkOrder &order, const std::string &password, const Options &options) {
    return {{"host", order.host},         {"port", order.port},
            {"dbname", order.db_name},    {"user", order.db_user},
            {"password", password},       {"connect_timeout", std::to_string(options.connect_timeout_seconds)},
            {"options", "-c lock_timeout=" + std::to_string(options.lock_timeout_ms)},
            {"application_name", "flowgres-provision"}};
}

void with_retries(const Options &options, int &attempts, const std::function<void()> &step) {
    std::chrono::milliseconds backoff = options.first_backoff;
    std::minstd_rand jitter(std::random_device{}());
    for (;;) {
        attempts++;
        try {
            step();
            return;
        } catch (const DatabaseError &error) {
            if (!error.may_pass() || attempts >= options.max_attempts) throw;
            if (options.on_retry) options.on_retry(attempts, error.what());
            auto wait = backoff + std::chrono::milliseconds(jitter() % (backoff.count() / 4 + 1));
            std::this_thread::sleep_for(wait);
            backoff = std::min(backoff * 2, options.max_backoff);
        }
    }
}

void create_unless_exists(BlockingConnection &admin, const std::string &sql, const char *duplicate_sqlstate) {
    try {
        admin.run(sql);
    } catch (const DatabaseError &error) {
        if (error.sqlstate() != duplicate_sqlstate) throw;  // another provisioner made it first
    }
}

void ensure_database(BlockingConnection &admin, const WorkOrder &order) {
    std::string database = admin.quote_identifier(order.db_name);
    std::string role = admin.quote_identifier(order.db_user);
    if (!admin.value("select 1 from pg_database where datname = $1", {order.db_name}))
        create_unless_exists(admin, "create database " + database, "42P04");
    admin.run("revoke connect, temporary on database " + database + " from public");
    admin.run("grant connect on database " + database + " to " + role);
    admin.run("alter role " + role + " in database " + database + " set search_path = " + kTenantSchema);
}

void prove_login(const WorkOrder &order, const std::string &password, const Options &options) {
    BlockingConnection tenant(tenant_parameters(order, password, options));
    if (tenant.value("select current_user") != order.db_user)
        throw DatabaseError("the tenant login did not act as " + order.db_user, "XX000");
}

std::string report(ControlPlane &control, const Options &options, const WorkOrder &order, const std::string &outcome) {
    return control.call("select flowgres.workspace_database_report($1::uuid, $2, $3::jsonb)::text",
                        {order.workspace_id, options.claimant, outcome});
}

void report_failure(ControlPlane &control, const Options &options, const WorkOrder &order, const std::exception &failure,
                    int attempts) {
    report(control, options, order,
           "{\"status\":\"failed\",\"error\":" + json_quote(failure.what()) + ",\"attempts\":" + std::to_string(std::max(attempts, 1)) + "}");
}

bool control_plane_down(const std::exception &failure) {
    auto *error = dynamic_cast<const Error *>(&failure);
    return error && error->code() == ErrorCode::DB_UNAVAILABLE;
}

[[noreturn]] void rethrow_as(const std::exception &failure, ErrorCode code, const std::string &what, const std::string &details_json) {
    if (auto *error = dynamic_cast<const Error *>(&failure)) throw *error;
    throw Error(code, what + ": " + failure.what(), details_json);
}

void require_keys(const Keyring &keyring) { keyring.sealing_key_id(); }

std::string new_password() { return random_token(32); }

std::string utc_timestamp(const char *format) {
    std::time_t now = std::time(nullptr);
    std::tm parts{};
    gmtime_r(&now, &parts);
    char text[40];
    std::strftime(text, sizeof text, format, &parts);
    return text;
}

std::string admin_password(const WorkOrder &order, const Keyring &keyring) {
    return order.admin_secret_ref ? keyring.open(*order.admin_secret_ref, "database_server:" + order.server_id) : "";
}

}  // namespace flowgres::provisioner
