// Database steps: configuration checks and statement building (database_steps.hpp).
#include "flowgres/database_steps.hpp"

#include <cctype>
#include <cstring>
#include <set>

#include "flowgres/fields.hpp"

namespace flowgres::database_steps {
namespace {

constexpr size_t kMaxNameBytes = 63;  // PostgreSQL's NAMEDATALEN - 1

// `text` between two `quote`s, inner ones doubled: identifiers (") and literals (').
std::string quoted(const std::string &text, char quote) {
    std::string out(1, quote);
    for (char c : text) {
        if (c == quote) out += quote;
        out += c;
    }
    return out + quote;
}

const json_t *config_of(const workflow::Node &node, const char *key) { return json_object_get(node.config.get(), key); }

bool is_name(const json_t *value) {
    return json_is_string(value) && json_string_length(value) > 0 && json_string_length(value) <= kMaxNameBytes &&
           std::strlen(json_string_value(value)) == json_string_length(value);  // no NUL inside
}

const std::map<std::string, std::string> &operators() {
    static const std::map<std::string, std::string> table = {
        {"eq", "="}, {"ne", "<>"},      {"lt", "<"},         {"lte", "<="},        {"gt", ">"},
        {"gte", ">="}, {"like", "like"}, {"ilike", "ilike"}, {"in", "= any"}, {"not_in", "<> all"},
        {"is_null", "is null"}, {"not_null", "is not null"}};
    return table;
}

// A where clause: {"all": [...]}, {"any": [...]}, {"column", "op", "value"}, or the shorthand
// {"column": value, …} (each equal).
void check_where(const json_t *where, const std::string &field, const std::string &node_id, workflow::Problems &problems,
                 int depth = 0) {
    if (depth > 8) return problems.add(node_id, field, "nests too deeply (at most 8 levels)");
    if (!json_is_object(where) || json_object_size(where) == 0)
        return problems.add(node_id, field, "must be an object: {\"column\", \"op\", \"value\"}, {\"all\": […]}, {\"any\": […]} or {column: value}");
    for (const char *group : {"all", "any"}) {
        if (const json_t *items = json_object_get(where, group)) {
            if (!json_is_array(items) || json_array_size(items) == 0 || json_object_size(where) != 1)
                return problems.add(node_id, field + "." + group, "must be the only key, holding a non-empty list of conditions");
            size_t index;
            json_t *item;
            json_array_foreach(const_cast<json_t *>(items), index, item)
                check_where(item, field + "." + group + "[" + std::to_string(index) + "]", node_id, problems, depth + 1);
            return;
        }
    }
    if (const json_t *column = json_object_get(where, "column")) {
        if (!is_name(column)) problems.add(node_id, field + ".column", "must be a column name (1 to 63 bytes)");
        const char *op = json_string_value(json_object_get(where, "op"));
        if (!op || !operators().count(op))
            problems.add(node_id, field + ".op", "must be eq, ne, lt, lte, gt, gte, like, ilike, in, not_in, is_null or not_null");
        else if (std::string(op) != "is_null" && std::string(op) != "not_null" && !json_object_get(where, "value"))
            problems.add(node_id, field + ".value", "is required with op " + std::string(op));
        return;
    }
    const char *key;
    json_t *value;
    json_object_foreach(const_cast<json_t *>(where), key, value) {
        if (std::strlen(key) == 0 || std::strlen(key) > kMaxNameBytes)
            problems.add(node_id, field, "has a column name that is empty or longer than 63 bytes");
    }
}

void check_names(const json_t *names, const std::string &field, const std::string &node_id, workflow::Problems &problems) {
    if (!names) return;
    if (!json_is_array(names) || json_array_size(names) == 0)
        return problems.add(node_id, field, "must be a non-empty list of column names");
    size_t index;
    json_t *name;
    json_array_foreach(const_cast<json_t *>(names), index, name) if (!is_name(name))
        problems.add(node_id, field + "[" + std::to_string(index) + "]", "must be a column name (1 to 63 bytes)");
}

// db_query's statement with its named parameters (:name) turned into $1, $2 … (one number per name),
// skipping quoted text, quoted identifiers, dollar quotes, comments and :: casts.
struct ConvertedQuery {
    std::string sql;
    std::vector<std::string> names;  // names[i] is $i+1
    bool several_statements = false;
    bool positional = false;  // a $1 of its own
    std::string first_word;
};

ConvertedQuery convert_named_parameters(const std::string &text) {
    ConvertedQuery out;
    std::string sql = text;
    // One trailing semicolon is allowed (and dropped).
    while (!sql.empty() && std::isspace(static_cast<unsigned char>(sql.back()))) sql.pop_back();
    if (!sql.empty() && sql.back() == ';') sql.pop_back();
    size_t i = 0;
    auto ident_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    while (i < sql.size()) {
        char c = sql[i];
        if (c == '\'' || c == '"') {
            size_t end = i + 1;
            while (end < sql.size() && !(sql[end] == c && (end + 1 >= sql.size() || sql[end + 1] != c))) end += sql[end] == c ? 2 : 1;
            out.sql.append(sql, i, end + 1 - i);
            i = end + 1;
        } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
            size_t end = sql.find('\n', i);
            if (end == std::string::npos) end = sql.size();
            out.sql.append(sql, i, end - i);
            i = end;
        } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
            size_t end = sql.find("*/", i + 2);
            end = end == std::string::npos ? sql.size() : end + 2;
            out.sql.append(sql, i, end - i);
            i = end;
        } else if (c == '$') {
            size_t tag_end = i + 1;
            while (tag_end < sql.size() && ident_char(sql[tag_end]) && !std::isdigit(static_cast<unsigned char>(sql[i + 1])))
                tag_end++;
            if (tag_end < sql.size() && sql[tag_end] == '$') {  // $tag$ … $tag$
                std::string tag = sql.substr(i, tag_end - i + 1);
                size_t end = sql.find(tag, tag_end + 1);
                end = end == std::string::npos ? sql.size() : end + tag.size();
                out.sql.append(sql, i, end - i);
                i = end;
            } else {
                if (i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1]))) out.positional = true;
                out.sql += c;
                i++;
            }
        } else if (c == ':' && i + 1 < sql.size() && sql[i + 1] == ':') {
            out.sql += "::";
            i += 2;
        } else if (c == ':' && i + 1 < sql.size() && (std::isalpha(static_cast<unsigned char>(sql[i + 1])) || sql[i + 1] == '_')) {
            size_t end = i + 1;
            while (end < sql.size() && ident_char(sql[end])) end++;
            std::string name = sql.substr(i + 1, end - i - 1);
            size_t number = 0;
            while (number < out.names.size() && out.names[number] != name) number++;
            if (number == out.names.size()) out.names.push_back(name);
            out.sql += "$" + std::to_string(number + 1);
            i = end;
        } else {
            if (c == ';') out.several_statements = true;
            out.sql += c;
            i++;
        }
    }
    // The statement's first word, for telling writes from reads.
    size_t start = out.sql.find_first_not_of(" \t\r\n(");
    while (start != std::string::npos && start < out.sql.size() && std::isalpha(static_cast<unsigned char>(out.sql[start])))
        out.first_word += static_cast<char>(std::tolower(static_cast<unsigned char>(out.sql[start++])));
    return out;
}

