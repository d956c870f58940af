// SPI with kept plans. Plans live for the backend's life in a map keyed by statement text;
// statements are constants in the source, so the map stays small.
#include <string>
#include <unordered_map>

#include "flowgres/errors.hpp"
#include "guard.hpp"
#include "jsonb_document.hpp"
#include "spi.hpp"

extern "C" {
#include "utils/snapmgr.h"
}

namespace flowgres {
namespace {

std::unordered_map<std::string, SPIPlanPtr> &plan_cache() {
    static std::unordered_map<std::string, SPIPlanPtr> plans;
    return plans;
}

// `custom`: the parsed statement is kept, its plan made for each call's values
// (CURSOR_OPT_CUSTOM_PLAN), never a generic one. `document_first`: $1 is jsonb, not text.
SPIPlanPtr prepared_plan(std::string_view sql, int parameter_count, bool custom, bool document_first) {
    std::string key(sql);
    key += '\x1f';
    key += std::to_string(parameter_count);
    key += custom ? 'c' : 'g';
    key += document_first ? 'j' : 't';
    auto &plans = plan_cache();
    if (auto found = plans.find(key); found != plans.end()) return found->second;

    std::string statement(sql);
    const char *statement_text = statement.c_str();
    SPIPlanPtr plan = guard([&] {
        Oid types[FUNC_MAX_ARGS];
        for (int i = 0; i < parameter_count; i++) types[i] = TEXTOID;
        if (document_first) types[0] = JSONBOID;
        SPIPlanPtr prepared =
            SPI_prepare_cursor(statement_text, parameter_count, types, custom ? CURSOR_OPT_CUSTOM_PLAN : 0);
        if (prepared == nullptr)
            elog(ERROR, "flowgres: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        SPI_keepplan(prepared);
        return prepared;
    });
    plans.emplace(std::move(key), plan);
    return plan;
}

// The raw result of one execution, palloc'd in the SPI context: row-major cells, NULL for NULL.
struct RawResult {
    char **cells;
    uint64_t rows;
    int columns;
    uint64_t processed;
};

}  // namespace

const std::string &SqlRow::text(size_t column) const {
    const auto &value = values.at(column);
    if (!value) throw Error(ErrorCode::INTERNAL_ERROR, "unexpected NULL in column " + std::to_string(column));
    return *value;
}

void spi_connect() {
    guard([] {
        if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "flowgres: SPI_connect failed");
    });
}

void spi_finish() {
    guard([] { SPI_finish(); });
}

namespace {

enum class Planning { kept, each_call, kept_latest_snapshot };

// `document`: a parsed jsonb bound as $1, before `params`.
SqlResult run_query(std::string_view sql, std::initializer_list<SqlParam> params, Planning planning,
                    const void *document = nullptr) {
    int first = document ? 1 : 0;
    int count = static_cast<int>(params.size()) + first;
    if (count > FUNC_MAX_ARGS) throw Error(ErrorCode::INTERNAL_ERROR, "too many statement parameters");
    SPIPlanPtr plan = prepared_plan(sql, count, planning == Planning::each_call, document != nullptr);

    const char *texts[FUNC_MAX_ARGS];
    int lengths[FUNC_MAX_ARGS];
    int index = first;
    for (const auto &param : params) {
        texts[index] = param ? param->data() : nullptr;
        lengths[index] = param ? static_cast<int>(param->size()) : 0;
        index++;
    }

    RawResult raw = guard([&] {
        Datum values[FUNC_MAX_ARGS];
        char nulls[FUNC_MAX_ARGS];
        for (int i = first; i < count; i++) {
            nulls[i] = texts[i] == nullptr ? 'n' : ' ';
            values[i] = texts[i] == nullptr ? (Datum)0 : PointerGetDatum(cstring_to_text_with_len(texts[i], lengths[i]));
        }
        if (document) {
            nulls[0] = ' ';
            values[0] = PointerGetDatum(document);
        }
        int status =
            planning == Planning::kept_latest_snapshot
                ? SPI_execute_snapshot(plan, values, nulls, GetLatestSnapshot(), InvalidSnapshot, false, false, 0)
                : SPI_execute_plan(plan, values, nulls, false, 0);
        if (status < 0) elog(ERROR, "flowgres: SPI_execute_plan failed: %s", SPI_result_code_string(status));
        RawResult out{nullptr, 0, 0, SPI_processed};
        if (SPI_tuptable != nullptr) {
            out.rows = SPI_processed;
            out.columns = SPI_tuptable->tupdesc->natts;
            out.cells = static_cast<char **>(palloc0(sizeof(char *) * (out.rows * out.columns + 1)));
            for (uint64_t row = 0; row < out.rows; row++)
                for (int column = 0; column < out.columns; column++)
                    out.cells[row * out.columns + column] =
                        SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column + 1);
        }
        return out;
    });

    SqlResult result;
    result.processed = raw.processed;
    result.rows.reserve(raw.rows);
    for (uint64_t row = 0; row < raw.rows; row++) {
        SqlRow out;
        out.values.reserve(raw.columns);
        for (int column = 0; column < raw.columns; column++) {
            const char *cell = raw.cells[row * raw.columns + column];
            out.values.push_back(cell ? std::optional<std::string>(cell) : std::nullopt);
        }
        result.rows.push_back(std::move(out));
    }
    return result;
}

}  // namespace

SqlResult query(std::string_view sql, std::initializer_list<SqlParam> params) {
    return run_query(sql, params, Planning::kept);
}

SqlResult query_planned_each_call(std::string_view sql, std::initializer_list<SqlParam> params) {
    return run_query(sql, params, Planning::each_call);
}

SqlResult query_over_document(std::string_view sql, const JsonbDocument &document, std::initializer_list<SqlParam> params) {
    return run_query(sql, params, Planning::kept, document.jsonb());
}

SqlResult query_latest_snapshot(std::string_view sql, std::initializer_list<SqlParam> params) {
    return run_query(sql, params, Planning::kept_latest_snapshot);
}

void run_statement(const std::string &sql) {
    const char *text = sql.c_str();
    guard([&] {
        int status = SPI_execute(text, false, 0);
        if (status < 0) elog(ERROR, "flowgres: SPI_execute failed: %s", SPI_result_code_string(status));
    });
}

namespace {
std::optional<std::string> first_value(const SqlResult &result) {
    if (result.rows.empty() || result.rows[0].values.empty()) return std::nullopt;
    return result.rows[0].values[0];
}
}  // namespace

std::optional<std::string> query_value(std::string_view sql, std::initializer_list<SqlParam> params) {
    return first_value(query(sql, params));
}

std::optional<std::string> query_value_latest_snapshot(std::string_view sql, std::initializer_list<SqlParam> params) {
    return first_value(query_latest_snapshot(sql, params));
}

void set_transaction_setting(const char *name, const std::string &value) {
    guard([&] {
        set_config_option(name, value.c_str(), superuser() ? PGC_SUSET : PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
                          true, 0, false);
    });
}

}  // namespace flowgres
