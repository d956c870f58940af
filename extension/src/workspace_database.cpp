// Workspace databases in the control plane (README "Workspace databases", seed §11, §20.1, §26, §40.1): the server
// pool, placement, the claim a provisioner holds while it works on a workspace's database, its
// report, and what members may read. The work on the database server itself (roles, grants,
// passwords) is the provisioner's (provisioner/): this file never sees a password or a master
// key, only sealed secrets it stores and hands to the service.
#include "workspace_database.hpp"

#include "audit.hpp"
#include "boundary.hpp"
#include "documents.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/fields.hpp"
#include "flowgres/json.hpp"
#include "flowgres/permissions.hpp"
#include "functions.hpp"
#include "permission.hpp"
#include "quota.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

// What a workspace database needs of the db_storage quota before it exists (seed §20.1): an
// empty PostgreSQL 15 database takes about 7.5 MiB, so a quota below 16 MiB cannot hold one.
constexpr long long kDatabaseReserveBytes = 16LL * 1024 * 1024;

// Platform-level audit rows (the server pool) belong to no workspace; they are filed under
// the nil id, which no workspace has and row-level security shows to nobody but DBAs.

constexpr const char *kDatabaseDocumentSql = R"sql(
    select jsonb_build_object(
        'workspace_id', d.workspace_id, 'status', d.status, 'server', s.name, 'host', d.host, 'port', d.port,
        'db_name', d.db_name, 'db_user', d.db_user, 'schema_version', d.schema_version, 'size_bytes', d.size_bytes,
        'attempts', d.attempts,
        'last_error', case when $2::boolean then d.last_error
                           when d.last_error is not null then 'the last operation failed; the operator can see why' end,
        'cleanup_pending', d.cleanup_pending,
        'operation_in_progress', case when d.claimed_until > now() then d.operation end,
        'claimed_until', case when d.claimed_until > now() then d.claimed_until end,
        'secret_key_id', nullif(split_part(d.secret_ref, ':', 3), ''),
        'provisioned_at', d.provisioned_at, 'secret_rotated_at', d.secret_rotated_at,
        'created_at', d.created_at, 'updated_at', d.updated_at)::text
    from flowgres.workspace_databases d join flowgres.database_servers s on s.id = d.server_id
    where d.workspace_id = $1::uuid)sql";

// The provisioner's error text names pool servers, roles and paths: the operator reads it,
// members learn that the last operation failed.
std::string database_document(const std::string &workspace_id) {
    bool operator_view = require_actor().is_system();
    auto document = query_value(kDatabaseDocumentSql, {workspace_id, operator_view ? "true" : "false"});
    if (!document)
        throw Error(ErrorCode::WORKSPACE_DATABASE_NOT_FOUND, "workspace " + workspace_id + " has no database",
                    "{\"workspace_id\":" + json_quote(workspace_id) + "}");
    return *document;
}

constexpr const char *kServerDocumentSql = R"sql(
    select jsonb_build_object(
        'id', s.id, 'name', s.name, 'host', s.host, 'port', s.port, 'admin_conninfo', s.admin_conninfo,
        'has_admin_secret', s.admin_secret_ref is not null, 'max_databases', s.max_databases, 'status', s.status,
        'databases', (select count(*) from flowgres.workspace_databases d where d.server_id = s.id),
        'created_at', s.created_at, 'updated_at', s.updated_at)
    from flowgres.database_servers s)sql";

std::string server_document(const std::string &name) {
    auto document = query_value(std::string(kServerDocumentSql) + " where s.name = $1", {name});
    if (!document) throw Error(ErrorCode::DATABASE_SERVER_NOT_FOUND, "no database server is named " + json_quote(name));
    return *document;
}

void check_server_name(std::string_view field, std::string_view name) {
    if (name.empty() || name.size() > 63) throw field_error(field, "must be 1 to 63 characters");
    for (size_t i = 0; i < name.size(); i++) {
        char c = name[i];
        bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
        if (!allowed) throw field_error(field, "may contain only lowercase letters, digits and inner hyphens");
    }
}

void check_host(std::string_view field, std::string_view host) {
    if (host.empty() || host.size() > 255) throw field_error(field, "must be 1 to 255 characters");
    for (char c : host)
        if (static_cast<unsigned char>(c) <= ' ' || c == '\'' || c == '"' || c == '\\' || c == '=')
            throw field_error(field, "must be a host name, an IP address or a socket directory");
}

long long check_port(std::string_view field, long long port) {
    if (port < 1 || port > 65535) throw field_error(field, "must be from 1 to 65535");
    return port;
}