void check_query(const workflow::Node &node, const std::string &field, workflow::Problems &problems) {
    const json_t *sql = config_of(node, "sql");
    if (!json_is_string(sql) || json_string_length(sql) == 0 || json_string_length(sql) > 20000)
        return problems.add(node.id, field + ".config.sql", "is required: one SQL statement of 1 to 20000 characters");
    ConvertedQuery converted = convert_named_parameters(json_string_value(sql));
    if (converted.several_statements) problems.add(node.id, field + ".config.sql", "must be one statement");
    if (converted.positional) problems.add(node.id, field + ".config.sql", "names its parameters :like_this, not $1");
    const json_t *params = config_of(node, "params");
    if (params && !json_is_object(params)) return problems.add(node.id, field + ".config.params", "must be an object of named values");
    for (const std::string &name : converted.names)
        if (!json_object_get(params, name.c_str()))
            problems.add(node.id, field + ".config.params." + name, "is required: the statement names :" + name);
}

// A JSON value as a bound parameter's text: strings as they are, numbers and booleans as
// PostgreSQL reads them, objects and arrays as JSON (for json and jsonb columns).
std::optional<std::string> parameter_text(const json_t *value) {
    if (!value || json_is_null(value)) return std::nullopt;
    if (json_is_string(value)) return std::string(json_string_value(value), json_string_length(value));
    if (json_is_true(value)) return "true";
    if (json_is_false(value)) return "false";
    return dump_json(value);
}

