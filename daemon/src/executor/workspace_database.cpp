// The per-run catalog cache of WorkspaceDatabase (workspace_database.hpp).
#include "executor/workspace_database.hpp"

#include "flowgres/database_steps.hpp"

namespace flowgres::executor {

void WorkspaceDatabase::columns(const std::string &table, std::function<void(DatabaseAnswer)> done) {
    if (auto found = columns_.find(table); found != columns_.end()) {
        DatabaseAnswer answer;
        answer.value = found->second;
        return done(std::move(answer));
    }
    // The run owns this object and outlives its steps' queries.
    query(database_steps::catalog_query(), {table}, [this, table, done = std::move(done)](DatabaseAnswer answer) {
        if (answer.ok) columns_[table] = answer.value;
        done(std::move(answer));
    });
}

}  // namespace flowgres::executor
