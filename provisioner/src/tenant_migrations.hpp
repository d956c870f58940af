// Tenant migrations (README "Workspace databases", seed §11.4, §26.3): the versioned SQL in migrations/
// (NNNN_name.up.sql and NNNN_name.down.sql) that builds flowgres's own schema flowgres_meta
// in every workspace database. Applied in order under an advisory lock, each in its own
// transaction with its row in flowgres_meta.workspace_db_migrations, so a failing one is
// rolled back whole and the database stays at the version before it. Applied migrations whose
// files changed since are refused (drift), never run again. Not for: the tenant's own tables
// in schema `data` (those come from apps' db_schema after review).
#pragma once

#include <string>
#include <vector>

#include "blocking_connection.hpp"

namespace flowgres::provisioner {

struct Migration {
    int version = 0;
    std::string name;  // "workspace_meta"
    std::string up;
    std::string down;
    std::string checksum;  // sha256 of `up`
};

// Every migration of the directory, by version: 1, 2, … with no gap, each with both files.
// Throws std::invalid_argument naming the file at fault.
std::vector<Migration> load_migrations(const std::string &directory);

// The directory flowgres ships (the source tree's migrations/ unless built elsewhere).
const char *default_migrations_directory();

// Brings the database (connected as its administrator) to `target`, up or down; `version`
// follows each step, so it holds where the database is whatever happens. Throws
// Error(MIGRATION_FAILED) with details {version, failed_version, error} when a migration
// fails, and DatabaseError when the connection fails.
void migrate_to(BlockingConnection &tenant_admin, const std::vector<Migration> &migrations, int target,
                const std::string &tenant_role, int &version);

// The version the database is at (0 before any migration).
int current_version(BlockingConnection &tenant_admin);

}  // namespace flowgres::provisioner