// A password in admin_conninfo would sit in this table in plain text: it belongs in
// ~/.pgpass, or sealed in admin_secret_ref.
void check_admin_conninfo(std::string_view conninfo) {
    if (conninfo.empty() || conninfo.size() > 2000) throw field_error("admin_conninfo", "must be 1 to 2000 characters");
    std::string lower;
    for (char c : conninfo) lower += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    bool url = lower.rfind("postgres://", 0) == 0 || lower.rfind("postgresql://", 0) == 0;
    bool url_password = url && lower.find('@') != std::string::npos &&
                        lower.substr(0, lower.find('@')).find(':', lower.find("//") + 2) != std::string::npos;
    if (lower.find("password") != std::string::npos || url_password)
        throw field_error("admin_conninfo", "must not hold a password: use ~/.pgpass or a sealed admin_secret_ref");
}

void check_sealed(std::string_view field, std::string_view sealed) {
    if (sealed.rfind("enc:v1:", 0) != 0 || sealed.size() > 4096)
        throw field_error(field, "must be a sealed secret (enc:v1:<key id>:<nonce>:<ciphertext>)");
}

// Picks the server for a new database: the named one, or the active server with the fewest
// workspace databases that has room. Serialised, so two placements never both take a last slot
// (spi.hpp: lock, then count).
struct PlacedServer {
    std::string id, host, port;
};

PlacedServer place_database(const std::optional<std::string> &pinned) {
    query("select pg_advisory_xact_lock(hashtext('flowgres.database_placement'))");
    constexpr const char *candidates = R"sql(
        select s.id::text, s.host, s.port::text, s.status, s.max_databases::text,
               (select count(*) from flowgres.workspace_databases d where d.server_id = s.id)::text
        from flowgres.database_servers s)sql";
    if (pinned) {
        auto rows = query_latest_snapshot(std::string(candidates) + " where s.name = $1", {*pinned});
        if (rows.rows.empty()) throw Error(ErrorCode::DATABASE_SERVER_NOT_FOUND, "no database server is named " + json_quote(*pinned));
        const SqlRow &row = rows.rows[0];
        if (row.text(3) != "active" || (row[4] && std::stoll(*row[4]) <= std::stoll(row.text(5))))
            throw Error(ErrorCode::NO_DATABASE_SERVER, "database server " + json_quote(*pinned) + " takes no new databases",
                        "{\"server\":" + json_quote(*pinned) + ",\"status\":" + json_quote(row.text(3)) + "}");
        return {row.text(0), row.text(1), row.text(2)};
    }
    auto rows = query_latest_snapshot(std::string(candidates) + R"sql(
        where s.status = 'active'
          and (s.max_databases is null
               or s.max_databases > (select count(*) from flowgres.workspace_databases d where d.server_id = s.id))
        order by (select count(*) from flowgres.workspace_databases d where d.server_id = s.id), s.created_at, s.name
        limit 1)sql");
    if (rows.rows.empty())
        throw Error(ErrorCode::NO_DATABASE_SERVER, "no active database server has room for another database");
    return {rows.rows[0].text(0), rows.rows[0].text(1), rows.rows[0].text(2)};
}

// seed §20.1: a workspace whose db_storage quota cannot hold an empty database gets none.
void check_storage_quota(const std::string &workspace_id) {
    WorkspaceLimits limits = workspace_limits(workspace_id);
    if (!limits.db_storage_quota || *limits.db_storage_quota >= kDatabaseReserveBytes) return;
    throw Error(ErrorCode::QUOTA_EXCEEDED,
                "the workspace's db_storage quota (" + std::to_string(*limits.db_storage_quota) +
                    " bytes) cannot hold a database (" + std::to_string(kDatabaseReserveBytes) + " bytes)",
                "{\"exceeded\":\"db_storage\",\"plan\":" + json_quote(limits.plan) +
                    ",\"quota\":" + std::to_string(*limits.db_storage_quota) +
                    ",\"used\":0,\"needed\":" + std::to_string(kDatabaseReserveBytes) +
                    ",\"reset_at\":null,\"retry_after_seconds\":null}");
}

std::string compact_workspace_id(const std::string &workspace_id) {
    std::string out;
    for (char c : workspace_id)
        if (c != '-') out += c;
    return out;
}

}  // namespace

void check_claimant(std::string_view claimant) {
    if (claimant.empty() || claimant.size() > 200) throw field_error("claimant", "must be 1 to 200 characters");
}

