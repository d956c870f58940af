// Database steps: shape checks, and statements whose identifiers come only from the catalog
// (quoted) and whose values are only ever bound parameters, whatever the config carries.
#include <gtest/gtest.h>

#include "executor/workspace_database.hpp"
#include "flowgres/database_steps.hpp"
#include "flowgres/json.hpp"

namespace flowgres::database_steps {
namespace {

const std::map<std::string, std::string> kNotes = {{"id", "integer"}, {"body", "text"}, {"Odd \"Name\"", "text"}};

Json config(const char *text) { return parse_json(text, "config"); }

std::vector<std::string> problems_of(const char *type, const char *config_text) {
    std::string text = std::string(R"({"nodes": [{"id": "s", "type": "start"}, {"id": "d", "type": ")") + type +
                       R"(", "config": )" + config_text +
                       R"(}, {"id": "o", "type": "output"}], "edges": [{"source": "s", "target": "d"}, {"source": "d", "target": "o"}]})";
    Json document = parse_json(text, "workflow");
    workflow::Problems problems = workflow::validate_workflow(document.get());
    std::vector<std::string> fields;
    for (const auto &problem : problems.list()) fields.push_back(problem.field);
    return fields;
}

TEST(DatabaseSteps, SelectQuotesCatalogNamesAndBindsValues) {
    Json step = config(R"({"table": "notes", "columns": ["id", "body"], "where": {"all": [{"column": "id", "op": "gt", "value": 3},
                          {"column": "body", "op": "like", "value": "x'; drop table notes; --%"}]}, "order_by": [{"column": "id", "direction": "desc"}],
                          "limit": 5})");
    Statement statement = build("db_select", step.get(), kNotes, 100);
    EXPECT_NE(statement.sql.find(R"(from "data"."notes" where ("id" > $1) and ("body"::text like $2) order by "id" desc limit 5)"),
              std::string::npos)
        << statement.sql;
    ASSERT_EQ(statement.params.size(), 2u);
    EXPECT_EQ(statement.params[0], "3");
    EXPECT_EQ(statement.params[1], "x'; drop table notes; --%");
    EXPECT_EQ(statement.sql.find("drop table"), std::string::npos);
    EXPECT_FALSE(statement.writes);
}

