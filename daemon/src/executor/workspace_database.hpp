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
};

class WorkspaceDatabase {
public:
    virtual ~WorkspaceDatabase() = default;
    // Runs `sql` with its parameters bound; `done` is called once, from the loop.
    virtual void query(std::string sql, std::vector<std::optional<std::string>> params,
                       std::function<void(DatabaseAnswer)> done) = 0;
    // A step wrote `rows` rows to `table` ("" for a db_query): the data_written event.
    virtual void data_written(const std::string &node_id, const std::string &table, long long rows) = 0;
    // The table's columns ({"name": "type"}, '{}' when there is no such table), looked up once
    // per run and table: a run sees the catalog as it was when it first needed it.
    void columns(const std::string &table, std::function<void(DatabaseAnswer)> done);
    size_t max_rows = 1000;

private:
    std::map<std::string, std::string> columns_;
};

}  // namespace flowgres::executor