// The row under lock, held by `claimant`: else STATE_CONFLICT (the lease ran out and another
// provisioner took the claim over, or there never was one).
SqlRow require_claim(const std::string &workspace_id, const std::string &claimant) {
    auto rows = query(R"sql(
        select status, claimed_by, operation from flowgres.workspace_databases
        where workspace_id = $1::uuid for update)sql",
                      {workspace_id});
    if (rows.rows.empty())
        throw Error(ErrorCode::WORKSPACE_DATABASE_NOT_FOUND, "workspace " + workspace_id + " has no database");
    if (rows.rows[0][1] != claimant)
        throw Error(ErrorCode::STATE_CONFLICT, "the claim on workspace " + workspace_id + "'s database is not held by " + claimant,
                    "{\"claimed_by\":" + (rows.rows[0][1] ? json_quote(*rows.rows[0][1]) : std::string("null")) + "}");
    return rows.rows[0];
}

namespace {

// The runtime events of a claim's end, by operation.
std::string success_event(const std::string &operation) {
    if (operation == "rotate_secret") return "db.secret.rotated";
    if (operation == "backup") return "db.backed_up";
    if (operation == "restore") return "db.restored";
    if (operation == "migrate") return "db.migrated";
    if (operation == "rollback") return "db.rolled_back";
    return "db.provision.succeeded";
}

std::string failure_event(const std::string &operation) {
    if (operation == "rotate_secret") return "db.secret.rotate_failed";
    if (operation == "backup") return "db.backup.failed";
    if (operation == "restore") return "db.restore.failed";
    if (operation == "migrate") return "db.migrate.failed";
    if (operation == "rollback") return "db.rollback.failed";
    return "db.provision.failed";
}

}  // namespace

SqlValue database_server_add(CallArgs &args) {
    std::string name = args.required_text(0, "name");
    std::string host = args.required_text(1, "host");
    long long port = args.integer(2).value_or(5432);
    std::string conninfo = args.required_text(3, "admin_conninfo");
    std::optional<long long> max_databases = args.integer(4);
    check_server_name("name", name);
    check_host("host", host);
    check_port("port", port);
    check_admin_conninfo(conninfo);
    if (max_databases && *max_databases < 1) throw field_error("max_databases", "must be at least 1, or null for no limit");
    Actor actor = require_system_actor();
    if (query_value("select 1 from flowgres.database_servers where name = $1", {name}))
        throw field_error("name", "is taken by another server");
    query(R"sql(
        insert into flowgres.database_servers (name, host, port, admin_conninfo, max_databases)
        values ($1, $2, $3::integer, $4, $5::integer))sql",
          {name, host, std::to_string(port), conninfo, max_databases ? SqlParam(std::to_string(*max_databases)) : SqlParam()});
    write_audit(actor, kPlatformWorkspaceId, "database_server.add", "database_server", name,
                "{\"host\":" + json_quote(host) + ",\"port\":" + std::to_string(port) + "}");
    return SqlValue::jsonb(server_document(name));
}

SqlValue database_server_update(CallArgs &args) {
    std::string name = args.required_text(0, "name");
    Json changes = parse_object_argument(args.required_jsonb(1, "changes"), "changes");
    Actor actor = require_system_actor();
    server_document(name);  // DATABASE_SERVER_NOT_FOUND first
    ValidationProblems problems;
    const char *key;
    json_t *value;
    std::vector<std::pair<std::string, SqlParam>> sets;
    json_object_foreach(changes.get(), key, value) {
        std::string field = key;
        try {
            if (field == "status") {
                std::string status = json_is_string(value) ? json_string_value(value) : "";
                if (status != "active" && status != "draining") throw field_error(field, "must be active or draining");
                sets.push_back({"status = $2", status});
            } else if (field == "max_databases") {
                if (!json_is_null(value) && (!json_is_integer(value) || json_integer_value(value) < 1))
                    throw field_error(field, "must be at least 1, or null for no limit");
                sets.push_back({"max_databases = $2::integer",
                                json_is_null(value) ? SqlParam() : SqlParam(std::to_string(json_integer_value(value)))});
            } else if (field == "host") {
                if (!json_is_string(value)) throw field_error(field, "must be a string");
                check_host(field, json_string_value(value));
                sets.push_back({"host = $2", std::string(json_string_value(value))});
            } else if (field == "port") {
                if (!json_is_integer(value)) throw field_error(field, "must be a number");
                sets.push_back({"port = $2::integer", std::to_string(check_port(field, json_integer_value(value)))});
            } else if (field == "admin_conninfo") {
                if (!json_is_string(value)) throw field_error(field, "must be a string");
                check_admin_conninfo(json_string_value(value));
                sets.push_back({"admin_conninfo = $2", std::string(json_string_value(value))});
            } else if (field == "admin_secret_ref") {
                if (!json_is_null(value) && !json_is_string(value)) throw field_error(field, "must be a sealed secret or null");
                if (json_is_string(value)) check_sealed(field, json_string_value(value));
                sets.push_back({"admin_secret_ref = $2", json_is_null(value) ? SqlParam() : SqlParam(json_string_value(value))});
            } else {
                throw field_error(field, "is not a server setting (status, max_databases, host, port, admin_conninfo, admin_secret_ref)");
            }
        } catch (const Error &error) {
            problems.add(field, error);
        }
    }
    problems.throw_if_any();
    std::string changed = "[";
    for (const auto &[assignment, parameter] : sets) {
        query("update flowgres.database_servers set " + assignment + ", updated_at = now() where name = $1", {name, parameter});
        std::string column = assignment.substr(0, assignment.find(' '));
        changed += (changed.size() > 1 ? "," : "") + json_quote(column);
    }
    write_audit(actor, kPlatformWorkspaceId, "database_server.update", "database_server", name,
                "{\"changed\":" + changed + "]}");
    return SqlValue::jsonb(server_document(name));
}