TEST(DatabaseSteps, NamesTheCatalogDoesNotHaveAreRefused) {
    for (const char *text : {R"({"table": "notes", "columns": ["id\"; drop table notes; --"]})",
                             R"({"table": "notes", "where": {"other_schema.secret": 1}})",
                             R"({"table": "notes", "where": {"column": "pg_catalog.pg_authid.rolpassword", "op": "eq", "value": 1}})",
                             R"({"table": "notes", "order_by": ["body; select 1"]})"}) {
        Json step = config(text);
        EXPECT_THROW(build("db_select", step.get(), kNotes, 100), StepError) << text;
    }
    Json missing_table = config(R"({"table": "users"})");
    EXPECT_THROW(build("db_select", missing_table.get(), {}, 100), StepError);
    // A real column with a quote in its name is quoted, not trusted.
    Json odd = config(R"({"table": "notes", "columns": ["Odd \"Name\""]})");
    EXPECT_NE(build("db_select", odd.get(), kNotes, 100).sql.find(R"("Odd ""Name""")"), std::string::npos);
}

TEST(DatabaseSteps, WritesBindEveryValue) {
    Json insert = config(R"({"table": "notes", "values": {"id": 7, "body": "Robert'); drop table notes;--"}})");
    Statement inserted = build("db_insert", insert.get(), kNotes, 100);
    EXPECT_NE(inserted.sql.find(R"(insert into "data"."notes" ("id", "body") values ($1, $2) returning *)"), std::string::npos)
        << inserted.sql;
    EXPECT_TRUE(inserted.writes);
    EXPECT_EQ(inserted.table, "notes");
    Json update = config(R"({"table": "notes", "values": {"body": null}, "where": {"id": 7}})");
    Statement updated = build("db_update", update.get(), kNotes, 100);
    EXPECT_NE(updated.sql.find(R"(update "data"."notes" set "body" = $2 where "id" = $1)"), std::string::npos) << updated.sql;
    EXPECT_EQ(updated.params[0], "7");
    EXPECT_FALSE(updated.params[1].has_value());
    Json remove = config(R"({"table": "notes", "where": {"column": "id", "op": "in", "value": [1, "2\"}", null]}})");
    Statement removed = build("db_delete", remove.get(), kNotes, 100);
    EXPECT_NE(removed.sql.find(R"("id" = any($1))"), std::string::npos);
    EXPECT_EQ(removed.params[0], R"({"1","2\"}",NULL})");
}

TEST(DatabaseSteps, RowLimitsHaveACeiling) {
    Json step = config(R"({"table": "notes", "limit": 1000000})");
    EXPECT_NE(build("db_select", step.get(), kNotes, 1000).sql.find("limit 1000)"), std::string::npos);
}

TEST(DatabaseSteps, QueriesTakeNamedParameters) {
    Json step = config(R"({"sql": "select id, ':skip' as s, body::text from data.notes where id = :id or body = :body or id = :id;",
                          "params": {"id": 3, "body": "x"}})");
    Statement statement = build("db_query", step.get(), kNotes, 10);
    EXPECT_NE(statement.sql.find("where id = $1 or body = $2 or id = $1"), std::string::npos) << statement.sql;
    EXPECT_NE(statement.sql.find("':skip'"), std::string::npos);
    EXPECT_NE(statement.sql.find("body::text"), std::string::npos);
    EXPECT_EQ(statement.params.size(), 2u);
    EXPECT_FALSE(statement.writes);
    Json write = config(R"({"sql": "  DELETE from data.notes where id = :id returning id", "params": {"id": 1}})");
    EXPECT_TRUE(build("db_query", write.get(), kNotes, 10).writes);
}

TEST(DatabaseSteps, VersionChecksNameEveryProblem) {
    EXPECT_EQ(problems_of("db_select", R"({})"), std::vector<std::string>{"nodes[1].config.table"});
    EXPECT_EQ(problems_of("db_delete", R"({"table": "notes"})"), std::vector<std::string>{"nodes[1].config.where"});
    EXPECT_EQ(problems_of("db_update", R"({"table": "notes", "where": {"id": 1}})"), std::vector<std::string>{"nodes[1].config.values"});
    EXPECT_EQ(problems_of("db_select", R"({"table": "notes", "where": {"column": "id", "op": "between", "value": 1}})"),
              std::vector<std::string>{"nodes[1].config.where.op"});
    EXPECT_EQ(problems_of("db_query", R"({"sql": "select 1; drop table notes"})"), std::vector<std::string>{"nodes[1].config.sql"});
    EXPECT_EQ(problems_of("db_query", R"({"sql": "select * from data.notes where id = $1"})"),
              std::vector<std::string>{"nodes[1].config.sql"});
    EXPECT_EQ(problems_of("db_query", R"({"sql": "select :missing"})"), std::vector<std::string>{"nodes[1].config.params.missing"});
    EXPECT_TRUE(problems_of("db_delete", R"({"table": "notes", "all_rows": true})").empty());
    EXPECT_TRUE(problems_of("db_query", R"({"sql": "select $$a;b$$, :x -- c;", "params": {"x": 1}})").empty());
}

}  // namespace
}  // namespace flowgres::database_steps

namespace {
// A workspace database whose catalog has one table, "notes", and that counts its lookups.
class CountingDatabase : public flowgres::executor::WorkspaceDatabase {
public:
    explicit CountingDatabase(std::shared_ptr<flowgres::executor::KeptColumns> kept) : WorkspaceDatabase(std::move(kept)) {}
    void query(std::string, std::vector<std::optional<std::string>> params,
               std::function<void(flowgres::executor::DatabaseAnswer)> done) override {
        lookups++;
        flowgres::executor::DatabaseAnswer answer;
        const std::string &table = *params.at(0);
        answer.value = table == "notes" || table == std::string(64, 'n') ? R"({"id": "integer"})" : "{}";
        done(std::move(answer));
    }
    void data_written(const std::string &, const std::string &, long long) override {}
    int lookups = 0;
};
}  // namespace

// Columns are kept across the runs sharing them, for tables found only: names from visitors'
// inputs (a table may be a template) that find nothing, or that no table could have, are
// looked up each time and never fill the kept list.
TEST(KeptColumns, OnlyTablesFoundAreKeptAcrossRuns) {
    auto kept = std::make_shared<flowgres::executor::KeptColumns>();
    CountingDatabase first(kept), second(kept);
    auto look = [](CountingDatabase &database, const std::string &table) {
        std::string seen;
        database.columns(table, [&](flowgres::executor::DatabaseAnswer answer) { seen = answer.value; });
        return seen;
    };
    EXPECT_EQ(look(first, "notes"), R"({"id": "integer"})");
    EXPECT_EQ(look(second, "notes"), R"({"id": "integer"})");
    EXPECT_EQ(first.lookups + second.lookups, 1) << "the second run reads the kept columns";
    for (int i = 0; i < 3; i++) EXPECT_EQ(look(first, std::string(400000, 'x') + std::to_string(i)), "{}");
    EXPECT_EQ(look(first, std::string(64, 'n')), R"({"id": "integer"})");
    EXPECT_EQ(look(first, std::string(64, 'n')), R"({"id": "integer"})");
    EXPECT_EQ(first.lookups, 6) << "missing tables and over-long names are looked up every time";
    EXPECT_EQ(kept->size(), 1u);
    second.forget_columns("notes");
    EXPECT_EQ(look(second, "notes"), R"({"id": "integer"})");
    EXPECT_EQ(second.lookups, 1) << "forgotten, looked up again";
}
