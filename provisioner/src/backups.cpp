// Backups and restores of workspace databases (README "Workspace databases", seed §26.4): pg_dump with row counts
// taken in the same snapshot, and restores checked against them (provisioner.hpp).
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "dump_tools.hpp"
#include "tenant_migrations.hpp"
#include "flowgres/crypto.hpp"
#include "work_order.hpp"

namespace flowgres::provisioner {

std::string take_backup(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order,
                        const std::string &reason, int &attempts) {
    std::string started_at = utc_timestamp("%Y-%m-%dT%H:%M:%SZ");
    std::string path;
    try {
        if (options.backup_dir.empty())
            throw Error(ErrorCode::BACKUP_FAILED, "no backup directory is configured (backup_dir, --backup-dir)");
        std::string directory = options.backup_dir + "/" + order.workspace_id;
        mkdir(options.backup_dir.c_str(), 0700);
        if (mkdir(directory.c_str(), 0700) != 0 && errno != EEXIST)
            throw std::runtime_error("cannot create " + directory + ": " + std::strerror(errno));
        path = directory + "/" + utc_timestamp("%Y%m%dT%H%M%SZ") + "_" + random_token(6) + ".dump";
        std::string counts;
        int version = 0;
        with_retries(options, attempts, [&] {
            BlockingConnection snapshot(admin_parameters(order, keyring, options, order.db_name));
            snapshot.run("begin isolation level repeatable read read only");
            std::string snapshot_id = snapshot.value("select pg_export_snapshot()").value_or("");
            counts = table_row_counts(snapshot);
            version = current_version(snapshot);
            ToolConnection tool = tool_connection(order.admin_conninfo, order.db_name, admin_password(order, keyring));
            tool.timeout_seconds = options.tool_timeout_seconds;
            tool.lock_wait_ms = options.lock_timeout_ms;
            dump_database(tool, path, snapshot_id);
            snapshot.run("commit");
        });
        struct stat file {};
        stat(path.c_str(), &file);
        std::string backup = control.call(
            "select flowgres.workspace_database_backup_record($1::uuid, $2, $3::jsonb)::text",
            {order.workspace_id, options.claimant,
             "{\"status\":\"completed\",\"reason\":" + json_quote(reason) + ",\"location\":" + json_quote(path) +
                 ",\"size_bytes\":" + std::to_string(file.st_size) + ",\"sha256\":" + json_quote(file_sha256(path)) +
                 ",\"schema_version\":" + std::to_string(version) + ",\"row_counts\":" + counts +
                 ",\"started_at\":" + json_quote(started_at) + "}"});
        // Old dumps beyond the number kept: their rows say pruned, their files go.
        Json pruned = parse_json(control.call("select flowgres.workspace_database_backup_prune($1::uuid, $2::integer)::text",
                                              {order.workspace_id, std::to_string(options.backup_keep)}),
                                 "pruned");
        size_t index;
        json_t *location;
        json_array_foreach(pruned.get(), index, location) if (json_is_string(location)) unlink(json_string_value(location));
        return backup;
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        if (!path.empty()) unlink(path.c_str());
        control.call("select flowgres.workspace_database_backup_record($1::uuid, $2, $3::jsonb)::text",
                     {order.workspace_id, options.claimant,
                      "{\"status\":\"failed\",\"reason\":" + json_quote(reason) + ",\"error\":" + json_quote(failure.what()) +
                          ",\"started_at\":" + json_quote(started_at) + "}"});
        throw;
    }
}

std::string carry_out_backup(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order,
                             const std::string &reason) {
    int attempts = 0;
    try {
        std::string backup = take_backup(options, keyring, control, order, reason, attempts);
        Json document = parse_json(backup, "backup");
        report(control, options, order,
               "{\"status\":\"ready\",\"schema_version\":" + dump_json(json_object_get(document.get(), "schema_version")) +
                   ",\"attempts\":" + std::to_string(attempts) + "}");
        return backup;
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        report_failure(control, options, order, failure, attempts);
        rethrow_as(failure, ErrorCode::BACKUP_FAILED, "workspace " + order.workspace_id + "'s database could not be backed up",
                   "{\"error\":" + json_quote(failure.what()) + "}");
    }
}

std::string carry_out_restore(const Options &options, const Keyring &keyring, ControlPlane &control, const WorkOrder &order,
                              const std::string &backup_id, bool into_copy) {
    int attempts = 0;
    try {
        Json backup = parse_json(control.call("select flowgres.workspace_database_backup_get($1::uuid, $2::uuid)::text",
                                              {order.workspace_id, backup_id}),
                                 "backup");
        std::string path = text_member(backup.get(), "location");
        if (access(path.c_str(), R_OK) != 0)
            throw Error(ErrorCode::BACKUP_FAILED, "the backup file of " + backup_id + " is gone from " + path);
        if (file_sha256(path) != text_member(backup.get(), "sha256"))
            throw Error(ErrorCode::BACKUP_FAILED, "the backup file of " + backup_id + " was altered (its SHA-256 differs)");
        std::string expected = dump_json(json_object_get(backup.get(), "row_counts"));
        std::string copy = order.db_name + "_restore";
        std::string password = admin_password(order, keyring);
        std::string restored_counts;
        with_retries(options, attempts, [&] {
            BlockingConnection admin(admin_parameters(order, keyring, options));
            std::string copy_name = admin.quote_identifier(copy);
            admin.run("drop database if exists " + copy_name + " with (force)");
            // From template0: a restore recreates everything the dump holds, which must not
            // meet what a DBA put into template1.
            admin.run("create database " + copy_name + " template template0");
            admin.run("revoke connect, temporary on database " + copy_name + " from public");
            ToolConnection tool = tool_connection(order.admin_conninfo, copy, password);
            tool.timeout_seconds = options.tool_timeout_seconds;
            restore_database(tool, path, false);
            BlockingConnection check(admin_parameters(order, keyring, options, copy));
            restored_counts = table_row_counts(check);
        });
        Json restored = parse_json(restored_counts, "row counts");
        if (!json_equal(restored.get(), json_object_get(backup.get(), "row_counts")))
            throw Error(ErrorCode::BACKUP_FAILED, "the restored rows differ from the backup's",
                        "{\"expected\":" + expected + ",\"restored\":" + restored_counts + "}");
        std::string restored_into = copy;
        if (!into_copy) {
            BlockingConnection admin(admin_parameters(order, keyring, options));
            std::string database = admin.quote_identifier(order.db_name);
            std::string replaced = admin.quote_identifier(order.db_name + "_replaced");
            admin.run("drop database if exists " + replaced + " with (force)");
            admin.run("alter database " + database + " allow_connections false");
            admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
                        {order.db_name});
            admin.run("alter database " + database + " rename to " + replaced);
            try {
                admin.run("alter database " + admin.quote_identifier(copy) + " rename to " + database);
            } catch (const DatabaseError &) {
                admin.run("alter database " + replaced + " rename to " + database);
                admin.run("alter database " + database + " allow_connections true");
                throw;
            }
            ensure_database(admin, order);
            admin.run("drop database " + replaced + " with (force)");
            restored_into = order.db_name;
        }
        const json_t *version = json_object_get(backup.get(), "schema_version");
        report(control, options, order,
               "{\"status\":\"ready\",\"attempts\":" + std::to_string(std::max(attempts, 1)) +
                   (into_copy || !json_is_integer(version) ? std::string()
                                                           : ",\"schema_version\":" + std::to_string(json_integer_value(version))) +
                   "}");
        return "{\"backup_id\":" + json_quote(backup_id) + ",\"restored_into\":" + json_quote(restored_into) +
               ",\"verified\":true,\"row_counts\":" + restored_counts + "}";
    } catch (const std::exception &failure) {
        if (control_plane_down(failure)) throw;
        report_failure(control, options, order, failure, attempts);
        rethrow_as(failure, ErrorCode::BACKUP_FAILED, "backup " + backup_id + " could not be restored",
                   "{\"error\":" + json_quote(failure.what()) + "}");
    }
}

}  // namespace flowgres::provisioner