// A PostgreSQL array literal of a JSON list, for `= any($n)`.
std::string array_literal(const json_t *list) {
    std::string out = "{";
    size_t index;
    json_t *item;
    json_array_foreach(const_cast<json_t *>(list), index, item) {
        if (index) out += ",";
        auto text = parameter_text(item);
        if (!text) {
            out += "NULL";
            continue;
        }
        out += '"';
        for (char c : *text) {
            if (c == '"' || c == '\\') out += '\\';
            out += c;
        }
        out += '"';
    }
    return out + "}";
}

class Builder {
public:
    Builder(const std::map<std::string, std::string> &columns, std::string table) : columns_(columns), table_(std::move(table)) {}

    std::string column(const json_t *name, const std::string &field) const {
        const char *text = json_string_value(name);
        if (!text || !columns_.count(text))
            throw StepError(field + ": the table " + table_ + " has no column " +
                            (text ? json_quote(utf8_prefix(text, 80)) : std::string("(not a name)")));
        return quote_identifier(text);
    }

    std::string bind(std::optional<std::string> value) {
        params.push_back(std::move(value));
        return "$" + std::to_string(params.size());
    }

    std::string where(const json_t *condition, const std::string &field) {
        for (const char *group : {"all", "any"}) {
            if (const json_t *items = json_object_get(condition, group)) {
                std::string out;
                size_t index;
                json_t *item;
                json_array_foreach(const_cast<json_t *>(items), index, item) {
                    if (index) out += std::string(" ") + (std::strcmp(group, "all") == 0 ? "and" : "or") + " ";
                    out += "(" + where(item, field + "." + group + "[" + std::to_string(index) + "]") + ")";
                }
                return out;
            }
        }
        if (const json_t *name = json_object_get(condition, "column")) {
            std::string target = column(name, field + ".column");
            std::string op = json_string_value(json_object_get(condition, "op"));
            const json_t *value = json_object_get(condition, "value");
            if (op == "is_null" || op == "not_null") return target + " " + operators().at(op);
            if (op == "in" || op == "not_in") {
                if (!json_is_array(value)) throw StepError(field + ".value: must be a list with op " + op);
                return target + " " + operators().at(op) + "(" + bind(array_literal(value)) + ")";
            }
            if (op == "like" || op == "ilike") return target + "::text " + operators().at(op) + " " + bind(parameter_text(value));
            if (json_is_null(value)) throw StepError(field + ".value: is null; use op is_null");
            return target + " " + operators().at(op) + " " + bind(parameter_text(value));
        }
        std::string out;
        const char *key;
        json_t *value;
        json_object_foreach(const_cast<json_t *>(condition), key, value) {
            if (!out.empty()) out += " and ";
            json_t *name = json_string(key);
            std::string target = column(name, field + "." + key);
            json_decref(name);
            out += json_is_null(value) ? target + " is null" : target + " = " + bind(parameter_text(value));
        }
        return out;
    }

    std::string names(const json_t *list, const std::string &field) const {
        if (!list) return "*";
        std::string out;
        size_t index;
        json_t *name;
        json_array_foreach(const_cast<json_t *>(list), index, name) {
            if (index) out += ", ";
            out += column(name, field + "[" + std::to_string(index) + "]");
        }
        return out;
    }