SqlValue database_server_list(CallArgs &) {
    require_system_actor();
    return SqlValue::jsonb(document_list(kServerDocumentSql, "", "doc->>'name'"));
}

SqlValue workspace_database_get(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, "", WorkspaceUse::read);
    return SqlValue::jsonb(database_document(workspace_id));
}

SqlValue workspace_database_claim(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string operation = args.required_text(1, "operation");
    std::string claimant = args.required_text(2, "claimant");
    std::optional<std::string> pinned = args.text(3);
    long long lease_seconds = args.integer(4).value_or(120);
    if (operation != "provision" && operation != "rotate_secret" && operation != "migrate" && operation != "rollback" &&
        operation != "backup" && operation != "restore")
        throw field_error("operation", "must be provision, rotate_secret, migrate, rollback, backup or restore");
    check_claimant(claimant);
    if (lease_seconds < 5 || lease_seconds > 3600) throw field_error("lease_seconds", "must be from 5 to 3600");
    if (pinned) check_server_name("server", *pinned);
    Actor actor = require_actor();
    if (pinned && !actor.is_system())
        throw Error(ErrorCode::PERMISSION_DENIED, "only the operator chooses the server of a workspace database");
    require_workspace_permission(actor, workspace_id, permission::workspace_admin, WorkspaceUse::write);
    return SqlValue::jsonb(claim_database(actor, workspace_id, operation, claimant, pinned, lease_seconds));
}

