// Rows inserted into one table without a statement, as COPY inserts them: the table opened and
// its indexes once per call, each row's values set by column, then stored with everything an
// INSERT would do for these tables (defaults for the columns left unset, domain checks, NOT
// NULL and CHECK constraints, routing into a partition, index entries and their uniqueness).
//
// Why: a statement that inserts into five tables pays the executor's setup and teardown for
// each call (about half of the time of recording a single run: README "Performance"); these
// rows pay only for being stored. For the hot path's recording (execution_record.cpp) only.
//
// Not for a table an INSERT would do more for: insert triggers, row-level security that binds
// the caller, stored generated columns, a foreign table. can_store() says whether a table is
// one (its rows then go through a statement, which honours all of it); opening one anyway is
// refused with INTERNAL_ERROR. A partition with an insert trigger of its own fails its row.
//
// A PostgreSQL error (a unique violation, a value a domain refuses) comes out as PostgresError
// and fails the call, as it fails a statement; the transaction is then unusable. Values are
// palloc'd in the memory of the current SQL call.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace flowgres {

class JsonbRef;

class TableRows {
public:
    // `schema`.`table`, locked ROW EXCLUSIVE as an INSERT locks it.
    TableRows(const char *schema, const char *table);
    // Whether `schema`.`table` takes rows this way (an INSERT would do nothing more for it).
    static bool can_store(const char *schema, const char *table);
    ~TableRows();
    TableRows(const TableRows &) = delete;
    TableRows &operator=(const TableRows &) = delete;

    // The next row's values, by column name; each checks that the column is of that type (or a
    // domain over it): INTERNAL_ERROR otherwise, or for a column the table does not have.
    void uuid(std::string_view column, std::string_view text);
    void text(std::string_view column, std::string_view value);
    void bigint(std::string_view column, long long value);
    void integer(std::string_view column, int value);
    void boolean(std::string_view column, bool value);
    void jsonb(std::string_view column, const JsonbRef &value);  // absent: NULL
    // `json` parsed; with `strip_nulls`, as jsonb_strip_nulls() leaves it.
    void jsonb_text(std::string_view column, const std::string &json, bool strip_nulls = false);
    void timestamptz_text(std::string_view column, const std::string &text);
    void transaction_start(std::string_view column);  // now()
    void null(std::string_view column);

    // Stores the row set so far (unset columns take their defaults) and starts the next.
    void insert();
    // Closes the table and its indexes; the rows stay this transaction's.
    void close();

    struct State;

private:
    int column(std::string_view name, unsigned base_type);

    std::unique_ptr<State> state_;
};

// Which of `ids` (uuids as text) the unique index `schema`.`index` on one uuid column holds
// for a row this statement sees: one probe each, no statement and no plan (a kept plan made
// when the table was small scans it whole).
std::set<std::string, std::less<>> uuids_indexed(const char *schema, const char *index, const std::vector<std::string> &ids);

}  // namespace flowgres
