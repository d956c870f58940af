// The catalog cache of WorkspaceDatabase (workspace_database.hpp).
#include "executor/workspace_database.hpp"

#include "flowgres/database_steps.hpp"

namespace flowgres::executor {

namespace {
constexpr size_t kMaxKeptTables = 1024;  // per workspace database: past it, all are forgotten at once
constexpr size_t kMaxTableNameBytes = 63;  // PostgreSQL's NAMEDATALEN - 1: no table has a longer name
}

void WorkspaceDatabase::columns(const std::string &table, std::function<void(DatabaseAnswer)> done) {
    if (auto found = columns_->find(table); found != columns_->end()) {
        DatabaseAnswer answer;
        answer.value = found->second;
        return done(std::move(answer));
    }
    // Kept by the map, which this run (and any other) holds while its steps' queries run.
    query(database_steps::catalog_query(), {table}, [kept = columns_, table, done = std::move(done)](DatabaseAnswer answer) {
        // Only tables found: a name rendered from a visitor's input (the table may be a
        // template) reaches the catalog but is never kept, however long or many.
        if (answer.ok && answer.value != "{}" && table.size() <= kMaxTableNameBytes) {
            if (kept->size() >= kMaxKeptTables) kept->clear();
            (*kept)[table] = answer.value;
        }
        done(std::move(answer));
    });
}

void WorkspaceDatabase::forget_columns(const std::string &table) { columns_->erase(table); }

}  // namespace flowgres::executor