std::string claim_database(const Actor &actor, const std::string &workspace_id, const std::string &operation,
                           const std::string &claimant, const std::optional<std::string> &pinned, long long lease_seconds) {
    // Two claims of a workspace that has no row yet would both insert one: the second waits
    // here and then finds the first's claim.
    query("select pg_advisory_xact_lock(hashtext('flowgres.workspace_database:' || $1))", {workspace_id});
    auto existing = query(R"sql(
        select d.status, d.claimed_until > now(), d.claimed_by, d.operation, s.name, d.cleanup_pending
        from flowgres.workspace_databases d join flowgres.database_servers s on s.id = d.server_id
        where d.workspace_id = $1::uuid for update of d)sql",
                          {workspace_id});
    std::string previous_status = "new";
    if (existing.rows.empty()) {
        if (operation != "provision")
            throw Error(ErrorCode::WORKSPACE_DATABASE_NOT_FOUND, "workspace " + workspace_id + " has no database");
        check_storage_quota(workspace_id);
        PlacedServer server = place_database(pinned);
        std::string compact = compact_workspace_id(workspace_id);
        query(R"sql(
            insert into flowgres.workspace_databases (workspace_id, server_id, host, port, db_name, db_user)
            values ($1::uuid, $2::uuid, $3, $4::integer, $5, $6))sql",
              {workspace_id, server.id, server.host, server.port, "ws_" + compact, "wsu_" + compact});
    } else {
        const SqlRow &row = existing.rows[0];
        previous_status = row.text(0);
        if (row[1] == "t" && row[2] != claimant)
            throw Error(ErrorCode::PROVISION_IN_PROGRESS,
                        "a " + row[3].value_or("provision") + " of workspace " + workspace_id + "'s database is running",
                        "{\"operation\":" + json_quote(row[3].value_or("provision")) + "}");
        if (operation != "provision" && previous_status != "ready")
            throw Error(ErrorCode::STATE_CONFLICT, "workspace " + workspace_id + "'s database is " + previous_status + ", not ready",
                        "{\"from\":" + json_quote(previous_status) + ",\"action\":" + json_quote(operation) + "}");
        if (pinned && *pinned != row.text(4)) {
            // A database that exists, or may exist in part, stays where it is.
            if (previous_status != "failed" || row[5] == "t")
                throw Error(ErrorCode::STATE_CONFLICT,
                            "workspace " + workspace_id + "'s database is on server " + json_quote(row.text(4)),
                            "{\"from\":" + json_quote(previous_status) + ",\"action\":\"move\"}");
            PlacedServer server = place_database(pinned);
            query("update flowgres.workspace_databases set server_id = $2::uuid, host = $3, port = $4::integer where workspace_id = $1::uuid",
                  {workspace_id, server.id, server.host, server.port});
        }
        if (previous_status == "failed") check_storage_quota(workspace_id);
    }
    query(R"sql(
        update flowgres.workspace_databases
        set claimed_by = $2, claimed_until = now() + make_interval(secs => $3::integer), operation = $4,
            status = case when status = 'ready' then 'ready' else 'provisioning' end, updated_at = now()
        where workspace_id = $1::uuid)sql",
          {workspace_id, claimant, std::to_string(lease_seconds), operation});
    if (operation != "app_role")  // app roles audit their own action
        write_audit(actor, workspace_id, "database." + operation, "workspace",
                workspace_id, "{\"previous_status\":" + json_quote(previous_status) + "}");
    auto order = query_value(R"sql(
        select jsonb_build_object(
            'workspace_id', d.workspace_id, 'operation', d.operation, 'previous_status', $2::text, 'claimant', d.claimed_by,
            'claimed_until', d.claimed_until, 'db_name', d.db_name, 'db_user', d.db_user, 'secret_ref', d.secret_ref,
            'pending_secret_ref', d.pending_secret_ref, 'cleanup_pending', d.cleanup_pending, 'attempts', d.attempts,
            'server', jsonb_build_object('id', s.id, 'name', s.name, 'host', d.host, 'port', d.port,
                                         'admin_conninfo', s.admin_conninfo, 'admin_secret_ref', s.admin_secret_ref))::text
        from flowgres.workspace_databases d join flowgres.database_servers s on s.id = d.server_id
        where d.workspace_id = $1::uuid)sql",
                             {workspace_id, previous_status});
    return *order;
}

void release_claim(const std::string &workspace_id, const std::string &claimant) {
    require_claim(workspace_id, claimant);
    query(R"sql(
        update flowgres.workspace_databases
        set claimed_by = null, claimed_until = null, operation = null, updated_at = now()
        where workspace_id = $1::uuid)sql",
          {workspace_id});
}

SqlValue workspace_database_stage_secret(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string claimant = args.required_text(1, "claimant");
    std::string sealed = args.required_text(2, "sealed");
    check_claimant(claimant);
    check_sealed("sealed", sealed);
    require_actor();
    require_claim(workspace_id, claimant);
    query("update flowgres.workspace_databases set pending_secret_ref = $2, updated_at = now() where workspace_id = $1::uuid",
          {workspace_id, sealed});
    return SqlValue::jsonb(database_document(workspace_id));
}

