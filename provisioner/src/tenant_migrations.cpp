// The tenant migration runner (tenant_migrations.hpp).
#include "tenant_migrations.hpp"

#include <dirent.h>

#include <fstream>
#include <map>
#include <sstream>

#include "flowgres/crypto.hpp"
#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"
#include "flowgres/pattern.hpp"

namespace flowgres::provisioner {
namespace {

// One lock for every runner on this database: migrations of one database never interleave.
constexpr const char *kLockKey = "hashtext('flowgres.tenant_migrations')";

std::string read_file(const std::string &path) {
    std::ifstream file(path);
    if (!file) throw std::invalid_argument("cannot read " + path);
    std::stringstream contents;
    contents << file.rdbuf();
    return contents.str();
}

void prepare(BlockingConnection &tenant_admin, const std::string &tenant_role) {
    std::string role = tenant_admin.quote_identifier(tenant_role);
    tenant_admin.run("create schema if not exists flowgres_meta");
    tenant_admin.run(R"sql(
        create table if not exists flowgres_meta.workspace_db_migrations (
            version     integer primary key,
            name        text not null,
            checksum    text not null,
            applied_at  timestamptz not null default now()))sql");
    tenant_admin.run("grant usage on schema flowgres_meta to " + role);
    tenant_admin.run("alter default privileges in schema flowgres_meta grant select on tables to " + role);
}

std::string migration_label(const Migration &migration) {
    char number[8];
    snprintf(number, sizeof number, "%04d", migration.version);
    return std::string(number) + "_" + migration.name;
}

Error migration_error(int reached, const Migration &failed, const std::string &message) {
    return Error(ErrorCode::MIGRATION_FAILED,
                 "migration " + migration_label(failed) + " failed: " + message + " (the database stays at version " +
                     std::to_string(reached) + ")",
                 "{\"version\":" + std::to_string(reached) + ",\"failed_version\":" + std::to_string(failed.version) +
                     ",\"error\":" + json_quote(message) + "}");
}

// Runs `sql` and then `record` in one transaction: both or neither.
void in_transaction(BlockingConnection &tenant_admin, const std::string &sql, const std::string &record,
                    const std::vector<std::optional<std::string>> &params) {
    tenant_admin.run("begin");
    try {
        tenant_admin.run(sql);
        tenant_admin.query(record, params);
        tenant_admin.run("commit");
    } catch (const DatabaseError &) {
        try {
            tenant_admin.run("rollback");
        } catch (const DatabaseError &) {
        }
        throw;
    }
}

}  // namespace

const char *default_migrations_directory() { return FLOWGRES_MIGRATIONS_DIR; }

std::vector<Migration> load_migrations(const std::string &directory) {
    static const auto file_name = Pattern::compile(R"(([0-9]{4})_([a-z0-9_]{1,60})\.(up|down)\.sql)");
    DIR *listing = opendir(directory.c_str());
    if (!listing) throw std::invalid_argument("cannot read the migrations directory " + directory);
    std::map<int, Migration> found;
    while (dirent *entry = readdir(listing)) {
        std::string name = entry->d_name;
        std::vector<std::string> parts;
        if (name == "." || name == "..") continue;
        if (!file_name->full_match(name, parts)) {
            closedir(listing);
            throw std::invalid_argument("migrations/" + name + " is not named NNNN_name.up.sql or NNNN_name.down.sql");
        }
        Migration &migration = found[std::stoi(parts[0])];
        if (!migration.name.empty() && migration.name != parts[1]) {
            closedir(listing);
            throw std::invalid_argument("migration " + parts[0] + " has two names");
        }
        migration.version = std::stoi(parts[0]);
        migration.name = parts[1];
        (parts[2] == "up" ? migration.up : migration.down) = read_file(directory + "/" + name);
    }
    closedir(listing);
    std::vector<Migration> migrations;
    for (auto &[version, migration] : found) {
        if (version != static_cast<int>(migrations.size()) + 1)
            throw std::invalid_argument("migration " + std::to_string(migrations.size() + 1) + " is missing");
        if (migration.up.empty() || migration.down.empty())
            throw std::invalid_argument("migration " + migration_label(migration) + " needs both an up and a down file");
        migration.checksum = sha256_hex(migration.up);
        migrations.push_back(std::move(migration));
    }
    return migrations;
}

int current_version(BlockingConnection &tenant_admin) {
    if (!tenant_admin.value("select to_regclass('flowgres_meta.workspace_db_migrations')")) return 0;
    return std::stoi(tenant_admin.value("select coalesce(max(version), 0) from flowgres_meta.workspace_db_migrations").value_or("0"));
}

void migrate_to(BlockingConnection &tenant_admin, const std::vector<Migration> &migrations, int target,
                const std::string &tenant_role, int &version) {
    if (target < 0 || target > static_cast<int>(migrations.size()))
        throw field_error("target_version", "must be from 0 to " + std::to_string(migrations.size()));
    tenant_admin.run("set lock_timeout = '30s'");
    tenant_admin.query(std::string("select pg_advisory_lock(") + kLockKey + ")");
    struct Unlock {
        BlockingConnection &connection;
        ~Unlock() {
            try {
                connection.query(std::string("select pg_advisory_unlock(") + kLockKey + ")");
            } catch (const DatabaseError &) {  // a lost connection has released it already
            }
        }
    } unlock{tenant_admin};

    prepare(tenant_admin, tenant_role);
    Rows applied = tenant_admin.query("select version, name, checksum from flowgres_meta.workspace_db_migrations order by version");
    for (size_t i = 0; i < applied.size(); i++) {
        int version = std::stoi(applied[i][0].value_or("0"));
        if (version != static_cast<int>(i) + 1 || version > static_cast<int>(migrations.size()))
            throw Error(ErrorCode::MIGRATION_FAILED, "the database records migration " + std::to_string(version) +
                                                         ", which the migrations directory does not have in that place",
                        "{\"version\":" + std::to_string(applied.size()) + "}");
        const Migration &migration = migrations[version - 1];
        if (applied[i][2] != migration.checksum)
            throw Error(ErrorCode::MIGRATION_FAILED,
                        "migration " + migration_label(migration) + " was applied from a different file than the one shipped now",
                        "{\"version\":" + std::to_string(applied.size()) + ",\"drifted_version\":" + std::to_string(version) + "}");
    }
    version = static_cast<int>(applied.size());
    while (version < target) {
        const Migration &migration = migrations[version];
        try {
            in_transaction(tenant_admin, migration.up,
                           "insert into flowgres_meta.workspace_db_migrations (version, name, checksum) values ($1::integer, $2, $3)",
                           {std::to_string(migration.version), migration.name, migration.checksum});
        } catch (const DatabaseError &error) {
            if (error.sqlstate().empty()) throw;  // the connection, not the migration
            throw migration_error(version, migration, error.what());
        }
        version++;
    }
    while (version > target) {
        const Migration &migration = migrations[version - 1];
        try {
            in_transaction(tenant_admin, migration.down, "delete from flowgres_meta.workspace_db_migrations where version = $1::integer",
                           {std::to_string(migration.version)});
        } catch (const DatabaseError &error) {
            if (error.sqlstate().empty()) throw;
            throw migration_error(version, migration, error.what());
        }
        version--;
    }
    tenant_admin.run("grant select on all tables in schema flowgres_meta to " + tenant_admin.quote_identifier(tenant_role));
}

}  // namespace flowgres::provisioner