    std::vector<std::optional<std::string>> params;

private:
    const std::map<std::string, std::string> &columns_;
    std::string table_;
};

size_t row_limit(const json_t *config, size_t max_rows) {
    const json_t *limit = json_object_get(config, "limit");
    if (!limit) return max_rows;
    if (!json_is_integer(limit) || json_integer_value(limit) < 1) throw StepError("limit: must be a number from 1");
    return std::min(static_cast<size_t>(json_integer_value(limit)), max_rows);
}

// {"count": rows affected or found, "rows": the first `limit` of them}
std::string answer_of(const std::string &source, size_t limit) {
    return "select jsonb_build_object('count', (select count(*) from " + source + "), 'rows', (select coalesce(jsonb_agg(to_jsonb(x)), '[]') from (select * from " +
           source + " limit " + std::to_string(limit) + ") x))::text";
}

}  // namespace

bool is_database_step(std::string_view type) {
    return type == "db_select" || type == "db_insert" || type == "db_update" || type == "db_delete" || type == "db_query";
}

std::string quote_identifier(const std::string &name) { return quoted(name, '"'); }
std::string quote_literal(const std::string &text) { return quoted(text, '\''); }

const char *catalog_query() {
    // What information_schema.columns lists for the table (tables, views, foreign and
    // partitioned tables; the columns the role owns or holds a privilege on), read from
    // pg_catalog directly: that view's joins and checks cost a db_select run a third of its
    // database time, where this is two index lookups.
    return "select coalesce(jsonb_object_agg(a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)), '{}')::text "
           "from pg_catalog.pg_class c "
           "join pg_catalog.pg_namespace n on n.oid = c.relnamespace and n.nspname = 'data' "
           "join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped "
           "where c.relname = $1 and c.relkind in ('r', 'v', 'f', 'p') "
           "and (pg_catalog.pg_has_role(c.relowner, 'USAGE') "
           "or pg_catalog.has_column_privilege(c.oid, a.attnum, 'SELECT, INSERT, UPDATE, REFERENCES'))";
}

void check(const workflow::Node &node, const std::string &field, workflow::Problems &problems) {
    const std::string &type = node.type;
    if (type == "db_query") return check_query(node, field, problems);
    if (!is_name(config_of(node, "table")))
        problems.add(node.id, field + ".config.table", "is required: a table name (1 to 63 bytes) of the workspace database");
    if (const json_t *where = config_of(node, "where")) check_where(where, field + ".config.where", node.id, problems);
    if ((type == "db_update" || type == "db_delete") && !config_of(node, "where") && !json_is_true(config_of(node, "all_rows")))
        problems.add(node.id, field + ".config.where", "is required (or all_rows: true, to " + type.substr(3) + " every row)");
    if (type == "db_insert" || type == "db_update") {
        const json_t *values = config_of(node, "values");
        if (!json_is_object(values) || json_object_size(values) == 0)
            problems.add(node.id, field + ".config.values", "is required: an object of column: value");
        const char *key;
        json_t *value;
        json_object_foreach(const_cast<json_t *>(values), key, value) if (std::strlen(key) == 0 || std::strlen(key) > kMaxNameBytes)
            problems.add(node.id, field + ".config.values", "has a column name that is empty or longer than 63 bytes");
    }
    check_names(config_of(node, "columns"), field + ".config.columns", node.id, problems);
    check_names(config_of(node, "returning"), field + ".config.returning", node.id, problems);
    if (const json_t *order = config_of(node, "order_by")) {
        if (!json_is_array(order)) problems.add(node.id, field + ".config.order_by", "must be a list of {\"column\", \"direction\"}");
        size_t index;
        json_t *item;
        json_array_foreach(const_cast<json_t *>(order), index, item) {
            const json_t *name = json_is_object(item) ? json_object_get(item, "column") : item;
            const char *direction = json_is_object(item) ? json_string_value(json_object_get(item, "direction")) : nullptr;
            if (!is_name(name) || (direction && std::strcmp(direction, "asc") != 0 && std::strcmp(direction, "desc") != 0))
                problems.add(node.id, field + ".config.order_by[" + std::to_string(index) + "]",
                             "must be a column name or {\"column\", \"direction\": \"asc\" | \"desc\"}");
        }
    }
    if (const json_t *limit = config_of(node, "limit"); limit && (!json_is_integer(limit) || json_integer_value(limit) < 1))
        problems.add(node.id, field + ".config.limit", "must be a number from 1");
}