SqlValue workspace_database_report(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string claimant = args.required_text(1, "claimant");
    Json outcome = parse_object_argument(args.required_jsonb(2, "outcome"), "outcome");
    check_claimant(claimant);
    const json_t *status = json_object_get(outcome.get(), "status");
    std::string reported = json_is_string(status) ? json_string_value(status) : "";
    if (reported != "ready" && reported != "failed") throw field_error("status", "must be ready or failed");
    const json_t *attempts = json_object_get(outcome.get(), "attempts");
    std::string attempt_count = json_is_integer(attempts) ? std::to_string(json_integer_value(attempts)) : "1";
    require_actor();
    SqlRow claim = require_claim(workspace_id, claimant);
    std::string previous_status = claim.text(0);
    std::string operation = claim[2].value_or("provision");

    const json_t *version = json_object_get(outcome.get(), "schema_version");
    if (version && !json_is_null(version) && (!json_is_integer(version) || json_integer_value(version) < 0))
        throw field_error("schema_version", "must be a number from 0");
    SqlParam schema_version = json_is_integer(version) ? SqlParam(std::to_string(json_integer_value(version))) : SqlParam();

    if (reported == "ready") {
        // A migration keeps the password; a provision or rotation reports the one it set.
        const json_t *secret = json_object_get(outcome.get(), "secret_ref");
        bool sets_password = operation == "provision" || operation == "rotate_secret";
        if (sets_password && !json_is_string(secret)) throw field_error("secret_ref", "is required with status ready");
        if (json_is_string(secret)) check_sealed("secret_ref", json_string_value(secret));
        const json_t *size = json_object_get(outcome.get(), "size_bytes");
        query(R"sql(
            update flowgres.workspace_databases
            set status = 'ready', secret_ref = coalesce($2, secret_ref),
                pending_secret_ref = case when $2 is null then pending_secret_ref end,
                size_bytes = coalesce($3::bigint, size_bytes), schema_version = coalesce($5::integer, schema_version),
                attempts = $4::integer, last_error = null, cleanup_pending = false, claimed_by = null, claimed_until = null,
                provisioned_at = coalesce(provisioned_at, now()),
                secret_rotated_at = case when operation = 'rotate_secret' then now() else secret_rotated_at end,
                operation = null, updated_at = now()
            where workspace_id = $1::uuid)sql",
              {workspace_id, json_is_string(secret) ? SqlParam(json_string_value(secret)) : SqlParam(),
               json_is_integer(size) ? SqlParam(std::to_string(json_integer_value(size))) : SqlParam(), attempt_count,
               schema_version});
        query(R"sql(
            insert into flowgres.runtime_events (workspace_id, event_type, details)
            values ($1::uuid, $2, jsonb_build_object('attempts', $3::integer, 'previous_status', $4::text,
                                                     'schema_version', $5::integer)))sql",
              {workspace_id, success_event(operation), attempt_count, previous_status, schema_version});
        // Daemons drop their pools of this database: its password changed, or it was
        // replaced by a restore (flowgresd listens on this channel).
        if (operation == "rotate_secret" || operation == "restore")
            query("select pg_notify('flowgres_workspace_databases', $1)", {workspace_id});
        return SqlValue::jsonb(database_document(workspace_id));
    }

    const json_t *error = json_object_get(outcome.get(), "error");
    std::string message = json_is_string(error) ? json_string_value(error) : "the provisioner reported no reason";
    message = utf8_prefix(message, 2000);
    bool rolled_back = json_is_true(json_object_get(outcome.get(), "rolled_back"));
    // A database that was ready stays ready when a repair or rotation fails: it still serves
    // with the password it has, and nothing of it was rolled back.
    bool was_ready = previous_status == "ready";
    query(R"sql(
        update flowgres.workspace_databases
        set status = case when $3::boolean then 'ready' else 'failed' end, last_error = $2, attempts = $5::integer,
            cleanup_pending = case when $3::boolean then cleanup_pending else not $4::boolean end,
            secret_ref = case when $3::boolean or not $4::boolean then secret_ref end,
            schema_version = coalesce($6::integer, schema_version),
            pending_secret_ref = case when $4::boolean and not $3::boolean then null else pending_secret_ref end,
            claimed_by = null, claimed_until = null, operation = null, updated_at = now()
        where workspace_id = $1::uuid)sql",
          {workspace_id, message, was_ready ? "true" : "false", rolled_back ? "true" : "false", attempt_count, schema_version});
    query(R"sql(
        insert into flowgres.runtime_events (workspace_id, event_type, severity, details)
        values ($1::uuid, $2, 'error', jsonb_build_object('attempts', $3::integer, 'rolled_back', $4::boolean,
                                                          'server', (select s.name from flowgres.workspace_databases d
                                                                     join flowgres.database_servers s on s.id = d.server_id
                                                                     where d.workspace_id = $1::uuid))))sql",
          {workspace_id, failure_event(operation), attempt_count, rolled_back ? "true" : "false"});
    return SqlValue::jsonb(database_document(workspace_id));
}

SqlValue workspace_database_secret(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, "", WorkspaceUse::read);
    auto rows = query(R"sql(
        select status, jsonb_build_object('workspace_id', workspace_id, 'host', host, 'port', port, 'db_name', db_name,
                                          'db_user', db_user, 'secret_ref', secret_ref, 'pending_secret_ref', pending_secret_ref)::text
        from flowgres.workspace_databases where workspace_id = $1::uuid)sql",
                      {workspace_id});
    if (rows.rows.empty())
        throw Error(ErrorCode::WORKSPACE_DATABASE_NOT_FOUND, "workspace " + workspace_id + " has no database");
    if (rows.rows[0].text(0) != "ready")
        throw Error(ErrorCode::STATE_CONFLICT, "workspace " + workspace_id + "'s database is " + rows.rows[0].text(0) + ", not ready",
                    "{\"from\":" + json_quote(rows.rows[0].text(0)) + ",\"action\":\"connect\"}");
    return SqlValue::jsonb(rows.rows[0].text(1));
}

