// Statements run through SPI with text parameters and text results, plans prepared once per
// backend and kept (SPI_keepplan). Parameters are always bound; SQL text never holds input.
// Not for: the runtime hot path's typed statements (they get their own prepared plans).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flowgres {

class JsonbDocument;

using SqlParam = std::optional<std::string>;  // nullopt binds NULL

struct SqlRow {
    std::vector<std::optional<std::string>> values;
    const std::optional<std::string> &operator[](size_t column) const { return values.at(column); }
    // The column's text; throws INTERNAL_ERROR for NULL (for columns declared NOT NULL).
    const std::string &text(size_t column) const;
};

struct SqlResult {
    std::vector<SqlRow> rows;
    uint64_t processed = 0;  // rows affected by INSERT/UPDATE/DELETE without RETURNING
};

// A setting for the rest of the transaction, as set_config(name, value, true) sets it, without
// a statement.
void set_transaction_setting(const char *name, const std::string &value);

void spi_connect();
void spi_finish();

// Every parameter is typed text: write `$1::uuid`, `$2::jsonb` in the statement.
SqlResult query(std::string_view sql, std::initializer_list<SqlParam> params = {});

// The same, planned for the values given instead of once per backend: for statements over a
// batch (an array of ids, a JSON list of rows), where the kept plan, made when the tables were
// small or for a batch of another size, may scan a whole table where an index would do. The
// planning is paid once per batch; the parsing is not (the parsed statement is kept).
SqlResult query_planned_each_call(std::string_view sql, std::initializer_list<SqlParam> params = {});

// The same (plan kept) with $1 bound to a document already parsed (jsonb_document.hpp), typed
// jsonb, and `params` as $2 on: the statement reads the document without parsing it again.
SqlResult query_over_document(std::string_view sql, const JsonbDocument &document,
                              std::initializer_list<SqlParam> params = {});

// The same with a snapshot taken now, whatever the isolation level: for reads that must see
// every transaction committed before the call (usage_ledger.cpp's load).
//
// Every limit check ("at most N apps", "not the last owner") has this shape: lock the row that
// serialises the check in a statement of its own, then count with a snapshot taken after the
// lock was granted. A statement that locks and counts at once counts from the snapshot it took
// before it waited for the lock, so N sessions that queued behind one another all see the same
// count, and all pass (READ COMMITTED does not refresh that statement's snapshot).
SqlResult query_latest_snapshot(std::string_view sql, std::initializer_list<SqlParam> params = {});
std::optional<std::string> query_value_latest_snapshot(std::string_view sql, std::initializer_list<SqlParam> params = {});

// A statement built at run time (utility commands such as GRANT, whose identifiers were quoted
// by format('%I')); not prepared, not cached.
void run_statement(const std::string &sql);

// The first column of the first row, or nullopt when there is no row (or it is NULL).
std::optional<std::string> query_value(std::string_view sql, std::initializer_list<SqlParam> params = {});

}  // namespace flowgres
