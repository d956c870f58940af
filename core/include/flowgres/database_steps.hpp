// Database steps of workflows (README "Workspace databases", seed §10, §52.2): db_select, db_insert, db_update,
// db_delete and db_query, run against the workspace's own database as its role. This file
// checks a step's configuration and turns it into one SQL statement whose every value is a
// bound parameter and whose every identifier is a table or column the workspace's catalog
// has, quoted. Each statement answers with one JSON value (rows, counts), so a step is one
// round trip after the catalog lookup. Not for: running statements (the daemon's executor).
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "flowgres/json.hpp"
#include "flowgres/workflow.hpp"

namespace flowgres::database_steps {

// The schema tenant tables live in (the provisioner makes it; the role owns it).
inline constexpr const char *kTenantSchema = "data";

bool is_database_step(std::string_view type);

// Shape checks at version creation: table and column names are non-empty strings, `where`,
// `values`, `order_by`, `limit` and `params` have the documented forms, and db_query's
// statement is one statement whose :names are all given.
void check(const workflow::Node &node, const std::string &field, workflow::Problems &problems);

// A step that cannot be built from what the catalog holds or the values rendered: its
// message names what is wrong (the step fails with NODE_FAILED).
struct StepError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Statement {
    std::string sql;
    std::vector<std::optional<std::string>> params;
    std::string table;  // "" for db_query
    bool writes = false;
};

// The catalog lookup a step needs first: {"column": "type"} of `table` in the tenant's schema
// ('{}' when there is no such table, or none of its columns is the role's to use), the type as
// format_type writes it. One bound parameter: the table name.
const char *catalog_query();

// Builds the step's statement. `config` is the node's config with its values rendered;
// `columns` the table's columns from catalog_query (ignored by db_query). At most `max_rows`
// rows come back.
Statement build(const std::string &type, const json_t *config, const std::map<std::string, std::string> &columns,
                size_t max_rows);

// "\"name\"" with inner quotes doubled.
std::string quote_identifier(const std::string &name);
// "'text'" with inner quotes doubled (standard_conforming_strings, on since PostgreSQL 9.1).
std::string quote_literal(const std::string &text);

}  // namespace flowgres::database_steps