SqlValue secret_refs_sealed_with_other_keys(CallArgs &args) {
    std::string key_id = args.required_text(0, "key_id");
    require_system_actor();
    auto document = query_value(R"sql(
        select coalesce(jsonb_agg(jsonb_build_object('kind', kind, 'id', id, 'context', context, 'secret_ref', ref)), '[]')::text
        from (select 'workspace_database' as kind, workspace_id as id, 'workspace_database:' || workspace_id as context,
                     secret_ref as ref from flowgres.workspace_databases
              union all
              select 'workspace_database_pending', workspace_id, 'workspace_database:' || workspace_id, pending_secret_ref
              from flowgres.workspace_databases
              union all
              select 'database_server', id, 'database_server:' || id, admin_secret_ref from flowgres.database_servers
              union all
              select 'workspace_secret', id, 'workspace_secret:' || workspace_id || ':' || name, sealed_value
              from flowgres.workspace_secrets) secrets
        where ref is not null and split_part(ref, ':', 3) <> $1)sql",
                                {key_id});
    return SqlValue::jsonb(document.value_or("[]"));
}

SqlValue secret_ref_reseal(CallArgs &args) {
    std::string kind = args.required_text(0, "kind");
    std::string id = args.required_uuid(1, "id");
    std::string old_ref = args.required_text(2, "old_ref");
    std::string new_ref = args.required_text(3, "new_ref");
    check_sealed("new_ref", new_ref);
    Actor actor = require_system_actor();
    std::string sql;
    if (kind == "workspace_database")
        sql = "update flowgres.workspace_databases set secret_ref = $3 where workspace_id = $1::uuid and secret_ref = $2";
    else if (kind == "workspace_database_pending")
        sql = "update flowgres.workspace_databases set pending_secret_ref = $3 where workspace_id = $1::uuid and pending_secret_ref = $2";
    else if (kind == "database_server")
        sql = "update flowgres.database_servers set admin_secret_ref = $3 where id = $1::uuid and admin_secret_ref = $2";
    else if (kind == "workspace_secret")
        sql = "update flowgres.workspace_secrets set sealed_value = $3 where id = $1::uuid and sealed_value = $2";
    else
        throw field_error("kind", "must be workspace_database, workspace_database_pending, database_server or workspace_secret");
    bool replaced = query(sql, {id, old_ref, new_ref}).processed == 1;
    std::string audit_workspace = kind == "database_server" ? kPlatformWorkspaceId : id;
    if (kind == "workspace_secret")
        audit_workspace = query_value("select workspace_id from flowgres.workspace_secrets where id = $1::uuid", {id})
                              .value_or(kPlatformWorkspaceId);
    if (replaced)
        write_audit(actor, audit_workspace, "secret.reseal", kind, id,
                    "{\"key_id\":" + json_quote(new_ref.substr(7, new_ref.find(':', 7) - 7)) + "}");
    return SqlValue::boolean(replaced);
}

constexpr const char *kBackupDocumentSql = R"sql(
    select jsonb_build_object(
        'id', b.id, 'workspace_id', b.workspace_id, 'status', b.status, 'reason', b.reason, 'size_bytes', b.size_bytes,
        'sha256', b.sha256, 'schema_version', b.schema_version, 'row_counts', b.row_counts, 'error', b.error,
        'started_at', b.started_at, 'completed_at', b.completed_at, 'pruned_at', b.pruned_at)
    from flowgres.workspace_database_backups b)sql";

SqlValue workspace_database_backup_list(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, "", WorkspaceUse::read);
    return SqlValue::jsonb(document_list(kBackupDocumentSql, "b.workspace_id = $1::uuid", "doc->>'completed_at' desc", workspace_id));
}