Statement build(const std::string &type, const json_t *config, const std::map<std::string, std::string> &columns, size_t max_rows) {
    Statement statement;
    size_t limit = row_limit(config, max_rows);
    if (type == "db_query") {
        ConvertedQuery converted = convert_named_parameters(json_string_value(json_object_get(config, "sql")));
        const json_t *params = json_object_get(config, "params");
        for (const std::string &name : converted.names) {
            const json_t *value = json_object_get(params, name.c_str());
            if (!value) throw StepError("params." + name + ": is required");
            statement.params.push_back(parameter_text(value));
        }
        statement.writes = converted.first_word == "insert" || converted.first_word == "update" ||
                           converted.first_word == "delete" || converted.first_word == "merge";
        statement.sql = "with q as (" + converted.sql + ") " + answer_of("q", limit);
        return statement;
    }
    std::string table = json_string_value(json_object_get(config, "table"));
    if (columns.empty()) throw StepError("table: the workspace database has no table " + json_quote(utf8_prefix(table, 80)));
    Builder builder(columns, table);
    std::string target = quote_identifier(kTenantSchema) + "." + quote_identifier(table);
    std::string where;
    if (const json_t *condition = json_object_get(config, "where")) where = " where " + builder.where(condition, "where");
    statement.table = table;
    if (type == "db_select") {
        std::string order;
        size_t index;
        json_t *item;
        json_array_foreach(json_object_get(config, "order_by"), index, item) {
            const json_t *name = json_is_object(item) ? json_object_get(item, "column") : item;
            const char *direction = json_is_object(item) ? json_string_value(json_object_get(item, "direction")) : nullptr;
            order += std::string(order.empty() ? " order by " : ", ") + builder.column(name, "order_by[" + std::to_string(index) + "]") +
                     (direction && std::strcmp(direction, "desc") == 0 ? " desc" : " asc");
        }
        statement.sql = "with r as (select " + builder.names(json_object_get(config, "columns"), "columns") + " from " + target +
                        where + order + " limit " + std::to_string(limit) + ") " + answer_of("r", limit);
    } else if (type == "db_insert" || type == "db_update") {
        std::string names, values, assignments;
        const char *key;
        json_t *value;
        json_object_foreach(json_object_get(config, "values"), key, value) {
            json_t *name = json_string(key);
            std::string column = builder.column(name, std::string("values.") + key);
            json_decref(name);
            std::string parameter = builder.bind(parameter_text(value));
            names += (names.empty() ? "" : ", ") + column;
            values += (values.empty() ? "" : ", ") + parameter;
            assignments += (assignments.empty() ? "" : ", ") + column + " = " + parameter;
        }
        std::string returning = " returning " + builder.names(json_object_get(config, "returning"), "returning");
        statement.sql = type == "db_insert" ? "with w as (insert into " + target + " (" + names + ") values (" + values + ")" + returning + ") "
                                            : "with w as (update " + target + " set " + assignments + where + returning + ") ";
        statement.sql += answer_of("w", limit);
        statement.writes = true;
    } else if (type == "db_delete") {
        statement.sql = "with w as (delete from " + target + where + " returning " +
                        builder.names(json_object_get(config, "returning"), "returning") + ") " + answer_of("w", limit);
        statement.writes = true;
    } else {
        throw StepError("not a database step: " + type);
    }
    statement.params = std::move(builder.params);
    return statement;
}

}  // namespace flowgres::database_steps
