// The mechanics of backups (README "Workspace databases"): running pg_dump and pg_restore as child processes
// with the password in their environment (never on a command line others can read), the
// SHA-256 of a dump file, and the row count of every table a restore is checked against.
// Not for: deciding when to back up or what to keep (provisioner.cpp, the control plane).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "blocking_connection.hpp"

namespace flowgres::provisioner {

// The environment of pg_dump and pg_restore: from `inherited`, only PATH, the locale, TZ,
// TMPDIR and libpq's TLS and timeout settings, plus PGPASSWORD when given; never the rest
// (master keys, the admin key, whatever else the daemon was started with).
std::vector<std::string> child_environment(char **inherited, const std::string &password);

// Where a tool connects: a libpq key=value string without the password, and the password.
struct ToolConnection {
    std::string conninfo;
    std::string password;
    int timeout_seconds = 3600;  // the tool is killed past it, and the run fails
    int lock_wait_ms = 30000;    // pg_dump's --lock-wait-timeout
};

// `admin_conninfo` (key=value or URL) with its dbname replaced by `database` and any password
// moved out into `password` (or `password` given).
ToolConnection tool_connection(const std::string &admin_conninfo, const std::string &database, const std::string &password);

// Runs pg_dump -Fc into `path` (mode 600), in the exported `snapshot` when given. Throws
// std::runtime_error with pg_dump's message.
void dump_database(const ToolConnection &connection, const std::string &path, const std::string &snapshot = "");

// pg_restore of `path` into the connection's database, as one transaction: all or nothing.
// `clean` drops what exists first (a restore over the workspace database itself).
void restore_database(const ToolConnection &connection, const std::string &path, bool clean);

// Lowercase hex SHA-256 of a file's contents; throws std::runtime_error when unreadable.
std::string file_sha256(const std::string &path);

// {"schema.table": rows} for every table of the tenant's schema and flowgres_meta, counted
// exactly (count(*)), as a JSON object text.
std::string table_row_counts(BlockingConnection &connection);

}  // namespace flowgres::provisioner
