// What database steps see of the run's workspace database: one statement at a time as the
// workspace's role, and a place to report writes. The daemon implements it over its
// per-workspace pools (pg/workspace_pools.hpp); the executor knows nothing of pools.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace flowgres::executor {

struct DatabaseAnswer {
    bool ok = true;
    std::string value;       // the statement's one JSON value
    std::string error_code;  // NODE_FAILED, NODE_TIMEOUT, DB_UNAVAILABLE, …
    std::string message;
    std::string sqlstate;    // the server's, when the statement failed there
};

// Tables' columns as catalog_query answers them, by table name, for one workspace database.
using KeptColumns = std::map<std::string, std::string>;

class WorkspaceDatabase {
public:
    virtual ~WorkspaceDatabase() = default;
    // Runs `sql` with its parameters bound; `done` is called once, from the loop.
    virtual void query(std::string sql, std::vector<std::optional<std::string>> params,
                       std::function<void(DatabaseAnswer)> done) = 0;
    // A step wrote `rows` rows to `table` ("" for a db_query): the data_written event.
    virtual void data_written(const std::string &node_id, const std::string &table, long long rows) = 0;
    // The table's columns ({"name": "type"}, '{}' when there is no such table), looked up once
    // and then, for a table that exists, kept: for this run only, or, when the owner shares `kept` among the runs of a
    // workspace, until a step finds them out of date (forget_columns) and looks again.
    void columns(const std::string &table, std::function<void(DatabaseAnswer)> done);
    void forget_columns(const std::string &table);
    size_t max_rows = 1000;

protected:
    explicit WorkspaceDatabase(std::shared_ptr<KeptColumns> kept = nullptr)
        : columns_(kept ? std::move(kept) : std::make_shared<KeptColumns>()) {}

private:
    std::shared_ptr<KeptColumns> columns_;
};

}  // namespace flowgres::executor