SqlValue workspace_database_backup_record(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string claimant = args.required_text(1, "claimant");
    Json backup = parse_object_argument(args.required_jsonb(2, "backup"), "backup");
    check_claimant(claimant);
    require_actor();
    require_claim(workspace_id, claimant);
    auto text_of = [&](const char *key) -> SqlParam {
        const json_t *value = json_object_get(backup.get(), key);
        if (json_is_string(value)) return SqlParam(json_string_value(value));
        if (json_is_integer(value)) return SqlParam(std::to_string(json_integer_value(value)));
        if (json_is_object(value)) return SqlParam(dump_json(value));
        return SqlParam();
    };
    auto id = query_value(R"sql(
        insert into flowgres.workspace_database_backups
            (workspace_id, status, reason, location, written_by, size_bytes, sha256, schema_version, row_counts, error, started_at)
        values ($1::uuid, $2, coalesce($3, 'manual'), $4, $5, $6::bigint, $7, $8::integer, coalesce($9::jsonb, '{}'), $10,
                coalesce($11::timestamptz, now()))
        returning id::text)sql",
                          {workspace_id, text_of("status"), text_of("reason"), text_of("location"), claimant, text_of("size_bytes"),
                           text_of("sha256"), text_of("schema_version"), text_of("row_counts"), text_of("error"),
                           text_of("started_at")});
    return SqlValue::jsonb(*query_value(std::string(kBackupDocumentSql) + " where b.id = $1::uuid", {*id}));
}

SqlValue workspace_database_backup_get(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    std::string backup_id = args.required_uuid(1, "backup_id");
    Actor actor = require_actor();
    require_workspace_permission(actor, workspace_id, "", WorkspaceUse::read);
    auto document = query_value(R"sql(
        select jsonb_build_object('id', id, 'location', location, 'sha256', sha256, 'size_bytes', size_bytes,
                                  'schema_version', schema_version, 'row_counts', row_counts)::text
        from flowgres.workspace_database_backups
        where id = $2::uuid and workspace_id = $1::uuid and status = 'completed' and pruned_at is null)sql",
                                {workspace_id, backup_id});
    if (!document)
        throw Error(ErrorCode::BACKUP_NOT_FOUND, "workspace " + workspace_id + " has no usable backup " + backup_id,
                    "{\"backup_id\":" + json_quote(backup_id) + "}");
    return SqlValue::jsonb(*document);
}

SqlValue workspace_database_backup_prune(CallArgs &args) {
    std::string workspace_id = args.required_uuid(0, "workspace_id");
    long long keep = args.integer(1).value_or(7);
    if (keep < 1 || keep > 1000) throw field_error("keep", "must be from 1 to 1000");
    require_actor();
    auto document = query_value(R"sql(
        with pruned as (
            update flowgres.workspace_database_backups set pruned_at = now()
            where id in (select id from flowgres.workspace_database_backups
                         where workspace_id = $1::uuid and status = 'completed' and pruned_at is null
                         order by completed_at desc, started_at desc offset $2::integer)
            returning location)
        select coalesce(jsonb_agg(location), '[]')::text from pruned)sql",
                                {workspace_id, std::to_string(keep)});
    return SqlValue::jsonb(document.value_or("[]"));
}

SqlValue workspace_databases_due_for_backup(CallArgs &args) {
    long long interval = args.integer(0).value_or(86400);
    if (interval < 1) throw field_error("interval_seconds", "must be at least 1");
    require_system_actor();
    auto document = query_value(R"sql(
        select coalesce(jsonb_agg(d.workspace_id order by d.workspace_id), '[]')::text
        from flowgres.workspace_databases d join flowgres.workspaces w on w.id = d.workspace_id
        where d.status = 'ready' and w.status = 'active' and (d.claimed_until is null or d.claimed_until < now())
          and not exists (select 1 from flowgres.workspace_database_backups b
                          where b.workspace_id = d.workspace_id and b.status = 'completed'
                            and b.completed_at > now() - make_interval(secs => $1::integer)))sql",
                                {std::to_string(interval)});
    return SqlValue::jsonb(document.value_or("[]"));
}

SqlValue execution_data_written(CallArgs &args) {
    std::string execution_id = args.required_uuid(0, "execution_id");
    Json details = parse_object_argument(args.required_jsonb(1, "details"), "details");
    require_system_actor();
    auto inserted = query(R"sql(
        insert into flowgres.runtime_events (workspace_id, app_id, session_id, execution_id, event_type, details)
        select e.workspace_id, e.app_id, e.session_id, e.id, 'data_written',
               jsonb_build_object('table', $2::jsonb -> 'table', 'rows', $2::jsonb -> 'rows', 'node', $2::jsonb -> 'node',
                                  'trigger', e.trigger)
        from flowgres.executions e where e.id = $1::uuid)sql",
                          {execution_id, dump_json(details.get())});
    if (inserted.processed == 0) throw Error(ErrorCode::EXECUTION_NOT_FOUND, "no execution " + execution_id);
    return SqlValue::boolean(true);
}

}  // namespace flowgres
