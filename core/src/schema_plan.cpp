// Workspace schema planning (schema_plan.hpp): db_schema checks, the catalog's shape, and the
// diff between them as reviewed DDL.
#include "flowgres/schema_plan.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#include "flowgres/crypto.hpp"
#include "flowgres/database_steps.hpp"

namespace flowgres::schema_plan {
namespace {

using database_steps::quote_identifier;
using database_steps::quote_literal;

constexpr size_t kMaxIdentifierBytes = 63;  // NAMEDATALEN - 1
constexpr size_t kMaxTables = 200;
constexpr size_t kMaxColumns = 250;
constexpr size_t kMaxIndexes = 50;

// Lowercase ASCII letters, digits and underscores, not starting with a digit: names that
// read the same quoted or not, so what the catalog says is what the document said.
bool is_plain_identifier(const std::string &name) {
    if (name.empty() || name.size() > kMaxIdentifierBytes) return false;
    if (name[0] >= '0' && name[0] <= '9') return false;
    return std::all_of(name.begin(), name.end(), [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

std::string truncated(std::string name) {
    if (name.size() > kMaxIdentifierBytes) name.resize(kMaxIdentifierBytes);
    return name;
}

std::string primary_key_name(const std::string &table) { return truncated(table + "_pkey"); }
std::string unique_name(const std::string &table, const std::string &column) { return truncated(table + "_" + column + "_key"); }
std::string foreign_key_name(const std::string &table, const std::string &column) { return truncated(table + "_" + column + "_fkey"); }
std::string index_name(const std::string &table, const std::vector<std::string> &columns) {
    std::string name = table;
    for (const auto &column : columns) name += "_" + column;
    return truncated(name + "_idx");
}

std::string qualified(const std::string &table) {
    return quote_identifier(database_steps::kTenantSchema) + "." + quote_identifier(table);
}

std::string lowercase(std::string text) {
    for (char &c : text)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return text;
}

// "VARCHAR ( 20 )" → "varchar(20)": lowercase, single spaces, none beside brackets and commas.
std::string squeezed(const std::string &type) {
    auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n'; };
    auto is_punctuation = [](char c) { return c == '(' || c == ')' || c == ',' || c == '[' || c == ']'; };
    std::string words;
    for (char c : lowercase(type)) {
        if (is_space(c)) {
            if (!words.empty() && words.back() != ' ') words += ' ';
        } else {
            words += c;
        }
    }
    std::string out;
    for (size_t i = 0; i < words.size(); i++) {
        bool beside_punctuation = (i > 0 && is_punctuation(words[i - 1])) || (i + 1 < words.size() && is_punctuation(words[i + 1]));
        if (words[i] == ' ' && (beside_punctuation || i + 1 == words.size())) continue;
        out += words[i];
    }
    return out;
}

std::optional<long> number_in(const std::string &text, long low, long high) {
    if (text.empty() || text.size() > 9 || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    long value = std::strtol(text.c_str(), nullptr, 10);
    if (value < low || value > high) return std::nullopt;
    return value;
}

const std::map<std::string, std::string> &plain_types() {
    static const std::map<std::string, std::string> types = {
        {"text", "text"},
        {"varchar", "character varying"},
        {"character varying", "character varying"},
        {"smallint", "smallint"},
        {"int2", "smallint"},
        {"integer", "integer"},
        {"int", "integer"},
        {"int4", "integer"},
        {"bigint", "bigint"},
        {"int8", "bigint"},
        {"boolean", "boolean"},
        {"bool", "boolean"},
        {"numeric", "numeric"},
        {"decimal", "numeric"},
        {"real", "real"},
        {"float4", "real"},
        {"double precision", "double precision"},
        {"float8", "double precision"},
        {"date", "date"},
        {"time", "time without time zone"},
        {"time without time zone", "time without time zone"},
        {"timestamp", "timestamp without time zone"},
        {"timestamp without time zone", "timestamp without time zone"},
        {"timestamptz", "timestamp with time zone"},
        {"timestamp with time zone", "timestamp with time zone"},
        {"interval", "interval"},
        {"json", "json"},
        {"jsonb", "jsonb"},
        {"uuid", "uuid"},
        {"bytea", "bytea"},
        {"inet", "inet"},
    };
    return types;
}

std::optional<std::string> canonical_scalar(const std::string &type) {
    auto plain = plain_types().find(type);
    if (plain != plain_types().end()) return plain->second;
    size_t open = type.find('(');
    if (open == std::string::npos || type.back() != ')') return std::nullopt;
    std::string base = type.substr(0, open);
    std::string inside = type.substr(open + 1, type.size() - open - 2);
    if (base == "varchar" || base == "character varying") {
        auto length = number_in(inside, 1, 10485760);
        if (!length) return std::nullopt;
        return "character varying(" + std::to_string(*length) + ")";
    }
    if (base == "numeric" || base == "decimal") {
        size_t comma = inside.find(',');
        auto precision = number_in(inside.substr(0, comma), 1, 1000);
        auto scale = comma == std::string::npos ? std::optional<long>(0) : number_in(inside.substr(comma + 1), 0, 1000);
        if (!precision || !scale || *scale > *precision) return std::nullopt;
        return "numeric(" + std::to_string(*precision) + "," + std::to_string(*scale) + ")";
    }
    return std::nullopt;
}

enum class TypeFamily { text, integer, decimal, floating, boolean, time, json, uuid, other };

TypeFamily family_of(const std::string &type) {
    if (type.ends_with("[]")) return TypeFamily::other;
    if (type == "text" || type.starts_with("character varying")) return TypeFamily::text;
    if (type == "smallint" || type == "integer" || type == "bigint") return TypeFamily::integer;
    if (type.starts_with("numeric")) return TypeFamily::decimal;
    if (type == "real" || type == "double precision") return TypeFamily::floating;
    if (type == "boolean") return TypeFamily::boolean;
    if (type == "date" || type.starts_with("timestamp")) return TypeFamily::time;
    if (type == "json" || type == "jsonb") return TypeFamily::json;
    if (type == "uuid") return TypeFamily::uuid;
    return TypeFamily::other;
}

// The number a literal default holds, for comparing 1.50 with 1.5.
std::optional<double> as_number(const std::string &text) {
    if (text.empty()) return std::nullopt;
    char *end = nullptr;
    double value = std::strtod(text.c_str(), &end);
    if (end != text.c_str() + text.size()) return std::nullopt;
    return value;
}

// Defaults are compared by meaning, not spelling: "L:" + a literal's text (quotes and cast
// gone), "E:" + an expression in lowercase. pg_get_expr prints 'it''s'::text, '-5'::integer,
// 1.50, 1.5::numeric(10,2), true, now(), CURRENT_TIMESTAMP.
std::string normalize_default(const std::string &expression) {
    if (!expression.empty() && expression[0] == '\'') {
        std::string literal;
        size_t i = 1;
        for (; i < expression.size(); i++) {
            if (expression[i] == '\'') {
                if (i + 1 < expression.size() && expression[i + 1] == '\'') {
                    literal += '\'';
                    i++;
                    continue;
                }
                break;
            }
            literal += expression[i];
        }
        std::string rest = expression.substr(std::min(i + 1, expression.size()));
        if (rest.empty() || rest.starts_with("::")) return "L:" + literal;
    }
    if (as_number(expression) || expression == "true" || expression == "false") return "L:" + expression;
    size_t cast = expression.find("::");  // 1.5::numeric(10,2)
    if (cast != std::string::npos && as_number(expression.substr(0, cast))) return "L:" + expression.substr(0, cast);
    return "E:" + lowercase(expression);
}

bool defaults_equal(const std::string &type, const std::string &left, const std::string &right) {
    if (left == right) return true;
    if (!left.starts_with("L:") || !right.starts_with("L:")) return false;
    std::string a = left.substr(2), b = right.substr(2);
    TypeFamily family = family_of(type);
    if (family == TypeFamily::integer || family == TypeFamily::decimal || family == TypeFamily::floating) {
        auto x = as_number(a), y = as_number(b);
        return x && y && *x == *y;
    }
    if (family == TypeFamily::uuid) return lowercase(a) == lowercase(b);
    if (family == TypeFamily::json) {
        json_error_t error;
        Json x(json_loads(a.c_str(), JSON_DECODE_ANY, &error)), y(json_loads(b.c_str(), JSON_DECODE_ANY, &error));
        return x && y && json_equal(x.get(), y.get());
    }
    return false;
}

// 0.1 as "0.1", not jansson's "0.10000000000000001": the shortest text that reads back the same.
std::string number_text(const json_t *value) {
    if (json_is_integer(value)) return std::to_string(json_integer_value(value));
    double number = json_real_value(value);
    char text[40];
    for (int digits = 15; digits <= 17; digits++) {
        std::snprintf(text, sizeof text, "%.*g", digits, number);
        if (std::strtod(text, nullptr) == number) break;
    }
    return text;
}

// ---- Reading the document ----------------------------------------------------------------

class DocumentReader {
public:
    explicit DocumentReader(ValidationProblems &problems) : problems_(problems) {}

    Schema read(const json_t *document) {
        Schema schema;
        if (!json_is_object(document)) {
            problems_.add("db_schema", "must be an object");
            return schema;
        }
        only_keys(document, "db_schema", {"tables", "drop_tables"});
        const json_t *tables = json_object_get(document, "tables");
        if (tables && !json_is_array(tables)) problems_.add("db_schema.tables", "must be an array");
        else if (json_array_size(tables) > kMaxTables)
            problems_.add("db_schema.tables", "must hold at most " + std::to_string(kMaxTables) + " tables");
        else if (tables) {
            size_t index;
            const json_t *table;
            json_array_foreach(tables, index, table) schema.tables.push_back(read_table(table, "db_schema.tables[" + std::to_string(index) + "]"));
        }
        const json_t *drops = json_object_get(document, "drop_tables");
        if (drops && !json_is_array(drops)) problems_.add("db_schema.drop_tables", "must be an array");
        else if (drops) {
            size_t index;
            const json_t *name;
            json_array_foreach(drops, index, name) {
                std::string field = "db_schema.drop_tables[" + std::to_string(index) + "]";
                if (auto text = identifier(name, field)) schema.drop_tables.push_back(*text);
            }
        }
        check_names(schema);
        return schema;
    }

private:
    ValidationProblems &problems_;

    void only_keys(const json_t *object, const std::string &field, std::initializer_list<const char *> allowed) {
        const char *key;
        const json_t *value;
        json_object_foreach(const_cast<json_t *>(object), key, value) {
            if (std::none_of(allowed.begin(), allowed.end(), [&](const char *name) { return std::string_view(name) == key; }))
                problems_.add(field + "." + key, "is not a db_schema member");
        }
    }

    std::optional<std::string> identifier(const json_t *value, const std::string &field) {
        if (!json_is_string(value)) {
            problems_.add(field, "must be a string");
            return std::nullopt;
        }
        std::string name = json_string_value(value);
        if (!is_plain_identifier(name)) {
            problems_.add(field, "must be 1 to 63 lowercase letters, digits or underscores, not starting with a digit");
            return std::nullopt;
        }
        return name;
    }

    bool flag(const json_t *object, const char *key, const std::string &field, bool otherwise) {
        const json_t *value = json_object_get(object, key);
        if (!value) return otherwise;
        if (!json_is_boolean(value)) {
            problems_.add(field + "." + key, "must be true or false");
            return otherwise;
        }
        return json_is_true(value);
    }

    Table read_table(const json_t *value, const std::string &field) {
        Table table;
        if (!json_is_object(value)) {
            problems_.add(field, "must be an object");
            return table;
        }
        only_keys(value, field, {"name", "columns", "indexes"});
        table.name = identifier(json_object_get(value, "name"), field + ".name").value_or("");
        const json_t *columns = json_object_get(value, "columns");
        if (!json_is_array(columns) || json_array_size(columns) == 0)
            problems_.add(field + ".columns", "must be a non-empty array");
        else if (json_array_size(columns) > kMaxColumns)
            problems_.add(field + ".columns", "must hold at most " + std::to_string(kMaxColumns) + " columns");
        else {
            size_t index;
            const json_t *column;
            json_array_foreach(columns, index, column)
                table.columns.push_back(read_column(column, field + ".columns[" + std::to_string(index) + "]"));
        }
        const json_t *indexes = json_object_get(value, "indexes");
        if (indexes && !json_is_array(indexes)) problems_.add(field + ".indexes", "must be an array");
        else if (json_array_size(indexes) > kMaxIndexes)
            problems_.add(field + ".indexes", "must hold at most " + std::to_string(kMaxIndexes) + " indexes");
        else if (indexes) {
            size_t index;
            const json_t *entry;
            json_array_foreach(indexes, index, entry)
                table.indexes.push_back(read_index(entry, table, field + ".indexes[" + std::to_string(index) + "]"));
        }
        return table;
    }

    Column read_column(const json_t *value, const std::string &field) {
        Column column;
        if (!json_is_object(value)) {
            problems_.add(field, "must be an object");
            return column;
        }
        only_keys(value, field, {"name", "type", "nullable", "primary_key", "unique", "identity", "default", "references"});
        column.name = identifier(json_object_get(value, "name"), field + ".name").value_or("");
        const json_t *type = json_object_get(value, "type");
        if (!json_is_string(type)) problems_.add(field + ".type", "must be a string");
        else if (auto canonical = canonical_type(json_string_value(type))) column.type = *canonical;
        else
            problems_.add(field + ".type", "must be one of text, varchar(n), smallint, integer, bigint, numeric(p,s), real, "
                                           "double precision, boolean, date, time, timestamp, timestamptz, interval, json, "
                                           "jsonb, uuid, bytea, inet, or one of those followed by []");
        column.nullable = flag(value, "nullable", field, true);
        column.primary_key = flag(value, "primary_key", field, false);
        column.unique = flag(value, "unique", field, false);
        column.identity = flag(value, "identity", field, false);
        if (column.identity && !column.type.empty() && family_of(column.type) != TypeFamily::integer)
            problems_.add(field + ".identity", "needs a smallint, integer or bigint column");
        const json_t *default_value = json_object_get(value, "default");
        if (default_value && !json_is_null(default_value)) {
            if (column.identity) problems_.add(field + ".default", "cannot be set on an identity column");
            else if (!column.type.empty()) column.default_value = read_default(default_value, column.type, field + ".default");
        }
        const json_t *references = json_object_get(value, "references");
        if (references) column.references = read_reference(references, field + ".references");
        if (column.references && column.references->on_delete == "set null" && !column.nullable)
            problems_.add(field + ".references.on_delete", "set null needs a nullable column");
        return column;
    }

    std::optional<ColumnDefault> read_default(const json_t *value, const std::string &type, const std::string &field) {
        TypeFamily family = family_of(type);
        if (json_is_object(value) && json_object_size(value) == 1 && json_is_string(json_object_get(value, "expression"))) {
            std::string expression = lowercase(json_string_value(json_object_get(value, "expression")));
            static const std::map<std::string, std::pair<std::string, TypeFamily>> allowed = {
                {"now()", {"now()", TypeFamily::time}},
                {"current_timestamp", {"CURRENT_TIMESTAMP", TypeFamily::time}},
                {"current_date", {"CURRENT_DATE", TypeFamily::time}},
                {"gen_random_uuid()", {"gen_random_uuid()", TypeFamily::uuid}},
            };
            auto known = allowed.find(expression);
            if (known == allowed.end()) {
                problems_.add(field + ".expression", "must be now(), current_timestamp, current_date or gen_random_uuid()");
                return std::nullopt;
            }
            if (known->second.second != family) {
                problems_.add(field + ".expression", expression + " does not fit a " + type + " column");
                return std::nullopt;
            }
            return ColumnDefault{known->second.first, "E:" + expression};
        }
        if (family == TypeFamily::json) {
            std::string text = dump_json(value);
            return ColumnDefault{quote_literal(text) + "::" + type, "L:" + text};
        }
        if (json_is_string(value) && (family == TypeFamily::text || family == TypeFamily::uuid)) {
            std::string text = json_string_value(value);
            if (text.find('\0') != std::string::npos || text.size() > 1000) {
                problems_.add(field, "must be at most 1000 bytes");
                return std::nullopt;
            }
            return ColumnDefault{quote_literal(text) + "::" + type, "L:" + text};
        }
        if (json_is_number(value) && (family == TypeFamily::integer || family == TypeFamily::decimal || family == TypeFamily::floating)) {
            if (family == TypeFamily::integer && !json_is_integer(value)) {
                problems_.add(field, "must be a whole number for a " + type + " column");
                return std::nullopt;
            }
            std::string text = number_text(value);
            return ColumnDefault{quote_literal(text) + "::" + type, "L:" + text};
        }
        if (json_is_boolean(value) && family == TypeFamily::boolean) {
            std::string text = json_is_true(value) ? "true" : "false";
            return ColumnDefault{text, "L:" + text};
        }
        problems_.add(field, "must be a " +
                                 std::string(family == TypeFamily::text || family == TypeFamily::uuid ? "string"
                                             : family == TypeFamily::boolean                        ? "boolean"
                                             : family == TypeFamily::time                           ? "{\"expression\": …}"
                                             : family == TypeFamily::other                          ? "nothing (no default)"
                                                                                                    : "number") +
                                 " for a " + type + " column");
        return std::nullopt;
    }

    std::optional<Reference> read_reference(const json_t *value, const std::string &field) {
        if (!json_is_object(value)) {
            problems_.add(field, "must be an object {\"table\", \"column\", \"on_delete\"}");
            return std::nullopt;
        }
        only_keys(value, field, {"table", "column", "on_delete"});
        Reference reference;
        auto table = identifier(json_object_get(value, "table"), field + ".table");
        auto column = identifier(json_object_get(value, "column"), field + ".column");
        const json_t *on_delete = json_object_get(value, "on_delete");
        if (on_delete) {
            std::string action = json_is_string(on_delete) ? json_string_value(on_delete) : "";
            if (action != "no action" && action != "restrict" && action != "cascade" && action != "set null" && action != "set default")
                problems_.add(field + ".on_delete", "must be no action, restrict, cascade, set null or set default");
            else
                reference.on_delete = action;
        }
        if (!table || !column) return std::nullopt;
        reference.table = *table;
        reference.column = *column;
        return reference;
    }

    Index read_index(const json_t *value, const Table &table, const std::string &field) {
        Index index;
        if (!json_is_object(value)) {
            problems_.add(field, "must be an object");
            return index;
        }
        only_keys(value, field, {"name", "columns", "unique"});
        const json_t *columns = json_object_get(value, "columns");
        if (!json_is_array(columns) || json_array_size(columns) == 0 || json_array_size(columns) > 32) {
            problems_.add(field + ".columns", "must be an array of 1 to 32 column names");
        } else {
            size_t position;
            const json_t *name;
            json_array_foreach(columns, position, name) {
                std::string column_field = field + ".columns[" + std::to_string(position) + "]";
                auto column = identifier(name, column_field);
                if (!column) continue;
                bool declared = std::any_of(table.columns.begin(), table.columns.end(), [&](const Column &c) { return c.name == *column; });
                if (!declared) problems_.add(column_field, "is not a column of " + table.name);
                else if (std::find(index.columns.begin(), index.columns.end(), *column) != index.columns.end())
                    problems_.add(column_field, "is named twice");
                else
                    index.columns.push_back(*column);
            }
        }
        index.unique = flag(value, "unique", field, false);
        const json_t *name = json_object_get(value, "name");
        if (name) index.name = identifier(name, field + ".name").value_or("");
        else if (!index.columns.empty() && !table.name.empty()) index.name = index_name(table.name, index.columns);
        return index;
    }

    // Names unique where PostgreSQL needs them to be, and references to what the document declares.
    void check_names(const Schema &schema) {
        std::map<std::string, const Table *> tables;
        std::set<std::string> relation_names;  // tables and indexes share one namespace
        for (size_t t = 0; t < schema.tables.size(); t++) {
            const Table &table = schema.tables[t];
            std::string field = "db_schema.tables[" + std::to_string(t) + "]";
            if (table.name.empty()) continue;
            if (!tables.emplace(table.name, &table).second) problems_.add(field + ".name", "names a table declared before");
            relation_names.insert(table.name);
            std::set<std::string> columns;
            for (size_t c = 0; c < table.columns.size(); c++)
                if (!table.columns[c].name.empty() && !columns.insert(table.columns[c].name).second)
                    problems_.add(field + ".columns[" + std::to_string(c) + "].name", "names a column declared before");
        }
        for (size_t t = 0; t < schema.tables.size(); t++) {
            const Table &table = schema.tables[t];
            std::string field = "db_schema.tables[" + std::to_string(t) + "]";
            for (size_t i = 0; i < table.indexes.size(); i++)
                if (!table.indexes[i].name.empty() && !relation_names.insert(table.indexes[i].name).second)
                    problems_.add(field + ".indexes[" + std::to_string(i) + "].name", "is the name of another table or index");
            for (size_t c = 0; c < table.columns.size(); c++) {
                const Column &column = table.columns[c];
                if (!column.references || column.type.empty()) continue;
                std::string reference_field = field + ".columns[" + std::to_string(c) + "].references";
                auto target = tables.find(column.references->table);
                if (target == tables.end()) {
                    problems_.add(reference_field + ".table", "must be a table this db_schema declares");
                    continue;
                }
                const auto &target_columns = target->second->columns;
                auto referenced = std::find_if(target_columns.begin(), target_columns.end(),
                                               [&](const Column &c) { return c.name == column.references->column; });
                if (referenced == target_columns.end()) {
                    problems_.add(reference_field + ".column", "is not a column of " + column.references->table);
                    continue;
                }
                size_t key_columns = std::count_if(target_columns.begin(), target_columns.end(), [](const Column &c) { return c.primary_key; });
                if (!referenced->unique && !(referenced->primary_key && key_columns == 1))
                    problems_.add(reference_field + ".column", "must be the primary key or a unique column of " + column.references->table);
                else if (referenced->type != column.type)
                    problems_.add(reference_field + ".column", "has type " + referenced->type + ", not " + column.type);
            }
        }
        for (size_t d = 0; d < schema.drop_tables.size(); d++)
            if (tables.count(schema.drop_tables[d]))
                problems_.add("db_schema.drop_tables[" + std::to_string(d) + "]", "names a table the db_schema declares");
    }
};

// ---- Reading the catalog ---------------------------------------------------------------

struct CatalogColumn {
    std::string type;
    bool nullable = true;
    std::optional<std::string> default_value;  // normalized
    bool identity = false;
};

struct CatalogIndex {
    std::string name;
    std::vector<std::string> columns;
    bool unique = false;
    bool primary = false;
    bool partial = false;
    std::optional<std::string> constraint;
};

struct CatalogForeignKey {
    std::string name;
    std::vector<std::string> columns;
    std::string ref_schema, ref_table;
    std::vector<std::string> ref_columns;
    std::string on_delete;
};

struct CatalogTable {
    std::vector<std::string> column_order;
    std::map<std::string, CatalogColumn> columns;
    std::vector<CatalogIndex> indexes;
    std::vector<CatalogForeignKey> foreign_keys;
};

std::string string_member(const json_t *object, const char *key) {
    const json_t *value = json_object_get(object, key);
    return json_is_string(value) ? json_string_value(value) : "";
}

std::vector<std::string> string_list(const json_t *array) {
    std::vector<std::string> out;
    size_t index;
    const json_t *value;
    json_array_foreach(array, index, value) out.push_back(json_is_string(value) ? json_string_value(value) : "");
    return out;
}

std::map<std::string, CatalogTable> read_catalog(const json_t *catalog) {
    std::map<std::string, CatalogTable> tables;
    const char *name;
    const json_t *table;
    json_object_foreach(const_cast<json_t *>(catalog), name, table) {
        CatalogTable &entry = tables[name];
        size_t index;
        const json_t *value;
        json_array_foreach(json_object_get(table, "columns"), index, value) {
            CatalogColumn column;
            column.type = string_member(value, "type");
            column.nullable = json_is_true(json_object_get(value, "nullable"));
            column.identity = json_is_true(json_object_get(value, "identity"));
            const json_t *expression = json_object_get(value, "default");
            if (json_is_string(expression)) column.default_value = normalize_default(json_string_value(expression));
            entry.column_order.push_back(string_member(value, "name"));
            entry.columns[entry.column_order.back()] = column;
        }
        json_array_foreach(json_object_get(table, "indexes"), index, value) {
            CatalogIndex catalog_index;
            catalog_index.name = string_member(value, "name");
            catalog_index.columns = string_list(json_object_get(value, "columns"));
            catalog_index.unique = json_is_true(json_object_get(value, "unique"));
            catalog_index.primary = json_is_true(json_object_get(value, "primary"));
            catalog_index.partial = json_is_true(json_object_get(value, "partial"));
            const json_t *constraint = json_object_get(value, "constraint");
            if (json_is_string(constraint)) catalog_index.constraint = json_string_value(constraint);
            entry.indexes.push_back(catalog_index);
        }
        json_array_foreach(json_object_get(table, "foreign_keys"), index, value) {
            entry.foreign_keys.push_back({string_member(value, "name"), string_list(json_object_get(value, "columns")),
                                          string_member(value, "ref_schema"), string_member(value, "ref_table"),
                                          string_list(json_object_get(value, "ref_columns")), string_member(value, "on_delete")});
        }
    }
    return tables;
}

// ---- The diff ------------------------------------------------------------------------------

enum class TypeChange { safe, rewrite, narrowing };

std::optional<long> length_of(const std::string &type) {
    size_t open = type.find('(');
    if (open == std::string::npos) return std::nullopt;
    return std::strtol(type.c_str() + open + 1, nullptr, 10);
}

// What ALTER COLUMN … TYPE does to the rows: nothing (a binary-compatible widening), a
// rewrite that keeps every value, or a conversion that may fail or lose data.
TypeChange classify_type_change(const std::string &from, const std::string &to) {
    auto rank = [](const std::string &type) {
        return type == "smallint" ? 1 : type == "integer" ? 2 : type == "bigint" ? 3 : 0;
    };
    bool from_text = from == "text" || from.starts_with("character varying");
    if (from_text && (to == "text" || to == "character varying")) return TypeChange::safe;
    if (from_text && to.starts_with("character varying(")) {
        auto old_length = length_of(from);
        return old_length && *old_length <= *length_of(to) ? TypeChange::safe : TypeChange::narrowing;
    }
    if (rank(from) && rank(to)) return rank(to) > rank(from) ? TypeChange::rewrite : TypeChange::narrowing;
    if (rank(from) && to.starts_with("numeric")) return to == "numeric" ? TypeChange::rewrite : TypeChange::narrowing;
    if (from.starts_with("numeric") && to == "numeric") return TypeChange::safe;
    if (from.starts_with("numeric(") && to.starts_with("numeric(")) {
        long from_precision = *length_of(from), to_precision = *length_of(to);
        long from_scale = std::strtol(from.c_str() + from.find(',') + 1, nullptr, 10);
        long to_scale = std::strtol(to.c_str() + to.find(',') + 1, nullptr, 10);
        if (to_scale == from_scale && to_precision >= from_precision) return TypeChange::safe;
        if (to_scale > from_scale && to_precision - to_scale >= from_precision - from_scale) return TypeChange::rewrite;
        return TypeChange::narrowing;
    }
    if (from == "real" && to == "double precision") return TypeChange::rewrite;
    if (from == "timestamp without time zone" && to == "timestamp with time zone") return TypeChange::rewrite;
    if (from == "date" && to.starts_with("timestamp")) return TypeChange::rewrite;
    if (from == "json" && to == "jsonb") return TypeChange::rewrite;
    if (to == "text" && !from.ends_with("[]")) return TypeChange::rewrite;
    return TypeChange::narrowing;
}

Risk risk(const char *code, bool destructive, std::string message) { return Risk{code, destructive, std::move(message)}; }

std::string column_definition(const Column &column) {
    std::string sql = quote_identifier(column.name) + " " + column.type;
    if (column.identity) sql += " generated by default as identity";
    if (column.default_value) sql += " default " + column.default_value->sql;
    if (!column.nullable || column.primary_key) sql += " not null";
    return sql;
}

bool effective_nullable(const Column &column) { return column.nullable && !column.primary_key; }

std::vector<std::string> primary_key_of(const Table &table) {
    std::vector<std::string> columns;
    for (const auto &column : table.columns)
        if (column.primary_key) columns.push_back(column.name);
    return columns;
}

std::string column_list(const std::vector<std::string> &columns) {
    std::string out;
    for (const auto &column : columns) out += (out.empty() ? "" : ", ") + quote_identifier(column);
    return out;
}

std::string foreign_key_clause(const Table &table, const Column &column) {
    const Reference &reference = *column.references;
    return "constraint " + quote_identifier(foreign_key_name(table.name, column.name)) + " foreign key (" +
           quote_identifier(column.name) + ") references " + qualified(reference.table) + " (" +
           quote_identifier(reference.column) + ") on delete " + reference.on_delete;
}

bool foreign_key_matches(const CatalogForeignKey &key, const Column &column) {
    return column.references && key.columns == std::vector<std::string>{column.name} &&
           key.ref_schema == database_steps::kTenantSchema && key.ref_table == column.references->table &&
           key.ref_columns == std::vector<std::string>{column.references->column} && key.on_delete == column.references->on_delete;
}

class Planner {
public:
    Planner(const Schema &desired, std::map<std::string, CatalogTable> catalog) : desired_(desired), catalog_(std::move(catalog)) {}

    Plan run() {
        for (const auto &table : desired_.tables)
            if (auto existing = catalog_.find(table.name); existing != catalog_.end()) drop_dependents(table, existing->second);
        for (const auto &table : desired_.tables) {
            auto existing = catalog_.find(table.name);
            if (existing == catalog_.end()) create_table(table);
            else change_columns(table, existing->second);
        }
        for (const auto &table : desired_.tables) {
            auto existing = catalog_.find(table.name);
            add_dependents(table, existing == catalog_.end() ? nullptr : &existing->second);
        }
        for (const auto &name : desired_.drop_tables)
            if (catalog_.count(name))
                add("drop_table", name, "", "drop table " + qualified(name),
                    {risk("drop_table", true, "the table " + name + " and every row in it are deleted")});
        return std::move(plan_);
    }

private:
    const Schema &desired_;
    std::map<std::string, CatalogTable> catalog_;
    Plan plan_;
    // Constraints and indexes dropped in the first pass, so the last pass adds them again.
    std::set<std::string> dropped_primary_keys_;

    void add(const char *action, const std::string &table, const std::string &column, std::string sql, std::vector<Risk> risks = {}) {
        plan_.steps.push_back(Step{action, table, column, std::move(sql), std::move(risks)});
    }

    static const CatalogIndex *primary_index(const CatalogTable &existing) {
        for (const auto &index : existing.indexes)
            if (index.primary) return &index;
        return nullptr;
    }

    static bool unique_wanted(const Table &table, const CatalogIndex &index) {
        if (index.columns.size() != 1) return false;
        return std::any_of(table.columns.begin(), table.columns.end(),
                           [&](const Column &c) { return c.unique && c.name == index.columns[0]; });
    }

    static const Index *index_wanted(const Table &table, const CatalogIndex &index) {
        for (const auto &wanted : table.indexes)
            if (wanted.name == index.name && wanted.columns == index.columns && wanted.unique == index.unique && !index.partial)
                return &wanted;
        return nullptr;
    }

    void drop_dependents(const Table &table, const CatalogTable &existing) {
        std::string target = qualified(table.name);
        for (const auto &key : existing.foreign_keys) {
            bool kept = std::any_of(table.columns.begin(), table.columns.end(), [&](const Column &c) { return foreign_key_matches(key, c); });
            if (!kept) add("drop_foreign_key", table.name, "", "alter table " + target + " drop constraint " + quote_identifier(key.name));
        }
        for (const auto &index : existing.indexes) {
            if (index.primary) {
                if (index.columns != primary_key_of(table)) {
                    add("drop_primary_key", table.name, "",
                        "alter table " + target + " drop constraint " + quote_identifier(index.constraint.value_or(index.name)));
                    dropped_primary_keys_.insert(table.name);
                }
            } else if (index.constraint) {
                if (!index.unique || !unique_wanted(table, index))
                    add("drop_unique", table.name, "", "alter table " + target + " drop constraint " + quote_identifier(*index.constraint));
            } else if (!index_wanted(table, index)) {
                add("drop_index", table.name, "",
                    "drop index " + quote_identifier(database_steps::kTenantSchema) + "." + quote_identifier(index.name),
                    {risk("drop_index", false, "queries that used the index " + index.name + " may slow down")});
            }
        }
    }

    void create_table(const Table &table) {
        std::string sql = "create table " + qualified(table.name) + " (";
        for (size_t i = 0; i < table.columns.size(); i++) sql += (i ? ", " : "") + column_definition(table.columns[i]);
        std::vector<std::string> key = primary_key_of(table);
        if (!key.empty()) sql += ", constraint " + quote_identifier(primary_key_name(table.name)) + " primary key (" + column_list(key) + ")";
        for (const auto &column : table.columns)
            if (column.unique)
                sql += ", constraint " + quote_identifier(unique_name(table.name, column.name)) + " unique (" + quote_identifier(column.name) + ")";
        add("create_table", table.name, "", sql + ")");
    }

    void change_columns(const Table &table, const CatalogTable &existing) {
        std::string target = qualified(table.name);
        for (const auto &column : table.columns) {
            auto found = existing.columns.find(column.name);
            if (found == existing.columns.end()) {
                add_column(table, column);
                continue;
            }
            const CatalogColumn &current = found->second;
            std::string alter = "alter table " + target + " alter column " + quote_identifier(column.name);
            bool type_changes = current.type != column.type;
            if (type_changes && current.default_value) add("drop_default", table.name, column.name, alter + " drop default");
            if (type_changes) {
                std::vector<Risk> risks;
                switch (classify_type_change(current.type, column.type)) {
                case TypeChange::safe:
                    break;
                case TypeChange::rewrite:
                    risks.push_back(risk("table_rewrite", false,
                                         current.type + " to " + column.type + " rewrites " + table.name + " under an exclusive lock"));
                    break;
                case TypeChange::narrowing:
                    risks.push_back(risk("type_narrowing", true,
                                         current.type + " to " + column.type + " may fail on or cut values of " + column.name));
                    risks.push_back(risk("table_rewrite", false, "the change rewrites " + table.name + " under an exclusive lock"));
                    break;
                }
                add("alter_type", table.name, column.name,
                    alter + " type " + column.type + " using " + quote_identifier(column.name) + "::" + column.type, std::move(risks));
            }
            bool wants_nullable = effective_nullable(column);
            if (!wants_nullable && current.nullable)
                add("set_not_null", table.name, column.name, alter + " set not null",
                    {risk("set_not_null", false, "fails if any row of " + table.name + " holds NULL in " + column.name +
                                                     "; the whole table is scanned")});
            if (wants_nullable && !current.nullable) add("drop_not_null", table.name, column.name, alter + " drop not null");
            if (column.identity && !current.identity)
                add("add_identity", table.name, column.name, alter + " add generated by default as identity",
                    {risk("identity_added", false, "the new sequence starts at 1, which existing values of " + column.name + " may already hold")});
            if (!column.identity && current.identity) add("drop_identity", table.name, column.name, alter + " drop identity if exists");
            std::optional<std::string> current_default = type_changes ? std::nullopt : current.default_value;
            if (column.default_value &&
                !(current_default && defaults_equal(column.type, *current_default, column.default_value->comparable)))
                add("set_default", table.name, column.name, alter + " set default " + column.default_value->sql);
            if (!column.default_value && current_default) add("drop_default", table.name, column.name, alter + " drop default");
        }
        for (const auto &name : existing.column_order) {
            bool declared = std::any_of(table.columns.begin(), table.columns.end(), [&](const Column &c) { return c.name == name; });
            if (!declared)
                add("drop_column", table.name, name, "alter table " + target + " drop column " + quote_identifier(name),
                    {risk("drop_column", true, "the column " + name + " of " + table.name + " and its values are deleted")});
        }
    }

    void add_column(const Table &table, const Column &column) {
        std::vector<Risk> risks;
        bool not_null = !effective_nullable(column);
        if (not_null && !column.default_value && !column.identity)
            risks.push_back(risk("not_null_without_default", false,
                                 "adding " + column.name + " NOT NULL without a default fails if " + table.name + " has rows"));
        if (column.identity || (column.default_value && column.default_value->comparable == "E:gen_random_uuid()"))
            risks.push_back(risk("table_rewrite", false, "filling " + column.name + " row by row rewrites " + table.name));
        add("add_column", table.name, column.name, "alter table " + qualified(table.name) + " add column " + column_definition(column),
            std::move(risks));
    }

    void add_dependents(const Table &table, const CatalogTable *existing) {
        std::string target = qualified(table.name);
        std::vector<std::string> key = primary_key_of(table);
        const CatalogIndex *current_key = existing ? primary_index(*existing) : nullptr;
        if (existing && !key.empty() && (!current_key || dropped_primary_keys_.count(table.name)))
            add("add_primary_key", table.name, "",
                "alter table " + target + " add constraint " + quote_identifier(primary_key_name(table.name)) + " primary key (" +
                    column_list(key) + ")",
                {risk("new_primary_key", false, "fails if " + table.name + " holds duplicate keys; builds an index that blocks writes")});
        for (const auto &column : table.columns) {
            if (!existing || !column.unique) continue;
            bool present = std::any_of(existing->indexes.begin(), existing->indexes.end(), [&](const CatalogIndex &index) {
                return index.constraint && !index.primary && index.unique && index.columns == std::vector<std::string>{column.name};
            });
            bool new_column = !existing->columns.count(column.name);
            if (!present)
                add("add_unique", table.name, column.name,
                    "alter table " + target + " add constraint " + quote_identifier(unique_name(table.name, column.name)) +
                        " unique (" + quote_identifier(column.name) + ")",
                    new_column ? std::vector<Risk>{}
                               : std::vector<Risk>{risk("new_unique", false, "fails if " + column.name + " holds duplicate values; "
                                                                             "builds an index that blocks writes")});
        }
        for (const auto &index : table.indexes) {
            bool present = existing && std::any_of(existing->indexes.begin(), existing->indexes.end(), [&](const CatalogIndex &current) {
                return !current.constraint && index_wanted(table, current) == &index;
            });
            if (present) continue;
            std::vector<Risk> risks;
            if (existing) risks.push_back(risk("index_build", false, "building " + index.name + " blocks writes to " + table.name + " until it is done"));
            add("create_index", table.name, "",
                std::string("create ") + (index.unique ? "unique " : "") + "index " + quote_identifier(index.name) + " on " + target + " (" +
                    column_list(index.columns) + ")",
                std::move(risks));
        }
        for (const auto &column : table.columns) {
            if (!column.references) continue;
            bool present = existing && std::any_of(existing->foreign_keys.begin(), existing->foreign_keys.end(),
                                                   [&](const CatalogForeignKey &key) { return foreign_key_matches(key, column); });
            if (present) continue;
            std::vector<Risk> risks;
            if (existing && existing->columns.count(column.name))
                risks.push_back(risk("new_foreign_key", false, "fails if a row's " + column.name + " has no match in " + column.references->table));
            add("add_foreign_key", table.name, column.name, "alter table " + target + " add " + foreign_key_clause(table, column),
                std::move(risks));
        }
    }
};

}  // namespace

std::optional<std::string> canonical_type(const std::string &type) {
    if (type.size() > 100) return std::nullopt;
    std::string text = squeezed(type);
    bool array = text.ends_with("[]");
    if (array) text = text.substr(0, text.size() - 2);
    auto scalar = canonical_scalar(text);
    if (!scalar) return std::nullopt;
    return array ? *scalar + "[]" : *scalar;
}

Schema parse(const json_t *db_schema, ValidationProblems &problems) { return DocumentReader(problems).read(db_schema); }

const char *catalog_query() {
    return R"sql(
    select coalesce(jsonb_object_agg(c.relname, jsonb_build_object(
        'columns', coalesce((
            select jsonb_agg(jsonb_build_object(
                       'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod), 'nullable', not a.attnotnull,
                       'default', pg_get_expr(d.adbin, d.adrelid), 'identity', a.attidentity <> '') order by a.attnum)
            from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
            where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]'),
        'indexes', coalesce((
            select jsonb_agg(jsonb_build_object(
                       'name', ic.relname, 'unique', i.indisunique, 'primary', i.indisprimary, 'constraint', con.conname,
                       'partial', i.indpred is not null,
                       'columns', (select coalesce(jsonb_agg(coalesce(a.attname, '') order by k.ord), '[]')
                                   from unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
                                   left join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum)) order by ic.relname)
            from pg_index i join pg_class ic on ic.oid = i.indexrelid
            left join pg_constraint con on con.conindid = i.indexrelid and con.conrelid = c.oid and con.contype in ('p', 'u')
            where i.indrelid = c.oid), '[]'),
        'foreign_keys', coalesce((
            select jsonb_agg(jsonb_build_object(
                       'name', f.conname, 'ref_schema', rn.nspname, 'ref_table', rc.relname,
                       'columns', (select jsonb_agg(a.attname order by k.ord) from unnest(f.conkey) with ordinality k(attnum, ord)
                                   join pg_attribute a on a.attrelid = f.conrelid and a.attnum = k.attnum),
                       'ref_columns', (select jsonb_agg(a.attname order by k.ord) from unnest(f.confkey) with ordinality k(attnum, ord)
                                       join pg_attribute a on a.attrelid = f.confrelid and a.attnum = k.attnum),
                       'on_delete', case f.confdeltype when 'a' then 'no action' when 'r' then 'restrict' when 'c' then 'cascade'
                                                       when 'n' then 'set null' when 'd' then 'set default' end) order by f.conname)
            from pg_constraint f join pg_class rc on rc.oid = f.confrelid join pg_namespace rn on rn.oid = rc.relnamespace
            where f.conrelid = c.oid and f.contype = 'f'), '[]'))), '{}')::text
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'data' and c.relkind in ('r', 'p'))sql";
}

std::string catalog_fingerprint(const json_t *catalog) {
    std::unique_ptr<char, decltype(&free)> text(json_dumps(catalog, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY), &free);
    return sha256_hex(text ? text.get() : "");
}

bool Plan::destructive() const {
    for (const auto &step : steps)
        for (const auto &risk : step.risks)
            if (risk.destructive) return true;
    return false;
}

std::string Plan::to_json() const {
    std::string out = "{\"steps\":[";
    std::vector<std::string> codes;
    for (size_t i = 0; i < steps.size(); i++) {
        const Step &step = steps[i];
        out += std::string(i ? "," : "") + "{\"action\":" + json_quote(step.action) + ",\"table\":" + json_quote(step.table) +
               ",\"column\":" + (step.column.empty() ? "null" : json_quote(step.column)) + ",\"sql\":" + json_quote(step.sql) +
               ",\"risks\":[";
        for (size_t r = 0; r < step.risks.size(); r++) {
            const Risk &risk = step.risks[r];
            out += std::string(r ? "," : "") + "{\"code\":" + json_quote(risk.code) +
                   ",\"destructive\":" + (risk.destructive ? "true" : "false") + ",\"message\":" + json_quote(risk.message) + "}";
            if (std::find(codes.begin(), codes.end(), risk.code) == codes.end()) codes.push_back(risk.code);
        }
        out += "]}";
    }
    out += "],\"destructive\":" + std::string(destructive() ? "true" : "false") + ",\"risks\":[";
    for (size_t i = 0; i < codes.size(); i++) out += (i ? "," : "") + json_quote(codes[i]);
    return out + "]}";
}

Plan plan(const Schema &desired, const json_t *catalog) { return Planner(desired, read_catalog(catalog)).run(); }

}  // namespace flowgres::schema_plan
